"""What generated PyTorch source may contain: the backend's own AST allow-list, re-exported.

``generate()`` already refuses source outside the allow-list; tests that read a written file
(the fuzzer, the CLI tests) check it again with the same function.
"""
from archdsl.backends.torch.check import GeneratedCodeError, check_generated

__all__ = ["GeneratedCodeError", "check_generated"]
