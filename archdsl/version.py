"""The version of archdsl (a leaf module: the backends write it into what they generate)."""

__version__ = "0.1.0"
