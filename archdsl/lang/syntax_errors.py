"""Syntax errors explained: lark's exception at the token where parsing stopped, turned into a
diagnostic that says in words what was expected and, for the mistakes people make, what to write.

lark's interactive parser gives the exact set of tokens that could have come next and the parser's
value stack: the tokens and nodes not yet reduced, among them every bracket still open (a bracket
leaves the stack only when the construct it opens is complete).  The explanations below read
those; only the texts they suggest are cut out of the source.
"""
from __future__ import annotations

import re
from functools import lru_cache

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..errors import ArchError, Diagnostic, Span, source_lines

# What each terminal looks like to a person (lark names them LPAR, RSQB, ...).
_TOKEN_WORDS = {
    "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "LBRACE": "'{'", "RBRACE": "'}'",
    "COMMA": "','", "COLON": "':'", "SEMICOLON": "';'", "EQUAL": "'='", "DOT": "'.'",
    "VBAR": "'|'", "STAR": "'*'", "PLUS": "'+'", "MINUS": "'-'",
    "NAME": "a name", "NUMBER_INT": "a number", "NUMBER_FLOAT": "a number", "STRING": "a string",
    "COMP_OP": "a comparison", "ADD_OP": "'+' or '-'", "MUL_OP": "an operator", "POW": "'**'",
    "$END": "end of file",
}
_CLOSER = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
_BLANKS = re.compile(r"[ \t]*")


_LARK: list = []  # the parser's Lark object, handed in by parser.parse (this module never imports it)


def parser():
    return _LARK[0]


def syntax_error(err: UnexpectedInput, file: str, text: str, lark) -> ArchError:
    """The diagnostic for the syntax error ``err`` in ``text``."""
    _LARK[:] = [lark]
    line, col = max(err.line, 1), max(err.column, 1)
    if isinstance(err, UnexpectedCharacters):
        ch = text[err.pos_in_stream] if err.pos_in_stream < len(text) else ""
        hint = "comments start with '#'" if ch == "/" else None
        return ArchError(Diagnostic("error", f"unexpected character {ch!r}", Span(file, line, col, line, col + 1), hint))
    if isinstance(err, UnexpectedEOF):
        expected = _terminal_words(err.expected)
        msg = "unexpected end of file" + (f"; expected {_join(expected)}" if expected else "")
        return ArchError(Diagnostic("error", msg, _end_span(file, text)))
    assert isinstance(err, UnexpectedToken)
    failure = _Failure(err, file, text)
    for explain in (_definition_in_body, _unclosed_at_end, _pipeline_in_call, _repeat_count):
        diagnostic = explain(failure)
        if diagnostic is not None:
            return ArchError(diagnostic)
    return ArchError(_expected_found(failure))


class _Failure:
    """Where the parser stopped: the token it could not take, what it could have taken, and the
    open brackets."""

    def __init__(self, err: UnexpectedToken, file: str, text: str):
        self.err, self.file, self.text = err, file, text
        self.tok: Token = err.token
        self.at_end = self.tok.type == "$END"
        self.accepted = _accepted(err)
        state = getattr(err.interactive_parser, "parser_state", None)
        self.stack = list(getattr(state, "value_stack", ()))
        opened = []  # stack indices of the brackets not closed (a closed one waits for its reduction)
        for k, x in enumerate(self.stack):
            if type(x) is Token and x.type in _CLOSER:
                opened.append(k)
            elif type(x) is Token and opened and x.type == _CLOSER[self.stack[opened[-1]].type]:
                opened.pop()
        self.at: int | None = opened[-1] if opened else None  # the innermost open bracket...
        self.opener: Token | None = self.stack[self.at] if opened else None  # ...and its token

    def span(self, tok: Token) -> Span:
        if tok.type == "$END":
            return _end_span(self.file, self.text)
        return Span(self.file, tok.line, tok.column, tok.line, tok.column + max(1, len(tok)))

    def span_of(self, start: int, end: int) -> Span:
        """The span of ``text[start:end]`` (one line)."""
        line = self.text.count("\n", 0, start) + 1
        col = start - (self.text.rfind("\n", 0, start) + 1) + 1
        return Span(self.file, line, col, line, col + max(1, end - start))

    def closes(self) -> bool:
        """Could the innermost open bracket have been closed here?"""
        return self.opener is not None and _CLOSER[self.opener.type] in self.accepted

    def unclosed(self, how: str = "is never closed") -> tuple[tuple[str, Span], ...]:
        """A note at the innermost open bracket."""
        o = self.opener
        return ((f"the '{o}' opened at {self.file}:{o.line}:{o.column} {how}", self.span(o)),)


def _unclosed_at_end(f: _Failure) -> Diagnostic | None:
    """The file ends inside a bracket: say which one."""
    if not f.at_end or f.opener is None:
        return None
    if f.closes():
        msg = f"expected {_TOKEN_WORDS[_CLOSER[f.opener.type]]} before end of file"
    else:
        msg = f"expected {_join(_summarise(_terminal_words(f.accepted)))}, found end of file"
    return Diagnostic("error", msg, f.span(f.tok), related=f.unclosed())


