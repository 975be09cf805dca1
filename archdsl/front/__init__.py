"""The front end: source files and imports, elaboration of the AST into the graph IR."""
