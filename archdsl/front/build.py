"""Making the nodes of one network: each op's attributes normalised and its shape rule run, the
shapes and weights checked against the limits (nodes, elements of a tensor, parameters of the
network), the nodes numbered in program order and kept in the table that becomes ``ir.Network``."""
from __future__ import annotations

from collections.abc import Callable

from .. import ops
from ..errors import ArchError, Span
from ..ir import Node, Scope, Value
from ..ops import OpError, fmt_shape

MAX_TENSOR_ELEMENTS = 2 ** 32  # one activation or weight of one sample: 16 GiB in float32
MAX_PARAMS = 2 ** 34  # parameters and buffers of a network: 64 GiB in float32


class LimitError(ArchError):
    """A resource limit: elaboration stops at once instead of reporting it statement by statement."""


class GraphBuilder:
    """The nodes of the network being elaborated; ``warn(message, span, hint)`` reports."""

    def __init__(self, max_nodes: int, warn: Callable[[str, Span, str | None], None]):
        self.max_nodes, self.warn = max_nodes, warn
        self.node_table: dict[int, Node] = {}  # node id -> Node, in program order (ir.Network)
        self.next_id = 0
        self.weights_total = 0  # parameters and buffers so far, against MAX_PARAMS

    def op(self, name: str, attrs: dict, inputs: list[Value], scope: Scope, span: Span, label, take_name) -> Value:
        """A node of op ``name`` on ``inputs``: attributes normalised, shapes inferred and checked,
        weights counted against the budget; its value (a tuple of values for several outputs)."""
        spec = ops.REGISTRY[name]
        in_shapes = [self.shape(v) for v in inputs]
        try:
            attrs = spec.normalize(attrs, in_shapes)
            shapes, warnings = spec.shape(attrs, in_shapes)
        except OpError as err:
            raise ArchError(err.message, span, err.hint) from None
        except _RULE_BUGS as err:  # a shape rule that misses a check: still a diagnostic, not a traceback
            raise _rule_bug(name, err, span) from None
        for msg, hint in _merge_axes(warnings):
            self.warn(msg, span, hint)
        for s in shapes:
            for d in s:
                if isinstance(d, int) and d <= 0:
                    raise ArchError(f"{name} gives an empty tensor {fmt_shape(s)} from "
                                    f"{' and '.join(fmt_shape(t) for t in in_shapes)}", span,
                                    "the input is too small for this many downsampling steps")
            check_elements(s, lambda: f"{name} gives a tensor {fmt_shape(s)} of", span)
        try:
            weights = spec.weights(attrs, in_shapes)
        except _RULE_BUGS as err:
            raise _rule_bug(name, err, span) from None
        for w in weights:
            self.weights_total += check_elements(
                w.shape, lambda: f"{name} has a {w.name} {fmt_shape(w.shape)} of", span)
        if self.weights_total > MAX_PARAMS:
            raise LimitError(f"the network has more than {MAX_PARAMS:,} parameters and buffers", span,
                             "archdsl refuses networks whose float32 weights would need over 64 GiB "
                             "(front.build.MAX_PARAMS)")
        # merges are plain arithmetic in forward(): they own no module and take no index
        named = spec.inputs != "many" or label is not None
        node = self.node(name, attrs, inputs, shapes, scope, span, label, take_name if named else None)
        if len(shapes) > 1:
            return tuple((node.id, i) for i in range(len(shapes)))
        return (node.id, 0)

    def node(self, op, attrs, inputs, shapes, scope, span, label, take_name=None) -> Node:
        """A node with its shapes as given; ``take_name(scope, label)`` names it (None: nameless)."""
        if self.next_id >= self.max_nodes:
            raise LimitError(f"the network exceeds the limit of {self.max_nodes} nodes", span,
                            "raise the limit with --max-nodes")
        if take_name is not None:
            name, labeled = take_name(scope, label)
        else:
            name, labeled = "", False
        node = Node(self.next_id, op, attrs, list(inputs), shapes, name, scope, span, labeled)
        self.next_id += 1
        self.node_table[node.id] = node  # its inputs are its edges (ir.Network.graph)
        scope.items.append(node)
        return node

    def shape(self, v: Value):
        return self.node_table[v[0]].shapes[v[1]]


_RULE_BUGS = (ArithmeticError, TypeError, ValueError, IndexError, KeyError)


def _rule_bug(op: str, err: Exception, span: Span) -> ArchError:
    return ArchError(f"{op}: these arguments are not supported ({type(err).__name__}: {err})", span,
                     "the op's checks missed this case; please report it")


def check_elements(shape, what, span: Span) -> int:
    """The element count of ``shape`` (symbolic sizes count 1), refused above MAX_TENSOR_ELEMENTS;
    ``what()`` says what the shape is, for the message (only formatted when there is one)."""
    n = 1
    for d in shape:
        if isinstance(d, int):
            n *= d
    if n > MAX_TENSOR_ELEMENTS:
        raise ArchError(f"{what()} {n:,} elements; the limit is {MAX_TENSOR_ELEMENTS:,}", span,
                        "that would need over 16 GiB per sample in float32 (front.build.MAX_TENSOR_ELEMENTS)")
    return n


def _merge_axes(warnings):
    """One warning for both axes when height and width have the same problem."""
    out: list[tuple[str, str | None]] = []
    for msg, hint in warnings:
        twin = msg.replace("the width", "the height")
        if msg != twin and (twin, hint) in out:
            out[out.index((twin, hint))] = (twin.replace("the height", "the height and width"), hint)
        elif (msg, hint) not in out:
            out.append((msg, hint))
    return out
