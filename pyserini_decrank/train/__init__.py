"""Training ED2LM models (``decrank train``): pairs, negatives, objectives and the loop."""

from ._data import Pair, PairSet, add_unlabelled_queries, read_pairs
from ._negatives import NEGATIVE_KINDS, MinedList, NegativeSampler, bm25_search, mine_bm25, mine_bm25_negatives
from ._objectives import MLE, OBJECTIVES, Distil, LabelDistil, Objective, RankingLogLikelihood, RelevanceLabel, StepScores, Unlikelihood, get_objective
from ._teacher import TEACHERS, TeacherList, embed_stored, embed_texts, teacher_lists
from ._trainer import TRAIN_CODEC_FILE, TrainConfig, Trainer, train

__all__ = ["MLE", "NEGATIVE_KINDS", "OBJECTIVES", "TEACHERS", "Distil", "LabelDistil", "MinedList", "NegativeSampler", "Objective", "Pair", "PairSet",
           "RankingLogLikelihood", "RelevanceLabel", "StepScores", "TRAIN_CODEC_FILE", "TeacherList", "TrainConfig", "Trainer", "Unlikelihood",
           "add_unlabelled_queries", "bm25_search", "embed_stored", "embed_texts", "get_objective", "mine_bm25",
           "mine_bm25_negatives", "read_pairs", "teacher_lists", "train"]
