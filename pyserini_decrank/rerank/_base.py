"""``Reranker``: what every re-ranking method shares, so that a method implements its scoring alone.

Shared here: the query and candidate checks, the depth (only the first ``k`` hits are scored; the rest
keep their first-stage order after them), interpolation with the first-stage score (``alpha``),
missing candidates (an error, or dropped with ``skip_missing``), the deterministic sort (ties keep
first-stage order), non-finite scores (an error naming the query and docid), ``rerank`` /
``batch_rerank`` (the candidates of up to ``query_batch`` queries scored together, in one decoder batch
where the method pools them), writing run files, and raw texts in sentence-transformers' shape (``rank``,
``predict``).
"""

from __future__ import annotations

import dataclasses
import unicodedata
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from ..errors import DecrankError, MissingDocidsError
from ..io import Hit, RunWriter, check_tag, refuse_overwriting_inputs
from ..model import interpolate


class MissingCandidatesError(MissingDocidsError):
    """Candidates the re-ranker cannot score (not in its store, or no text for them): the missing-docid
    error with how to drop such candidates instead."""

    def __init__(self, where: str, missing: Sequence[str], qid: str | None = None) -> None:
        super().__init__(where, missing, qid, hint=True)


def check_query(query: str, qid: str | None = None, source: str | None = None) -> None:
    """A query must be a string with something to read: a letter, digit, punctuation or symbol (zero-width
    and combining characters alone tokenise to nothing)."""
    if not isinstance(query, str):
        raise DecrankError(f"query {qid} must be a string, not {type(query).__name__}" if qid is not None
                           else f"the query must be a string, not {type(query).__name__}")
    if not any(unicodedata.category(c)[0] in "LNPS" for c in query):
        where = f" in {source}" if source else ""
        raise DecrankError(f"query {qid} is empty{where}" if qid is not None else "the query is empty")


def check_documents(documents: Any, doc_ids: Any = None) -> tuple[list[str], list[str] | None]:
    """Raw texts to score: a non-empty sequence of strings, and optionally as many distinct string ids."""
    if isinstance(documents, (str, bytes, Mapping)) or not hasattr(documents, "__iter__"):
        raise DecrankError(f"documents must be a list of strings, not a {type(documents).__name__}")
    documents = list(documents)
    if not documents:
        raise DecrankError("there are no documents to rank: give at least one")
    for i, text in enumerate(documents):
        if not isinstance(text, str):
            raise DecrankError(f"document {i} is a {type(text).__name__}, not a string")
    if doc_ids is None:
        return documents, None
    if isinstance(doc_ids, (str, bytes, Mapping)) or not hasattr(doc_ids, "__iter__"):
        raise DecrankError(f"doc_ids must be a list of strings, not a {type(doc_ids).__name__}")
    doc_ids = list(doc_ids)
    if len(doc_ids) != len(documents):
        raise DecrankError(f"{len(doc_ids)} doc_ids for {len(documents)} documents: give one id per document")
    seen: set[str] = set()
    for i, docid in enumerate(doc_ids):
        if not isinstance(docid, str):
            raise DecrankError(f"doc_ids[{i}] is a {type(docid).__name__}, not a string")
        if docid in seen:
            raise DecrankError(f"docid {docid} appears twice in doc_ids")
        seen.add(docid)
    return documents, doc_ids


def _with_score(hit: Any, score: float) -> Any:
    """A copy of ``hit`` with a new score: a dataclass stays its type, anything else becomes a ``Hit``."""
    if dataclasses.is_dataclass(hit):
        return dataclasses.replace(hit, score=score)
    return Hit(docid=str(hit.docid), score=score, rank=getattr(hit, "rank", 0), contents=getattr(hit, "contents", None))


def split_by_query(scores: np.ndarray, docids: Sequence[Sequence[str]]) -> list[np.ndarray]:
    """Scores of several queries' candidates, scored back to back, cut into one array per query."""
    return np.split(np.asarray(scores), np.cumsum([len(ids) for ids in docids])[:-1])


def order_hits(head: Sequence[Any], scores: np.ndarray, tail: Sequence[Any] = ()) -> list:
    """``head`` sorted by ``scores`` (ties keep their order), then ``tail`` in its order, scored below."""
    order = sorted(range(len(head)), key=lambda i: (-scores[i], i))
    reranked = [_with_score(head[i], float(scores[i])) for i in order]
    floor = min((float(s) for s in scores), default=0.0)
    return reranked + [_with_score(h, floor - 1.0 - i) for i, h in enumerate(tail)]


