"""PyTerrier transformers: ``DecrankReRanker`` re-ranks ``qid, query, docno[, score, text]`` frames with any
``Reranker`` (the decoder by default), ``DecrankIndexer`` builds a store from ``{docno, text}`` dicts, so
that ``bm25 >> decrank`` and ``pt.Experiment`` work as with any PyTerrier re-ranker.

A frame with a text column is scored from its texts (the store serves the docnos it holds with the same
text, the model encodes the rest); one without is scored from the store by docno.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
import pyterrier as pt

from ..encode import encode_corpus
from ..errors import DecrankError
from ..io import Document
from ..model import DEFAULT_MODEL, QueryLikelihoodModel
from ..rerank import DecoderReranker, Reranker, interpolate
from ..store import EncoderStateStore

REQUIRED_COLUMNS = ("qid", "query", "docno")


def _check_frame(frame: Any) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise DecrankError(f"a PyTerrier re-ranker takes a DataFrame, not a {type(frame).__name__}")
    absent = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if absent:
        raise DecrankError(f"the frame has no {', '.join(repr(c) for c in absent)} column: a re-ranker reads "
                           f"{', '.join(REQUIRED_COLUMNS)} (and score, text where there are) "
                           f"(columns given: {', '.join(map(str, frame.columns)) or 'none'})")


class DecrankReRanker(pt.Transformer):
    """Re-scores every row of a ``qid, query, docno[, score, text]`` frame with ``reranker`` and ranks each
    query's rows by the new score (ties keep their input order; ``rank`` from 0, as PyTerrier numbers).
    With the re-ranker's ``alpha`` set, the new score interpolates the frame's ``score`` (the first stage's)
    as ``decrank rerank --alpha`` does. Cut depth with PyTerrier's ``%``: ``bm25 % 100 >> decrank``."""

    def __init__(self, reranker: Reranker, text_field: str = "text", verbose: bool = False) -> None:
        if not isinstance(reranker, Reranker):
            raise DecrankError(f"DecrankReRanker wraps a pyserini_decrank Reranker, not a {type(reranker).__name__}")
        self.reranker, self.text_field, self.verbose = reranker, text_field, verbose

    @classmethod
    def from_pretrained(cls, model: str = DEFAULT_MODEL, store: str | EncoderStateStore | None = None,
                        text_field: str = "text", **kwargs) -> "DecrankReRanker":
        """The decoder re-ranker (``DecoderReranker.from_pretrained``'s arguments); without a store the
        frames must carry their text."""
        return cls(DecoderReranker.from_pretrained(model, store=store, **kwargs), text_field=text_field)

    def __repr__(self) -> str:
        return f"DecrankReRanker({type(self.reranker).__name__})"

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        _check_frame(frame)
        alpha = self.reranker.alpha
        if alpha is not None and "score" not in frame.columns:
            raise DecrankError(f"alpha {alpha} interpolates the first stage's score, and the frame has no 'score' column")
        if frame.empty:
            return pt.model.add_ranks(frame.assign(score=pd.Series(dtype="float64")))
        texts = self.text_field in frame.columns
        queries = []
        for qid, group in frame.groupby("qid", sort=False):
            query, docnos = group["query"].iloc[0], [str(d) for d in group["docno"]]
            if not texts and self.reranker.skip_missing:
                keep = ~group["docno"].astype(str).isin(set(self.reranker.missing(docnos)))
                group, docnos = group[keep.to_numpy()], [d for d, k in zip(docnos, keep) if k]
                if group.empty:
                    continue
            queries.append((str(qid), group, query, docnos))
        groups = []
        for start in range(0, len(queries), self.reranker.query_batch):
            chunk = queries[start : start + self.reranker.query_batch]
            groups += [self._ranked(group, scores, alpha) for (_, group, _, _), scores in zip(chunk, self._scores(chunk, texts))]
        out = pd.concat(groups, ignore_index=True) if groups else frame.iloc[:0].assign(score=pd.Series(dtype="float64"))
        return pt.model.add_ranks(out)

    def _scores(self, chunk: list, texts: bool) -> list[np.ndarray]:
        """The re-ranker's scores of a few queries' rows: from their texts, or from the store by docno with the
        queries' candidates sharing batches (the re-ranker's ``query_batch``)."""
        if not texts:
            return self.reranker.score_many([(query, docnos, qid) for qid, _, query, docnos in chunk])
        out = []
        for qid, group, query, docnos in chunk:
            try:
                out.append(self.reranker.score_texts(query, group[self.text_field].tolist(), doc_ids=docnos))
            except DecrankError as exc:
                raise DecrankError(f"query {qid}: {exc}", cli=f"query {qid}: {exc.cli_message}") from None
        return out

    @staticmethod
    def _ranked(group: pd.DataFrame, scores: np.ndarray, alpha: float | None) -> pd.DataFrame:
        """``group`` sorted by its new score (ties in input order), interpolated at ``alpha`` where set."""
        if alpha is not None:
            scores = interpolate(group["score"].to_numpy(np.float64), scores, alpha)
        order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
        return group.iloc[order].assign(score=np.asarray(scores, dtype=np.float64)[order])


class DecrankIndexer(pt.Indexer):
    """Builds (or resumes) a store from an iterable of ``{"docno": ..., "text": ...}`` dicts, as
    ``decrank encode`` does from a corpus file; ``index`` returns the opened store."""

    def __init__(self, store: str | Path, model: str | QueryLikelihoodModel = DEFAULT_MODEL, text_field: str = "text",
                 codec: str = "fp16", content: str = "encoder-states", batch_size: int | None = None,
                 max_length: int | None = None, progress: bool = True, **model_kwargs) -> None:
        self.store, self.text_field = Path(store), text_field
        self.model = model if isinstance(model, QueryLikelihoodModel) else QueryLikelihoodModel.from_pretrained(model, **model_kwargs)
        self.codec, self.content, self.batch_size, self.max_length, self.progress = codec, content, batch_size, max_length, progress

    def _documents(self, docs: Iterable[Mapping[str, Any]]) -> Iterable[Document]:
        for i, doc in enumerate(docs):
            if not isinstance(doc, Mapping) or "docno" not in doc or self.text_field not in doc:
                raise DecrankError(f"document {i} of the iterable has no 'docno' and {self.text_field!r}: the indexer "
                                   f"reads dicts with both")
            if not isinstance(doc[self.text_field], str):
                raise DecrankError(f"document {doc['docno']}: its {self.text_field!r} is a "
                                   f"{type(doc[self.text_field]).__name__}, not a string")
            yield Document(str(doc["docno"]), doc[self.text_field])

    def index(self, iter: Iterable[Mapping[str, Any]], **kwargs) -> EncoderStateStore:  # noqa: A002 (PyTerrier's name)
        encode_corpus(self.model, self._documents(iter), self.store, max_length=self.max_length,
                      batch_size=self.batch_size, codec=self.codec, progress=self.progress, content=self.content)
        return EncoderStateStore(self.store)
