"""``CrossAttentionReranker``: the monoT5 way, the baseline ED2LM is measured against.

Query and document go through the whole encoder-decoder together (``Query: q Document: d Relevant:``)
and the score is the log-probability of ``true`` against ``false`` at the first decoder step, so
nothing can be computed ahead of the query.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..errors import DecrankError
from ..model._fast import ComputeWeights, set_attention
from ._base import rerank_by_scores

DEFAULT_CROSS_MODEL = "castorini/monot5-base-msmarco"
TEMPLATE = "Query: {query} Document: {document} Relevant:"


class CrossAttentionReranker:
    def __init__(self, model, tokenizer, texts: Mapping[str, str] | None = None, batch_size: int = 32,
                 max_length: int = 512, alpha: float | None = None, skip_missing: bool = False,
                 precision: str = "fp32", device: str = "cpu", attention: str | None = None) -> None:
        self.model, self.tokenizer = model.eval().to(device), tokenizer
        set_attention(self.model, attention)
        self.texts = texts or {}
        self.batch_size, self.max_length = batch_size, max_length
        self.alpha, self.skip_missing = alpha, skip_missing
        self.device = torch.device(device)
        self.autocast_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self._weights_copy = None  # cast once, on the first low-precision call, as the decoder path does
        from ..model._seq2seq import word_token_id

        self.true_id, self.false_id = word_token_id(tokenizer, "true"), word_token_id(tokenizer, "false")
        self.start_id = model.config.decoder_start_token_id or 0

    @classmethod
    def from_pretrained(cls, name_or_path: str = DEFAULT_CROSS_MODEL, texts: Mapping[str, str] | None = None,
                        **kwargs) -> "CrossAttentionReranker":
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        try:
            model = AutoModelForSeq2SeqLM.from_pretrained(name_or_path)
            tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        except (OSError, ValueError) as exc:
            raise DecrankError(f"cannot load model {name_or_path!r}: {str(exc).strip().splitlines()[0]}") from None
        return cls(model, tokenizer, texts, **kwargs)

    def missing(self, docids: Sequence[str]) -> list[str]:
        return [d for d in docids if d not in self.texts]

    @torch.inference_mode()
    def score_ids(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """log p(true) against false at the first decoder step (fp32 log-softmax) for a padded batch."""
        decoder_input = torch.full((input_ids.shape[0], 1), self.start_id, dtype=torch.long, device=self.device)
        weights = nullcontext()
        if self.autocast_dtype is not None:
            self._weights_copy = self._weights_copy or ComputeWeights(self.model, self.autocast_dtype)
            weights = self._weights_copy.applied()
        with weights, torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None):
            logits = self.model(input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device),
                                decoder_input_ids=decoder_input, use_cache=False).logits[:, 0]
        return logits[:, [self.true_id, self.false_id]].float().log_softmax(-1)[:, 0].cpu()

    def score(self, query: str, docids: Sequence[str], qid: str | None = None) -> np.ndarray:
        if not query or not query.strip():
            raise DecrankError(f"query {qid} is empty" if qid is not None else "the query is empty")
        missing = self.missing(docids)
        if missing:
            raise DecrankError(f"no text for docid(s) {', '.join(missing[:5])}; give the corpus with --corpus")
        inputs = [TEMPLATE.format(query=query, document=self.texts[d]) for d in docids]
        scores = np.empty(len(docids), dtype=np.float32)
        for start in range(0, len(inputs), self.batch_size):
            enc = self.tokenizer(inputs[start : start + self.batch_size], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")
            scores[start : start + len(enc["input_ids"])] = self.score_ids(enc["input_ids"], enc["attention_mask"]).numpy()
        return scores

    def rerank(self, query: str, hits: Sequence[Any], k: int | None = None, qid: str | None = None) -> list:
        return rerank_by_scores(self, query, hits, k, qid)
