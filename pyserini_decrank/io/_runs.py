"""TREC run files: ``qid Q0 docid rank score tag``, one line per hit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable

from ..errors import DecrankError


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
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
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
            if (qid, docid) in seen:
                raise DecrankError(f"{path}:{lineno}: docid {docid} appears twice for query {qid}")
            seen.add((qid, docid))
            run.setdefault(qid, []).append(hit)
    for hits in run.values():
        hits.sort(key=lambda h: (-h.score, h.rank))
    return run


def format_run_lines(qid: str, hits: Iterable[Hit], tag: str) -> str:
    return "".join(f"{qid} Q0 {h.docid} {rank} {h.score:.6f} {tag}\n" for rank, h in enumerate(hits, 1))


class RunWriter:
    """Writes a run query by query and flushes each, so that an error later loses nothing written."""

    def __init__(self, path: str | Path, tag: str) -> None:
        self.path = Path(path)
        self.tag = tag
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = open(self.path, "w", encoding="utf-8")

    def write(self, qid: str, hits: Iterable[Hit]) -> None:
        self._file.write(format_run_lines(qid, hits, self.tag))
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
