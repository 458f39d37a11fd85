"""Query-time stage: re-rank first-stage hits (``decrank rerank``).

Every method is a ``Reranker``: it implements scoring, and the base class owns the rest (checks,
depth, ``alpha``, missing candidates, ``rerank``/``batch_rerank``, run files).
"""

from ._base import MODEL_ALPHA, MissingCandidatesError, Reranker, TextReranker, check_query, interpolate, order_hits
from ._biencoder import BiEncoderReranker
from ._cross import DEFAULT_CROSS_MODEL, TEMPLATE, CrossAttentionReranker
from ._decoder import CodecMismatchWarning, DecoderReranker
from ._factory import METHODS, load_reranker
from ._pygaggle import PygaggleReranker, Query, Text

__all__ = ["BiEncoderReranker", "CodecMismatchWarning", "CrossAttentionReranker", "DEFAULT_CROSS_MODEL", "DecoderReranker", "METHODS", "MODEL_ALPHA",
           "MissingCandidatesError", "PygaggleReranker", "Query", "Reranker", "TEMPLATE", "Text", "TextReranker",
           "check_query", "interpolate", "load_reranker", "order_hits"]
