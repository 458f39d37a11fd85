"""``DecoderReranker``: the query-time half of ED2LM. Only the decoder runs, over the query tokens,
cross-attending to each candidate's stored encoder states."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import DecrankError
from ..model import QueryLikelihoodModel
from ..store import EncoderStateStore, MissingDocidsError
from ._base import rerank_by_scores

DEFAULT_MODEL = "decrank-minilm"


class DecoderReranker:
    """Re-ranks first-stage hits by the decoder's likelihood of the query given each document."""

    def __init__(
        self,
        model: QueryLikelihoodModel,
        store: EncoderStateStore,
        batch_size: int = 32,
        skip_missing: bool = False,
        alpha: float | None = None,
    ) -> None:
        self.cross_kv = store.manifest.model.get("content") == "cross-kv"
        store.check_model(model.fingerprint("cross-kv" if self.cross_kv else "encoder-states"))
        self.model = model
        self.store = store
        self.batch_size = batch_size
        self.skip_missing = skip_missing
        self.alpha = alpha

    @classmethod
    def from_pretrained(
        cls,
        model: str = DEFAULT_MODEL,
        store: str | EncoderStateStore = "",
        device: str = "cpu",
        batch_size: int = 32,
        skip_missing: bool = False,
        alpha: float | None = None,
        **model_kwargs,
    ) -> "DecoderReranker":
        if not store:
            raise DecrankError("DecoderReranker needs store=: a folder written by `decrank encode`")
        store = store if isinstance(store, EncoderStateStore) else EncoderStateStore(store)
        return cls(QueryLikelihoodModel.from_pretrained(model, device=device, **model_kwargs), store,
                   batch_size=batch_size, skip_missing=skip_missing, alpha=alpha)

    def missing(self, docids: Sequence[str]) -> list[str]:
        """The docids this re-ranker cannot score (not in the store)."""
        return self.store.missing(docids)

    # ------------------------------------------------------------------ scoring
    def score(self, query: str, docids: Sequence[str], qid: str | None = None) -> np.ndarray:
        """The model's score of each document for ``query`` (log-likelihood for query-likelihood models)."""
        if not query or not query.strip():
            raise DecrankError(f"query {qid} is empty" if qid is not None else "the query is empty")
        if not docids:
            return np.zeros(0, dtype=np.float32)
        labels = self.model.query_labels(query)
        states = self.store.get_many(docids)
        # longest first, so that each batch pads to about its own length
        order = sorted(range(len(states)), key=lambda i: states[i].shape[0], reverse=True)
        scores = np.empty(len(docids), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            scores[batch] = self.model.score_documents(labels, [states[i] for i in batch], cross_kv=self.cross_kv).numpy()
        return scores

    def rerank(self, query: str, hits: Sequence[Any], k: int | None = None, qid: str | None = None) -> list:
        """Hits sorted by the new score. Only the first ``k`` (all by default) are scored; the rest keep
        their first-stage order after them. Ties keep first-stage order."""
        try:
            return rerank_by_scores(self, query, hits, k, qid)
        except MissingDocidsError as exc:
            where = f" (query {qid})" if qid is not None else ""
            raise DecrankError(f"{exc}{where}; pass --skip-missing to drop such candidates") from None

    def batch_rerank(
        self,
        queries: Mapping[str, str],
        hits_by_qid: Mapping[str, Sequence[Any]],
        k: int | None = None,
    ) -> dict[str, list]:
        """``rerank`` for every qid of ``hits_by_qid``; a qid without a query is an error."""
        out = {}
        for qid, hits in hits_by_qid.items():
            if qid not in queries:
                raise DecrankError(f"query {qid} of the run has no topic text")
            out[qid] = self.rerank(queries[qid], hits, k=k, qid=qid)
        return out

