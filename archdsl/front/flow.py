"""The flow convention of the elaboration walk: what a statement returns and how failure travels.

Each statement takes the *flow* (the tensor flowing into it) and returns the new flow, which is
one of:

- ``None``: nothing flows yet (the start of a network body, before its ``input``);
- a :data:`~archdsl.ir.Value`, ``(node id, output port)``: one tensor;
- a tuple of Values: several tensors (``chunk(2)`` ends with two); :func:`is_multi` tells them
  from one Value, which is itself a tuple;
- :data:`POISON`: the statement failed and its error is reported.  Stages that read a poisoned
  flow stop without a message of their own, so one mistake gives one error, while statements
  that do not depend on it are still checked.

:class:`Abort` stops the current statement once its error (if any) is reported: the walk turns
it into ``POISON`` for the flow and for the names the statement would have bound.
"""
from __future__ import annotations

from ..ir import Value

POISON: Value = (-1, 0)  # no node has id -1


class Abort(Exception):
    """Stop the current statement; the error (if any) has been reported already."""


def is_multi(v) -> bool:
    """Several tensors, not one Value (both are tuples)."""
    return isinstance(v, tuple) and len(v) > 0 and isinstance(v[0], tuple)
