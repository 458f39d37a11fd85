"""Training ED2LM models (``decrank train``): pairs, negatives, objectives and the loop."""

from ._data import Pair, PairSet, read_pairs
from ._negatives import NEGATIVE_KINDS, NegativeSampler, mine_bm25_negatives
from ._objectives import MLE, Objective, RankingLogLikelihood, RelevanceLabel, StepScores, Unlikelihood, get_objective
from ._trainer import TrainConfig, Trainer, train

__all__ = ["MLE", "NEGATIVE_KINDS", "NegativeSampler", "Objective", "Pair", "PairSet", "RankingLogLikelihood",
           "RelevanceLabel", "StepScores", "TrainConfig", "Trainer", "Unlikelihood", "get_objective",
           "mine_bm25_negatives", "read_pairs", "train"]
