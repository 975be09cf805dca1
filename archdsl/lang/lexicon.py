"""The language's words, declared once: keywords, containers, shape attributes, operator
precedence and the literal patterns.

``arch.lark`` stays the one description of the syntax; the parser, the formatter, the
highlighter, the TextMate grammar (``tools/docs.py``) and the elaborator read the words from here,
and ``tests/lang/test_lexicon.py`` checks that the grammar's terminals are these.
"""
from __future__ import annotations

# ------------------------------------------------------------------------------------ words

DECLARATIONS = ("block", "network")  # start a definition: the name after them is defined
CONTROL = ("import", "let", "input", "output", "for", "in", "if", "then", "else", "init")
LOGICAL = ("and", "or", "not")
CONSTANTS = ("true", "false")
KEYWORDS = DECLARATIONS + CONTROL + LOGICAL + CONSTANTS  # every reserved word of the grammar

MERGES = ("add", "concat", "mul")  # containers that are also ops: add { a | b } is add(a, b)
CONTAINERS = ("seq",) + MERGES  # NAME { branch | branch ... }

# What ``x.<attr>`` reads of a tensor (expr.TensorView.attr computes them); an alias is left out of
# "did you mean" suggestions.
SHAPE_ATTRS = ("channels", "h", "w", "shape", "rank", "c", "features")
SHAPE_ALIASES = {"c": "channels"}

# ------------------------------------------------------------------------------------ operators

# Precedence levels, lowest first.  Binary operators group left to right except '**' (right to
# left) and comparisons (which do not chain); 'not' and unary '-' '+' are prefix operators.
TERNARY, OR, AND, NOT, COMPARE, ADD, MUL, NEG, POW, POSTFIX, ATOM = range(11)

BINARY = {  # operator -> its level; the grammar's terminal for each group is in TERMINALS
    "or": OR, "and": AND,
    "==": COMPARE, "!=": COMPARE, "<=": COMPARE, ">=": COMPARE, "<": COMPARE, ">": COMPARE,
    "+": ADD, "-": ADD,
    "*": MUL, "//": MUL, "/": MUL, "%": MUL,
    "**": POW,
}
TERMINALS = {"OR": OR, "AND": AND, "COMP_OP": COMPARE, "ADD_OP": ADD, "MUL_OP": MUL, "POW": POW}
RIGHT_ASSOCIATIVE = {POW}
PREFIX = {"not": NOT, "-": NEG, "+": NEG}

# Every operator and punctuation mark of two characters or more first, then the one-character ones.
OPERATOR = r"->|\.\.|\*\*|//|==|!=|<=|>=|[-+*/%<>=|]"

# ------------------------------------------------------------------------------------ literals

NAME = r"[A-Za-z_][A-Za-z_0-9]*"
NUMBER_FLOAT = r"\d+\.\d+([eE][+-]?\d+)?|\d+[eE][+-]?\d+"
NUMBER_INT = r"\d+"
STRING = r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"'  # unrolled: no backtracking state per character
COMMENT = r"#[^\n]*"
