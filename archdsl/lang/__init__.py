"""The language: grammar, syntax tree, parser, syntax errors, expressions."""
