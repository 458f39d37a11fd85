"""trec_eval measures through pytrec_eval (trec_eval's own code), runs side by side.

Measures are named as trec_eval names them (``ndcg_cut.10``, ``map``, ``recall.100``,
``recip_rank``); ``recip_rank.10`` is MRR@10, i.e. ``trec_eval -M 10 -m recip_rank``. As trec_eval
does by default, only queries that have both judgments and a ranking are averaged (``complete=True``:
every judged query, a query the run lacks counting 0, as ``trec_eval -c``), and binary measures count a
grade >= ``relevance_level`` as relevant (DL19's convention is 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import pytrec_eval

from ..errors import DecrankError
from ..io import Hit

DEFAULT_MEASURES = ("ndcg_cut.10", "recip_rank.10", "recall.100")


@dataclass
class Evaluation:
    name: str
    means: dict[str, float]
    per_query: dict[str, dict[str, float]]
    num_queries: int


def _run_dict(run: Mapping[str, Sequence[Hit]], depth: int | None = None) -> dict[str, dict[str, float]]:
    out = {}
    for qid, hits in run.items():
        ranked = sorted(hits, key=lambda h: -h.score)
        ranked = ranked[:depth] if depth else ranked
        out[qid] = {h.docid: float(h.score) for h in ranked}
    return out


def _split(measure: str) -> tuple[str, int | None, str]:
    """(pytrec_eval measure, run cut-off or None, result key)."""
    if measure.startswith("recip_rank."):
        depth = measure.split(".", 1)[1]
        if not depth.isdigit():
            raise DecrankError(f"measure {measure!r}: expected recip_rank.N")
        return "recip_rank", int(depth), "recip_rank"
    if measure not in pytrec_eval.supported_measures and measure.split(".", 1)[0] not in pytrec_eval.supported_measures:
        raise DecrankError(f"unknown trec_eval measure {measure!r}")
    return measure, None, measure.replace(".", "_")


def evaluate_run(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Sequence[Hit]],
    measures: Sequence[str] = DEFAULT_MEASURES,
    relevance_level: int = 1,
    name: str = "run",
    complete: bool = False,
) -> Evaluation:
    groups: dict[int | None, list[tuple[str, str, str]]] = {}
    for measure in measures:
        trec_name, depth, key = _split(measure)
        groups.setdefault(depth, []).append((measure, trec_name, key))
    per_query: dict[str, dict[str, float]] = {}
    for depth, items in groups.items():
        evaluator = pytrec_eval.RelevanceEvaluator(
            {q: dict(d) for q, d in qrels.items()}, {t for _, t, _ in items}, relevance_level=relevance_level
        )
        results = evaluator.evaluate(_run_dict(run, depth))
        for qid, values in results.items():
            for measure, _, key in items:
                per_query.setdefault(qid, {})[measure] = values[key]
    if complete:
        for qid in qrels:
            per_query.setdefault(qid, {m: 0.0 for m in measures})
    means = {m: (sum(v[m] for v in per_query.values()) / len(per_query) if per_query else 0.0) for m in measures}
    return Evaluation(name=name, means=means, per_query=per_query, num_queries=len(per_query))


def format_rows(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """A Markdown table; the first column left-aligned, the others right-aligned, floats to 4 places."""
    cells = [[f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda values: "| " + " | ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths))) + " |"
    rule = "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    return "\n".join([line(list(columns)), rule, *(line(row) for row in cells)])


def format_table(evaluations: Sequence[Evaluation], measures: Sequence[str]) -> str:
    """A Markdown table, one row per run, one column per measure."""
    rows = [{"run": e.name, **{m: e.means[m] for m in measures}, "queries": e.num_queries} for e in evaluations]
    return format_rows(rows, ["run", *measures, "queries"])
