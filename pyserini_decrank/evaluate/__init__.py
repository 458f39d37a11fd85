"""trec_eval measures on runs (``decrank eval``)."""

from ._measures import DEFAULT_MEASURES, KNOWN_MEASURES, Measure, parse_measure, parse_measures
from ._paired import PairedDifference, paired_bootstrap
from ._trec_eval import Evaluation, evaluate_run, format_rows, format_table, trec_order

__all__ = ["DEFAULT_MEASURES", "KNOWN_MEASURES", "Evaluation", "Measure", "PairedDifference", "paired_bootstrap", "evaluate_run", "format_rows", "format_table",
           "parse_measure", "parse_measures", "trec_order"]
