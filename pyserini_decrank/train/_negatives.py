"""Negative passages for ranking objectives: in-batch, random, or mined with BM25 through Pyserini.

BM25 mining indexes the training passages and searches every training query in child processes
(``python -m pyserini_decrank pyserini ...``), so the training process never holds a JVM.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import DecrankError
from ._data import PairSet

NEGATIVE_KINDS = ("in-batch", "random", "bm25")


def bm25_search(passages: list[str], queries: list[str], workdir: Path, depth: int = 20,
                threads: int = 2) -> list[list[tuple[int, float]]]:
    """Each query's top ``depth`` passages by BM25 (index into ``passages``, score), through Pyserini in child
    processes. The run is kept in ``workdir``: a second call there with the same passages, queries and depth
    reads it instead of searching again (other ones search again)."""
    workdir.mkdir(parents=True, exist_ok=True)
    run_path = workdir / "bm25.run"
    unique: dict[str, str] = {}
    for query in queries:
        unique.setdefault(" ".join(query.split()), str(len(unique)))
    digest = hashlib.sha256(json.dumps([depth, passages, list(unique)]).encode()).hexdigest()
    stamp = workdir / "bm25.run.sha256"
    if run_path.is_file() and stamp.is_file() and stamp.read_text().strip() != digest:
        run_path.unlink()
        shutil.rmtree(workdir / "index", ignore_errors=True)
    if not run_path.is_file():
        (workdir / "collection").mkdir(exist_ok=True)
        with open(workdir / "collection" / "passages.jsonl", "w") as f:
            for i, text in enumerate(passages):
                f.write(json.dumps({"id": str(i), "contents": text}) + "\n")
        with open(workdir / "queries.tsv", "w") as f:
            f.writelines(f"{qid}\t{q}\n" for q, qid in unique.items())
        base = [sys.executable, "-m", "pyserini_decrank", "pyserini"]
        steps = [
            ["index.lucene", "--collection", "JsonCollection", "--input", str(workdir / "collection"),
             "--index", str(workdir / "index"), "--generator", "DefaultLuceneDocumentGenerator", "--threads", str(threads)],
            ["search.lucene", "--index", str(workdir / "index"), "--topics", str(workdir / "queries.tsv"),
             "--output", str(run_path) + ".tmp", "--bm25", "--hits", str(depth), "--threads", str(threads),
             "--batch-size", "256"],
        ]
        for args in steps:
            proc = subprocess.run(base + args, capture_output=True, text=True)
            if proc.returncode != 0:
                raise DecrankError(f"BM25 search failed at `{args[0]}`: {proc.stderr.strip().splitlines()[-1:]}")
        Path(str(run_path) + ".tmp").replace(run_path)
        stamp.write_text(digest + "\n")
    qid_of = {}
    for line in (workdir / "queries.tsv").read_text().splitlines():
        qid, _, q = line.partition("\t")
        qid_of[q] = qid
    ranked: dict[str, list[tuple[int, float]]] = {}
    for line in run_path.read_text().splitlines():
        qid, _, docid, _, score, *_ = line.split()
        ranked.setdefault(qid, []).append((int(docid), float(score)))
    return [ranked.get(qid_of.get(" ".join(q.split()), ""), []) for q in queries]


@dataclass
class MinedList:
    """BM25's top passages for one pair's query, its own passage left out, and that passage's own score
    (None when BM25 did not retrieve it, or the query has no passage)."""

    negatives: list[tuple[int, float]]
    positive_score: float | None


def mine_bm25(data: PairSet, workdir: Path, depth: int = 20, threads: int = 2) -> list[MinedList]:
    """For each pair, the passages BM25 ranks highest for its query, with their scores."""
    hits = bm25_search(data.passages, [pair.query for pair in data.pairs], workdir, depth + 1, threads)
    out = []
    for pair, ranked in zip(data.pairs, hits):
        own = data.passages[pair.passage] if pair.passage is not None else None
        negatives = [(h, s) for h, s in ranked if h != pair.passage and data.passages[h] != own][:depth]
        out.append(MinedList(negatives, next((s for h, s in ranked if h == pair.passage), None)))
    return out


def mine_bm25_negatives(data: PairSet, workdir: Path, depth: int = 20, threads: int = 2) -> list[list[int]]:
    """For each pair, the passages BM25 ranks highest for its query, its own passage left out."""
    return [[h for h, _ in mined.negatives] for mined in mine_bm25(data, workdir, depth, threads)]


class NegativeSampler:
    """Draws ``k`` negatives per example, deterministically from the trainer's seeded generator."""

    def __init__(self, kind: str, data: PairSet, k: int, rng: random.Random, mined: list[list[int]] | None = None,
                 distinct: bool = False):
        if kind not in NEGATIVE_KINDS:
            raise DecrankError(f"unknown negatives {kind!r}; known: {', '.join(NEGATIVE_KINDS)}")
        self.kind, self.data, self.k, self.rng, self.mined = kind, data, k, rng, mined
        self.distinct = distinct  # mined negatives drawn without replacement (a list to rank has no repeats)

    def _random(self, avoid: int) -> int:
        while True:
            j = self.rng.randrange(len(self.data.passages))
            if j != avoid or len(self.data.passages) == 1:
                return j

    def sample(self, batch: list[int]) -> list[list[int]]:
        """Negative passage indices for each pair index of ``batch``: ``k`` of them, or ``k + 1`` for a pair
        without a passage (its list is candidates only, as long as the others')."""
        out = []
        positives = [self.data.pairs[i].passage for i in batch]
        for row, i in enumerate(batch):
            own = positives[row]
            if own is None:
                pool = self.mined[i] if self.kind == "bm25" and self.mined else []
                if len(pool) < self.k + 1:
                    raise DecrankError(f"training query {self.data.pairs[i].query[:60]!r} has no passage and fewer than "
                                       f"{self.k + 1} mined candidates")
                out.append(self.rng.sample(pool, self.k + 1))
            elif self.kind == "in-batch" and len({p for p in positives if p is not None}) > 1:
                pool = [p for p in positives if p != own and p is not None]
                out.append([pool[self.rng.randrange(len(pool))] for _ in range(self.k)])
            elif self.kind == "bm25" and self.mined and self.mined[i]:
                pool = self.mined[i]
                if self.distinct and len(pool) >= self.k:
                    out.append(self.rng.sample(pool, self.k))
                else:
                    out.append([pool[self.rng.randrange(len(pool))] for _ in range(self.k)])
            else:
                out.append([self._random(own) for _ in range(self.k)])
        return out
