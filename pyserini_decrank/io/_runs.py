"""TREC run files: ``qid Q0 docid rank score tag``, one line per hit."""

from __future__ import annotations

import fcntl
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable

from ..errors import DecrankError
from ._text import read_lines

# a run being written lies beside its target under this suffix until it is complete
PARTIAL_SUFFIX = ".partial"


@dataclass
class Hit:
    """One candidate: the shape of Pyserini's hits (``docid``, ``score``), plus its first-stage rank."""

    docid: str
    score: float
    rank: int = 0
    contents: str | None = None


def read_run(path: str | Path) -> dict[str, list[Hit]]:
    """Hits per qid in first-stage order (score descending, then the file's rank), qids in file order."""
    path = Path(path)
    if not path.is_file():
        raise DecrankError(f"{path}: run file not found")
    run: dict[str, list[Hit]] = {}
    seen: set[tuple[str, str]] = set()
    for lineno, line in read_lines(path):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 6:
            raise DecrankError(f"{path}:{lineno}: malformed run line, expected 'qid Q0 docid rank score tag': {line.strip()[:80]!r}")
        qid, _, docid, rank, score, _ = parts
        try:
            hit = Hit(docid=docid, score=float(score), rank=int(rank))
        except ValueError:
            raise DecrankError(f"{path}:{lineno}: rank and score must be numbers: {line.strip()[:80]!r}") from None
        if not math.isfinite(hit.score):
            raise DecrankError(f"{path}:{lineno}: score {score} is not a finite number")
        if (qid, docid) in seen:
            raise DecrankError(f"{path}:{lineno}: docid {docid} appears twice for query {qid}")
        seen.add((qid, docid))
        run.setdefault(qid, []).append(hit)
    for hits in run.values():
        hits.sort(key=lambda h: (-h.score, h.rank))
    return run


def check_tag(tag: str, option: str = "tag") -> None:
    """A run's tag is its sixth column: one word, or the line would not have six columns."""
    if not isinstance(tag, str) or not tag or len(tag.split()) != 1 or tag != tag.strip():
        raise DecrankError(f"{option} {tag!r}: a run tag is one word without spaces (it is the run file's sixth column)")


def format_run_lines(qid: str, hits: Iterable[Hit], tag: str) -> str:
    return "".join(f"{qid} Q0 {h.docid} {rank} {h.score:.6f} {tag}\n" for rank, h in enumerate(hits, 1))


class RunWriter:
    """Writes a run query by query into ``OUTPUT.partial`` beside the target, flushing each query, and
    renames it into place only when ``close(complete=True)``: the previous ``OUTPUT`` survives any failure,
    and what was done before it is kept in ``OUTPUT.partial`` (removed when nothing was). The partial file
    is locked while it is written, so that a second writer of the same ``OUTPUT`` stops at once instead of
    mixing its lines into the first's."""

    def __init__(self, path: str | Path, tag: str) -> None:
        check_tag(tag)
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + PARTIAL_SUFFIX)
        self.tag = tag
        self.queries = 0
        if self.path.is_dir():
            raise DecrankError(f"{self.path}: is a folder, not a run file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT, 0o644)  # not truncated before it is locked
        except OSError as exc:
            raise DecrankError(f"{self.path}: cannot write the run here ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise DecrankError(f"{self.path}: another process is writing this run ({self.partial} is locked); "
                               "wait for it or write elsewhere") from None
        os.ftruncate(fd, 0)
        self._file: IO[str] = os.fdopen(fd, "w", encoding="utf-8")

    def write(self, qid: str, hits: Iterable[Hit]) -> None:
        try:
            self._file.write(format_run_lines(qid, hits, self.tag))
            self._file.flush()
        except OSError as exc:
            raise DecrankError(f"{self.partial}: cannot write ({exc.strerror or exc})") from None
        self.queries += 1

    def close(self, complete: bool = True) -> None:
        """Renames the run into place when ``complete``; otherwise leaves it as ``OUTPUT.partial`` if it
        holds a query, or removes it. The lock is held until the rename is done."""
        if self._file.closed:
            return
        try:
            if complete:
                self._file.flush()
                os.fsync(self._file.fileno())
                os.replace(self.partial, self.path)
            elif self.queries == 0:
                self.partial.unlink(missing_ok=True)
        except OSError as exc:
            raise DecrankError(f"{self.path}: cannot finish the run ({exc.strerror or exc}); "
                               f"{self.path} is unchanged") from None
        finally:
            try:
                self._file.close()
            except OSError:
                pass

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(complete=exc_type is None)