def _finite(scores: np.ndarray, query: str, qid: str | None, docids: Sequence[str]) -> np.ndarray:
    """``scores`` when all are finite; else an error naming the query and the first docid affected."""
    bad = np.flatnonzero(~np.isfinite(scores))
    if len(bad):
        query_name = f"query {qid}" if qid is not None else f"query {query[:60]!r}"
        raise DecrankError(f"non-finite score ({scores[bad[0]]}) for {query_name}, docid {docids[bad[0]]}: "
                           "the model overflowed at this precision; use a wider one")
    return scores


MODEL_ALPHA = "model"  # in place of a number: the alpha the model carries (its decrank_config.json)


def _check_alpha(alpha: float | None) -> None:
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0):
        raise DecrankError(f"alpha must be a number in [0, 1], not {alpha!r}")


def check_depth(k: int | None, name: str = "k (the depth)") -> None:
    """None (every hit) or a whole number of at least 1; ``True`` and ``2.5`` are refused, not rounded."""
    if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1):
        raise DecrankError(f"{name} must be a whole number of at least 1, not {k!r}")


def check_hits(hits: Any, qid: str | None = None) -> list:
    """First-stage hits as a list: each with a string ``docid`` and a finite numeric ``score`` (Pyserini's
    hits, ``pyserini_decrank.io.Hit``, any such object), each docid once."""
    query = f" of query {qid}" if qid is not None else ""
    if isinstance(hits, (str, bytes, Mapping)) or not isinstance(hits, Sequence) and not hasattr(hits, "__iter__"):
        raise DecrankError(f"hits{query} must be a sequence of hits (objects with docid and score), not {type(hits).__name__}")
    hits = list(hits)
    seen: set[str] = set()
    for i, hit in enumerate(hits):
        docid, score = getattr(hit, "docid", None), getattr(hit, "score", None)
        if not isinstance(docid, str) or isinstance(score, bool) or not isinstance(score, (int, float, np.number)):
            raise DecrankError(f"hit {i}{query} is a {type(hit).__name__}: hits are objects with a string docid and a "
                               "numeric score (Pyserini's hits, or pyserini_decrank.io.Hit)")
        if not np.isfinite(float(score)):
            raise DecrankError(f"hit {i}{query} (docid {docid}) has a non-finite score {score}")
        if docid in seen:
            raise DecrankError(f"docid {docid} appears twice in the hits{query}")
        seen.add(docid)
    return hits