def _definition_in_body(f: _Failure) -> Diagnostic | None:
    """A ``network``, ``block`` or ``import`` line after a bracket that is still open: the bracket's
    closer was forgotten.  (Inside a body those words read as names, so the parser stops somewhere
    after them, often at the '{' of the definition.)"""
    if f.opener is None:
        return None
    end = f.text.find("\n", f.tok.start_pos) if not f.at_end else -1  # the error's line included
    m = _item_start().search(f.text, f.opener.end_pos, len(f.text) if end < 0 else end)
    if m is None:
        return None
    word, closer = m.group(1), _TOKEN_WORDS[_CLOSER[f.opener.type]]
    return Diagnostic("error", f"expected {closer} before '{word}'", f.span_of(m.start(1), m.end(1)),
                      f"'{word}' starts a new top-level item: the '{f.opener}' above needs its {closer} first",
                      related=f.unclosed())


@lru_cache(maxsize=1)
def _item_start() -> re.Pattern:
    """A line that starts a top-level item and could not start a statement: the words are the
    grammar's (what a file may start with, less what a body may start with)."""
    p = parser()
    top = p.parse_interactive("", start="start").accepts()
    body = p.parse_interactive("network n() {", start="start")
    body.exhaust_lexer()
    body_words = body.accepts()
    words = sorted(p.get_terminal(t).pattern.value for t in top - body_words if t != "$END")
    # the word, then the name (or the import's path) it defines
    return re.compile(rf"^[ \t]*({'|'.join(map(re.escape, words))})[ \t]+[A-Za-z_\"]", re.M)


def _pipeline_in_call(f: _Failure) -> Diagnostic | None:
    """``conv(16, 3 -> relu``: a call's arguments are expressions; ``->`` starts a stage."""
    if f.at_end or f.opener is None or f.opener.type != "LPAR":
        return None
    pos = f.tok.start_pos  # inside brackets '-' reads as minus: the parser stops at the '>'
    arrow = pos - 1 if f.text[pos - 1:pos + 1] == "->" else pos if f.text.startswith("->", pos) else None
    if arrow is None:
        return None
    before = f.stack[f.at - 1] if f.at else None
    callee = before if type(before) is Token and before.type == "NAME" else None
    if callee is not None and _is_merge(str(callee)):
        return _merge_of_pipeline(f, str(callee), arrow)
    span = f.span_of(arrow, arrow + 2)
    hint = "the arguments of a call end with ')'" if callee is not None else None
    related = f.unclosed("is not closed") if f.opener.line != span.line else ()
    return Diagnostic("error", "expected ')' before '->'", span, hint, related=related)


def _is_merge(name: str) -> bool:
    from ..ops import REGISTRY  # only for this explanation: parsing does not need the ops

    spec = REGISTRY.get(name)
    return spec is not None and spec.inputs == "many"


def _merge_of_pipeline(f: _Failure, callee: str, arrow: int) -> Diagnostic:
    """``concat(e4, b -> conv_transpose(...))``: name the pipeline, then merge the names."""
    msg = f"{callee}(...) takes named tensors, not pipelines"
    args, close = _arguments(f.text, f.opener.end_pos)
    k = next((i for i, (a, b) in enumerate(args) if a <= arrow < b), None)
    if close is None or k is None:  # the call is not closed either: no text to suggest
        return Diagnostic("error", msg, f.span_of(arrow, arrow + 2),
                          f"name the pipeline first (u = ...), then merge the names: {callee}(..., u)",
                          related=f.unclosed())
    texts = [f.text[a:b].strip() for a, b in args]
    name = _fresh_name(f.text)
    merged = ", ".join(name if i == k else t for i, t in enumerate(texts) if t)  # (a trailing comma)
    hint = f"name the pipeline first: `{name} = {_shorten(texts[k])}`, then `{callee}({merged})`"
    start = f.text.index(texts[k], args[k][0])
    one_line = "\n" not in texts[k]
    return Diagnostic("error", msg, f.span_of(start, start + len(texts[k])) if one_line
                      else f.span_of(arrow, arrow + 2), hint)


def _repeat_count(f: _Failure) -> Diagnostic | None:
    """``b() * stages[s][1]``: a repeat count is a number, a name or an expression in brackets."""
    top = f.stack[-2:]
    star = next((x for x in reversed(top) if type(x) is Token and x.type == "STAR"), None)
    if star is None or f.at_end:
        return None
    start = _BLANKS.match(f.text, star.end_pos).end()
    end = _until(f.text, start, ("->", "|", ";", "#", "\n", "}"))
    count = f.text[start:end].rstrip()
    if not count or f.tok.start_pos >= start + len(count):
        return None  # the count is fine: what follows it is the mistake
    try:
        parser().parse(count, start="expr")
    except Exception:  # any reason it does not parse as an expression: no hint
        return None
    return Diagnostic("error", "a repeat count is a number, a name or an expression in brackets",
                      f.span_of(start, start + len(count)), f"write `* ({count})`")


