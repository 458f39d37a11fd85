"""Text files as every reader reads them: UTF-8 (a leading byte-order mark dropped), gzip by suffix, and
any undecodable byte or broken gzip stream one error naming the file and line."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import IO, Iterator

from ..errors import DecrankError

BOM = "\ufeff"
# what a damaged gzip stream or unreadable file raises while being read
_READ_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error, OSError)


def _open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _read_error(path: Path, exc: Exception) -> DecrankError:
    if path.suffix == ".gz":
        return DecrankError(f"{path}: not a readable gzip file ({exc})")
    return DecrankError(f"{path}: cannot read ({exc})")


def _decode(raw: bytes, path: Path, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecrankError(f"{path}:{lineno}: not valid UTF-8 (byte {exc.start + 1} of the line)") from None


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, line without its line ending) of every line, decoded one line at a time so that an
    error names the very line."""
    path = Path(path)
    lineno = 0
    try:
        with _open_binary(path) as f:
            for lineno, raw in enumerate(f, 1):
                line = _decode(raw, path, lineno).rstrip("\r\n")
                yield lineno, (line.removeprefix(BOM) if lineno == 1 else line)
    except _READ_ERRORS as exc:
        raise _read_error(path, exc) from None


def read_text(path: str | Path) -> str:
    """The whole file as text (byte-order mark dropped)."""
    path = Path(path)
    try:
        with _open_binary(path) as f:
            raw = f.read()
    except _READ_ERRORS as exc:
        raise _read_error(path, exc) from None
    try:
        return raw.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError as exc:
        lineno = raw.count(b"\n", 0, exc.start) + 1
        raise DecrankError(f"{path}:{lineno}: not valid UTF-8") from None


def head_text(path: str | Path, size: int = 4096) -> str:
    """The first ``size`` bytes as text, for telling formats apart (undecodable bytes replaced)."""
    path = Path(path)
    try:
        with _open_binary(path) as f:
            return f.read(size).decode("utf-8", errors="replace")
    except _READ_ERRORS as exc:
        raise _read_error(path, exc) from None


def iter_tab_lines(path: Path, what: str, expected: str) -> Iterator[tuple[int, str, str]]:
    """(line number, first field, rest) of each non-empty line; a line without a tab is an error naming it."""
    for lineno, line in read_lines(path):
        if not line.strip():
            continue
        key, sep, rest = line.partition("\t")
        if not sep:
            raise DecrankError(f"{path}:{lineno}: malformed {what} line, expected '{expected}': {line[:80]!r}")
        yield lineno, key.strip(), rest
