"""What every re-ranking method shares: scores for the top ``k``, optional interpolation with the
first-stage score, a deterministic sort, and the tail kept in first-stage order."""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from ..io import Hit


def _minmax(values: np.ndarray) -> np.ndarray:
    span = values.max() - values.min()
    return (values - values.min()) / span if span > 0 else np.zeros_like(values)


def _with_score(hit: Any, score: float) -> Any:
    """A copy of ``hit`` with a new score: a dataclass stays its type, anything else becomes a ``Hit``."""
    if dataclasses.is_dataclass(hit):
        return dataclasses.replace(hit, score=score)
    return Hit(docid=str(hit.docid), score=score, rank=getattr(hit, "rank", 0), contents=getattr(hit, "contents", None))


def rerank_by_scores(scorer: Any, query: str, hits: Sequence[Any], k: int | None, qid: str | None) -> list:
    """The re-ranking every method shares: score the first ``k`` hits with ``scorer.score``, optionally
    interpolate with the first-stage score (``scorer.alpha``), sort (ties keep first-stage order), append
    the rest. With ``scorer.skip_missing``, hits the scorer cannot score are dropped."""
    hits = list(hits)
    k = len(hits) if k is None else min(k, len(hits))
    if scorer.skip_missing:
        missing = set(scorer.missing([str(h.docid) for h in hits[:k]]))
        k -= sum(1 for h in hits[:k] if str(h.docid) in missing)
        hits = [h for h in hits if str(h.docid) not in missing]
    alpha = scorer.alpha
    head, tail = hits[:k], hits[k:]
    scores = scorer.score(query, [str(h.docid) for h in head], qid=qid)
    if alpha is not None and len(scores):
        first = np.array([float(h.score) for h in head], dtype=np.float64)
        scores = alpha * _minmax(first) + (1 - alpha) * _minmax(scores.astype(np.float64))
    order = sorted(range(len(head)), key=lambda i: (-scores[i], i))
    reranked = [_with_score(head[i], float(scores[i])) for i in order]
    floor = min((float(s) for s in scores), default=0.0)
    return reranked + [_with_score(h, floor - 1.0 - i) for i, h in enumerate(tail)]
