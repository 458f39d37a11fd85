"""What each store codec costs: size, encode time (training included), quality and speed against fp16.

    python eval/codec_ladder.py --corpus CORPUS --topics TOPICS --run BM25_RUN --qrels QRELS \
        --workdir DIR --json OUT.json [--codecs fp16,SQ8,PQ96,PQ64,...] [--model decrank-minilm] \
        [--relevance-level 2] [--depth 100] [--alpha 0.5] [--threads 2]
    python eval/codec_ladder.py --combine A.json B.json ... --png OUT.png

For each codec: `encode` the corpus into DIR/<codec> (timed, the codec's training included), re-rank the
run's top ``depth`` once (alone and interpolated with the first stage at ``alpha``, from the same scores),
and report bytes per token, store size, nDCG@10 of both, the Kendall tau of each query's scores against the
first codec's (median and minimum), and the median milliseconds per query. A PNG beside OUT.json plots the
change in nDCG@10 against bytes per token.

Each codec's scores are kept in DIR/scores-<codec>.json; run again with the same OUT.json and a codec whose
row and scores are there is not encoded or scored again (a stopped ladder resumes at its next codec).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from pyserini_decrank import DecoderReranker, EncoderStateStore, QueryLikelihoodModel, read_corpus, read_qrels, read_run, read_topics
from pyserini_decrank.encode import encode_corpus
from pyserini_decrank.evaluate import evaluate_run


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-a between two score vectors over the same candidates."""
    i, j = np.triu_indices(len(a), 1)
    agree = np.sign(a[i] - a[j]) * np.sign(b[i] - b[j])
    return float(agree.sum() / len(i)) if len(i) else 1.0


