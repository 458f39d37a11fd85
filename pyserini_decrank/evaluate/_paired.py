"""How sure a difference between two runs is: a paired bootstrap over queries (Efron and Tibshirani; as IR
papers report it, e.g. Sakai 2014), so that "B is 0.005 below A" comes with the interval that says whether
that is noise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..errors import DecrankError


@dataclass
class PairedDifference:
    """Mean per-query difference ``b - a`` over the queries both runs were measured on, its 95% (or
    ``level``) bootstrap interval, and how many queries it rests on."""

    mean: float
    low: float
    high: float
    queries: int
    level: float = 0.95

    def contains_zero(self) -> bool:
        return self.low <= 0.0 <= self.high


def paired_bootstrap(a: Mapping[str, float], b: Mapping[str, float], samples: int = 10_000, level: float = 0.95,
                     seed: int = 0) -> PairedDifference:
    """Per-query values of one measure for two runs (``Evaluation.per_query`` picked to one measure): the
    difference of their means, ``b - a``, with a percentile interval from ``samples`` resamplings of the common
    queries (fixed ``seed``: the same interval every time)."""
    common = sorted(set(a) & set(b))
    if not common:
        raise DecrankError("the two runs share no measured query: nothing to compare")
    diff = np.array([b[q] - a[q] for q in common], dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(samples, len(diff)))].mean(axis=1)
    tail = (1 - level) / 2
    return PairedDifference(float(diff.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail)),
                            len(common), level)
