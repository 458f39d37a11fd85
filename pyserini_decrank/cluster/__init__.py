"""Encode and re-rank on a Ray cluster (``decrank encode --ray``, ``decrank rerank --ray``): the same store and
run files as one process, the work spread over a pool of workers. Needs ``pip install 'pyserini-decrank[ray]'``."""

from ._encode import ShardEncoder, ShardPlan, encode_corpus_on_ray, shard_plans
from ._ray import AUTO, RayOptions, connect, fitting_workers
from ._rerank import QueryScorer, RayRankings, write_run_on_ray

__all__ = ["AUTO", "QueryScorer", "RayOptions", "RayRankings", "ShardEncoder", "ShardPlan", "connect",
           "encode_corpus_on_ray", "fitting_workers", "shard_plans", "write_run_on_ray"]
