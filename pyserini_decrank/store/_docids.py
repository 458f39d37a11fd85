"""A docid table that stays small in memory at ten million ids: no dict of all ids is ever built.

Each shard keeps its docids as UTF-8 bytes back to back with offsets, plus their 64-bit hashes
sorted, with the row each hash belongs to. A lookup hashes the asked ids, binary-searches the
memory-mapped hashes and confirms the match on the stored bytes, so collisions cannot mislead it.
"""

from __future__ import annotations

import hashlib
from typing import Iterator, Sequence

import numpy as np


def docid_hash(docid: str) -> int:
    return int.from_bytes(hashlib.blake2b(docid.encode("utf-8"), digest_size=8).digest(), "little")


def hashes_of(docids: Sequence[str]) -> np.ndarray:
    return np.fromiter((docid_hash(d) for d in docids), dtype=np.uint64, count=len(docids))


def build_docid_arrays(docids: Sequence[str]) -> dict[str, np.ndarray]:
    """The four arrays of one shard's table: ``bytes``, ``offsets``, ``hashes`` (sorted), ``rows``."""
    encoded = [d.encode("utf-8") for d in docids]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    hashes = hashes_of(docids)
    rows = np.argsort(hashes, kind="stable").astype(np.int64)
    return {
        "bytes": np.frombuffer(b"".join(encoded), dtype=np.uint8),
        "offsets": offsets,
        "hashes": hashes[rows],
        "rows": rows,
    }


class DocidTable:
    """Read side of one shard's docid table, over memory-mapped arrays."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self._bytes = arrays["bytes"]
        self._offsets = arrays["offsets"]
        self._hashes = arrays["hashes"]
        self._rows = arrays["rows"]

    def __len__(self) -> int:
        return len(self._rows)

    def docid(self, row: int) -> str:
        start, end = self._offsets[row], self._offsets[row + 1]
        return bytes(self._bytes[start:end]).decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        for row in range(len(self)):
            yield self.docid(row)

    def rows_of(self, docids: Sequence[str], hashes: np.ndarray | None = None) -> np.ndarray:
        """Row of each docid in this shard, -1 where absent."""
        hashes = hashes_of(docids) if hashes is None else hashes
        found = np.full(len(docids), -1, dtype=np.int64)
        if len(self) == 0:
            return found
        starts = np.searchsorted(self._hashes, hashes, side="left")
        for i, (docid, h, pos) in enumerate(zip(docids, hashes, starts)):
            while pos < len(self._hashes) and self._hashes[pos] == h:
                row = int(self._rows[pos])
                if self.docid(row) == docid:
                    found[i] = row
                    break
                pos += 1
        return found


DOCID_FILES = {name: f"docids.{name}.npy" for name in ("bytes", "offsets", "hashes", "rows")}
