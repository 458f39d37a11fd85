"""How a model turns documents and queries into token ids and how its score is read off."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import DecrankError

CONFIG_NAME = "decrank_config.json"
# how a model's score is read: the query's log-likelihood, or the relevance token's log-probability after the
# query (against its opposite); each training objective declares which one it trains (``train.Objective.score``)
SCORES = ("likelihood", "label")
# configs written before ``score`` was recorded: the objectives whose models read the label
LEGACY_LABEL_OBJECTIVES = ("label", "label-distil")


@dataclass
class ScoringConfig:
    """Saved beside the Hugging Face ``config.json`` so that encode/rerank pick it up by themselves.

    ``score`` (one of ``SCORES``) says how the score is read: the query log-likelihood, or the relevance token's
    log-probability (plus, with ``label_adds_likelihood``, the query log-likelihood); the training objective
    chose it, and ``objective`` records which one that was. ``copy`` says how each query token's probability
    mixes in copying from the document (``_copy``). ``codec`` names the store codec the decoder was trained to
    read (states encoded and decoded by it, `decrank train --codec`); None: exact states.
    """

    document_prefix: str = ""
    query_prefix: str = ""
    max_length: int = 512
    max_query_length: int = 64
    objective: str = "mle"
    score: str | None = None  # None: read off ``objective`` (configs written before ``score`` was recorded)
    relevance_token: str = "true"
    irrelevance_token: str = "false"
    label_adds_likelihood: bool = False
    alpha: float | None = None  # BM25's weight chosen on the model's dev split: `decrank rerank --alpha model`
    copy: str = "none"  # copy-aware scoring (``CopySpec``): none, KIND:LAMBDA, or KIND with a learned gate
    codec: str | None = None  # the store codec the decoder was trained on (``store.get_codec``'s names)
    extra: dict = field(default_factory=dict)

    @property
    def score_kind(self) -> str:
        """How the score is read (one of ``SCORES``)."""
        if self.score is not None:
            return self.score
        return "label" if self.objective in LEGACY_LABEL_OBJECTIVES else "likelihood"

    @property
    def reads_label(self) -> bool:
        """Whether the score is read off the relevance token after the query rather than the query alone."""
        return self.score_kind == "label"

    def save(self, folder: str | Path) -> None:
        path = Path(folder) / CONFIG_NAME
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> "ScoringConfig | None":
        path = Path(folder) / CONFIG_NAME
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        if data.get("score") not in (None, *SCORES):
            raise DecrankError(f"{path}: unknown score {data['score']!r}; known: {', '.join(SCORES)}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
