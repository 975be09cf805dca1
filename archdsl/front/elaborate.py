"""AST -> graph IR: the elaboration walk over statements, pipelines, blocks and containers.

Elaboration walks the program in order.  Each statement transforms the *flow* (the tensor
flowing through the current body; the convention is in :mod:`.flow`); a block call runs the
block's body on the flow in a new module scope, so a block can read the shape that reaches it
(``in.channels``) exactly as torchvision's constructors do.  Shapes are inferred as nodes are
made, so an error points at the ``.arch`` line that made the node.  A failing statement is
reported and skipped; later statements that do not depend on it are still checked, so
independent errors are all reported.

The other jobs of the front end live beside it: loading files and imports (:mod:`.loader`),
module names and the tensors a body sees (:mod:`.naming`), ``init`` declarations (:mod:`.inits`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .. import ops
from ..lang import ast as S
from ..lang.lexicon import CONTAINERS, MERGES
from ..errors import ArchError, Diagnostics, Span, did_you_mean, source_lines
from ..lang.expr import FAILED, Env, TensorView, evaluate
from ..ir import Network, Scope, Value
from ..ops import fmt_shape
from . import calls, inits
from .attrs import bind as attrs_of
from .attrs import convert
from .build import LimitError, GraphBuilder, check_elements
from .flow import POISON
from .flow import Abort as _Abort  # the names the walk has always used
from .flow import is_multi as _is_multi
from .loader import Module
from .naming import Namer, Tensors
from ..lang.ast import NodeVisitor

# Limits on hostile input (docs/robustness.md).  ``max_nodes`` is per run (--max-nodes); the rest
# are module attributes that a program may change.
DEFAULT_MAX_NODES = 50_000  # graph nodes; ResNet-152 has ~500, ResNet-1202 (CIFAR) ~4,000
STEPS_PER_NODE = 3  # statements, loop iterations, repetitions and block calls: 3 * max_nodes in all
MAX_BLOCK_DEPTH = 64
MAX_BODY_DEPTH = 64  # nested bodies (blocks, seqs, branches, loops, conditions) at run time
FLOW = "flow"  # the tensor flowing into the stage being written (in a block, 'in' is the block's input)


class _Unknown(Exception):
    """A name that is neither a constant nor a visible tensor (the evaluator's callback)."""

    def __init__(self, name: str):
        self.name = name


@dataclass
class _Ctx:
    scope: Scope
    env: Env
    tensors: Tensors


class Elaborator(NodeVisitor):
    """Builds networks of one module.  ``visit_<Statement>(stmt, ctx, flow)`` returns the new flow;
    ``visit_<StageCore>(core, label, ctx, x)`` applies a stage to the tensor ``x``."""

    def __init__(self, mod: Module, diags: Diagnostics, max_nodes: int = DEFAULT_MAX_NODES,
                 strict: bool = False):
        self.mod, self.diags, self.max_nodes, self.strict = mod, diags, max_nodes, strict
        self.build = GraphBuilder(max_nodes, self._warn)
        self.namer = Namer()
        self.block_stack: list[str] = []
        self.call_sites: list[tuple[str, Span]] = []
        self.label_inits: list[tuple[Scope, S.Init]] = []  # init LABEL declarations, checked at the end
        self.block_inputs: list[Value] = []  # 'in' inside the body of the innermost block being built
        self.failed: set[int] = set()  # id() of the scopes in or below which a statement failed
        self.steps, self.depth = 0, 0
        self.globals = Env()
        for let in mod.lets:
            try:
                self.globals.values[let.name] = evaluate(let.value, self.globals)
            except ArchError as err:
                diags.extend(err)
                self.globals.values[let.name] = FAILED  # later uses are not errors of their own

    # ------------------------------------------------------------------ entry point
    def network(self, name: str, overrides: dict[str, Any]) -> Network:
        netdef = self.mod.networks[name]
        params_from, call_args = calls.resolve_alias(netdef, self.mod.networks)
        params = calls.bind_params(params_from, call_args, self.globals, self.globals, params_from.span,
                                   self._text)
        extra = {}
        for k, v in overrides.items():
            if k in params:
                params[k] = v
            else:
                extra[k] = v  # e.g. symbolic input sizes: -D H=224
        root = Scope("network", "", None, netdef.span, block=params_from.name, args=dict(params))
        env = self.globals.child({**extra, **params})
        net = Network(name, self.mod.file, self.build.node_table, root, {}, {}, params, self.diags,
                      dict(self.mod.blocks))
        self.net = net
        ctx = _Ctx(root, env, Tensors())
        flow = self._body(params_from.body, ctx, None)
        if not net.outputs and flow is not None and flow != POISON and not _is_multi(flow):
            net.outputs["output"] = flow
        elif not net.outputs and _is_multi(flow):
            for i, v in enumerate(flow):
                net.outputs[f"output{i}"] = v
        if not net.inputs and not self.diags.errors:
            self.diags.error(f"network '{name}' has no input", netdef.span,
                             "declare one, e.g. 'input image: [3, 224, 224]'")
        root.inputs = list(net.inputs.values())
        root.outputs = list(net.outputs.values())
        inits.check_labels(self.label_inits, self.failed, self.diags)
        return net

    def _warn(self, message: str, span: Span, hint: str | None = None) -> None:
        """A warning, or with --strict an error (once per place: a block used twice warns once)."""
        if not self.strict:
            self.diags.warning(message, span, hint, self._call_notes())
        elif not any((d.message, d.span) == (message, span) for d in self.diags.items):
            self.diags.error(message, span, hint, self._call_notes())

    def _text(self, span: Span) -> str | None:
        """The source text of a one-line span (for messages that quote the program)."""
        src = self.diags.sources.get(span.file)
        if src is None or not span.line or span.end_line != span.line:
            return None
        lines = source_lines(src)
        return lines[span.line - 1][span.col - 1:span.end_col - 1] if span.line <= len(lines) else None

    def _call_notes(self) -> list[str]:
        """'in block b called at f:l:c' for the innermost block call, when inside a block."""
        if not self.call_sites:
            return []
        name, span = self.call_sites[-1]
        return [f"in block '{name}' used at {span}"]

    # ------------------------------------------------------------------ statements
    def _step(self, span: Span) -> None:
        """Count work that makes no node (loops of lets, empty seqs, block calls): bound it too."""
        self.steps += 1
        if self.steps > STEPS_PER_NODE * self.max_nodes:
            raise LimitError(f"elaboration takes more than {STEPS_PER_NODE * self.max_nodes} steps "
                             "(statements, loop iterations, repetitions, block calls)", span,
                             f"the limit is {STEPS_PER_NODE} x --max-nodes; raise --max-nodes")

    def _body(self, stmts, ctx: _Ctx, flow):
        self.depth += 1
        try:
            return self._body_stmts(stmts, ctx, flow)
        finally:
            self.depth -= 1

    def _body_stmts(self, stmts, ctx: _Ctx, flow):
        for stmt in stmts:
            try:
                if self.depth > MAX_BODY_DEPTH:
                    raise LimitError(f"blocks, seqs, branches, loops and conditions nested deeper than "
                                     f"{MAX_BODY_DEPTH} levels", stmt.span)
                self._step(stmt.span)
                flow = self.visit(stmt, ctx, flow)
            except LimitError:
                raise
            except RecursionError:  # a fallback: the limits above should come first
                raise LimitError("the program nests too deeply to elaborate", stmt.span) from None
            except ArchError as err:
                self.diags.extend(err, self._call_notes())
                flow = POISON
                self._poison_targets(stmt, ctx)
                self._mark_failed(ctx.scope)
            except _Abort:
                flow = POISON
                self._poison_targets(stmt, ctx)
                self._mark_failed(ctx.scope)
        return flow

    def _mark_failed(self, scope: Scope | None) -> None:
        """A statement failed here: what it would have built is missing in this scope and above."""
        while scope is not None and id(scope) not in self.failed:
            self.failed.add(id(scope))
            scope = scope.parent

    def _poison_targets(self, stmt, ctx):
        names = getattr(stmt, "targets", None) or ((stmt.name,) if isinstance(stmt, (S.Input, S.Output)) else ())
        for n in names:
            ctx.tensors.values[n] = POISON

    # ------------------------------------------------------------------ statements: visit_<Class>
    def generic_visit(self, node, *args):  # a class the grammar has and the walk lacks
        raise ArchError(f"unsupported statement {type(node).__name__}", getattr(node, "span", Span("", 0, 0)))

    def visit_PipeStmt(self, stmt: S.PipeStmt, ctx: _Ctx, flow):
        return self._pipeline(stmt.pipeline, ctx, flow)

    def visit_Assign(self, stmt: S.Assign, ctx: _Ctx, flow):
        result = self._pipeline(stmt.pipeline, ctx, flow)
        self._bind(stmt.targets, result, ctx, stmt.span)
        return result

    def visit_Let(self, stmt: S.Let, ctx: _Ctx, flow):
        ctx.env.values[stmt.name] = self._eval(stmt.value, ctx, flow)
        return flow

    def visit_If(self, stmt: S.If, ctx: _Ctx, flow):
        cond = self._eval(stmt.cond, ctx, flow)
        body = stmt.then if cond else (stmt.orelse or ())
        return self._body(body, _Ctx(ctx.scope, ctx.env.child(), ctx.tensors), flow)

    def visit_Init(self, stmt: S.Init, ctx: _Ctx, flow):
        if inits.declare(stmt, ctx.scope, lambda e: self._eval(e, ctx, flow)):
            self.label_inits.append((ctx.scope, stmt))  # a module label: checked once the network is built
        return flow

    def _eval(self, e, ctx: _Ctx, flow, symbolic=False):
        """Evaluate ``e`` where ``flow`` flows in: ``in`` is the block's input (the flow outside
        blocks), ``flow`` the tensor flowing in, other names constants or named tensors."""
        def tensor(name):
            v = ctx.tensors.get(name)
            if v is None and name == FLOW:
                v = flow
            if v is None:
                if symbolic:
                    return None  # a symbolic size: input x: [3, H, W]
                raise _Unknown(name)
            if v == POISON:
                raise _Abort()
            if _is_multi(v):
                return None
            return TensorView(self.build.shape(v), v)
        block_in = self._in(flow)
        if block_in == POISON and _uses_in(e):
            raise _Abort()
        try:
            value = evaluate(e, ctx.env, tensor, self._view(block_in), symbolic)
        except _Unknown as u:
            raise self._unknown_name(u.name, e, ctx) from None
        if block_in != flow and _uses_in(e) and flow is not None:
            self._warn_in(e, ctx, flow, value, tensor)
        return value

    def _in(self, flow):
        """What 'in' means here: the input of the block being built, or outside blocks the flow."""
        return self.block_inputs[-1] if self.block_inputs else flow

    def _view(self, v) -> TensorView | None:
        return None if v is None or v == POISON or _is_multi(v) else TensorView(self.build.shape(v), v)

    def _warn_in(self, e, ctx: _Ctx, flow, value, tensor) -> None:
        """'in' inside a block once the flow has moved on: the two readings may differ."""
        try:
            as_flow = evaluate(e, ctx.env, tensor, self._view(flow))
        except (ArchError, _Abort, _Unknown):
            as_flow = None
        if as_flow == value:
            return
        text = self._text(e.span)
        hint = None
        if text is not None:
            alt = re.sub(r"\bin\b", FLOW, text)
            hint = f"write {alt} for the tensor flowing in"
            if not isinstance(value, TensorView) and as_flow is not None:
                hint = f"here {text} is {value!r}; {hint} ({as_flow!r})"
        self._warn_block_in(_first(e, S.InName).span, flow, hint)

    def _warn_block_in(self, span: Span, flow, hint: str | None) -> None:
        name = self.call_sites[-1][0]
        now = f"{len(flow)} tensors" if _is_multi(flow) else fmt_shape(self.build.shape(flow))
        self._warn(f"'in' is the input of block '{name}' ({fmt_shape(self.build.shape(self.block_inputs[-1]))}), "
                   f"not the tensor flowing into this stage ({now})", span, hint)

    def _unknown_name(self, name: str, e, ctx: _Ctx) -> ArchError:
        span = next((n.span for n in _walk(e) if isinstance(n, S.Name) and n.id == name), e.span)
        hidden = self._hidden_hint(name, ctx)
        if hidden:
            return ArchError(hidden[0], span, hidden[1])
        if self.block_stack and name in self.net.params:
            return ArchError(f"unknown name '{name}'", span,
                             f"'{name}' is a parameter of network '{self.net.name}', which a block does not "
                             f"see: give block '{self.block_stack[-1]}' a parameter for it")
        return ArchError(f"unknown name '{name}'", span,
                         did_you_mean(name, ctx.env.names() | ctx.tensors.names(), "the names here are"))

    def _hidden_hint(self, name: str, ctx: _Ctx) -> tuple[str, str] | None:
        return ctx.tensors.hidden_hint(name)

    def _bind(self, targets, result, ctx, span):
        if len(targets) == 1:
            if _is_multi(result):
                raise ArchError(f"this pipeline gives {len(result)} tensors; name each one "
                                f"({', '.join(f'x{i}' for i in range(len(result)))} = ...)", span)
            ctx.tensors.values[targets[0]] = result
            return
        if not _is_multi(result) or len(result) != len(targets):
            n = len(result) if _is_multi(result) else 1
            raise ArchError(f"{len(targets)} names for {n} tensor{'s' if n != 1 else ''}", span)
        for t, v in zip(targets, result):
            ctx.tensors.values[t] = v

    def visit_Input(self, stmt: S.Input, ctx: _Ctx, flow):
        if ctx.scope.kind != "network":
            raise ArchError("'input' belongs in a network, not in a block", stmt.span,
                            "a block's input is the tensor that flows into it ('in')")
        if stmt.name in self.net.inputs:
            raise ArchError(f"input '{stmt.name}' is declared twice", stmt.span)
        dims = self._eval(stmt.dims, ctx, None, symbolic=True)
        if not isinstance(dims, tuple) or not dims:
            raise ArchError("an input shape is a list of sizes, e.g. [3, 224, 224]", stmt.dims.span)
        if len(dims) > 16:
            raise ArchError(f"an input of {len(dims)} dimensions; the limit is 16", stmt.dims.span)
        for d in dims:
            if isinstance(d, bool) or not isinstance(d, (int, str)) or (isinstance(d, int) and d <= 0):
                raise ArchError(f"input size {d!r} must be a positive whole number or a name", stmt.dims.span)
            if isinstance(d, int) and d > 1 << 24:
                raise ArchError(f"input size {d} is absurdly large", stmt.dims.span, "sizes are limited to 2**24")
        if any(isinstance(d, str) for d in dims[:1]) and len(dims) == 3:
            raise ArchError("the channel count of an input must be known", stmt.dims.span)
        check_elements(dims, lambda: f"input {fmt_shape(dims)} has", stmt.dims.span)
        if len(dims) == 3 and all(isinstance(d, int) for d in dims) and dims[2] in (1, 3, 4) \
                and min(dims[0], dims[1]) >= 4 * dims[2]:  # [32, 32, 3]: an image channels last
            self._warn(f"input {stmt.name}: {fmt_shape(dims)} is read as {dims[0]} channels of "
                       f"{dims[1]}x{dims[2]} pixels", stmt.dims.span,
                       f"archdsl puts the channels first, as PyTorch does: write "
                       f"{fmt_shape((dims[2], dims[0], dims[1]))}")
        node = self.build.node("input", {}, [], [tuple(dims)], ctx.scope, stmt.span, stmt.name)
        v = (node.id, 0)
        self.net.inputs[stmt.name] = v
        ctx.tensors.values[stmt.name] = v
        return v

    def visit_Output(self, stmt: S.Output, ctx: _Ctx, flow):
        if ctx.scope.kind != "network":
            raise ArchError("'output' belongs in a network", stmt.span,
                            "a block's output is the last tensor of its body")
        if stmt.pipeline is None:
            v = ctx.tensors.get(stmt.name)
            if v is None:
                raise ArchError(f"unknown tensor '{stmt.name}'", stmt.span,
                                did_you_mean(stmt.name, ctx.tensors.names(), "the tensors here are"))
        else:
            v = self._pipeline(stmt.pipeline, ctx, flow)
        if v == POISON:
            raise _Abort()
        if _is_multi(v):
            raise ArchError("an output is one tensor", stmt.span)
        if stmt.name in self.net.outputs:
            raise ArchError(f"output '{stmt.name}' is declared twice", stmt.span)
        self.net.outputs[stmt.name] = v
        ctx.tensors.values[stmt.name] = v
        return v

    def visit_For(self, stmt: S.For, ctx: _Ctx, flow):
        start = self._eval(stmt.start, ctx, flow)
        if stmt.stop is not None:
            stop = self._eval(stmt.stop, ctx, flow)
            if not all(isinstance(x, int) and not isinstance(x, bool) for x in (start, stop)):
                raise ArchError("a range needs whole numbers: 'for i in 1..n'", stmt.span)
            if stop - start + 1 > self.max_nodes:
                raise ArchError(f"loop of {stop - start + 1} iterations exceeds the limit of {self.max_nodes} nodes",
                                stmt.span, "raise the limit with --max-nodes")
            items = range(start, stop + 1)
        else:
            if not isinstance(start, tuple):
                raise ArchError("'for' iterates over a range 'a..b' or a tuple", stmt.span)
            items = start
        for i in items:
            self._step(stmt.span)
            flow = self._body(stmt.body, _Ctx(ctx.scope, ctx.env.child({stmt.var: i}), ctx.tensors), flow)
        return flow

    # ------------------------------------------------------------------ pipelines
    def _pipeline(self, pipe: S.Pipeline, ctx: _Ctx, flow):
        stages = list(pipe.stages)
        x = flow
        head = stages[0]
        if isinstance(head.core, S.InRef) and head.label is None and head.repeat is None:
            x = self._in(flow)  # 'in -> ...' starts from the block's input
            stages = stages[1:]
            if x != flow and flow is not None:
                self._warn_block_in(head.span, flow, "to go on from the tensor flowing in, leave out 'in ->'")
        elif head.label is None and head.repeat is None:
            ref = self._head_value(head.core, ctx, flow)
            if ref is not None:
                x = ref
                stages = stages[1:]
            elif isinstance(head.core, S.Call) and not head.core.parens:
                self._check_callable(head.core, ctx, head=True)
        for stage in stages:
            x = self._stage(stage, ctx, x)
        return x

    def _head_value(self, core, ctx: _Ctx, flow):
        """A pipeline may start from a named tensor, 'in', 'flow', or a merge of named tensors."""
        if isinstance(core, S.Call) and not core.parens:
            v = ctx.tensors.get(core.name)
            if v is None and core.name == FLOW and core.name not in self.mod.blocks:
                v = flow
            if v == POISON:
                raise _Abort()
            return v
        if isinstance(core, S.Call) and core.parens and core.name in MERGES:
            return self._merge_call(core, ctx)
        return None

    def _merge_call(self, call: S.Call, ctx: _Ctx) -> Value:
        spec = ops.REGISTRY[call.name]
        inputs, attrs = [], {a.name: a.default for a in spec.attrs}
        for a in call.args:
            if a.name is not None:
                attr = spec.attr(a.name)
                if attr is None:
                    raise ArchError(f"{call.name} has no argument '{a.name}'", a.span,
                                    f"{call.name} takes {', '.join(t.name for t in spec.attrs) or 'only tensors'}")
                attrs[a.name] = convert(call.name, attr, self._eval(a.value, ctx, None), a.span)
                continue
            if not isinstance(a.value, S.Name) or ctx.tensors.get(a.value.id) is None:
                what = a.value.id if isinstance(a.value, S.Name) else "this argument"
                hidden = self._hidden_hint(what, ctx)
                if hidden:
                    raise ArchError(hidden[0], a.span, hidden[1])
                raise ArchError(f"{call.name}(...) takes named tensors; '{what}' is not one", a.span,
                                did_you_mean(what, ctx.tensors.names(), "the tensors here are")
                                if isinstance(a.value, S.Name) else None)
            v = ctx.tensors.get(a.value.id)
            if v == POISON:
                raise _Abort()
            if _is_multi(v):
                inputs.extend(v)
            else:
                inputs.append(v)
        if len(inputs) < 2:
            raise ArchError(f"{call.name} needs at least two tensors", call.span)
        return self._op(call.name, attrs, inputs, ctx, call.span, None)

    def _stage(self, stage: S.Stage, ctx: _Ctx, x):
        if isinstance(stage.core, S.Call):
            self._check_callable(stage.core, ctx)
        if x is None:
            raise ArchError("nothing flows into this stage", stage.span,
                            "start the pipeline with an input or a named tensor, e.g. 'image -> ...'")
        if x == POISON:
            raise _Abort()
        if stage.repeat is not None:
            n = self._eval(stage.repeat, ctx, x)
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise ArchError(f"repetition count must be a whole number >= 0, got {n!r}", stage.repeat.span)
            if n > self.max_nodes:
                raise ArchError(f"repeating {n} times exceeds the limit of {self.max_nodes} nodes",
                                stage.repeat.span, "raise the limit with --max-nodes")
            inner = S.Stage(None, stage.core, None, stage.span)
            if stage.label is not None:
                scope = self._child_scope("seq", stage.label, ctx, stage.span)
                sub = _Ctx(scope, ctx.env.child(), Tensors(hidden=ctx.tensors, wall=f"seq '{scope.name}'"))
                scope.inputs = [x]
                for _ in range(n):
                    self._step(stage.span)
                    x = self._stage(inner, sub, x)
                scope.outputs = list(x) if _is_multi(x) else [x]  # a seq may end in chunk(2)
                return x
            for _ in range(n):
                self._step(stage.span)
                x = self._stage(inner, ctx, x)
            return x
        core = stage.core
        if _is_multi(x):
            raise ArchError(f"{len(x)} tensors flow into this stage; name them first (a, b = ...)", stage.span)
        return self.visit(core, stage.label, ctx, x)

    # ------------------------------------------------------------------ stage cores: visit_<Class>
    def visit_InRef(self, core: S.InRef, label, ctx: _Ctx, x):
        raise ArchError("'in' can only start a pipeline", core.span)

    def _check_callable(self, call: S.Call, ctx: _Ctx, head: bool = False) -> None:
        """``head``: the call starts a pipeline, where a bare name is most likely a tensor."""
        name = call.name
        if name in self.mod.blocks or name in ops.REGISTRY:
            return
        if ctx.tensors.get(name) is not None:
            raise ArchError(f"tensor '{name}' in the middle of a pipeline", call.span,
                            "to merge it with the flow, use add { identity | ... } or add(a, b)")
        if name in CONTAINERS:
            raise ArchError(f"'{name}' takes branches in braces: {name} {{ ... | ... }}", call.span)
        hidden = self._hidden_hint(name, ctx) if not call.parens else None
        if hidden:
            raise ArchError(hidden[0], call.span, hidden[1])
        cands = set(ops.REGISTRY) | set(self.mod.blocks) | ctx.tensors.names()
        hint = ops.torch_hint(name) or did_you_mean(name, cands)
        if hint is None and head:
            hint = did_you_mean(name, ctx.tensors.names(), "the tensors here are")
        raise ArchError(f"unknown op, block or tensor '{name}'", call.span, hint)

    def visit_Call(self, call: S.Call, label, ctx: _Ctx, x):
        name = call.name
        if name in self.mod.blocks:
            return self._block(self.mod.blocks[name], call, label, ctx, x)
        spec = ops.REGISTRY[name]
        if spec.inputs == "many":
            raise ArchError(f"'{name}' merges branches: write {name} {{ a | b }} or {name}(x, y)", call.span)
        attrs = attrs_of(spec, call, lambda e: self._eval(e, ctx, x), self._warn, self._text)
        # an argument that names a tensor (resize(to=image)) is an input of the node, not an attribute
        refs = [attrs.pop(a.name).value for a in spec.attrs if a.kind == "tensor"]
        return self._op(name, attrs, [x, *refs], ctx, call.span, label)

    def _op(self, name: str, attrs: dict, inputs: list[Value], ctx: _Ctx, span: Span, label) -> Value:
        return self.build.op(name, attrs, inputs, ctx.scope, span, label,
                             lambda scope, label: self._take_name(scope, label, ctx, span))

    # ------------------------------------------------------------------ names and scopes
    def _take_name(self, scope: Scope, label, ctx, span) -> tuple[str, bool]:
        return self.namer.take(scope, label, lambda e: self._eval(e, ctx, None))

    def _child_scope(self, kind, label, ctx: _Ctx, span, block=None, args=None) -> Scope:
        return self.namer.child_scope(kind, label, ctx.scope, span, lambda e: self._eval(e, ctx, None),
                                      block, args)

    def _block(self, bdef: S.BlockDef, call: S.Call, label, ctx: _Ctx, x):
        if bdef.name in self.block_stack:
            chain = " -> ".join([*self.block_stack[self.block_stack.index(bdef.name):], bdef.name])
            raise ArchError(f"block '{bdef.name}' calls itself ({chain})", call.span,
                            "blocks cannot be recursive; use a loop or repetition")
        if len(self.block_stack) >= MAX_BLOCK_DEPTH:
            raise ArchError(f"blocks nested deeper than {MAX_BLOCK_DEPTH}", call.span)
        self._step(call.span)
        # arguments are evaluated where the block is called, so they may use 'in' and local names
        args = tuple(S.Arg(a.name, S.Const(a.value.span, self._eval(a.value, ctx, x)), a.span) for a in call.args)
        params = calls.bind_params(bdef, args, ctx.env, self.globals, call.span, self._text)
        scope = self._child_scope("block", label, ctx, call.span, block=bdef.name, args=params)
        scope.inputs = [x]
        self.block_stack.append(bdef.name)
        self.call_sites.append((bdef.name, call.span))
        self.block_inputs.append(x)
        try:
            tensors = Tensors(hidden=ctx.tensors, wall=f"block '{bdef.name}'")
            out = self._body(bdef.body, _Ctx(scope, self.globals.child(params), tensors), x)
        finally:
            self.block_stack.pop()
            self.call_sites.pop()
            self.block_inputs.pop()
        if out == POISON:
            raise _Abort()
        if _is_multi(out):
            raise ArchError(f"block '{bdef.name}' ends with {len(out)} tensors; merge them", bdef.span)
        scope.outputs = [out]
        return out

    def visit_Container(self, c: S.Container, label, ctx: _Ctx, x):
        if c.kind not in CONTAINERS:
            raise ArchError(f"unknown container '{c.kind}'", c.span,
                            did_you_mean(c.kind, CONTAINERS) or "containers are seq, add, concat and mul")
        if c.kind == "seq":
            if len(c.branches) != 1:
                raise ArchError("seq has one body; '|' separates branches of add, concat and mul", c.span,
                                "use concat { ... | ... } for parallel branches")
            scope = self._child_scope("seq", label, ctx, c.span)
            scope.inputs = [x]
            wall = f"seq '{scope.name}'" if label is not None else "seq"
            out = self._body(c.branches[0], _Ctx(scope, ctx.env.child(), Tensors(hidden=ctx.tensors, wall=wall)), x)
            if out == POISON:
                raise _Abort()
            scope.outputs = list(out) if _is_multi(out) else [out]  # a seq may end in chunk(2)
            return out
        inner = ctx
        scope = None
        if label is not None:  # a labelled merge is a module of its own
            scope = self._child_scope("group", label, ctx, c.span)
            scope.inputs = [x]
            inner = _Ctx(scope, ctx.env.child(), Tensors(hidden=ctx.tensors, wall=f"labelled merge '{scope.name}'"))
        results, failed = [], False
        for branch in c.branches:
            out = self._body(branch, _Ctx(inner.scope, inner.env.child(), Tensors(inner.tensors)), x)
            if out == POISON or out is None:
                failed = True
            elif _is_multi(out):
                self.diags.error("a branch ends with several tensors", c.span)
                failed = True
            results.append(out)
        if failed:
            raise _Abort()
        if len(results) < 2:
            raise ArchError(f"{c.kind} needs at least two branches separated by '|'", c.span,
                            f"{c.kind} {{ conv(64, 3, pad=1) | identity }}")
        attrs = {a.name: a.default for a in ops.REGISTRY[c.kind].attrs}
        out = self._op(c.kind, attrs, results, inner, c.span, None)
        if scope is not None:
            scope.outputs = [out]
        return out

def _walk(e):
    """``e`` and every expression inside it (function arguments and tuple items too)."""
    yield e
    for f in getattr(e, "__dataclass_fields__", {}):
        v = getattr(e, f)
        for x in v if isinstance(v, tuple) else (v,):
            if isinstance(x, S.Expr):
                yield from _walk(x)


def _first(e, kind):
    return next((n for n in _walk(e) if isinstance(n, kind)), e)


def _uses_in(e) -> bool:
    return any(isinstance(n, S.InName) for n in _walk(e))
