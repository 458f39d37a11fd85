"""The run-file loop behind ``decrank rerank``: checks all input first, then writes query by query."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from tqdm.auto import tqdm

from ..errors import DecrankError
from ..io import Hit, RunWriter


def build_reranker(method: str, model: str | None, store: str | None, corpus: str | None, run: Mapping[str, Sequence[Hit]],
                   depth: int, device: str, batch_size: int, skip_missing: bool, alpha: float | None,
                   precision: str = "fp32", attention: str | None = None, **model_options):
    """The re-ranker a ``--method`` names, with its inputs checked."""
    if method == "decoder":
        from ._decoder import DEFAULT_MODEL, DecoderReranker

        if not store:
            raise DecrankError("--method decoder needs --store (a folder written by `decrank encode`)")
        return DecoderReranker.from_pretrained(model or DEFAULT_MODEL, store=store, device=device, batch_size=batch_size,
                                               skip_missing=skip_missing, alpha=alpha, precision=precision, attention=attention,
                                               **model_options)
    if not corpus:
        raise DecrankError(f"--method {method} reads the candidates' text: give --corpus")
    from ..io import read_corpus
    from ._biencoder import BiEncoderReranker
    from ._cross import DEFAULT_CROSS_MODEL, CrossAttentionReranker

    wanted = {h.docid for hits in run.values() for h in hits[:depth]}
    texts = {d.docid: d.text for d in read_corpus(corpus) if d.docid in wanted}
    common = dict(texts=texts, batch_size=batch_size, alpha=alpha, skip_missing=skip_missing)
    if method == "cross":
        return CrossAttentionReranker.from_pretrained(model or DEFAULT_CROSS_MODEL, device=device, precision=precision,
                                                      attention=attention, **common)
    return BiEncoderReranker.from_pretrained(model, **common)


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
    if not getattr(reranker, "skip_missing", False):
        missing = reranker.missing([h.docid for hits in run.values() for h in hits[:depth]])
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            where = f"store {reranker.store.path}" if hasattr(reranker, "store") else "the corpus"
            raise DecrankError(f"{where} has no entry for docid(s) {shown}; add them or pass --skip-missing")
    with RunWriter(output, tag) as writer:
        for qid, hits in tqdm(run.items(), desc="rerank", unit="query", disable=not progress, dynamic_ncols=True):
            writer.write(qid, reranker.rerank(queries[qid], hits, k=depth, qid=qid))
