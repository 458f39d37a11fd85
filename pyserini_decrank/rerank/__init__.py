"""Query-time stage: re-rank first-stage hits (``decrank rerank``)."""

from ._decoder import DEFAULT_MODEL, DecoderReranker
from ._pygaggle import PygaggleReranker, Query, Text

__all__ = ["DecoderReranker", "DEFAULT_MODEL", "PygaggleReranker", "Query", "Text"]
