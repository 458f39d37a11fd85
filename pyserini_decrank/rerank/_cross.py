"""``CrossAttentionReranker``: the monoT5 way, the baseline ED2LM is measured against.

Query and document go through the whole encoder-decoder together (``Query: q Document: d Relevant:``)
and the score is the log-probability of ``true`` against ``false`` at the first decoder step, so
nothing can be computed ahead of the query.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from ..model import ComputePrecision, check_device, load_pretrained, set_attention, word_token_id
from ._base import TextReranker, split_by_query

DEFAULT_CROSS_MODEL = "castorini/monot5-base-msmarco"
TEMPLATE = "Query: {query} Document: {document} Relevant:"


class CrossAttentionReranker(TextReranker):
    """monoT5's score: log p(true) against false after the query and document, read in one forward."""

    method = "cross"

    def __init__(self, model, tokenizer, texts: Mapping[str, str] | None = None, batch_size: int = 32,
                 max_length: int = 512, alpha: float | None = None, skip_missing: bool = False, source: str = "the texts given",
                 precision: str = "fp32", device: str = "cpu", attention: str | None = None, query_batch: int = 1) -> None:
        super().__init__(texts, batch_size=batch_size, alpha=alpha, skip_missing=skip_missing, source=source,
                         query_batch=query_batch)
        self.device = check_device(device)
        self.model, self.tokenizer = model.eval().to(self.device), tokenizer
        set_attention(self.model, attention)
        self.max_length = max_length
        self.compute = ComputePrecision(self.model, precision)
        self.true_id, self.false_id = word_token_id(tokenizer, "true"), word_token_id(tokenizer, "false")
        self.start_id = model.config.decoder_start_token_id or 0

    @classmethod
    def from_pretrained(cls, name_or_path: str = DEFAULT_CROSS_MODEL, texts: Mapping[str, str] | None = None,
                        **kwargs) -> "CrossAttentionReranker":
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        check_device(kwargs.get("device", "cpu"))
        model, tokenizer = load_pretrained(AutoModelForSeq2SeqLM, name_or_path), load_pretrained(AutoTokenizer, name_or_path)
        return cls(model, tokenizer, texts, **kwargs)

    @torch.inference_mode()
    def score_ids(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """log p(true) against false at the first decoder step (fp32 log-softmax) for a padded batch."""
        decoder_input = torch.full((input_ids.shape[0], 1), self.start_id, dtype=torch.long, device=self.device)
        with self.compute():
            logits = self.model(input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device),
                                decoder_input_ids=decoder_input, use_cache=False).logits[:, 0]
        return logits[:, [self.true_id, self.false_id]].float().log_softmax(-1)[:, 0].cpu()

    def _score_texts(self, query: str, texts: Sequence[str], docids: Sequence[str] | None) -> np.ndarray:
        return self._score_inputs([TEMPLATE.format(query=query, document=text) for text in texts])

    def _score_many(self, queries: Sequence[str], docids: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """The candidates of several queries in the same batches, as the decoder path pools them."""
        inputs = [TEMPLATE.format(query=query, document=self.texts[d]) for query, ids in zip(queries, docids) for d in ids]
        return split_by_query(self._score_inputs(inputs), docids)

    def _score_inputs(self, inputs: Sequence[str]) -> np.ndarray:
        """Scores of filled-in templates, ``batch_size`` at a time."""
        scores = np.empty(len(inputs), dtype=np.float32)
        for start in range(0, len(inputs), self.batch_size):
            enc = self.tokenizer(inputs[start : start + self.batch_size], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")
            scores[start : start + len(enc["input_ids"])] = self.score_ids(enc["input_ids"], enc["attention_mask"]).numpy()
        return scores