def _expected_found(f: _Failure) -> Diagnostic:
    """The general case: what could have come here, after what, and what came instead."""
    expected = _summarise(_terminal_words(f.accepted))
    prev = f.err.token_history[-1] if f.err.token_history else None
    after = f" after {_describe(prev)}" if prev is not None else ""
    msg = f"expected {_join(expected)}{after}, found {_describe(f.tok)}"
    hint = "comments start with '#'" if str(f.tok) == "//" else None
    related = ()
    if f.closes() and f.tok.type in _CLOSER.values():  # '(' ... '}': a bracket left open
        related = f.unclosed("is not closed")
    elif f.closes() and f.opener.type != "LBRACE" and f.tok.line > f.opener.line and _first_on_line(f):
        related = f.unclosed()  # '[3, 8, 8' and the next statement on the next line
    return Diagnostic("error", msg, f.span(f.tok), hint, related=related)


# ------------------------------------------------------------------------------------ helpers


def _accepted(err: UnexpectedToken) -> set[str]:
    """The terminals the parser could really take here.  ``err.expected`` is the LALR state's
    lookahead set, which merged states widen (a ')' after 'for i in 1'); feeding each terminal to a
    copy of the parser gives the exact set."""
    try:
        return set(err.interactive_parser.accepts())
    except Exception:  # noqa: BLE001 - a better message is optional; the error is reported anyway
        return set(err.expected)


def _terminal_words(names) -> list[str]:
    p = parser()
    words = set()
    for n in names:
        if n in _TOKEN_WORDS:
            words.add(_TOKEN_WORDS[n])
            continue
        try:
            pattern = p.get_terminal(n).pattern
            words.add(f"'{pattern.value}'" if pattern.type == "str" else n.lower())
        except KeyError:
            words.add(n.lower())
    return sorted(words)


_EXPR_START = {"'('", "'+'", "'-'", "'['", "a name", "a number", "a string", "'in'", "'not'", "'true'",
               "'false'", "'if'", "'+' or '-'"}
_OPERATORS = {"'**'", "'+' or '-'", "an operator", "a comparison", "'and'", "'or'"}
_STMT_START = {"'for'", "'if'", "'init'", "'input'", "'let'", "'output'", "a name", "'in'", "a string"}


def _summarise(words: list[str]) -> list[str]:
    """Say 'a statement', 'an expression' or 'an operator' instead of listing every token that can
    start one (or continue one)."""
    for group, name, least in ((_STMT_START, "a statement", 5), (_EXPR_START, "an expression", 4),
                               (_OPERATORS, "an operator", 3)):
        if len([w for w in words if w in group]) >= least:
            words = [w for w in words if w not in group] + [name]
    return words


def _describe(tok: Token | None) -> str:
    if tok is None or tok.type == "$END":
        return "end of file"
    return f"'{tok}'"


def _join(words: list[str]) -> str:
    if len(words) > 6:
        words = words[:6] + ["..."]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _first_on_line(f: _Failure) -> bool:
    start = f.text.rfind("\n", 0, f.tok.start_pos) + 1
    return not f.text[start:f.tok.start_pos].strip()


def _end_span(file: str, text: str) -> Span:
    lines = source_lines(text)
    line, col = len(lines), len(lines[-1]) + 1
    return Span(file, line, col, line, col + 1)


def _until(text: str, pos: int, stops: tuple[str, ...]) -> int:
    """The offset of the first of ``stops`` from ``pos`` outside brackets and strings, or of a
    closing bracket that closes nothing opened after ``pos`` (the end of the text if neither)."""
    depth, i = 0, pos
    while i < len(text):
        if depth == 0 and text.startswith(stops, i):
            return i
        ch = text[i]
        if ch == '"' and (m := _string().match(text, i)):
            i = m.end()
            continue
        if ch == "#":  # a comment: on to the end of its line
            i = text.find("\n", i)
            i = len(text) if i < 0 else i
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return i


@lru_cache(maxsize=1)
def _string() -> re.Pattern:
    return re.compile(parser().get_terminal("STRING").pattern.to_regexp())  # the grammar's


def _arguments(text: str, pos: int) -> tuple[list[tuple[int, int]], int | None]:
    """The extents of the comma-separated arguments from ``pos`` (just after a '(') and the offset
    of the ')' that ends them (None when the text has none)."""
    args = []
    while True:
        end = _until(text, pos, (",",))
        args.append((pos, end))
        if end >= len(text) or text[end] != ",":
            return args, end if end < len(text) and text[end] == ")" else None
        pos = end + 1


def _fresh_name(text: str) -> str:
    """A short tensor name the file does not use yet (for a suggestion)."""
    used = set(re.findall(r"[A-Za-z_]\w*", text))
    return next(n for n in ("u", "v", "t", *(f"u{i}" for i in range(1, len(used) + 2))) if n not in used)


def _shorten(code: str, width: int = 60) -> str:
    """One line of ``code``; a long one keeps its start and its end."""
    code = " ".join(code.split())
    return code if len(code) <= width else code[:width // 2 - 2] + " ... " + code[-(width // 2 - 3):]
