"""trec_eval measures on runs (``decrank eval``)."""

from ._trec_eval import DEFAULT_MEASURES, Evaluation, evaluate_run, format_rows, format_table

__all__ = ["DEFAULT_MEASURES", "Evaluation", "evaluate_run", "format_rows", "format_table"]
