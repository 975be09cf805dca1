"""What an op entry is: :class:`OpSpec` and the typed facets it is made of.

One entry per layer kind holds every facet as data: the attribute schema and its normalisation,
the shape rule, weights, MACs, receptive field, traits, the PyTorch spelling, the ONNX lowering,
the picture label and style, and the examples the tests run.  Backends read these facets and hold
no per-op code.  Every facet but the schema, the doc and the shape rule is optional; its default
is derived from the others and documented on the field.

Shapes never include the batch dimension: an image is ``(C, H, W)``, a feature vector ``(F,)``.
A spatial size that is not known until run time (``input x: [3, H, W]``) is a string.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from ..ir import Node

Dim = int | str
Shape = tuple[Dim, ...]


class OpError(Exception):
    """Raised by a shape rule; elaboration turns it into a diagnostic at the op's span."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint


class OpWarning(NamedTuple):
    """A non-fatal finding of a shape rule, returned with its shapes (the elaborator reports it)."""

    message: str
    hint: str | None = None


REQUIRED = object()


@dataclass(frozen=True)
class Attr:
    """One attribute of an op: name, kind (how a value is checked and normalised), default."""

    name: str
    # int | float | number (int or float, kept as written) | bool | str | pair | pad | ints | axis | tensor
    kind: str = "int"
    default: Any = REQUIRED  # a value, REQUIRED, or None (absent: derived by the op)
    choices: tuple = ()
    doc: str = ""
    minimum: int = 0  # for kinds int and pair: groups, channels, kernels and strides start at 1
    # (low, high): the values that make sense.  One outside is legal but gets a warning that says
    # what it was taken as: bn(16), PyTorch's BatchNorm2d(16), sets eps.
    usual: tuple[float, float] | None = None


@dataclass(frozen=True)
class Weight:
    """A tensor an op owns, named as in the PyTorch ``state_dict`` (``weight``, ``running_mean``)."""

    name: str
    shape: tuple[int, ...]
    trainable: bool = True
    role: str = "weight"  # weight | bias | bn_weight | bn_bias | mean | var | count (for initialisers)
    fill: float | None = None  # PyTorch's default initialisation is this constant (PReLU's 0.25)


class Trait(Enum):
    """What the backends and passes may assume about an op (tinygrad's ``GroupOp`` sets)."""

    ELEMENTWISE = "elementwise"  # each output value depends on the input value at the same place
    # may overwrite its input when nothing else reads it: its module and named functional take
    # inplace= (ReLU(inplace=True), F.relu(x, inplace=True)); a merge with an operator: out += x
    IN_PLACE_OK = "in place ok"
    ALIASES_INPUT = "aliases input"  # its output needs no memory of its own (a view, an in-place op)
    # writes a new tensor that its backward does not keep: an in-place consumer may overwrite it
    FRESH_OUTPUT = "fresh output"
    WEIGHTED = "weighted"  # owns state_dict tensors (derived: set when the entry has a weights rule)
    INITIALISABLE = "initialisable"  # an `init` declaration reaches its weight (needs TorchSpec.init_class)
    FOLDABLE = "foldable"  # a per-channel affine of running statistics: folds into a FOLD_TARGET before it
    FOLD_TARGET = "fold target"  # weight [out, ...] and a bias a following FOLDABLE op can be folded into


class RFKind(Enum):
    WINDOW = "window"  # a sliding window (pointwise ops are the 1x1 window with stride 1)
    GLOBAL = "global"  # every output value sees the whole input
    RESAMPLE = "resample"  # a resize to a size: the jump scales by input size / output size


@dataclass(frozen=True)
class RF:
    """An op's contribution to the receptive field: the window grows by ``(kernel - 1) * jump``
    and the jump between neighbouring outputs is multiplied by ``stride``."""

    kind: RFKind = RFKind.WINDOW
    kernel: int = 1
    stride: float = 1

    @staticmethod
    def window(kernel: int, stride: float) -> RF:
        return RF(RFKind.WINDOW, kernel, stride)


