"""Training objectives, one class each behind one interface, so that the trainer never asks which it runs.

Each step the trainer scores a group of rows per training query: its positive passage first, then
``negatives`` negatives when the objective asks for them. An objective says what the decoder's targets
are for a row (``targets``), which extra tokens' log-probabilities it reads (``extra_token_ids``), and
turns the per-token log-probabilities into a loss (``loss``). Every objective keeps MLE on the
positives, so the model stays a query generator whose score is the query's log-likelihood.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..errors import DecrankError
from ..model import QueryLikelihoodModel


@dataclass
class StepScores:
    """What the decoder gave for one step's rows (``rows = queries x group``)."""

    token_log_probs: torch.Tensor  # rows x T: log p of each target token, 0 at padding
    extra_log_probs: torch.Tensor  # rows x T x k: log p of each of ``extra_token_ids`` at every position
    labels: torch.Tensor  # rows x T target ids, -100 at padding
    is_positive: torch.Tensor  # rows, bool
    group: int  # rows per query: the positive, then its negatives
    teacher: torch.Tensor | None = None  # rows: the teacher's score of each row (objectives that distil)

    @property
    def valid(self) -> torch.Tensor:
        return self.labels.ne(-100)

    @property
    def last(self) -> torch.Tensor:
        """Position of each row's last target."""
        return self.valid.sum(-1) - 1


class Objective(ABC):
    """A training objective; see the module's docstring."""

    name: str = ""
    score: str = "likelihood"  # how the trained model is scored (``model.SCORES``): it goes into decrank_config.json
    needs_negatives: bool = False
    needs_teacher: bool = False

    def extra_token_ids(self, model: QueryLikelihoodModel) -> tuple[int, ...]:
        return ()

    def targets(self, model: QueryLikelihoodModel, query_ids: list[int], positive: bool) -> list[int]:
        return query_ids

    def query_tokens(self, step: StepScores) -> torch.Tensor:
        """Which targets are query tokens (all of them, unless the objective appends its own)."""
        return step.valid

    def mle(self, step: StepScores) -> torch.Tensor:
        """Mean negative log-likelihood of the positives' query tokens."""
        positive = self.query_tokens(step) & step.is_positive.unsqueeze(-1)
        return -(step.token_log_probs * positive).sum() / positive.sum().clamp_min(1)

    @abstractmethod
    def loss(self, step: StepScores) -> torch.Tensor: ...


class MLE(Objective):
    """The query's likelihood given its passage: ED2LM's own objective."""

    name = "mle"

    def loss(self, step: StepScores) -> torch.Tensor:
        return self.mle(step)


class Unlikelihood(Objective):
    """MLE on positives, plus pushing down each query token's probability given a negative."""

    name = "unlikelihood"
    needs_negatives = True

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def loss(self, step: StepScores) -> torch.Tensor:
        negative = self.query_tokens(step) & ~step.is_positive.unsqueeze(-1)
        p = step.token_log_probs.exp().clamp(max=1 - 1e-6)
        unlikely = -(torch.log1p(-p) * negative).sum() / negative.sum().clamp_min(1)
        return self.mle(step) + self.weight * unlikely


class RankingLogLikelihood(Objective):
    """MLE, plus a listwise softmax over each query's group of summed log-likelihoods (positive first)."""

    name = "rll"
    needs_negatives = True

    def loss(self, step: StepScores) -> torch.Tensor:
        scores = self.list_scores(step)
        return self.mle(step) + F.cross_entropy(scores, torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device))

    def list_scores(self, step: StepScores) -> torch.Tensor:
        """queries x group: each row's query log-likelihood, the score the re-ranker reads."""
        return (step.token_log_probs.float() * self.query_tokens(step)).sum(-1).view(-1, step.group)


