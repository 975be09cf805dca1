"""Reading sources and writing outputs: the one place archdsl touches the user's files.

What archdsl trusts and what it does not is written down in ``docs/robustness.md``.  In short:
a source file is read only if it is a regular file (a FIFO or a device could block forever or
never end), at most ``limit`` bytes of it, and only if it looks like ``.arch`` source (UTF-8
text without NUL or other control bytes), so that a diagnostic never quotes a line of a file
that is not source, such as ``/proc/self/environ``.

An output is written so that nothing the user owns is lost:

- never over an input of the same run (compared by device and inode, so also through symlinks
  and hard links);
- a symlink is followed and the file it names is replaced, so the link stays a link;
- a FIFO or a character device (``/dev/null``, a terminal) is written into, never replaced;
  any other non-regular file (a directory, a socket, a block device) is refused;
- a regular file is replaced atomically (a reader sees the old content or the new), keeping its
  permission bits; one with several hard links is rewritten in place so that the links stay;
  a read-only file is refused;
- the temporary file has a short name of its own, and every message names the user's path.
"""
from __future__ import annotations

import errno
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .errors import ArchError, Span

STDIO = "-"  # read standard input / write standard output

# Characters that never occur in .arch source: control characters other than the tab, newline,
# carriage return and form feed that the lexer skips.
_NOT_SOURCE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _where(path: str) -> Span:
    return Span(path, 0, 0)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def read_source(path: str | Path, span: Span | None = None, display: str | None = None, *,
                limit: int) -> str:
    """The text of an ``.arch`` file: a regular file (or ``-``, standard input) of at most ``limit``
    bytes, UTF-8, without control bytes.  ``span`` locates the error (the import statement)."""
    name = display or str(path)
    span = span or _where(name)
    if str(path) == STDIO:
        data = sys.stdin.buffer.read(limit + 1)
    else:
        try:
            # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then says what was opened
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            raise ArchError(f"no such file: {name}", span) from None
        except OSError as err:
            raise ArchError(f"cannot read {name}: {err.strerror or err}", span) from None
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise ArchError(f"{name} is {_kind(mode)}, not an .arch source file", span,
                            "to read standard input, name the file '-'" if stat.S_ISFIFO(mode) else None)
        with os.fdopen(fd, "rb") as f:
            try:
                data = f.read(limit + 1)
            except OSError as err:
                raise ArchError(f"cannot read {name}: {err.strerror or err}", span) from None
    if len(data) > limit:
        check_size(data[:limit].decode("utf-8", "ignore"), name, limit, truncated=True)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ArchError(f"{name} is not .arch source: it is not UTF-8 text (byte {err.start})", span) from None
    bad = _NOT_SOURCE.search(text)
    if bad is not None:
        what = "NUL bytes" if bad[0] == "\0" else f"control characters (0x{ord(bad[0]):02x})"
        raise ArchError(f"{name} is not .arch source: it holds {what}", span,
                        "archdsl reads only .arch text; its lines are not shown")
    return text


def check_size(text: str, file: str, limit: int, truncated: bool = False) -> None:
    """Refuse a source longer than ``limit``, pointing at where it crosses the limit.

    ``truncated``: ``text`` is what fits of a longer file.
    """
    if len(text) > limit or truncated:
        n = min(len(text), limit)
        line = text.count("\n", 0, n) + 1
        col = n - (text.rfind("\n", 0, n) + 1) + 1
        raise ArchError(f"source longer than {limit} bytes", Span(file, line, col),
                        "archdsl reads at most this much; split the file or raise --max-source-bytes")


# ------------------------------------------------------------------------------------------ writing


def output_mode() -> int:
    """The permissions of a new output file: what the umask allows (mkstemp makes files private)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check_output(path: str, inputs: Iterable[str | Path] = ()) -> None:
    """Refuse an output that would destroy something: an input of this run, a directory, a
    socket or block device, a read-only file, or one in a directory that does not exist."""
    if path == STDIO:
        return
    try:
        st = os.stat(path)
    except FileNotFoundError:
        parent = os.path.dirname(path) or "."
        if not os.path.isdir(parent):
            raise ArchError(f"cannot write {path}: no such directory {parent}", _where(path)) from None
        return
    except OSError as err:
        raise ArchError(f"cannot write {path}: {err.strerror or err}", _where(path)) from None
    for src in inputs:
        if str(src) == STDIO:
            continue
        try:
            same = _same_file(st, os.stat(src))
        except OSError:
            continue
        if same:
            raise ArchError(f"refusing to write {path}: it is the input file {src}", _where(path),
                            "choose another output name (-o)")
    if stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode):
        return  # written into, not replaced
    if not stat.S_ISREG(st.st_mode):
        raise ArchError(f"cannot write {path}: it is {_kind(st.st_mode)}", _where(path))
    if not st.st_mode & 0o222:
        raise ArchError(f"refusing to write {path}: the file is read-only", _where(path),
                        "make it writable (chmod u+w) or choose another output name")


def write_output(path: str, data: bytes | str, inputs: Iterable[str | Path] = ()) -> None:
    """Write ``data`` to ``path`` (``-``: standard output) under the rules in the module docstring."""
    inputs = list(inputs)
    check_output(path, inputs)
    if path == STDIO:
        if isinstance(data, str):
            sys.stdout.write(data)
        else:
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    raw = data.encode() if isinstance(data, str) else data
    real = os.path.realpath(path)  # a symlink stays a link: its target is what gets written
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    try:
        if st is not None and (not stat.S_ISREG(st.st_mode) or st.st_nlink > 1):
            _write_into(real, raw, st)
        else:
            _replace(real, raw, stat.S_IMODE(st.st_mode) if st is not None else output_mode())
    except OSError as err:
        raise ArchError(f"cannot write {path}: {err.strerror or err}", _where(path)) from None


def _write_into(real: str, raw: bytes, st: os.stat_result) -> None:
    """A FIFO, a device or a hard-linked file: write the bytes into it (a FIFO without a reader is
    an error at once rather than a hang)."""
    flags = os.O_WRONLY | (os.O_TRUNC if stat.S_ISREG(st.st_mode) else 0)
    if stat.S_ISFIFO(st.st_mode):
        try:
            fd = os.open(real, flags | os.O_NONBLOCK)
        except OSError as err:
            if err.errno == errno.ENXIO:
                raise OSError(err.errno, "no process is reading this FIFO") from None
            raise
        os.set_blocking(fd, True)
    else:
        fd = os.open(real, flags)
    with os.fdopen(fd, "wb") as f:
        f.write(raw)


def _replace(real: str, raw: bytes, mode: int) -> None:
    """Atomic replacement: a short temporary name beside the target, then ``os.replace``."""
    fd, tmp = tempfile.mkstemp(prefix=".archdsl-", suffix=".tmp", dir=os.path.dirname(real) or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.chmod(tmp, mode)
        os.replace(tmp, real)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str, data: bytes | str) -> None:
    """Backends' entry point (kept for them): :func:`write_output` with no inputs to protect."""
    write_output(path, data)
