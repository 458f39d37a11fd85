"""How much of BM25 to mix in: nDCG@10 of `decrank rerank --alpha A` for a range of A, from runs already made.

    python eval/alpha_sweep.py --qrels QRELS --first-stage BM25_RUN --reranked RUN [--reranked RUN2 ...] \
        [--alphas 0,0.1,...,1] [--relevance-level 2] [--depth 100] [--markdown OUT.md] [--write ALPHA OUT.txt]

Each reranked run must hold its method's own scores for the first stage's top ``depth`` (what `decrank rerank`
writes without ``--alpha``). The interpolation is the re-ranker's own (``interpolate`` and ``order_hits``: min-max per query,
``alpha`` on the first stage), so a row here is what `--alpha` would have written. It is a diagnostic: an alpha
picked on a test collection's qrels is tuned on that test set. ``--write`` writes the (first) reranked run
interpolated at ALPHA as a TREC run (tag ``<its tag>-alpha<ALPHA>``): the BM25 + bi-encoder rows of the
reproduction page come from it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pyserini_decrank.evaluate import evaluate_run
from pyserini_decrank.io import format_run_lines, read_qrels, read_run
from pyserini_decrank.rerank import interpolate, order_hits


def _interpolated_run(first_stage, scores, alpha: float, depth: int) -> dict:
    run = {}
    for qid, hits in first_stage.items():
        if qid not in scores:
            continue
        head, tail = hits[:depth], hits[depth:]
        missing = [h.docid for h in head if h.docid not in scores[qid]]
        if missing:
            raise SystemExit(f"error: the reranked run has no score for {missing[0]} of query {qid}")
        own = np.array([scores[qid][h.docid] for h in head], dtype=np.float64)
        first = np.array([h.score for h in head], dtype=np.float64)
        run[qid] = order_hits(head, interpolate(first, own, alpha), tail)
    return run


def sweep(qrels, first_stage, reranked, alphas: list[float], depth: int, level: int) -> list[float]:
    scores = {qid: {str(h.docid): float(h.score) for h in hits} for qid, hits in reranked.items()}
    return [evaluate_run(qrels, _interpolated_run(first_stage, scores, alpha, depth), ["ndcg_cut.10"], level).means["ndcg_cut.10"]
            for alpha in alphas]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qrels", required=True)
    ap.add_argument("--first-stage", required=True)
    ap.add_argument("--reranked", action="append", required=True)
    ap.add_argument("--alphas", default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1")
    ap.add_argument("--relevance-level", type=int, default=1)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--markdown")
    ap.add_argument("--write", nargs=2, metavar=("ALPHA", "OUT"))
    args = ap.parse_args()
    alphas = [float(a) for a in args.alphas.split(",")]
    qrels, first = read_qrels(args.qrels), read_run(args.first_stage)
    lines = ["| run | " + " | ".join(f"{a:g}" for a in alphas) + " |", "|---|" + "---:|" * len(alphas)]
    for path in args.reranked:
        values = sweep(qrels, first, read_run(path), alphas, args.depth, args.relevance_level)
        lines.append(f"| {Path(path).name} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    if args.write:
        alpha, out = float(args.write[0]), Path(args.write[1])
        reranked = read_run(args.reranked[0])
        scores = {qid: {str(h.docid): float(h.score) for h in hits} for qid, hits in reranked.items()}
        run = _interpolated_run(first, scores, alpha, args.depth)
        tag = f"{Path(args.reranked[0]).stem.removeprefix('run.')}-bm25-alpha{alpha:g}"
        out.write_text("".join(format_run_lines(qid, hits, tag) for qid, hits in run.items()))


if __name__ == "__main__":
    main()