class Reranker(ABC):
    """Re-ranks first-stage hits (anything with ``docid`` and ``score``, Pyserini's hits included).

    A subclass implements ``_score`` (the method's score of each candidate for a query, higher is
    better), ``missing`` (the candidates it cannot score) and ``where`` (what it looks them up in).
    """

    method = ""  # the name `decrank rerank --method` knows it by

    def __init__(self, batch_size: int = 32, alpha: float | str | None = None, skip_missing: bool = False,
                 query_batch: int = 1) -> None:
        """``batch_size``: candidates per forward pass; ``query_batch``: queries whose candidates are pooled
        before they are cut into such batches (``batch_rerank``, run files), so that a batch can hold the
        candidates of several queries; ``alpha``: None (the method's own score), a number in [0, 1], or
        ``"model"`` (``resolve_alpha``)."""
        check_depth(batch_size, "batch_size")
        check_depth(query_batch, "query_batch")
        self.batch_size, self.skip_missing, self.query_batch = batch_size, skip_missing, query_batch
        self.alpha = self.resolve_alpha(alpha)

    # ------------------------------------------------------------------ the first stage's weight
    def model_alpha(self, option: str = "alpha") -> float:
        """The alpha the method's model carries; only a decoder model carries one."""
        raise DecrankError(f"{option} 'model' is the decoder model's own alpha; {type(self).__name__} has none",
                           cli=f"--{option} model is the decoder model's own alpha; --method {self.method} has none: "
                               "give a number")

    def resolve_alpha(self, alpha: float | str | None, option: str = "alpha") -> float | None:
        """The one place an alpha is read: None, a number in [0, 1], or ``"model"`` for ``model_alpha()``."""
        value = self.model_alpha(option) if alpha == MODEL_ALPHA else alpha
        _check_alpha(value)
        return value

    # ------------------------------------------------------------------ what a method implements
    @abstractmethod
    def _score(self, query: str, docids: Sequence[str]) -> np.ndarray:
        """Scores of ``docids`` (all known, at least one) for a non-empty ``query``."""

    def _score_many(self, queries: Sequence[str], docids: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """``_score`` of each query and its candidates; a method that can put the candidates of several
        queries in one batch overrides this."""
        return [self._score(query, ids) for query, ids in zip(queries, docids)]

    @abstractmethod
    def missing(self, docids: Sequence[str]) -> list[str]:
        """The docids this re-ranker cannot score."""

    @property
    @abstractmethod
    def where(self) -> str:
        """What candidates are looked up in, for error messages (``store PATH``, ``the corpus``)."""

    @abstractmethod
    def _score_texts(self, query: str, texts: Sequence[str], docids: Sequence[str] | None) -> np.ndarray:
        """Scores of raw ``texts`` (at least one) for a non-empty ``query``; ``docids`` (or None) name them,
        so that a method with stored states can use those where they were made from the same text."""

    # ------------------------------------------------------------------ scoring
    def score(self, query: str, docids: Sequence[str], qid: str | None = None) -> np.ndarray:
        """The method's score of each candidate for ``query``; an unknown candidate or a non-finite score
        is an error naming it."""
        return self.score_many([(query, docids, qid)])[0]

    def score_many(self, requests: Sequence[tuple[str, Sequence[str], str | None]]) -> list[np.ndarray]:
        """``score`` of each ``(query, docids, qid)``, the candidates of up to ``query_batch`` queries scored
        together; equal to scoring them one query at a time within the method's batching tolerance."""
        checked = []
        for query, docids, qid in requests:
            check_query(query, qid)
            if isinstance(docids, (str, bytes)):
                raise DecrankError(f"docids must be a sequence of strings, not {type(docids).__name__}")
            docids = list(docids)
            if not all(isinstance(d, str) for d in docids):
                raise DecrankError("docids must be a sequence of strings, not one holding other types")
            missing = self.missing(docids) if docids else []
            if missing:
                raise MissingCandidatesError(self.where, missing, qid)
            checked.append((query, docids, qid))
        out: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * len(checked)
        scored = [i for i, (_, docids, _) in enumerate(checked) if docids]
        for start in range(0, len(scored), self.query_batch):
            chunk = scored[start : start + self.query_batch]
            results = self._score_many([checked[i][0] for i in chunk], [checked[i][1] for i in chunk])
            for i, scores in zip(chunk, results):
                query, docids, qid = checked[i]
                out[i] = _finite(np.asarray(scores), query, qid, docids)
        return out

    def score_texts(self, query: str, documents: Sequence[str], doc_ids: Sequence[str] | None = None) -> np.ndarray:
        """The method's score of each raw text for ``query``, in their order (no first-stage scores, so no
        ``alpha``). ``doc_ids`` name the texts: the decoder reads stored states for ids its store holds with
        the same text, and encodes the rest."""
        check_query(query)
        documents, doc_ids = check_documents(documents, doc_ids)
        names = doc_ids or [f"#{i}" for i in range(len(documents))]
        return _finite(np.asarray(self._score_texts(query, documents, doc_ids)), query, None, names)

    def rank(self, query: str, documents: Sequence[str], doc_ids: Sequence[str] | None = None, top_k: int | None = None,
             return_documents: bool = False) -> list[dict]:
        """``documents`` sorted by the method's score, in sentence-transformers' ``CrossEncoder.rank`` shape:
        ``[{"corpus_id": ..., "score": ...[, "text": ...]}, ...]``, best first, ties in the given order.
        ``corpus_id`` is the document's index in ``documents``, or its id where ``doc_ids`` are given;
        ``top_k`` keeps the first ``top_k``."""
        check_depth(top_k, "top_k")
        scores = self.score_texts(query, documents, doc_ids)
        documents = list(documents)
        ids = list(doc_ids) if doc_ids is not None else None
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:top_k]
        return [{"corpus_id": i if ids is None else ids[i], "score": float(scores[i]),
                 **({"text": documents[i]} if return_documents else {})} for i in order]

    def predict(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Scores of ``(query, document)`` pairs in their order, as ``CrossEncoder.predict`` gives them;
        the documents of one query are scored together."""
        if isinstance(pairs, (str, bytes, Mapping)) or not hasattr(pairs, "__iter__"):
            raise DecrankError(f"pairs must be a list of (query, document) pairs, not a {type(pairs).__name__}")
        pairs = list(pairs)
        by_query: dict[str, list[int]] = {}
        for i, pair in enumerate(pairs):
            if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise DecrankError(f"pair {i} is not a (query, document) pair")
            if not isinstance(pair[0], str):
                raise DecrankError(f"the query of pair {i} is a {type(pair[0]).__name__}, not a string")
            by_query.setdefault(pair[0], []).append(i)
        scores = np.zeros(len(pairs), dtype=np.float32)
        for query, rows in by_query.items():
            scores[rows] = self.score_texts(query, [pairs[i][1] for i in rows])
        return scores

    def _split(self, hits: Sequence[Any], k: int | None) -> tuple[list, list]:
        """The hits to score and the tail, candidates that cannot be scored dropped with ``skip_missing``."""
        check_depth(k)
        k = len(hits) if k is None else min(k, len(hits))
        if self.skip_missing:
            missing = set(self.missing([str(h.docid) for h in hits[:k]]))
            k -= sum(1 for h in hits[:k] if str(h.docid) in missing)
            hits = [h for h in hits if str(h.docid) not in missing]
        return hits[:k], hits[k:]

    def rerank_alphas(self, query: str, hits: Sequence[Any], alphas: Sequence[float | None], k: int | None = None,
                      qid: str | None = None) -> list[list]:
        """``rerank`` at each of ``alphas``, the candidates scored once for all of them."""
        return self.rerank_many([(qid, query, hits)], alphas, k=k)[0]

    def rerank_many(self, items: Sequence[tuple[str | None, str, Sequence[Any]]], alphas: Sequence[float | None],
                    k: int | None = None) -> list[list[list]]:
        """``rerank_alphas`` of each ``(qid, query, hits)``, in their order; the candidates of up to
        ``query_batch`` queries are scored together."""
        for alpha in alphas:
            _check_alpha(alpha)
        splits = []
        for qid, query, hits in items:
            check_query(query, qid)
            splits.append(self._split(check_hits(hits, qid), k))
        scores = self.score_many([(query, [str(h.docid) for h in head], qid)
                                  for (qid, query, _), (head, _) in zip(items, splits)])
        out = []
        for (head, tail), method_scores in zip(splits, scores):
            first = np.array([float(h.score) for h in head], dtype=np.float64)
            out.append([order_hits(head, interpolate(first, method_scores, alpha), tail) for alpha in alphas])
        return out

    def rerank(self, query: str, hits: Sequence[Any], k: int | None = None, qid: str | None = None) -> list:
        """Hits sorted by the new score. Only the first ``k`` (all by default) are scored; the rest keep
        their first-stage order after them. Ties keep first-stage order. Dataclass hits come back as
        copies of their own type, other objects as ``Hit``."""
        return self.rerank_alphas(query, hits, [self.alpha], k=k, qid=qid)[0]

    def batch_rerank(self, queries: Mapping[str, str], hits_by_qid: Mapping[str, Sequence[Any]],
                     k: int | None = None) -> dict[str, list]:
        """``rerank`` for every qid of ``hits_by_qid``, the candidates of up to ``query_batch`` queries
        scored together; a qid without a query is an error."""
        for name, value in (("queries", queries), ("hits_by_qid", hits_by_qid)):
            if not isinstance(value, Mapping):
                raise DecrankError(f"batch_rerank takes {name} as a mapping from qid, not a {type(value).__name__}")
        for qid in hits_by_qid:
            if qid not in queries:
                raise DecrankError(f"query {qid} of the run has no topic text")
        return {qid: per_alpha[0] for qid, per_alpha in self._rankings(queries, hits_by_qid, [self.alpha], k)}

    def _rankings(self, queries: Mapping[str, str], run: Mapping[str, Sequence[Any]], alphas: Sequence[float | None],
                  k: int | None) -> Iterator[tuple[str, list]]:
        """Each qid of ``run`` in order with its rankings at each of ``alphas``, ``query_batch`` queries at a time."""
        qids = list(run)
        for start in range(0, len(qids), self.query_batch):
            chunk = qids[start : start + self.query_batch]
            ranked = self.rerank_many([(qid, queries[qid], run[qid]) for qid in chunk], alphas, k=k)
            yield from zip(chunk, ranked)

    # ------------------------------------------------------------------ run files
    def check_run(self, queries: Mapping[str, str], run: Mapping[str, Sequence[Hit]], depth: int,
                  topics_name: str = "topics") -> None:
        """Everything about a run that can be checked before scoring: its queries and its candidates."""
        check_depth(depth, "depth")
        if not run:
            raise DecrankError("the first-stage run has no hits: nothing to re-rank")
        for qid in run:
            if qid not in queries:
                raise DecrankError(f"query {qid} of the run is not in {topics_name}")
            check_query(queries[qid], qid, topics_name)
        if not self.skip_missing:
            missing = self.missing(list(dict.fromkeys(h.docid for hits in run.values() for h in hits[:depth])))
            if missing:
                raise MissingCandidatesError(self.where, missing)

    def write_run(
        self,
        queries: Mapping[str, str],
        run: Mapping[str, Sequence[Hit]],
        output: str | Path,
        depth: int = 100,
        tag: str = "decrank",
        interpolated: Mapping[float, str | Path] | Sequence[tuple[float, str | Path]] | None = None,
        topics_name: str = "topics",
        progress: bool = True,
        rankings: Callable[[list[float | None]], Iterator[tuple[str, list[list]]]] | None = None,
    ) -> None:
        """Re-ranks every query of ``run`` into the TREC run ``output`` (at ``self.alpha``), and into each
        path of ``interpolated`` at its alpha from the same scores, so the model runs once per query.

        All input is checked before any output is opened; then each query is written and flushed as soon
        as it is done. ``rankings`` (given the alphas, every query's rankings in run order) scores elsewhere,
        on a Ray cluster for one; this process then only checks and writes."""
        self.check_run(queries, run, depth, topics_name)
        pairs = list(interpolated.items()) if isinstance(interpolated, Mapping) else list(interpolated or ())
        targets = [(self.alpha, output, tag)] + [(a, p, f"{tag}-alpha{a:g}") for a, p in pairs]
        for alpha, _, _ in targets:
            _check_alpha(alpha)
        check_tag(tag)
        refuse_overwriting_inputs([("output" if i == 0 else "interpolated output", p) for i, (_, p, _) in enumerate(targets)], [])
        writers: list[RunWriter] = []
        complete = False
        bar = None
        try:
            for _, path, name in targets:  # one by one: those opened before a failure are closed below
                writers.append(RunWriter(path, name))
            bar = tqdm(total=len(run), desc="rerank", unit="query", disable=not progress, dynamic_ncols=True)
            alphas = [a for a, _, _ in targets]
            ranked = rankings(alphas) if rankings is not None else self._rankings(queries, run, alphas, depth)
            for qid, per_alpha in ranked:
                for writer, ranking in zip(writers, per_alpha):
                    writer.write(qid, ranking)
                bar.update(1)
            complete = True
        except DecrankError as exc:
            if not writers:
                raise
            done = writers[0].queries
            kept = f"; {output} is unchanged" + (f", the {done} queries done are in {writers[0].partial}" if done else "")
            raise DecrankError(f"{exc}{kept}", cli=f"{exc.cli_message}{kept}") from None
        finally:
            if bar is not None:
                bar.close()  # before any error line is printed
            for writer in writers:
                writer.close(complete=complete)


class TextReranker(Reranker):
    """A method that reads the candidates' text (``texts``: docid -> text) rather than stored states;
    ``source`` names where the texts came from in errors. A subclass implements ``_score_texts``."""

    def __init__(self, texts: Mapping[str, str] | None = None, batch_size: int = 32, alpha: float | None = None,
                 skip_missing: bool = False, source: str = "the texts given", query_batch: int = 1) -> None:
        super().__init__(batch_size=batch_size, alpha=alpha, skip_missing=skip_missing, query_batch=query_batch)
        self.texts, self.source = texts or {}, source

    @property
    def where(self) -> str:
        return self.source

    def missing(self, docids: Sequence[str]) -> list[str]:
        return [d for d in docids if d not in self.texts]

    def _score(self, query: str, docids: Sequence[str]) -> np.ndarray:
        return self._score_texts(query, [self.texts[d] for d in docids], docids)
