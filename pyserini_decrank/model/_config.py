"""How a model turns documents and queries into token ids and how its score is read off."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

CONFIG_NAME = "decrank_config.json"
OBJECTIVES = ("mle", "unlikelihood", "rll", "label", "distil", "label-distil")
LABEL_OBJECTIVES = ("label", "label-distil")  # scored by the relevance token after the query


@dataclass
class ScoringConfig:
    """Saved beside the Hugging Face ``config.json`` so that encode/rerank pick it up by themselves.

    ``objective`` records how the model was trained; it decides the score: the query log-likelihood for
    ``mle``/``unlikelihood``/``rll``/``distil``, the relevance token's log-probability (plus, with
    ``label_adds_likelihood``, the query log-likelihood) for ``label`` and ``label-distil``. ``copy`` says how each query
    token's probability mixes in copying from the document (``_copy``).
    """

    document_prefix: str = ""
    query_prefix: str = ""
    max_length: int = 512
    max_query_length: int = 64
    objective: str = "mle"
    relevance_token: str = "true"
    irrelevance_token: str = "false"
    label_adds_likelihood: bool = False
    alpha: float | None = None  # BM25's weight chosen on the model's dev split: `decrank rerank --alpha model`
    copy: str = "none"  # copy-aware scoring (``CopySpec``): none, KIND:LAMBDA, or KIND with a learned gate
    extra: dict = field(default_factory=dict)

    @property
    def reads_label(self) -> bool:
        """Whether the score is read off the relevance token after the query rather than the query alone."""
        return self.objective in LABEL_OBJECTIVES

    def save(self, folder: str | Path) -> None:
        path = Path(folder) / CONFIG_NAME
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> "ScoringConfig | None":
        path = Path(folder) / CONFIG_NAME
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