POINTWISE = RF()
GLOBAL = RF(RFKind.GLOBAL)
RESAMPLE = RF(RFKind.RESAMPLE)


class Style(Enum):
    """How a picture draws the op's box (a colour class of the DOT and Mermaid writers)."""

    CONV = "conv"
    LINEAR = "linear"
    POOL = "pool"
    NORM = "norm"
    ACT = "act"
    MERGE = "merge"
    SHAPE = "shape"


class Emitter(Protocol):
    """What an ONNX lowering may call (:class:`archdsl.backends.onnx.Emitter` implements it)."""

    opset: int

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> Any: ...
    def const(self, value, dtype=...) -> str: ...
    def ints(self, values) -> str: ...
    def weight(self, n: Node, name: str) -> str | None: ...
    def in_shape(self, n: Node, k: int = 0) -> Shape: ...
    def reduce(self, op_type: str, x: str, axes: list[int], keepdims: int = 1) -> str: ...
    def folded(self, n: Node) -> bool: ...


Attrs = dict[str, Any]
ShapeRule = Callable[[Attrs, list[Shape]], tuple[list[Shape], list[OpWarning]]]
Lowering = Callable[[Emitter, "Node", list[str]], list[str]]
# forward() text of a functional step: (attrs, input variable names, input shapes) -> expression
FunctionalBuilder = Callable[[Attrs, list[str], list[Shape]], str]


@dataclass(frozen=True)
class TorchSpec:
    """The PyTorch spelling of an op, as values: the backend renders them.

    ``module``: the ``nn`` class (``"nn.Conv2d"``), or a function of (attrs, in_shapes) for an op
    whose class depends on its input (BatchNorm1d/2d); None: the op is never a submodule.
    ``args``: (attrs, in_shapes) -> the argument values in call order, keyed by PyTorch's argument
    names; the first ``positional`` are passed by position, and their names are the roles by which
    a generated class names a constructor parameter (``in_channels``).  A keyword may be left out
    when it equals the class's default, which ``defaults`` holds (instances that spell a default
    and instances that omit it then share a class).
    ``functional``: the call that replaces an unlabelled module in ``forward()``: a name
    (``"F.max_pool2d"``, called with the input and the same ``args``) or a builder of the
    expression; None: always a module.  ``operator``: an infix merge (``+``): the inputs joined by
    it, and ``a += b`` in place.  ``init_class``: the ``isinstance`` target of an ``init``
    declaration (default: ``module``).
    """

    module: str | Callable[[Attrs, list[Shape]], str] | None = None
    args: Callable[[Attrs, list[Shape]], dict[str, Any]] = lambda a, ins: {}
    positional: int = 0
    defaults: dict[str, Any] = field(default_factory=dict)
    functional: str | FunctionalBuilder | None = None
    operator: str | None = None
    init_class: str | None = None

    def module_class(self, attrs: Attrs, in_shapes: list[Shape]) -> str | None:
        return self.module(attrs, in_shapes) if callable(self.module) else self.module

    def isinstance_of(self) -> str | None:
        return self.init_class or (self.module if isinstance(self.module, str) else None)


@dataclass(frozen=True)
class Example:
    """An example call for the tests: ``text`` is a stage after ``x ->``, or whole statements
    (with a newline) over the input ``x`` of ``shape``; ``id`` names it (default: the op, then
    ``op_2``, ``op_3`` ...)."""

    text: str
    shape: Shape = (4, 9, 9)
    id: str = ""


def keep(a: Attrs, ins: list[Shape]) -> Attrs:
    return a


def no_weights(a: Attrs, ins: list[Shape]) -> list[Weight]:
    return []


def same_shape(a: Attrs, ins: list[Shape]) -> tuple[list[Shape], list[OpWarning]]:
    return [ins[0]], []


