"""Score arithmetic every stage shares: the bi-encoder's mean pooling and the min-max interpolation of two
scores (what ``--alpha`` does at query time and what the ``bm25+biencoder`` teacher does in training)."""

from __future__ import annotations

import numpy as np
import torch


def mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unit-length mean of each row's states over its mask (all-MiniLM-L6-v2's sentence embedding), in fp32
    whatever the states' precision."""
    states = states.float()
    weights = mask.unsqueeze(-1).to(states.dtype)
    pooled = (states * weights).sum(1) / weights.sum(1).clamp_min(1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


def minmax(values: np.ndarray) -> np.ndarray:
    """``values`` scaled to [0, 1] (all zeros when they are all equal); safe near the ends of the float range."""
    low, high = values.min(), values.max()
    with np.errstate(over="ignore"):
        overflows = not np.isfinite(high - low)
    if overflows:  # scores near the ends of the float range: halved, the span fits
        values, low, high = values / 2, low / 2, high / 2
    span = high - low
    return (values - low) / span if span > 0 else np.zeros_like(values)


def interpolate(first_stage: np.ndarray, scores: np.ndarray, alpha: float | None) -> np.ndarray:
    """``alpha * first_stage + (1 - alpha) * scores``, each min-max normalised over the query's candidates
    (the scales differ: BM25 against log-likelihoods), in float64; ``alpha=None`` keeps ``scores``."""
    if alpha is None or not len(scores):
        return scores
    first_stage, scores = np.asarray(first_stage, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    return alpha * minmax(first_stage) + (1 - alpha) * minmax(scores)
