"""trec_eval's measure syntax (``-m name[.params]``), checked before pytrec_eval sees it.

pytrec_eval runs trec_eval's own C code, which exits the interpreter on some parameters (``P.0``) and takes
others silently (``map.5``). Each spec is parsed here the way trec_eval parses it: a comma list of cut-offs
(positive integers, no duplicates, sorted; a bare name means trec_eval's default list), a list of
fractions or one float, and expanded into one :class:`Measure` per figure. What
trec_eval would refuse, and parameters on a measure that takes none, are one error line. Summaries follow
trec_eval: counts are summed, ``gm_*`` are geometric means, the rest arithmetic means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from ..errors import DecrankError

DEFAULT_MEASURES = ("ndcg_cut.10", "recip_rank.10", "recall.100")
MIN_GEO_MEAN = 1e-5  # trec_eval's floor under a query's value in a geometric mean

_DOC_CUTOFFS = (5, 10, 15, 20, 30, 100, 200, 500, 1000)
CUTOFF_MEASURES = {  # measure -> trec_eval's default cut-offs (document ranks)
    "P": _DOC_CUTOFFS, "recall": _DOC_CUTOFFS, "ndcg_cut": _DOC_CUTOFFS, "map_cut": _DOC_CUTOFFS,
    "relative_P": _DOC_CUTOFFS, "success": (1, 5, 10),
}
FRACTION_MEASURES = {  # measure -> trec_eval's default cut-offs (fractions of recall or of R)
    "iprec_at_recall": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    "Rprec_mult": (0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0),
}
FLOAT_MEASURES = {"set_F": 1.0}  # measure -> its one parameter's default (set_F's beta)
GAIN_MEASURES = ("ndcg", "ndcg_rel", "Rndcg")
LEVEL_FREE_MEASURES = ("ndcg", "ndcg_cut", "G")  # grades as gains; trec_eval's -l does not touch them
LEVEL_ONE_UP_MEASURES = ("ndcg_rel", "Rndcg")  # gains and -l both: cannot be emulated below -l 1  # trec_eval takes `level=gain` pairs; we take none
SUMMED_MEASURES = ("num_ret", "num_rel", "num_rel_ret", "num_nonrel_judged_ret")  # summary is the sum
GEOMETRIC_MEASURES = ("gm_map", "gm_bpref")  # pytrec_eval gives log(max(value, MIN_GEO_MEAN)) per query
PLAIN_MEASURES = ("map", "gm_map", "Rprec", "bpref", "gm_bpref", "recip_rank", "infAP", "num_q", "num_ret",
                  "num_rel", "num_rel_ret", "num_nonrel_judged_ret", "set_P", "set_recall", "set_map",
                  "set_relative_P", "11pt_avg", "binG", "G", "utility")
KNOWN_MEASURES = (*PLAIN_MEASURES, *CUTOFF_MEASURES, *FRACTION_MEASURES, *FLOAT_MEASURES, *GAIN_MEASURES)


@dataclass(frozen=True)
class Measure:
    """One figure: its column name, what pytrec_eval is asked and answers, and how it is summarised."""

    name: str  # the column: ``ndcg_cut.10``, ``map``, ``set_F.0.5``, ``recip_rank.10``
    request: str  # what pytrec_eval is asked for: ``ndcg_cut.10``
    key: str  # pytrec_eval's result key: ``ndcg_cut_10``
    depth: int | None = None  # ``recip_rank.N``: the run is cut to its top N first (``trec_eval -M N``)

    @property
    def base(self) -> str:
        return self.request.split(".", 1)[0]

    @property
    def evaluator_slot(self) -> tuple[int | None, str]:
        """Measures that one pytrec_eval evaluator can answer together share a slot: the cut-offs of one
        measure merge into one request; a measure whose key carries no parameter gets a slot of its own; those
        that read grades as gains are kept apart from those that read ``-l``."""
        if self.base in CUTOFF_MEASURES or self.base in FRACTION_MEASURES:
            return self.depth, self.base
        if self.request != self.base:
            return self.depth, self.request
        return self.depth, "grades as gains" if self.base in LEVEL_FREE_MEASURES else ""

    @property
    def summary(self) -> str:
        base = self.base
        if base in SUMMED_MEASURES:
            return "sum"
        if base == "num_q":
            return "count"
        return "geometric" if base in GEOMETRIC_MEASURES else "mean"


def _numbers(spec: str, params: str, kind: type) -> list:
    items = params.split(",")
    try:
        values = [kind(item) for item in items]
    except ValueError:
        raise DecrankError(f"measure {spec!r}: cut-offs must be a comma list of "
                           f"{'positive integers' if kind is int else 'numbers'}") from None
    if any(not math.isfinite(v) or v < (1 if kind is int else 0) for v in values):
        raise DecrankError(f"measure {spec!r}: cut-offs must be {'positive' if kind is int else 'non-negative'}")
    if len(set(values)) < len(values):
        raise DecrankError(f"measure {spec!r}: duplicate cut-offs")
    return sorted(values)


def parse_measure(spec: str) -> list[Measure]:
    """The figures ``-m spec`` asks for, in trec_eval's order; see the module's docstring."""
    name, _, params = spec.strip().partition(".")
    has_params = "." in spec
    if name not in KNOWN_MEASURES:
        raise DecrankError(f"unknown trec_eval measure {spec!r}; known: {', '.join(sorted(KNOWN_MEASURES, key=str.lower))}")
    if has_params and not params:
        raise DecrankError(f"measure {spec!r}: nothing after the dot")
    if name in CUTOFF_MEASURES:
        cutoffs = _numbers(spec, params, int) if has_params else CUTOFF_MEASURES[name]
        return [Measure(f"{name}.{c}", f"{name}.{c}", f"{name}_{c}") for c in cutoffs]
    if name in FRACTION_MEASURES:
        cutoffs = _numbers(spec, params, float) if has_params else FRACTION_MEASURES[name]
        return [Measure(f"{name}.{c:.2f}", f"{name}.{c}", f"{name}_{c:.2f}") for c in cutoffs]
    if name in FLOAT_MEASURES:
        value = _numbers(spec, params, float)[0] if has_params else FLOAT_MEASURES[name]
        if has_params and "," in params:
            raise DecrankError(f"measure {spec!r}: takes one number")
        return [Measure(spec if has_params else name, f"{name}.{value}", name)]
    if name in GAIN_MEASURES and has_params:  # pytrec_eval's parser does not take trec_eval's pairs
        raise DecrankError(f"measure {spec!r}: level=gain parameters are not supported; {name} takes its gains "
                           "from the qrels' grades")
    if name == "recip_rank" and has_params:  # MRR@N: trec_eval -M N -m recip_rank
        depths = _numbers(spec, params, int)
        if len(depths) != 1:
            raise DecrankError(f"measure {spec!r}: recip_rank.N takes one cut-off (MRR@N)")
        return [Measure(f"{name}.{depths[0]}", name, name, depth=depths[0])]
    if has_params:
        raise DecrankError(f"measure {spec!r}: {name} takes no parameters")
    return [Measure(name, name, name)]


def pytrec_requests(measures: Sequence[Measure]) -> set[str]:
    """What one evaluator is asked for the measures of one slot (``Measure.evaluator_slot``)."""
    base = measures[0].base
    if base in CUTOFF_MEASURES or base in FRACTION_MEASURES:
        return {base + "." + ",".join(m.request.split(".", 1)[1] for m in measures)}
    return {m.request for m in measures}


def parse_measures(specs: Sequence[str]) -> list[Measure]:
    """Every figure ``specs`` ask for, each once, in the order first asked."""
    seen: dict[str, Measure] = {}
    for spec in specs:
        for measure in parse_measure(spec):
            seen.setdefault(measure.name, measure)
    return list(seen.values())
