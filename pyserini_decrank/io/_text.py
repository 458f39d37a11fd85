"""Text files as every reader opens them: UTF-8, gzip by suffix, tab-separated lines checked one by one."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Iterator

from ..errors import DecrankError


def open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def iter_tab_lines(path: Path, what: str, expected: str) -> Iterator[tuple[str, str]]:
    """(first field, rest) of each non-empty line; a line without a tab is an error naming it."""
    with open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            key, sep, rest = line.partition("\t")
            if not sep:
                raise DecrankError(f"{path}:{lineno}: malformed {what} line, expected '{expected}': {line[:80]!r}")
            yield key.strip(), rest
