"""pyserini-decrank: ED2LM re-ranking for Pyserini.

The encoder of a document-to-query encoder-decoder sees only documents, so its states are computed once
for the corpus (``EncoderStateStore``); at query time the decoder alone scores the query against them
(``DecoderReranker``).
"""

from ._malloc import retain_freed_memory
from .errors import DecrankError
from .io import Hit, read_corpus, read_qrels, read_run, read_topics
from .model import ModelCard, QueryLikelihoodModel, ScoringConfig
from .rerank import BiEncoderReranker, CrossAttentionReranker, DecoderReranker, PygaggleReranker
from .store import EncoderStateStore, StoreWriter

__version__ = "0.1.0"

__all__ = [
    "BiEncoderReranker",
    "CrossAttentionReranker",
    "DecoderReranker",
    "DecrankError",
    "EncoderStateStore",
    "Hit",
    "ModelCard",
    "PygaggleReranker",
    "QueryLikelihoodModel",
    "ScoringConfig",
    "StoreWriter",
    "read_corpus",
    "read_qrels",
    "read_run",
    "read_topics",
    "retain_freed_memory",
]
