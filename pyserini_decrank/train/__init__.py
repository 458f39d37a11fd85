"""Training ED2LM models (``decrank train``) and the packaged ``decrank-minilm``."""

from ._data import Pair, PairSet, read_pairs
from ._trainer import TrainConfig, Trainer, train

__all__ = ["Pair", "PairSet", "TrainConfig", "Trainer", "read_pairs", "train"]
