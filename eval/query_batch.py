"""Queries batched together on a real collection: decrank rerank's scoring of every query of a run, one query at
a time against ``--query-batch N``, side by side in one process, on the same store.

    python eval/query_batch.py --corpus DL19/retrieve_results_dl19_top100.json --topics DL19/topics.dl19-passage.txt \
        --run DL19/trec_results_dl19_top100.txt --workdir WORK --json run_files/bench/query-batch-dl19.json \
        [--model decrank-minilm] [--query-batch 1 --query-batch 8 ...] [--batch-size 32 --batch-size 100 ...] \
        [--depth 100] [--repeats 5] [--threads 2] [--precision fp32] [--device cpu]

The corpus is encoded once into WORK/store (fp16). Every configuration (batch size x queries per batch) scores
all the run's queries (``DecoderReranker.score_many``, what ``write_run`` calls) once per repeat, the
configurations taking turns, so that a drift in the machine's speed touches all alike; the median seconds per
query are kept, with each configuration's largest score difference from the first one's (the batching's
numerical effect). JSON and a PNG beside it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from pyserini_decrank.bench import device_name
from pyserini_decrank.encode import encode_corpus
from pyserini_decrank.io import read_corpus, read_run, read_topics
from pyserini_decrank.model import QueryLikelihoodModel
from pyserini_decrank.rerank import DecoderReranker
from pyserini_decrank.store import EncoderStateStore


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(rows)), 4))
    ax.bar(range(len(rows)), [r["ms_per_query"] for r in rows])
    ax.set_xticks(range(len(rows)), [f"batch {r['batch_size']}\n{r['query_batch']} q/batch" for r in rows], fontsize=8)
    ax.set_ylabel("median ms per query")
    ax.set_title(f"{result['model']}, {result['queries']} queries x depth {result['depth']}, {result['device']}, "
                 f"{result['threads']} threads", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("--corpus", "--topics", "--run", "--workdir", "--json"):
        ap.add_argument(name, required=True)
    ap.add_argument("--model", default="decrank-minilm")
    ap.add_argument("--query-batch", dest="query_batches", action="append", type=int)
    ap.add_argument("--batch-size", dest="batch_sizes", action="append", type=int)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = QueryLikelihoodModel.from_pretrained(args.model, precision=args.precision, device=args.device)
    store_path = Path(args.workdir) / "store"
    encode_corpus(model, read_corpus(args.corpus), store_path, codec="fp16")
    store = EncoderStateStore(store_path)
    queries, run = read_topics(args.topics), read_run(args.run)
    requests = [(queries[qid], [h.docid for h in hits[: args.depth]], qid) for qid, hits in run.items()]
    configs = [(b, q) for b in (args.batch_sizes or [32]) for q in (args.query_batches or [1, 8])]
    rerankers = [DecoderReranker(model, store, batch_size=b, query_batch=q) for b, q in configs]
    for reranker in rerankers:  # warm-up, and each configuration's scores
        reranker.score_many(requests[:2])
    times: list[list[float]] = [[] for _ in configs]
    scores: list[list[np.ndarray]] = [[] for _ in configs]
    for _ in range(args.repeats):
        for i, reranker in enumerate(rerankers):
            start = time.perf_counter()
            scores[i] = reranker.score_many(requests)
            times[i].append(time.perf_counter() - start)
    rows = []
    for (batch_size, query_batch), elapsed, got in zip(configs, times, scores):
        difference = max(float(np.abs(a - b).max()) for a, b in zip(got, scores[0]))
        rows.append({"batch_size": batch_size, "query_batch": query_batch,
                     "ms_per_query": round(statistics.median(elapsed) / len(requests) * 1e3, 2),
                     "slowest_repeat_s": round(max(elapsed), 3), "max_score_difference": difference})
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["ms_per_query"]
    for row in rows:
        row["speedup_over_first"] = round(base / row["ms_per_query"], 3)
    result = {"model": args.model, "precision": args.precision, "device": device_name(args.device),
              "threads": args.threads, "queries": len(requests), "depth": args.depth, "repeats": args.repeats,
              "torch": torch.__version__, "rows": rows}
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
