"""How much of BM25 to mix in: nDCG@10 of `decrank rerank --alpha A` for a range of A, from runs already made.

    python eval/alpha_sweep.py --qrels QRELS --first-stage BM25_RUN --reranked RUN [--reranked RUN2 ...] \
        [--alphas 0,0.1,...,1] [--relevance-level 2] [--depth 100] [--markdown OUT.md]

Each reranked run must hold its method's own scores for the first stage's top ``depth`` (what `decrank rerank`
writes without ``--alpha``). The interpolation is the re-ranker's own (``rerank_by_scores``: min-max per query,
``alpha`` on the first stage), so a row here is what `--alpha` would have written. It is a diagnostic: an alpha
picked on a test collection's qrels is tuned on that test set.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pyserini_decrank.evaluate import evaluate_run
from pyserini_decrank.io import read_qrels, read_run
from pyserini_decrank.rerank._base import rerank_by_scores


@dataclass
class StoredScores:
    """A scorer that answers from a run file's scores, so that ``rerank_by_scores`` interpolates them."""

    scores: dict[str, dict[str, float]]
    alpha: float | None
    skip_missing: bool = False

    def score(self, query: str, docids: list[str], qid: str | None = None) -> np.ndarray:
        ranked = self.scores[qid]
        missing = [d for d in docids if d not in ranked]
        if missing:
            raise SystemExit(f"error: the reranked run has no score for {missing[0]} of query {qid}")
        return np.array([ranked[d] for d in docids], dtype=np.float64)


def sweep(qrels, first_stage, reranked, alphas: list[float], depth: int, level: int) -> list[float]:
    scores = {qid: {str(h.docid): float(h.score) for h in hits} for qid, hits in reranked.items()}
    out = []
    for alpha in alphas:
        scorer = StoredScores(scores, alpha)
        run = {qid: rerank_by_scores(scorer, "", hits, depth, qid) for qid, hits in first_stage.items() if qid in scores}
        out.append(evaluate_run(qrels, run, ["ndcg_cut.10"], level).means["ndcg_cut.10"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qrels", required=True)
    ap.add_argument("--first-stage", required=True)
    ap.add_argument("--reranked", action="append", required=True)
    ap.add_argument("--alphas", default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1")
    ap.add_argument("--relevance-level", type=int, default=1)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--markdown")
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


if __name__ == "__main__":
    main()
