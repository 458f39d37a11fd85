"""``ModelCard``: the ``README.md`` a saved model carries, YAML front matter in the hub's conventions
(``library_name``, ``tags``, ``base_model``, ``datasets``, ``metrics``, ``license``, ``pipeline_tag``), so a
folder from ``save_pretrained`` or ``decrank train`` is ready for ``huggingface-cli upload``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ._config import ScoringConfig

CARD_FILE = "README.md"
LIBRARY_NAME = "pyserini-decrank"
TAGS = ("pyserini-decrank", "ed2lm", "query-likelihood", "reranking", "information-retrieval")


def _yaml_scalar(value: str) -> str:
    """A YAML scalar for any string: JSON's double-quoted strings are valid YAML."""
    return json.dumps(value, ensure_ascii=False)


@dataclass
class ModelCard:
    """What a card says beyond the model's own config: where it came from and how it measured.

    ``base_model`` and ``datasets`` are hub ids (they link on the hub; leave them out for local folders);
    ``training`` is shown as it is (objective, steps, data files...); ``results`` maps a collection to its
    measures (trec_eval names) and values, measured by whoever fills it in."""

    name: str = "decrank model"
    base_model: str | None = None
    datasets: list[str] = field(default_factory=list)
    training: dict = field(default_factory=dict)
    results: dict[str, dict[str, float]] = field(default_factory=dict)
    license: str = "apache-2.0"
    language: list[str] = field(default_factory=lambda: ["en"])

    def front_matter(self) -> str:
        lines = ["---", f"library_name: {LIBRARY_NAME}", f"license: {self.license}", "pipeline_tag: text-ranking"]
        lines += ["language:"] + [f"- {_yaml_scalar(x)}" for x in self.language]
        lines += ["tags:"] + [f"- {t}" for t in TAGS]
        if self.base_model:
            lines.append(f"base_model: {_yaml_scalar(self.base_model)}")
        if self.datasets:
            lines += ["datasets:"] + [f"- {_yaml_scalar(d)}" for d in self.datasets]
        measures = sorted({m for values in self.results.values() for m in values})
        if measures:
            lines += ["metrics:"] + [f"- {_yaml_scalar(m)}" for m in measures]
        return "\n".join(lines + ["---", ""])

    def render(self, config: ScoringConfig) -> str:
        """The whole ``README.md``: front matter, then how to use the model and what it is."""
        body = [f"# {self.name}", "",
                "An ED2LM document-to-query model for [pyserini-decrank](https://pypi.org/project/pyserini-decrank/): "
                "documents are encoded once into a store, and at query time only the decoder runs, scoring "
                "each candidate by the likelihood of the query given it.", "",
                "## Use", "", "```bash",
                "decrank encode --model MODEL_ID --corpus corpus.jsonl --store store/",
                "decrank rerank --model MODEL_ID --store store/ --topics topics.tsv --run run.bm25.txt --output run.decrank.txt",
                "```", "", "```python", "from pyserini_decrank import DecoderReranker", "",
                'reranker = DecoderReranker.from_pretrained("MODEL_ID")',
                'reranker.rank("what is ed2lm", ["a document", "another document"])', "```", "",
                "The weights are a plain `transformers` encoder-decoder (`AutoModelForSeq2SeqLM.from_pretrained` "
                "loads them); `decrank_config.json` says how pyserini-decrank scores with them.", "",
                "## Scoring", "", "```json", json.dumps(_scoring(config), indent=2, sort_keys=True), "```", ""]
        if self.base_model:
            body += [f"Base model: `{self.base_model}`.", ""]
        if self.training:
            body += ["## Training", "", "```json", json.dumps(self.training, indent=2, sort_keys=True, default=str),
                     "```", ""]
        if self.results:
            measures = sorted({m for values in self.results.values() for m in values})
            body += ["## Results", "", "| collection | " + " | ".join(measures) + " |",
                     "|---|" + "---:|" * len(measures)]
            for collection, values in self.results.items():
                body.append(f"| {collection} | " + " | ".join(f"{values[m]:.4f}" if m in values else "" for m in measures) + " |")
            body.append("")
        return self.front_matter() + "\n" + "\n".join(body)


def _scoring(config: ScoringConfig) -> dict:
    from dataclasses import asdict

    return {k: v for k, v in asdict(config).items() if k != "extra"}
