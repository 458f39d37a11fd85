"""Negative passages for ranking objectives: in-batch, random, or mined with BM25 through Pyserini.

BM25 mining indexes the training passages and searches every training query in child processes
(``python -m pyserini_decrank pyserini ...``), so the training process never holds a JVM.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from ..errors import DecrankError
from ._data import PairSet

NEGATIVE_KINDS = ("in-batch", "random", "bm25")


def mine_bm25_negatives(data: PairSet, workdir: Path, depth: int = 20, threads: int = 2) -> list[list[int]]:
    """For each pair, the passages BM25 ranks highest for its query, its own passage left out."""
    workdir.mkdir(parents=True, exist_ok=True)
    run_path = workdir / "bm25.run"
    if not run_path.is_file():
        (workdir / "collection").mkdir(exist_ok=True)
        with open(workdir / "collection" / "passages.jsonl", "w") as f:
            for i, text in enumerate(data.passages):
                f.write(json.dumps({"id": str(i), "contents": text}) + "\n")
        queries = {}
        for pair in data.pairs:
            queries.setdefault(" ".join(pair.query.split()), str(len(queries)))
        with open(workdir / "queries.tsv", "w") as f:
            f.writelines(f"{qid}\t{q}\n" for q, qid in queries.items())
        base = [sys.executable, "-m", "pyserini_decrank", "pyserini"]
        steps = [
            ["index.lucene", "--collection", "JsonCollection", "--input", str(workdir / "collection"),
             "--index", str(workdir / "index"), "--generator", "DefaultLuceneDocumentGenerator", "--threads", str(threads)],
            ["search.lucene", "--index", str(workdir / "index"), "--topics", str(workdir / "queries.tsv"),
             "--output", str(run_path) + ".tmp", "--bm25", "--hits", str(depth + 1), "--threads", str(threads),
             "--batch-size", "256"],
        ]
        for args in steps:
            proc = subprocess.run(base + args, capture_output=True, text=True)
            if proc.returncode != 0:
                raise DecrankError(f"BM25 mining failed at `{args[0]}`: {proc.stderr.strip().splitlines()[-1:]}")
        Path(str(run_path) + ".tmp").replace(run_path)
    qid_of = {}
    for line in (workdir / "queries.tsv").read_text().splitlines():
        qid, _, q = line.partition("\t")
        qid_of[q] = qid
    ranked: dict[str, list[int]] = {}
    for line in run_path.read_text().splitlines():
        qid, _, docid, *_ = line.split()
        ranked.setdefault(qid, []).append(int(docid))
    out = []
    for pair in data.pairs:
        hits = ranked.get(qid_of.get(" ".join(pair.query.split()), ""), [])
        own = data.passages[pair.passage]
        out.append([h for h in hits if h != pair.passage and data.passages[h] != own][:depth])
    return out


class NegativeSampler:
    """Draws ``k`` negatives per example, deterministically from the trainer's seeded generator."""

    def __init__(self, kind: str, data: PairSet, k: int, rng: random.Random, mined: list[list[int]] | None = None):
        if kind not in NEGATIVE_KINDS:
            raise DecrankError(f"unknown negatives {kind!r}; known: {', '.join(NEGATIVE_KINDS)}")
        self.kind, self.data, self.k, self.rng, self.mined = kind, data, k, rng, mined

    def _random(self, avoid: int) -> int:
        while True:
            j = self.rng.randrange(len(self.data.passages))
            if j != avoid or len(self.data.passages) == 1:
                return j

    def sample(self, batch: list[int]) -> list[list[int]]:
        """Negative passage indices for each pair index of ``batch``."""
        out = []
        positives = [self.data.pairs[i].passage for i in batch]
        for row, i in enumerate(batch):
            own = positives[row]
            if self.kind == "in-batch" and len(set(positives)) > 1:
                pool = [p for p in positives if p != own]
                out.append([pool[self.rng.randrange(len(pool))] for _ in range(self.k)])
            elif self.kind == "bm25" and self.mined and self.mined[i]:
                pool = self.mined[i]
                out.append([pool[self.rng.randrange(len(pool))] for _ in range(self.k)])
            else:
                out.append([self._random(own) for _ in range(self.k)])
        return out
