"""Relevance judgments: TREC qrels (``qid 0 docid rel``), BEIR TSV (with header), or a Pyserini name."""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import DecrankError
from ._text import read_lines


def read_qrels(spec: str) -> dict[str, dict[str, int]]:
    path = Path(spec)
    if not path.is_file():
        if path.suffix or "/" in spec:
            raise DecrankError(f"{spec}: qrels file not found")
        from .._pyserini import get_qrels_file

        try:
            path = Path(get_qrels_file(spec))
        except Exception as exc:  # Pyserini raises bare Exceptions for unknown names
            raise DecrankError(f"{spec}: neither a qrels file nor a Pyserini qrels name ({exc})") from None
    qrels: dict[str, dict[str, int]] = {}
    for lineno, line in read_lines(path):
        parts = line.split()
        if not parts:
            continue
        if lineno == 1 and parts[0] in ("query-id", "qid", "query_id"):
            continue
        if len(parts) == 4:
            qid, _, docid, rel = parts
        elif len(parts) == 3:
            qid, docid, rel = parts
        else:
            raise DecrankError(f"{path}:{lineno}: malformed qrels line, expected 'qid 0 docid relevance': {line.strip()[:80]!r}")
        try:
            grade = float(rel)
            if not math.isfinite(grade):
                raise ValueError
        except ValueError:
            raise DecrankError(f"{path}:{lineno}: relevance must be a finite number: {line.strip()[:80]!r}") from None
        judged = qrels.setdefault(qid, {})
        if docid in judged and judged[docid] != int(grade):
            raise DecrankError(f"{path}:{lineno}: query {qid} judges {docid} again with another grade "
                               f"({judged[docid]}, then {int(grade)})")
        judged[docid] = int(grade)
    return qrels
