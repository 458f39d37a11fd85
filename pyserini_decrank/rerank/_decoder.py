"""``DecoderReranker``: the query-time half of ED2LM. Only the decoder runs, over the query tokens,
cross-attending to each candidate's stored encoder states. Raw texts (``rank``) read the store as a cache:
stored states where it holds the docid with the same text, the model's own encoder for the rest."""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch

from ..errors import DecrankError
from ..model import DEFAULT_MODEL, QueryLikelihoodModel
from ..store import EncoderStateStore, text_hash
from ._base import Reranker, split_by_query


class CodecMismatchWarning(UserWarning):
    """A store whose codec is not the one the model was trained to read (``ScoringConfig.codec``)."""


class DecoderReranker(Reranker):
    """Re-ranks first-stage hits by the decoder's likelihood of the query given each document."""

    method = "decoder"

    def __init__(
        self,
        model: QueryLikelihoodModel,
        store: EncoderStateStore | None = None,
        batch_size: int = 32,
        skip_missing: bool = False,
        alpha: float | str | None = None,
        query_batch: int = 1,
        decode_on_device: bool | None = None,
    ) -> None:
        """Without a ``store`` only raw texts can be scored (``rank``, ``predict``, ``score_texts``).
        ``query_batch``: queries whose candidates share decoder batches (``batch_size`` rows each).
        ``decode_on_device``: a PQ store's codes are decoded on the model's device rather than by faiss on the
        CPU (default: on a GPU, where the CPU's decoding and copying the decoded states would bound it)."""
        self.model = model  # first: ``alpha="model"`` reads it
        super().__init__(batch_size=batch_size, alpha=alpha, skip_missing=skip_missing, query_batch=query_batch)
        self.cross_kv = store is not None and store.manifest.model.get("content") == "cross-kv"
        if store is not None:
            store.check_model(model.fingerprint("cross-kv" if self.cross_kv else "encoder-states"))
            if model.copy.active:  # a store written before token ids were kept is refused here, not at the first query
                store.check_token_ids()
            declared = model.config.codec
            if declared is not None and store.manifest.codec != declared:
                warnings.warn(f"model {model.name_or_path} was trained to read states through codec {declared}; store "
                              f"{store.path} holds {store.manifest.codec}: its scores may fall below the model's own figures "
                              f"(encode with --codec {declared})", CodecMismatchWarning, stacklevel=2)
        self.store = store
        if decode_on_device is None:
            decode_on_device = model.device.type == "cuda"
        self.device_decoder = None  # a faiss codec's torch decoder, where codes are decoded on the model's device
        if decode_on_device and store is not None and not self.cross_kv:
            self.device_decoder = getattr(store.codec, "device_decoder", lambda: None)()

    @classmethod
    def from_pretrained(
        cls,
        model: str = DEFAULT_MODEL,
        store: str | EncoderStateStore | None = None,
        device: str = "cpu",
        batch_size: int = 32,
        skip_missing: bool = False,
        alpha: float | str | None = None,
        copy: str | None = None,
        query_batch: int = 1,
        decode_on_device: bool | None = None,
        **model_kwargs,
    ) -> "DecoderReranker":
        """``store``: a folder written by `decrank encode` (without one, raw texts only); ``alpha="model"``
        takes the alpha the model carries (chosen on its dev split); ``copy`` replaces the copy-aware scoring
        the model declares (``none``, ``LAMBDA``, ``KIND:LAMBDA``, ``KIND``)."""
        if store is not None and not isinstance(store, EncoderStateStore):
            store = EncoderStateStore(store)
        qlm = QueryLikelihoodModel.from_pretrained(model, device=device, **model_kwargs)
        if copy is not None:
            qlm.set_copy(copy)
        return cls(qlm, store, batch_size=batch_size, skip_missing=skip_missing, alpha=alpha, query_batch=query_batch,
                   decode_on_device=decode_on_device)

    def model_alpha(self, option: str = "alpha") -> float:
        """The alpha the model carries (``decrank_config.json``), chosen on its dev split."""
        if self.model.config.alpha is None:
            name = self.model.name_or_path
            raise DecrankError(f"model {name} carries no alpha in its decrank_config.json; give a number",
                               cli=f"--{option} model: model {name} carries no alpha in its decrank_config.json; give a number")
        return self.model.config.alpha

    @property
    def where(self) -> str:
        return f"store {self.store.path}" if self.store is not None else "no store (DecoderReranker got none)"

    def missing(self, docids: Sequence[str]) -> list[str]:
        return self.store.missing(docids) if self.store is not None else list(docids)

    def _score(self, query: str, docids: Sequence[str]) -> np.ndarray:
        return self._score_many([query], [docids])[0]

    def _score_many(self, queries: Sequence[str], docids: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """The candidates of all ``queries`` read from the store at once and scored in shared decoder batches,
        each row with its own query's labels."""
        flat = [d for ids in docids for d in ids]
        states, tokens = self.store.get_many_with_tokens(flat, with_tokens=self.model.copy.active,
                                                         decode=self.device_decoder is None)
        labels = [self.model.query_labels(query) for query in queries]
        scores = self._score_matrices([labels[q] for q, ids in enumerate(docids) for _ in ids], states, tokens,
                                      self.device_decoder)
        return split_by_query(scores, docids)

    def _score_texts(self, query: str, texts: Sequence[str], docids: Sequence[str] | None) -> np.ndarray:
        stored = np.zeros(len(texts), dtype=bool)
        if docids is not None and self.store is not None:
            hashes = self.store.text_hashes_of(docids)  # 0 where not held (or no text recorded): encoded here
            stored = np.array([h != 0 and h == text_hash(t) for h, t in zip(hashes.tolist(), texts)], dtype=bool)
        states: list = [None] * len(texts)
        tokens: list | None = [None] * len(texts) if self.model.copy.active else None
        rows = np.flatnonzero(stored).tolist()
        if rows:
            got, got_tokens = self.store.get_many_with_tokens([docids[i] for i in rows], with_tokens=tokens is not None)
            for j, i in enumerate(rows):
                states[i] = got[j]
                if tokens is not None:
                    tokens[i] = got_tokens[j]
        rows = np.flatnonzero(~stored).tolist()
        if rows:  # as `decrank encode` would have stored them: the store's length and content
            max_length = self.store.manifest.max_length if self.store is not None else None
            ids = self.model.tokenize_documents([texts[i] for i in rows], max_length)
            content = "cross-kv" if self.cross_kv else "encoder-states"
            for start in range(0, len(rows), self.batch_size):
                batch = ids[start : start + self.batch_size]
                for i, matrix, doc_ids in zip(rows[start : start + self.batch_size],
                                              self.model.store_matrices(batch, content), batch):
                    states[i] = matrix
                    if tokens is not None:
                        tokens[i] = self.model.stored_token_ids(doc_ids)
        return self._score_matrices([self.model.query_labels(query)] * len(texts), states, tokens)

    def _score_matrices(self, labels: Sequence[Sequence[int]], states: Sequence[torch.Tensor],
                        tokens: Sequence | None, decode=None) -> np.ndarray:
        """Scores of rows of (query labels, document as a store hands it back: states, keys/values or, with
        ``decode``, codes; token ids to copy)."""
        # longest query, then longest document, first: a batch pads its labels and its states to about their own
        # lengths (pooled queries of different lengths would otherwise pad every row to the longest query)
        order = sorted(range(len(states)), key=lambda i: (len(labels[i]), states[i].shape[0]), reverse=True)
        scores = np.empty(len(states), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            scores[batch] = self.model.score_documents([labels[i] for i in batch], [states[i] for i in batch],
                                                       cross_kv=self.cross_kv, decode=decode,
                                                       token_ids=None if tokens is None else [tokens[i] for i in batch]
                                                       ).numpy()
        return scores
