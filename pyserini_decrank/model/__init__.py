"""The encoder-decoder wrapper: encoder and decoder used separately (ED2LM)."""

from ._config import OBJECTIVES, ScoringConfig
from ._seq2seq import QueryLikelihoodModel, resolve_model

__all__ = ["QueryLikelihoodModel", "ScoringConfig", "OBJECTIVES", "resolve_model"]
