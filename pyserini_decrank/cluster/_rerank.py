"""``decrank rerank --ray``: queries cut into contiguous blocks, scored by a pool of workers that each load the
model once and memory-map the store; this process writes the blocks back in run order, so the run file is
the single-process one byte for byte."""

from __future__ import annotations

import math
from collections import deque
from typing import Iterator, Mapping, Sequence

from ..errors import DecrankError
from ..io import Hit
from ..rerank import Reranker, load_reranker
from ._ray import RayOptions, call, connect, node_name, ray_module, set_worker_threads, start_workers


class QueryScorer:
    """A Ray worker: one re-ranker (model and store) built from ``load_reranker``'s arguments."""

    def __init__(self, reranker_options: dict, threads: int = 1, device: str | None = None) -> None:
        set_worker_threads(threads)
        options = dict(reranker_options)
        if device:
            options["device"] = device
        self._problem = None
        try:
            self.reranker = load_reranker(**options)
        except DecrankError as exc:
            store = options.get("store") or options.get("corpus")
            self._problem = (f"Ray node {node_name()} cannot load the re-ranker ({exc}); the store and model must be "
                             f"on storage that every node mounts at the same path ({store})")

    def problem(self) -> str | None:
        return self._problem

    def rerank_block(self, block: list[tuple[str, str, list[Hit]]], alphas: list[float | None], depth: int) -> list:
        return self.reranker.rerank_many(block, alphas, k=depth)  # the reranker's query_batch queries at a time


class RayRankings:
    """Scores queries on a Ray cluster for ``Reranker.write_run(rankings=...)``."""

    def __init__(self, reranker_options: dict, queries: Mapping[str, str], run: Mapping[str, Sequence[Hit]],
                 depth: int, ray: RayOptions | None = None, block_size: int | None = None) -> None:
        ray = ray or RayOptions()
        connect(ray.address)
        self.actors = start_workers(QueryScorer, ray, reranker_options)
        self.queries, self.run, self.depth = queries, run, depth
        # blocks small enough to keep every worker busy while the first ones are written
        self.block_size = block_size or max(1, min(64, math.ceil(len(run) / (4 * len(self.actors)))))

    def __call__(self, alphas: list[float | None]) -> Iterator[tuple[str, list[list]]]:
        rt = ray_module()
        qids = list(self.run)
        blocks = [qids[i : i + self.block_size] for i in range(0, len(qids), self.block_size)]
        pending: deque = deque()
        next_block = 0
        while next_block < len(blocks) or pending:
            while next_block < len(blocks) and len(pending) < 2 * len(self.actors):
                items = [(qid, self.queries[qid], list(self.run[qid])) for qid in blocks[next_block]]
                actor = self.actors[next_block % len(self.actors)]
                pending.append((blocks[next_block], actor.rerank_block.remote(items, alphas, self.depth)))
                next_block += 1
            block, future = pending.popleft()
            yield from zip(block, call(rt.get, future))


def write_run_on_ray(reranker: Reranker, reranker_options: dict, queries: Mapping[str, str],
                     run: Mapping[str, Sequence[Hit]], output: str, depth: int = 100, tag: str = "decrank",
                     interpolated: Mapping[float, str] | None = None, topics_name: str = "topics",
                     ray: RayOptions | None = None, progress: bool = True) -> None:
    """``reranker.write_run`` with the scoring on a Ray cluster: ``reranker`` (built here) checks the run and
    its candidates before any output is opened; the workers build theirs from ``reranker_options``."""
    reranker.check_run(queries, run, depth, topics_name)
    rankings = RayRankings(reranker_options, queries, run, depth, ray)
    reranker.write_run(queries, run, output, depth=depth, tag=tag, interpolated=interpolated, topics_name=topics_name,
                       progress=progress, rankings=rankings)
