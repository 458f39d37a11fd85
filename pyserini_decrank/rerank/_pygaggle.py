"""pygaggle's ``Reranker.rerank(Query, List[Text])`` shape, without depending on pygaggle (which is
broken on Pyserini >= 0.24). pygaggle's own ``Query``/``Text`` objects work too: only their attributes
are read."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..errors import DecrankError


@dataclass
class Query:
    text: str
    id: str | None = None


@dataclass
class Text:
    text: str
    metadata: dict = field(default_factory=dict)
    score: float = 0.0
    title: str | None = None


class PygaggleReranker:
    """Wraps any ``Reranker`` for code written against pygaggle.

    As pygaggle's ``Reranker`` does: ``rescore`` gives the texts back in the order given with their
    ``score`` set, ``rerank`` the same texts sorted by score, highest first (ties keep the given order).
    Texts are scored from their ``text`` (a store serving the ``metadata['docid']`` it holds with the same
    text); where some text is empty, every candidate is looked up by its ``metadata['docid']`` instead.
    """

    def __init__(self, reranker: Any) -> None:
        self.reranker = reranker

    def rescore(self, query: Any, texts: Sequence[Any]) -> list:
        texts = list(texts)
        if not texts:
            return []
        docids = [(getattr(text, "metadata", None) or {}).get("docid") for text in texts]
        contents = [getattr(text, "text", None) for text in texts]
        if all(isinstance(c, str) and c.strip() for c in contents):
            ids = [str(d) for d in docids] if None not in docids else None
            scores = self.reranker.score_texts(query.text, contents, doc_ids=ids)
        else:
            if None in docids:
                i = docids.index(None)
                raise DecrankError(f"text {i} has neither text nor a metadata['docid'] to look its candidate up by")
            scores = self.reranker.score(query.text, [str(d) for d in docids], qid=getattr(query, "id", None))
        out = []
        for text, score in zip(texts, scores):
            scored = copy.copy(text)
            scored.score = float(score)
            out.append(scored)
        return out

    def rerank(self, query: Any, texts: Sequence[Any]) -> list:
        scored = self.rescore(query, texts)
        return [scored[i] for i in sorted(range(len(scored)), key=lambda i: (-scored[i].score, i))]
