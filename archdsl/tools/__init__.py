"""The tools users run: the command line, the formatter, the highlighter, the docs."""
