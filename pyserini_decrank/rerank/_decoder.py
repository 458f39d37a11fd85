"""``DecoderReranker``: the query-time half of ED2LM. Only the decoder runs, over the query tokens,
cross-attending to each candidate's stored encoder states."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import DecrankError
from ..model import DEFAULT_MODEL, QueryLikelihoodModel
from ..store import EncoderStateStore
from ._base import Reranker, _check_alpha


MODEL_ALPHA = "model"  # in place of a number: the alpha the model carries


class DecoderReranker(Reranker):
    """Re-ranks first-stage hits by the decoder's likelihood of the query given each document."""

    def __init__(
        self,
        model: QueryLikelihoodModel,
        store: EncoderStateStore,
        batch_size: int = 32,
        skip_missing: bool = False,
        alpha: float | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, alpha=alpha, skip_missing=skip_missing)
        self.cross_kv = store.manifest.model.get("content") == "cross-kv"
        store.check_model(model.fingerprint("cross-kv" if self.cross_kv else "encoder-states"))
        self.model = model
        self.store = store
        if model.copy.active:  # a store written before token ids were kept is refused here, not at the first query
            store.check_token_ids()

    @classmethod
    def from_pretrained(
        cls,
        model: str = DEFAULT_MODEL,
        store: str | EncoderStateStore = "",
        device: str = "cpu",
        batch_size: int = 32,
        skip_missing: bool = False,
        alpha: float | str | None = None,
        copy: str | None = None,
        **model_kwargs,
    ) -> "DecoderReranker":
        """``alpha="model"`` takes the alpha the model carries (chosen on its dev split); ``copy`` replaces the
        copy-aware scoring the model declares (``none``, ``LAMBDA``, ``KIND:LAMBDA``, ``KIND``)."""
        if not store:
            raise DecrankError("DecoderReranker needs store=: a folder written by `decrank encode`",
                               cli="--method decoder needs --store (a folder written by `decrank encode`)")
        store = store if isinstance(store, EncoderStateStore) else EncoderStateStore(store)
        qlm = QueryLikelihoodModel.from_pretrained(model, device=device, **model_kwargs)
        if copy is not None:
            qlm.set_copy(copy)
        reranker = cls(qlm, store, batch_size=batch_size, skip_missing=skip_missing)
        reranker.alpha = reranker.model_alpha() if alpha == MODEL_ALPHA else alpha
        _check_alpha(reranker.alpha)
        return reranker

    def model_alpha(self) -> float:
        """The alpha the model carries (``decrank_config.json``), chosen on its dev split."""
        if self.model.config.alpha is None:
            name = self.model.name_or_path
            raise DecrankError(f"model {name} carries no alpha in its decrank_config.json; give a number",
                               cli=f"--alpha model: model {name} carries no alpha in its decrank_config.json; give a number")
        return self.model.config.alpha

    @property
    def where(self) -> str:
        return f"store {self.store.path}"

    def missing(self, docids: Sequence[str]) -> list[str]:
        return self.store.missing(docids)

    def _score(self, query: str, docids: Sequence[str]) -> np.ndarray:
        labels = self.model.query_labels(query)
        states, tokens = self.store.get_many_with_tokens(docids, with_tokens=self.model.copy.active)
        # longest first, so that each batch pads to about its own length
        order = sorted(range(len(states)), key=lambda i: states[i].shape[0], reverse=True)
        scores = np.empty(len(docids), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            scores[batch] = self.model.score_documents(labels, [states[i] for i in batch], cross_kv=self.cross_kv,
                                                       token_ids=None if tokens is None else [tokens[i] for i in batch]
                                                       ).numpy()
        return scores
