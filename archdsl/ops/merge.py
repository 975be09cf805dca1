"""Merges of several tensors: add, mul (broadcasting), concat (channel axis)."""
from __future__ import annotations

from .arith import fmt_shape
from .spec import Attr, Example, OpError, OpSpec, TorchSpec, Trait, register


def _known_equal(x, y) -> bool:
    return x == y or not (isinstance(x, int) and isinstance(y, int))


def _broadcast(a, ins, name):
    out = list(ins[0])
    for s in ins[1:]:
        if len(s) != len(out):
            raise OpError(f"{name} of tensors with different ranks: " + " and ".join(fmt_shape(t) for t in ins))
        for i, (x, y) in enumerate(zip(out, s)):
            if _known_equal(x, y):
                continue
            if name == "mul" and (x == 1 or y == 1):
                out[i] = y if x == 1 else x
                continue
            raise OpError(f"{name} of " + " and ".join(fmt_shape(t) for t in ins), _merge_hint(ins, name))
    return [tuple(out)], []


def _merge_hint(ins, name):
    a, b = ins[0], ins[1]
    if len(a) == 3 and len(b) == 3 and all(isinstance(d, int) for d in a + b):
        small, big = (a, b) if a[1] <= b[1] else (b, a)  # the shortcut is the larger map
        if small[1] != big[1] and big[1] % small[1] == 0:
            s = big[1] // small[1]
            return (f"a 1x1 stride-{s} projection on the {fmt_shape(big)} branch "
                    f"(conv({small[0]}, 1, stride={s}, bias=false) -> bn) would match")
        if small[1] == big[1] and a[0] != b[0]:
            return f"a 1x1 projection (conv({a[0]}, 1, bias=false) -> bn) on the shortcut would match the channels"
    if name == "add":
        return "the branches of add must produce the same shape"
    return None


def _chain(onnx_op: str):
    def lower(e, n, xs):
        y = xs[0]
        for x in xs[1:]:  # left to right, as PyTorch evaluates a + b + c
            y = e.op(onnx_op, [y, x])
        return [y]
    return lower


register(OpSpec(
    "add", (), "Element-wise sum of the branches (residual connections).",
    lambda a, ins: _broadcast(a, ins, "add"), inputs="many", family="merge",
    # `out += identity` where the first branch is fresh and read by nothing else (torchvision's style)
    traits={Trait.IN_PLACE_OK, Trait.FRESH_OUTPUT}, torch=TorchSpec(operator="+"), onnx=_chain("Add"),
    example="add { conv(64, 3, pad=1) | identity }",
    examples=(Example("add { conv(4, 3, pad=1) | identity | relu }"),),
    rule="all inputs have the same shape"))

register(OpSpec(
    "mul", (), "Element-wise product with broadcasting (squeeze-and-excitation gates).",
    lambda a, ins: _broadcast(a, ins, "mul"), inputs="many", family="merge",
    torch=TorchSpec(operator="*"), onnx=_chain("Mul"),
    example="mul { identity | global_avgpool -> conv(16, 1) -> sigmoid }",
    examples=(Example("mul { identity | global_avgpool -> conv(2, 1) -> relu -> conv(4, 1) -> sigmoid }",
                      id="mul_se"),),
    rule="shapes broadcast (size-1 axes stretch)"))


def _concat_normalize(a, ins):
    """A negative axis counted from the front (an axis out of range is the shape rule's error)."""
    rank = len(ins[0])
    return {**a, "axis": a["axis"] % rank} if -rank <= a["axis"] < rank else a


def _concat_shape(a, ins):
    ax = a["axis"]
    rank = len(ins[0])
    if not 0 <= ax < rank:
        raise OpError(f"concat axis {ax} out of range for {fmt_shape(ins[0])}")
    total = 0
    for s in ins:
        if len(s) != rank or any(not _known_equal(x, y) for i, (x, y) in enumerate(zip(s, ins[0])) if i != ax):
            raise OpError("concat of " + " and ".join(fmt_shape(t) for t in ins) +
                          f": all axes but {ax} must agree",
                          "crop or pad the larger map, or fix the stride of one branch")
        total = total + s[ax] if isinstance(total, int) and isinstance(s[ax], int) else f"{total}+{s[ax]}"
    out = list(ins[0])
    out[ax] = total
    return [tuple(out)], []


register(OpSpec(
    "concat", (Attr("axis", "axis", 0, doc="axis without the batch; 0 is channels"),),
    "Concatenation of the branches along the channel axis (Inception, DenseNet, U-Net).",
    _concat_shape, inputs="many", family="merge", normalize=_concat_normalize, traits={Trait.FRESH_OUTPUT},
    torch=TorchSpec(functional=lambda a, x, ins: f"torch.cat([{', '.join(x)}], {a['axis'] + 1})"),
    onnx=lambda e, n, xs: [e.op("Concat", xs, axis=n.attrs["axis"] + 1)],
    example="concat { conv(64, 1) | conv(96, 1) -> conv(128, 3, pad=1) }",
    examples=(Example("concat { conv(3, 1) | maxpool(3, stride=1, pad=1) | identity }"),
              Example("a = x -> conv(2, 1)\n b = x -> relu\n concat(a, b, x)", id="concat_named")),
    rule="sizes add on the concat axis; other axes must agree"))
