"""What checking every read costs: re-ranking with and without the per-document CRC checks, side by side.

    python eval/checksum_cost.py --store STORE --topics TOPICS --run RUN [--model decrank-minilm] \
        [--depth 100] [--queries 50] [--threads 2] [--json OUT.json]   # and OUT.png beside it

One process, one model, the same candidates: for each query the re-ranker scores them once reading a
store that checks each document's CRC and once reading the same store without the check (which goes
first alternates by query), after a warm-up query. Reports the median time per query of each, their
ratio, and the store reads alone (``get_many``) with and without the check.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from pyserini_decrank import DecoderReranker, EncoderStateStore, QueryLikelihoodModel, read_run, read_topics, retain_freed_memory


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--topics", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--model", default="decrank-minilm")
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    retain_freed_memory()
    torch.set_num_threads(args.threads)
    model = QueryLikelihoodModel.from_pretrained(args.model)
    checked = DecoderReranker(model, EncoderStateStore(args.store, verify_reads=True))
    unchecked = DecoderReranker(model, EncoderStateStore(args.store, verify_reads=False))
    queries, run = read_topics(args.topics), read_run(args.run)
    qids = list(run)[: args.queries + 1]
    times = {"checked": [], "unchecked": [], "read_checked": [], "read_unchecked": []}
    for n, qid in enumerate(qids):
        docids = [h.docid for h in run[qid][: args.depth]]
        pairs = [("checked", checked), ("unchecked", unchecked)]
        for name, reranker in pairs if n % 2 else pairs[::-1]:
            score = _timed(lambda: reranker.score(queries[qid], docids, qid=qid))
            read = _timed(lambda: reranker.store.get_many(docids))
            if n:  # the first query warms both up
                times[name].append(score)
                times["read_" + name].append(read)
    ms = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    report = {"queries": len(qids) - 1, "depth": args.depth, "threads": args.threads, "store": str(args.store),
              "codec": checked.store.manifest.codec, "rerank_ms_checked": ms["checked"],
              "rerank_ms_unchecked": ms["unchecked"], "ratio": ms["checked"] / ms["unchecked"],
              "read_ms_checked": ms["read_checked"], "read_ms_unchecked": ms["read_unchecked"],
              "per_query_ms": {k: [round(t * 1e3, 3) for t in v] for k, v in times.items()}}
    print(f"{report['queries']} queries, depth {args.depth}: re-rank {ms['checked']:.1f} ms with checks, "
          f"{ms['unchecked']:.1f} ms without ({(report['ratio'] - 1) * 100:+.2f}%); store reads "
          f"{ms['read_checked']:.2f} ms against {ms['read_unchecked']:.2f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        plot(report, Path(args.json).with_suffix(".png"))


def plot(report: dict, path: Path) -> None:
    """Each query's re-rank time with checks against without: points on the diagonal cost nothing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    checked, unchecked = report["per_query_ms"]["checked"], report["per_query_ms"]["unchecked"]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(unchecked, checked, s=12)
    top = max(checked + unchecked) * 1.05
    ax.plot([0, top], [0, top], color="grey", linewidth=1)
    ax.set_xlabel("re-rank ms per query, reads unchecked")
    ax.set_ylabel("re-rank ms per query, every read's CRC checked")
    ax.set_title(f"{report['queries']} queries x {report['depth']} candidates: median {(report['ratio'] - 1) * 100:+.2f}%")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
