"""The baseline a user reaches for first: a bi-encoder (all-MiniLM-L6-v2, mean pooling, cosine)
embedding query and candidate passages on the fly."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..errors import DecrankError
from ._base import rerank_by_scores


class BiEncoderReranker:
    """Cosine of mean-pooled embeddings; needs the candidates' text (``texts``: docid -> text)."""

    def __init__(self, model, tokenizer, texts: Mapping[str, str], max_length: int = 256, batch_size: int = 32,
                 alpha: float | None = None, skip_missing: bool = False) -> None:
        self.model, self.tokenizer = model.eval(), tokenizer
        self.texts, self.max_length, self.batch_size = texts, max_length, batch_size
        self.alpha, self.skip_missing = alpha, skip_missing

    @classmethod
    def from_pretrained(cls, name_or_path: str | None = None, texts: Mapping[str, str] | None = None, **kwargs) -> "BiEncoderReranker":
        from transformers import AutoModel, AutoTokenizer

        if name_or_path is None:
            from ..train._minilm import minilm_path

            name_or_path = str(minilm_path())
        return cls(AutoModel.from_pretrained(name_or_path), AutoTokenizer.from_pretrained(name_or_path), texts or {}, **kwargs)

    @torch.inference_mode()
    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        out = []
        for start in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(list(texts[start : start + self.batch_size]), padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")
            states = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(out)

    def missing(self, docids: Sequence[str]) -> list[str]:
        return [d for d in docids if d not in self.texts]

    def score(self, query: str, docids: Sequence[str], qid: str | None = None) -> np.ndarray:
        if not query.strip():
            raise DecrankError(f"query {qid} is empty" if qid is not None else "the query is empty")
        missing = self.missing(docids)
        if missing:
            raise DecrankError(f"no text for docid(s) {', '.join(missing[:5])}; give the corpus with --corpus")
        if not docids:
            return np.zeros(0, dtype=np.float32)
        q = self.embed([query])
        d = self.embed([self.texts[x] for x in docids])
        return (d @ q[0]).numpy().astype(np.float32)

    def rerank(self, query: str, hits: Sequence[Any], k: int | None = None, qid: str | None = None) -> list:
        return rerank_by_scores(self, query, hits, k, qid)