@dataclass
class OpSpec:
    """One op: its facets.  Defaults: ``normalize`` keeps the attrs; no weights (and then no
    ``WEIGHTED`` trait), 0 MACs, a pointwise receptive field; ``torch``/``onnx`` None (the
    registry test names the op); ``label`` shows the op with its non-default attributes;
    ``style`` follows the family; ``examples`` is the doc ``example`` on a [4, 9, 9] input."""

    name: str
    attrs: tuple[Attr, ...]
    doc: str
    shape: ShapeRule  # pure: reads the normalised attrs, returns (output shapes, warnings)
    family: str = ""
    # (attrs, in_shapes) -> attrs in the form the rules and backends read (pairs, resolved
    # pad="same"); run by the elaborator before the shape rule; pure (returns a new dict)
    normalize: Callable[[Attrs, list[Shape]], Attrs] = keep
    weights: Callable[[Attrs, list[Shape]], list[Weight]] = no_weights
    macs: Callable[[Attrs, list[Shape], list[Shape]], int] = lambda a, ins, outs: 0
    rf: Callable[[Attrs], RF] = lambda a: POINTWISE
    traits: frozenset[Trait] = frozenset()
    torch: TorchSpec | None = None
    onnx: Lowering | None = None
    label: Callable[[str, Attrs, list[Shape]], str] | None = None  # "conv 3x3/2, 128"
    style: Style | None = None
    inputs: str = "one"  # one | many (merges)
    example: str = ""  # for the docs and hints
    examples: tuple[Example, ...] = ()
    rule: str = ""  # the shape rule in words, for `archdsl ops`

    def __post_init__(self) -> None:
        self.traits = frozenset(self.traits) | ({Trait.WEIGHTED} if self.weights is not no_weights else set())
        if self.style is None:
            self.style = Style(self.family) if self.family in {s.value for s in Style} else Style.SHAPE
        if not self.examples and self.example:
            self.examples = (Example(self.example),)
        self.examples = tuple(e if e.id else Example(e.text, e.shape, self.name if k == 0 else f"{self.name}_{k + 1}")
                              for k, e in enumerate(self.examples))

    @property
    def has_weights(self) -> bool:
        return Trait.WEIGHTED in self.traits

    def has(self, trait: Trait) -> bool:
        return trait in self.traits

    def attr(self, name: str) -> Attr | None:
        return next((a for a in self.attrs if a.name == name), None)

    def picture(self, attrs: Attrs, in_shapes: list[Shape]) -> str:
        return (self.label or generic_label(self))(self.name, attrs, in_shapes)


def generic_label(spec: OpSpec) -> Callable[[str, Attrs, list[Shape]], str]:
    """The default picture label: the op name and its non-default attributes (positional-looking
    for a required one)."""

    def label(op: str, a: Attrs, ins: list[Shape]) -> str:
        parts = []
        for attr in spec.attrs:
            if attr.name not in a:
                continue
            value = a[attr.name]
            if attr.default is REQUIRED:
                parts.append(label_value(value))
            elif not callable(attr.default) and value != attr.default:
                parts.append(f"{attr.name}={label_value(value)}")
        return " ".join([op, ", ".join(parts)]) if parts else op

    return label


def label_num(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def label_value(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(label_value(x) for x in v) + ")"
    if isinstance(v, bool):
        return str(v).lower()
    return label_num(v)


REGISTRY: dict[str, OpSpec] = {}


def register(spec: OpSpec) -> OpSpec:
    assert spec.name not in REGISTRY, spec.name
    REGISTRY[spec.name] = spec
    return spec


def with_trait(trait: Trait) -> tuple[str, ...]:
    """The ops that have ``trait``, in registration order."""
    return tuple(n for n, s in REGISTRY.items() if trait in s.traits)


def label_kernel(v) -> str:
    """``3x3`` for a kernel or a size."""
    a, b = v if isinstance(v, (tuple, list)) else (v, v)
    return f"{a}x{b}"


def label_stride(v) -> str:
    """``/2`` (or ``/2x1``) after the kernel; nothing for stride 1."""
    a, b = v if isinstance(v, (tuple, list)) else (v, v)
    if (a, b) == (1, 1):
        return ""
    return f"/{a}" if a == b else f"/{a}x{b}"