def _complete(store_path: Path) -> bool:
    try:
        return EncoderStateStore(store_path).info()["complete"]
    except Exception:  # no store there, or not a whole one
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--combine", nargs="+", metavar="LADDER.json",
                    help="Only plot these ladders' JSON files together into --png (one panel per collection).")
    ap.add_argument("--png", help="With --combine: the plot to write.")
    for name in ("--corpus", "--topics", "--run", "--qrels", "--workdir", "--json"):
        ap.add_argument(name)
    ap.add_argument("--codecs", default="fp16,SQ8,PQ96,PQ64,OPQ64,PQ64,PQ48,PQ32,OPQ32,PQ32,PQ16")
    ap.add_argument("--model", default="decrank-minilm")
    ap.add_argument("--relevance-level", type=int, default=1)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.combine:
        for path in args.combine:
            print(f"\n{Path(path).stem}\n\n{markdown_table(json.loads(Path(path).read_text()))}")
        return plot_combined([Path(p) for p in args.combine], Path(args.png or "codec-ladder.png"))
    missing = [n for n in ("corpus", "topics", "run", "qrels", "workdir", "json") if getattr(args, n) is None]
    if missing:
        ap.error("the following arguments are required: " + ", ".join("--" + n for n in missing))
    torch.set_num_threads(args.threads)
    # "OPQ64,PQ64" holds a comma: split on commas not followed by "PQ" of the same spec
    specs, parts = [], args.codecs.split(",")
    for part in parts:
        if specs and specs[-1].startswith("OPQ") and "," not in specs[-1] and part.startswith("PQ"):
            specs[-1] += "," + part
        else:
            specs.append(part)
    model = QueryLikelihoodModel.from_pretrained(args.model)
    queries, run, qrels = read_topics(args.topics), read_run(args.run), read_qrels(args.qrels)
    out = Path(args.json)
    done = {r["codec"]: r for r in json.loads(out.read_text())} if out.is_file() else {}
    rows, reference = [], None
    for spec in specs:
        store_path = Path(args.workdir) / spec.replace(",", "_")
        scores_path = Path(args.workdir) / f"scores-{spec.replace(',', '_')}.json"
        if spec in done and scores_path.is_file():
            scores = {q: np.array(s) for q, s in json.loads(scores_path.read_text()).items()}
            reference = reference or scores
            rows.append(done[spec])
            print(f"{spec}: kept from {out}", flush=True)
            continue
        if spec in done and _complete(store_path):  # scored before, scores not kept: score again, keep its encode time
            encode_s = done[spec]["encode_s"]
        else:
            start = time.perf_counter()
            encode_corpus(model, read_corpus(args.corpus), store_path, codec=spec, progress=False)
            encode_s = time.perf_counter() - start
        reranker = DecoderReranker(model, EncoderStateStore(store_path))
        alone, mixed, scores, times = {}, {}, {}, []
        for qid, hits in run.items():
            head = hits[: args.depth]
            start = time.perf_counter()
            scores[qid] = reranker.score(queries[qid], [h.docid for h in head], qid=qid)
            times.append(time.perf_counter() - start)
            alone[qid], mixed[qid] = reranker.rerank_alphas(queries[qid], hits, [None, args.alpha], k=args.depth, qid=qid)
        scores_path.write_text(json.dumps({q: s.tolist() for q, s in scores.items()}))
        reference = reference or scores
        taus = [kendall_tau(scores[q], reference[q]) for q in scores]
        info = reranker.store.info()
        row = {"codec": spec, "bytes_per_token": info["bytes_per_token"], "store_bytes": info["bytes_on_disk"],
               "encode_s": round(encode_s, 1),
               "ndcg10": evaluate_run(qrels, alone, ["ndcg_cut.10"], args.relevance_level).means["ndcg_cut.10"],
               "ndcg10_interpolated": evaluate_run(qrels, mixed, ["ndcg_cut.10"], args.relevance_level).means["ndcg_cut.10"],
               "tau_median": statistics.median(taus), "tau_min": min(taus),
               "ms_per_query": statistics.median(times) * 1e3}
        rows.append(row)
        print(json.dumps(row), flush=True)
        out.write_text(json.dumps(rows, indent=2) + "\n")  # after every codec: a stopped run keeps its rows
    plot(rows, out.with_suffix(".png"))


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = rows[0]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("ndcg10", "alone"), ("ndcg10_interpolated", "interpolated")):
        ax.plot([r["bytes_per_token"] for r in rows], [r[key] - base[key] for r in rows], "o", label=label)
    for r in rows:
        ax.annotate(r["codec"], (r["bytes_per_token"], r["ndcg10"] - base["ndcg10"]), fontsize=7)
    ax.axhline(-0.005, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    ax.set_xlabel("bytes per token")
    ax.set_ylabel(f"nDCG@10 change against {base['codec']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown_table(rows: list[dict]) -> str:
    base = rows[0]
    lines = ["| codec | bytes/token | store MB | encode s | nDCG@10 (change) | + BM25 (change) | tau median / min | ms/query |",
             "|---|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        lines.append(f"| {r['codec']} | {r['bytes_per_token']:g} | {r['store_bytes'] / 1e6:.1f} | {r['encode_s']:.0f} | "
                     f"{r['ndcg10']:.4f} ({r['ndcg10'] - base['ndcg10']:+.4f}) | "
                     f"{r['ndcg10_interpolated']:.4f} ({r['ndcg10_interpolated'] - base['ndcg10_interpolated']:+.4f}) | "
                     f"{r['tau_median']:.3f} / {r['tau_min']:.3f} | {r['ms_per_query']:.0f} |")
    return "\n".join(lines)


def plot_combined(paths: list[Path], png: Path) -> None:
    """nDCG@10 change against the first row (fp16), alone and interpolated, one panel per ladder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(paths), figsize=(4.2 * len(paths), 4), sharey=True, squeeze=False)
    for ax, path in zip(axes[0], paths):
        rows = json.loads(path.read_text())
        base = rows[0]
        for key, label, marker in (("ndcg10", "alone", "o"), ("ndcg10_interpolated", "+ BM25 (alpha 0.5)", "s")):
            ax.plot([r["bytes_per_token"] for r in rows], [r[key] - base[key] for r in rows], marker, label=label)
        for r in rows:
            ax.annotate(r["codec"], (r["bytes_per_token"], r["ndcg10"] - base["ndcg10"]), fontsize=7)
        ax.axhline(-0.005, color="grey", linewidth=0.8, linestyle="--")
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set_xscale("log")
        ax.set_xlabel("bytes per token")
        ax.set_title(path.stem.replace("codec-ladder-", ""))
    axes[0][0].set_ylabel(f"nDCG@10 change against {json.loads(paths[0].read_text())[0]['codec']}")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
