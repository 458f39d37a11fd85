"""The baseline a user reaches for first: a bi-encoder (all-MiniLM-L6-v2, mean pooling, cosine)
embedding query and candidate passages on the fly, on any device and precision (pooling in fp32)."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from ..model import ComputePrecision, check_device, load_pretrained, mean_pool, minilm_path, set_attention
from ._base import TextReranker


class BiEncoderReranker(TextReranker):
    """Cosine of mean-pooled embeddings; needs the candidates' text (``texts``: docid -> text)."""

    method = "biencoder"

    def __init__(self, model, tokenizer, texts: Mapping[str, str] | None = None, max_length: int = 256, batch_size: int = 32,
                 alpha: float | None = None, skip_missing: bool = False, source: str = "the texts given",
                 device: str = "cpu", precision: str = "fp32", attention: str | None = None, query_batch: int = 1) -> None:
        super().__init__(texts, batch_size=batch_size, alpha=alpha, skip_missing=skip_missing, source=source,
                         query_batch=query_batch)
        self.device = check_device(device)
        self.model, self.tokenizer, self.max_length = model.eval().to(self.device), tokenizer, max_length
        set_attention(self.model, attention)
        self.compute = ComputePrecision(self.model, precision)

    @classmethod
    def from_pretrained(cls, name_or_path: str | None = None, texts: Mapping[str, str] | None = None, **kwargs) -> "BiEncoderReranker":
        from transformers import AutoModel, AutoTokenizer

        name_or_path = name_or_path or str(minilm_path())
        check_device(kwargs.get("device", "cpu"))
        model, tokenizer = load_pretrained(AutoModel, name_or_path), load_pretrained(AutoTokenizer, name_or_path)
        return cls(model, tokenizer, texts, **kwargs)

    @torch.inference_mode()
    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        out = []
        for start in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(list(texts[start : start + self.batch_size]), padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")
            enc = {k: v.to(self.device) for k, v in enc.items()}
            with self.compute():
                states = self.model(**enc).last_hidden_state
            out.append(mean_pool(states, enc["attention_mask"]))  # in fp32 whatever the products ran in
        return torch.cat(out).cpu()

    def _score_texts(self, query: str, texts: Sequence[str], docids: Sequence[str] | None) -> np.ndarray:
        q = self.embed([query])
        d = self.embed(list(texts))
        return (d @ q[0]).numpy().astype(np.float32)
