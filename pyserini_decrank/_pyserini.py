"""The single gateway to Pyserini: every import of it in this package goes through here."""

from __future__ import annotations

import os
import runpy
import sys
from typing import Any

from ._java import configure_java
from .errors import DecrankError


def lucene_searcher(index: str) -> Any:
    """A ``LuceneSearcher`` on a local index folder or a Pyserini prebuilt index name."""
    configure_java()
    from pyserini.search.lucene import LuceneSearcher

    if os.path.isdir(index):
        return LuceneSearcher(index)
    try:
        return LuceneSearcher.from_prebuilt_index(index)
    except Exception as exc:  # Pyserini raises bare Exceptions for unknown or unreachable names
        raise DecrankError(f"cannot open Lucene index {index!r}: not a folder, and {exc}") from None


def lucene_index_reader(index: str) -> Any:
    configure_java()
    from pyserini.index.lucene import LuceneIndexReader

    return LuceneIndexReader(index)


def get_topics(name: str) -> dict:
    configure_java()
    from pyserini.search import get_topics as pyserini_get_topics

    return pyserini_get_topics(name)


def get_qrels_file(name: str) -> str:
    configure_java()
    from pyserini.search import get_qrels_file as pyserini_get_qrels_file

    return pyserini_get_qrels_file(name)


def run_module(module: str, argv: list[str]) -> None:
    """Runs ``python -m pyserini.<module> ...`` in this process, with Java set up first."""
    configure_java()
    name = module if module.startswith("pyserini.") else f"pyserini.{module}"
    sys.argv = [name, *argv]
    runpy.run_module(name, run_name="__main__", alter_sys=True)
