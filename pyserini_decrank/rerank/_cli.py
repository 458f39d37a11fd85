"""The run-file loop behind ``decrank rerank``: checks all input first, then writes query by query."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from tqdm.auto import tqdm

from ..errors import DecrankError
from ..io import Hit, RunWriter


def rerank_run(
    reranker,
    queries: Mapping[str, str],
    run: Mapping[str, Sequence[Hit]],
    output: str | Path,
    depth: int = 100,
    tag: str = "decrank",
    topics_name: str = "topics",
    progress: bool = True,
) -> None:
    """Everything that can be checked is checked before the output is opened, so that a bad topic or
    a missing docid fails at once; after that each query is flushed as soon as it is re-ranked."""
    for qid in run:
        if qid not in queries:
            raise DecrankError(f"query {qid} of the run is not in {topics_name}")
        if not queries[qid].strip():
            raise DecrankError(f"query {qid} is empty in {topics_name}")
    if not getattr(reranker, "skip_missing", False) and hasattr(reranker, "store"):
        wanted = [h.docid for hits in run.values() for h in hits[:depth]]
        missing = reranker.store.missing(wanted)
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise DecrankError(f"store {reranker.store.path} has no states for docid(s) {shown}; "
                               "encode them or pass --skip-missing")
    with RunWriter(output, tag) as writer:
        for qid, hits in tqdm(run.items(), desc="rerank", unit="query", disable=not progress, dynamic_ncols=True):
            writer.write(qid, reranker.rerank(queries[qid], hits, k=depth, qid=qid))