class Distil(RankingLogLikelihood):
    """A teacher's ranking of each query's list, taught to the query log-likelihood: KL divergence from the
    teacher's softmax (scores / ``temperature``) to the student's (log-likelihoods in nats), plus MLE on the
    positive weighted by ``mle_weight``. The score stays the query's log-likelihood."""

    name = "distil"
    needs_teacher = True

    def __init__(self, temperature: float = 0.05, mle_weight: float = 0.1) -> None:
        if temperature <= 0:
            raise DecrankError(f"distil temperature must be positive, not {temperature}")
        self.temperature, self.mle_weight = temperature, mle_weight

    def loss(self, step: StepScores) -> torch.Tensor:
        if step.teacher is None:
            raise DecrankError("the distil objective needs the teacher's scores of every row")
        student = F.log_softmax(self.list_scores(step), dim=-1)
        teacher = F.log_softmax(step.teacher.float().view(-1, step.group) / self.temperature, dim=-1)
        kl = F.kl_div(student, teacher, log_target=True, reduction="batchmean")
        return self.mle_weight * self.mle(step) + kl


class _ReadsLabel(Objective):
    """Appends a label token after the query and reads the relevance token's log-probability against its
    opposite at that last position: the ``label`` score."""

    score = "label"

    def extra_token_ids(self, model: QueryLikelihoodModel) -> tuple[int, ...]:
        return model.label_token_ids()

    def query_tokens(self, step: StepScores) -> torch.Tensor:
        tokens = step.valid.clone()
        tokens[torch.arange(tokens.shape[0], device=tokens.device), step.last] = False
        return tokens

    def label_pair(self, step: StepScores) -> torch.Tensor:
        """rows x 2: (relevance token, its opposite) log-probabilities at each row's last position, in fp32."""
        rows = torch.arange(step.labels.shape[0], device=step.labels.device)
        return step.extra_log_probs[rows, step.last].float()


class RelevanceLabel(_ReadsLabel):
    """MLE, plus after the query a relevance token (positives) or its opposite (negatives)."""

    name = "label"
    needs_negatives = True

    def targets(self, model: QueryLikelihoodModel, query_ids: list[int], positive: bool) -> list[int]:
        yes, no = model.label_token_ids()
        return query_ids + [yes if positive else no]

    def loss(self, step: StepScores) -> torch.Tensor:
        target = (~step.is_positive).long()  # 0 = relevance token, 1 = its opposite
        return self.mle(step) + F.cross_entropy(self.label_pair(step), target)


class LabelDistil(_ReadsLabel, Distil):
    """``distil`` taught to the label score instead of the query log-likelihood: each row's score is the
    relevance token's log-probability against its opposite after the query (plus the query's log-likelihood
    when ``adds_likelihood``, as the model is then scored), a discriminative score that reads the last position."""

    name = "label-distil"

    def __init__(self, temperature: float = 0.05, mle_weight: float = 0.1, adds_likelihood: bool = False) -> None:
        super().__init__(temperature, mle_weight)
        self.adds_likelihood = adds_likelihood

    def targets(self, model: QueryLikelihoodModel, query_ids: list[int], positive: bool) -> list[int]:
        return query_ids + [model.label_token_ids()[0]]  # the label's position; its loss is the teacher's

    def list_scores(self, step: StepScores) -> torch.Tensor:
        scores = self.label_pair(step).log_softmax(-1)[:, 0]
        if self.adds_likelihood:
            scores = scores + (step.token_log_probs.float() * self.query_tokens(step)).sum(-1)
        return scores.view(-1, step.group)


_CLASSES = {cls.name: cls for cls in (MLE, Unlikelihood, RankingLogLikelihood, RelevanceLabel, Distil, LabelDistil)}
OBJECTIVES = tuple(_CLASSES)  # what `decrank train --objective` takes


def get_objective(name: str, unlikelihood_weight: float = 1.0, temperature: float = 0.05, mle_weight: float = 0.1,
                  label_adds_likelihood: bool = False) -> Objective:
    if name not in _CLASSES:
        raise DecrankError(f"unknown objective {name!r}; known: {', '.join(_CLASSES)}")
    if name == "unlikelihood":
        return Unlikelihood(unlikelihood_weight)
    if name == "distil":
        return Distil(temperature, mle_weight)
    if name == "label-distil":
        return LabelDistil(temperature, mle_weight, label_adds_likelihood)
    return _CLASSES[name]()
