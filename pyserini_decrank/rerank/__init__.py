"""Query-time stage: re-rank first-stage hits (``decrank rerank``)."""

from ._biencoder import BiEncoderReranker
from ._cross import CrossAttentionReranker
from ._base import rerank_by_scores
from ._decoder import DEFAULT_MODEL, DecoderReranker
from ._pygaggle import PygaggleReranker, Query, Text

__all__ = ["BiEncoderReranker", "CrossAttentionReranker", "DecoderReranker", "rerank_by_scores", "DEFAULT_MODEL", "PygaggleReranker", "Query", "Text"]
