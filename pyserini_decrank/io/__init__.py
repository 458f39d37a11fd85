"""Readers and writers of the formats IR pipelines exchange: runs, topics, corpora, qrels."""

from ._corpus import Document, join_title, read_corpus
from ._guard import real_path, refuse_overwriting_inputs
from ._qrels import read_qrels
from ._runs import Hit, RunWriter, check_tag, format_run_lines, read_run
from ._text import head_text, iter_tab_lines, read_lines, read_text
from ._topics import read_topics

__all__ = ["Document", "Hit", "RunWriter", "check_tag", "format_run_lines", "head_text", "iter_tab_lines", "join_title", "read_corpus",
           "read_lines", "read_qrels", "read_run", "read_text", "read_topics", "real_path", "refuse_overwriting_inputs"]
