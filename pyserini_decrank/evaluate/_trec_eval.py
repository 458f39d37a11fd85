"""trec_eval measures through pytrec_eval (trec_eval's own code), runs side by side.

Measures are named and parameterised as trec_eval names them (``ndcg_cut.10``, ``P.5,10``, bare
``ndcg_cut`` for its default cut-offs, ``map``, ``recall.100``; see ``_measures``); ``recip_rank.10`` is
MRR@10, i.e. ``trec_eval -M 10 -m recip_rank``, the run cut after trec_eval's ordering (score descending,
then docno descending). As trec_eval does by default, only queries that have both judgments and a ranking
are evaluated; ``complete=True`` (``trec_eval -c``) evaluates every judged query, one the run lacks on an
empty ranking. Binary measures count a grade >= ``relevance_level`` as relevant (DL19's convention is 2).
Counts (``num_ret``, ``num_rel``, ...) are summed, ``num_q`` counts, ``gm_map``/``gm_bpref`` are geometric
means, the rest are means: trec_eval's summaries, tested against the Java trec_eval in Pyserini's jar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import pytrec_eval

from ..errors import DecrankError
from ..io import Hit
from ._measures import (DEFAULT_MEASURES, LEVEL_FREE_MEASURES, LEVEL_ONE_UP_MEASURES, MIN_GEO_MEAN, Measure,
                        parse_measures, pytrec_requests)


@dataclass
class Evaluation:
    name: str
    means: dict[str, float]  # each measure's summary over the queries (a sum for counts; see the docstring)
    per_query: dict[str, dict[str, float]]
    num_queries: int


def trec_order(hits: Sequence[Hit]) -> list[Hit]:
    """``hits`` as trec_eval ranks them: score descending, ties by docno descending (its ``comp_sim_docno``)."""
    return sorted(hits, key=lambda h: (float(h.score), h.docid), reverse=True)


def _run_dict(run: Mapping[str, Sequence[Hit]], depth: int | None) -> dict[str, dict[str, float]]:
    out = {}
    for qid, hits in run.items():
        ranked = trec_order(hits)
        out[qid] = {h.docid: float(h.score) for h in (ranked[:depth] if depth else ranked)}
    return out


def _level_qrels(judged: dict[str, dict[str, int]], relevance_level: int,
                 measures: Sequence[Measure]) -> dict[str, dict[str, int]]:
    """The qrels that pytrec_eval, which takes levels from 1 up, reads for trec_eval's ``-l``: as they are
    from 1 up; for ``-l 0`` every grade one up, so that a judged 0 counts as relevant and an unjudged
    document (trec_eval's -1) still does not."""
    if isinstance(relevance_level, bool) or not isinstance(relevance_level, int):
        raise DecrankError(f"relevance level must be an integer grade, not {relevance_level!r}")
    if relevance_level >= 1:
        return judged
    if relevance_level < 0:
        raise DecrankError(f"relevance level {relevance_level}: must be 0 or more (a grade below 0 would count "
                           "unjudged documents relevant)")
    refused = [m.name for m in measures if m.base in LEVEL_ONE_UP_MEASURES]
    if refused:
        raise DecrankError(f"{', '.join(refused)} with relevance level 0 is not supported; use -l 1 or more")
    if any(grade < 0 for docs in judged.values() for grade in docs.values()):
        raise DecrankError("relevance level 0 with negative grades in the qrels is not supported")
    return {q: {d: grade + 1 for d, grade in docs.items()} for q, docs in judged.items()}


def _summary(measure: Measure, values: list[float]) -> float | int:
    if measure.summary == "sum":
        return int(round(sum(values)))
    if measure.summary == "count":
        return len(values)
    if measure.summary == "geometric":
        return math.exp(sum(math.log(max(v, MIN_GEO_MEAN)) for v in values) / len(values))
    return sum(values) / len(values)


def evaluate_run(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Sequence[Hit]],
    measures: Sequence[str] = DEFAULT_MEASURES,
    relevance_level: int = 1,
    name: str = "run",
    complete: bool = False,
) -> Evaluation:
    """``run`` scored against ``qrels``; ``means`` has one entry per figure ``measures`` expand to."""
    parsed = parse_measures(measures)
    judged = {q: dict(d) for q, d in qrels.items()}
    at_level = _level_qrels(judged, relevance_level, parsed)
    common = [q for q in run if q in qrels]
    if not common:
        raise DecrankError(f"{name}: no query is both in the run and in the qrels (run: {len(run)} queries, "
                           f"qrels: {len(qrels)}); are they for the same topics?")
    evaluated = {q: run[q] for q in common}
    if complete:  # trec_eval -c: a judged query the run lacks is evaluated on an empty ranking
        evaluated.update({q: [] for q in qrels if q not in run})
    slots: dict[tuple[int | None, str], list[Measure]] = {}
    for measure in parsed:
        slots.setdefault(measure.evaluator_slot, []).append(measure)
    per_query: dict[str, dict[str, float]] = {q: {} for q in evaluated}
    for (depth, _), items in slots.items():
        level_free = items[0].base in LEVEL_FREE_MEASURES
        evaluator = pytrec_eval.RelevanceEvaluator(judged if level_free else at_level, pytrec_requests(items),
                                                   relevance_level=max(relevance_level, 1))
        results = evaluator.evaluate(_run_dict(evaluated, depth))
        for qid in evaluated:
            values = results[qid]
            for m in items:
                value = values[m.key]
                if math.isnan(value) and not evaluated[qid]:  # pytrec_eval's 0/0 on an empty ranking; trec_eval's 0
                    value = 0.0
                per_query[qid][m.name] = math.exp(value) if m.summary == "geometric" else value
    means = {m.name: _summary(m, [per_query[q][m.name] for q in evaluated]) for m in parsed}
    if complete and "num_rel" in means:  # trec_eval -c sums every judged query's grades above 0, whatever -l
        means["num_rel"] = sum(grade > 0 for docs in qrels.values() for grade in docs.values())
    return Evaluation(name=name, means=means, per_query=per_query, num_queries=len(evaluated))


def format_rows(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """A Markdown table; the first column left-aligned, the others right-aligned, floats to 4 places."""
    cells = [[f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda values: "| " + " | ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths))) + " |"
    rule = "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    return "\n".join([line(list(columns)), rule, *(line(row) for row in cells)])


def format_table(evaluations: Sequence[Evaluation], measures: Sequence[str] | None = None) -> str:
    """A Markdown table, one row per run, one column per figure (those of ``measures``, default: all)."""
    names = [m.name for m in parse_measures(measures)] if measures else list(evaluations[0].means)
    rows = [{"run": e.name, **{m: e.means[m] for m in names}, "queries": e.num_queries} for e in evaluations]
    return format_rows(rows, ["run", *names, "queries"])
