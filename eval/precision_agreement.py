"""Does a faster decoder path rank like the fp32 reference? Kendall tau per query and nDCG@10.

    python eval/precision_agreement.py --model MODEL --store STORE --topics TOPICS --run RUN --qrels QRELS \
        [--precision bf16] [--head-precision compute|fp32] [--reference-store STORE] [--depth 100] [--json OUT.json]

Scores each query's top-``depth`` candidates twice: fp32 from ``--reference-store`` (default: ``--store``), and
``--precision`` from ``--store``. With an encoder-state store as the reference and a keys/values store
(``decrank encode --cross-kv``) as ``--store``, it measures the fast path end to end: the stored keys/values'
rounding and the lower precision together.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from pyserini_decrank import DecoderReranker, EncoderStateStore, QueryLikelihoodModel
from pyserini_decrank.evaluate import evaluate_run
from pyserini_decrank.io import read_qrels, read_run, read_topics


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    i, j = np.triu_indices(len(a), 1)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    concordant, discordant = np.sum(da * db > 0), np.sum(da * db < 0)
    ties_a, ties_b = np.sum((da == 0) & (db != 0)), np.sum((db == 0) & (da != 0))
    denom = np.sqrt((concordant + discordant + ties_a) * (concordant + discordant + ties_b))
    return float((concordant - discordant) / denom) if denom else 1.0


def content(store: EncoderStateStore) -> str:
    return store.manifest.model.get("content", "encoder-states")


def main() -> None:
    ap = argparse.ArgumentParser()
    for name in ("--model", "--store", "--topics", "--run", "--qrels"):
        ap.add_argument(name, required=True)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--head-precision", default="compute", help="fp32: the vocabulary projection stays fp32")
    ap.add_argument("--reference-store", help="the fp32 reference reads this store [default: --store]")
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--relevance-level", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    topics, run = read_topics(args.topics), read_run(args.run)
    stores = {"fp32": EncoderStateStore(args.reference_store or args.store), args.precision: EncoderStateStore(args.store)}
    rerankers = {p: DecoderReranker(QueryLikelihoodModel.from_pretrained(args.model, precision=p, head_precision=h), stores[p])
                 for p, h in (("fp32", "compute"), (args.precision, args.head_precision))}
    taus, qids, runs, seconds = [], [], {p: {} for p in rerankers}, {p: [] for p in rerankers}
    for qid, hits in run.items():
        scores = {}
        for p, reranker in rerankers.items():
            start = time.perf_counter()
            scores[p] = reranker.score(topics[qid], [h.docid for h in hits[: args.depth]])
            seconds[p].append(time.perf_counter() - start)
            runs[p][qid] = reranker.rerank(topics[qid], hits, k=args.depth)
        taus.append(kendall_tau(scores["fp32"], scores[args.precision]))
        qids.append(qid)
    qrels = read_qrels(args.qrels)
    ndcg = {p: evaluate_run(qrels, r, ["ndcg_cut.10"], args.relevance_level).means["ndcg_cut.10"] for p, r in runs.items()}
    report = {
        "precision": args.precision, "head_precision": args.head_precision,
        "content": content(stores[args.precision]), "reference_content": content(stores["fp32"]),
        "queries": len(taus), "kendall_tau_min": round(min(taus), 4),
        "kendall_tau_median": round(statistics.median(taus), 4),
        "queries_below_0.99": sum(t < 0.99 for t in taus),
        "ndcg_cut_10": {p: round(v, 4) for p, v in ndcg.items()},
        "ndcg_difference": round(abs(ndcg["fp32"] - ndcg[args.precision]), 4),
        "median_ms_per_query": {p: round(statistics.median(s) * 1e3, 1) for p, s in seconds.items()},
    }
    report["kendall_tau_per_query"] = {q: round(t, 4) for q, t in zip(qids, taus)}
    print(json.dumps({k: v for k, v in report.items() if k != "kendall_tau_per_query"}, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
