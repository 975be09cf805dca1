"""Random plausible networks (hypothesis strategies), shared by the property tests of the PyTorch
backend (tests/robustness/test_property.py) and of the ONNX backend (tests/backends/test_onnx.py)."""
from __future__ import annotations

from hypothesis import strategies as st


@st.composite
def layer(draw, channels: int):
    """One stage as .arch text, and the channel count after it."""
    kind = draw(st.sampled_from(["conv", "conv", "gconv", "pool", "residual", "concat", "act", "bn", "tconv"]))
    if kind == "conv":
        out = draw(st.integers(1, 12))
        k = draw(st.integers(1, 5))
        s = draw(st.integers(1, 3))
        d = draw(st.integers(1, 2))
        p = draw(st.integers(0, 2))
        bias = draw(st.booleans())
        return f"conv({out}, {k}, stride={s}, pad={p}, dilation={d}, bias={str(bias).lower()})", out
    if kind == "gconv":
        g = draw(st.sampled_from([d for d in range(1, channels + 1) if channels % d == 0]))
        out = g * draw(st.integers(1, 3))
        k = draw(st.sampled_from([(1, 3), (3, 1), 3]))
        return f"conv({out}, {k}, pad=1, groups={g})", out
    if kind == "pool":
        op = draw(st.sampled_from(["maxpool", "avgpool"]))
        k = draw(st.integers(1, 3))
        s = draw(st.integers(1, 3))
        p = draw(st.integers(0, k // 2))
        ceil = str(draw(st.booleans())).lower()
        return f"{op}({k}, stride={s}, pad={p}, ceil_mode={ceil})", channels
    if kind == "residual":
        return f"add {{ conv({channels}, 3, pad=1) -> bn -> relu | identity }}", channels
    if kind == "concat":
        a, b = draw(st.integers(1, 6)), draw(st.integers(1, 6))
        return f"concat {{ conv({a}, 1) | conv({b}, 3, pad=1) | maxpool(3, stride=1, pad=1) }}", a + b + channels
    if kind == "tconv":
        out = draw(st.integers(1, 6))
        return f"conv_transpose({out}, 2, stride=2)", out
    if kind == "bn":
        return "bn", channels
    return draw(st.sampled_from(["relu", "relu6", "sigmoid", "tanh", "hardswish", "silu", "gelu", "identity"])), channels


@st.composite
def program(draw):
    c_in = draw(st.integers(1, 6))
    h, w = draw(st.integers(6, 20)), draw(st.integers(6, 20))
    c = c_in
    stages = []
    for _ in range(draw(st.integers(1, 6))):
        text, c = draw(layer(c))
        stages.append(text)
    head = draw(st.sampled_from(["", " -> flatten", " -> adaptive_avgpool(2) -> flatten -> linear(5)"]))
    src = f"network n() {{\n  input x: [{c_in}, {h}, {w}]\n  x -> " + "\n    -> ".join(stages) + head + "\n}"
    return src, (c_in, h, w)
