"""What each store codec costs: size, encode time (training included), quality and speed against fp16.

    python eval/codec_ladder.py --corpus CORPUS --topics TOPICS --run BM25_RUN --qrels QRELS \
        --workdir DIR --json OUT.json [--codecs fp16,SQ8,PQ96,PQ64,...] [--model decrank-minilm] \
        [--codec-train-tokens N] [--transcode] [--relevance-level 2] [--depth 100] [--alpha 0.5] [--threads 2]
    python eval/codec_ladder.py --combine A.json B.json ... --png OUT.png

For each codec: `encode` the corpus into DIR/<codec> (timed, the codec's training included), score the run's
top ``depth`` once, and report bytes per token, store size, nDCG@10 alone and interpolated with the first stage
at ``alpha`` (from the same scores), the change against the first codec's (fp16) with its paired bootstrap 95%
interval over queries, the Kendall tau of each query's scores against the first codec's (median, mean and
minimum), and the median milliseconds per query. A PNG beside OUT.json plots the change against bytes per token
with its interval. With ``--transcode`` the encoder runs once, into DIR/fp32, and each codec's store is written
from it (`decrank store transcode`, the same bytes as encoding in the codec); a row's encode time is then the
transcode's, codec training included.

Each codec's scores are kept in DIR/scores-<codec>.json, and every figure but the times comes from them: run
again with the same OUT.json and a codec whose row and scores are there is not encoded or scored again (a
stopped ladder resumes at its next codec), and rows written before the intervals existed get them.
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
from pyserini_decrank.evaluate import evaluate_run, paired_bootstrap
from pyserini_decrank.store import transcode_store
from pyserini_decrank.rerank import interpolate, order_hits


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-a between two score vectors over the same candidates."""
    i, j = np.triu_indices(len(a), 1)
    agree = np.sign(a[i] - a[j]) * np.sign(b[i] - b[j])
    return float(agree.sum() / len(i)) if len(i) else 1.0


def quality(scores: dict[str, np.ndarray], run: dict, qrels: dict, depth: int, alpha: float, level: int) -> dict:
    """Per-query nDCG@10 alone and interpolated, from a codec's scores of each query's top ``depth``."""
    alone, mixed = {}, {}
    for qid, s in scores.items():
        head, tail = run[qid][:depth], run[qid][depth:]
        first = np.array([h.score for h in head], dtype=np.float64)
        alone[qid] = order_hits(head, np.asarray(s, dtype=np.float64), tail)
        mixed[qid] = order_hits(head, interpolate(first, np.asarray(s), alpha), tail)
    per = lambda r: {q: v["ndcg_cut.10"] for q, v in evaluate_run(qrels, r, ["ndcg_cut.10"], level).per_query.items()}
    return {"alone": per(alone), "interpolated": per(mixed)}


def figures(scores: dict, reference: dict, per_query: dict, reference_per_query: dict) -> dict:
    """A row's quality figures against the reference codec's: means, changes with their 95% intervals, taus."""
    taus = [kendall_tau(np.asarray(scores[q]), np.asarray(reference[q])) for q in scores]
    row = {"tau_median": statistics.median(taus), "tau_mean": statistics.fmean(taus), "tau_min": min(taus)}
    for key, name in (("alone", "ndcg10"), ("interpolated", "ndcg10_interpolated")):
        values = per_query[key]
        row[name] = statistics.fmean(values.values())
        diff = paired_bootstrap(reference_per_query[key], values)
        row[f"{name}_change"], row[f"{name}_change_ci"] = diff.mean, [diff.low, diff.high]
    row["queries"] = len(per_query["alone"])
    return row


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
    ap.add_argument("--copy", default=None, help="score with this copy spec instead of the model's (e.g. none): the stores "
                    "are shared with the model's own ladder, the scores kept apart")
    ap.add_argument("--codec-train-tokens", type=int, default=None,
                    help="token states each faiss codec trains on (`encode --codec-train-tokens`); its stores get their "
                         "own folders (-tN)")
    ap.add_argument("--transcode", action="store_true",
                    help="encode the corpus once into DIR/fp32 and write each codec's store from it (`decrank store "
                         "transcode`: the same bytes); a row's encode_s is then its transcode, codec training included")
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
    if args.copy is not None:
        model.set_copy(args.copy)
    variant = "" if args.copy is None else f"-copy-{args.copy.replace(':', '_')}"
    queries, run, qrels = read_topics(args.topics), read_run(args.run), read_qrels(args.qrels)
    out = Path(args.json)
    done = {r["codec"]: r for r in json.loads(out.read_text())} if out.is_file() else {}
    rows, reference, reference_quality = [], None, None
    for spec in specs:
        trained = f"-t{args.codec_train_tokens}" if args.codec_train_tokens and spec not in ("fp16", "fp32", "bf16") else ""
        store_path = Path(args.workdir) / (spec.replace(",", "_") + trained)
        scores_path = Path(args.workdir) / f"scores-{spec.replace(',', '_')}{trained}{variant}.json"
        if spec in done and scores_path.is_file():
            row = dict(done[spec])
            scores = {q: np.array(s) for q, s in json.loads(scores_path.read_text()).items()}
            print(f"{spec}: kept from {out}", flush=True)
        else:
            transcoded = None  # how this run wrote the store: unknown where it found one written
            if spec in done and _complete(store_path):  # scored before, scores not kept: score again, keep its encode time
                encode_s, transcoded = done[spec]["encode_s"], done[spec].get("transcoded")
            elif _complete(store_path):  # another ladder's store (another --copy): not encoded again
                encode_s = None
            elif args.transcode and spec != "fp32":
                transcoded = True
                source = Path(args.workdir) / "fp32"
                if not _complete(source):  # the one run of the encoder, shared by every codec's store
                    encode_corpus(model, read_corpus(args.corpus), source, codec="fp32", progress=False)
                start = time.perf_counter()
                transcode_store(source, store_path, spec, codec_train_tokens=args.codec_train_tokens, progress=False)
                encode_s = time.perf_counter() - start
            else:
                transcoded = False
                start = time.perf_counter()
                encode_corpus(model, read_corpus(args.corpus), store_path, codec=spec, progress=False,
                              codec_train_tokens=args.codec_train_tokens)
                encode_s = time.perf_counter() - start
            reranker = DecoderReranker(model, EncoderStateStore(store_path))
            scores, times = {}, []
            for qid, hits in run.items():
                start = time.perf_counter()
                scores[qid] = reranker.score(queries[qid], [h.docid for h in hits[: args.depth]], qid=qid)
                times.append(time.perf_counter() - start)
            scores_path.write_text(json.dumps({q: s.tolist() for q, s in scores.items()}))
            info = reranker.store.info()
            row = {"codec": spec, "bytes_per_token": info["bytes_per_token"], "store_bytes": info["bytes_on_disk"],
                   "encode_s": None if encode_s is None else round(encode_s, 1), "ms_per_query": statistics.median(times) * 1e3,
                   "codec_train_tokens": reranker.store.manifest.build.get("codec_train_tokens"),
                   "transcoded": transcoded}
        per_query = quality(scores, run, qrels, args.depth, args.alpha, args.relevance_level)
        if reference is None:
            reference, reference_quality = scores, per_query
        row.update(figures(scores, reference, per_query, reference_quality))
        rows.append(row)
        print(json.dumps(row), flush=True)
        out.write_text(json.dumps(rows, indent=2) + "\n")  # after every codec: a stopped run keeps its rows
    plot(rows, out.with_suffix(".png"))


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    _changes(ax, rows)
    ax.set_xlabel("bytes per token")
    ax.set_ylabel(f"nDCG@10 change against {rows[0]['codec']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _changes(ax, rows: list[dict]) -> None:
    """Each codec's nDCG@10 change against the first row's, with its 95% interval where the row has one."""
    base = rows[0]
    for key, label, marker, shift in (("ndcg10", "alone", "o", 0.97), ("ndcg10_interpolated", "+ BM25", "s", 1.03)):
        x = [r["bytes_per_token"] * shift for r in rows]
        y = [r[key] - base[key] for r in rows]
        ci = [r.get(f"{key}_change_ci") for r in rows]
        err = np.array([[yy - c[0], c[1] - yy] if c else [0, 0] for yy, c in zip(y, ci)]).T
        ax.errorbar(x, y, yerr=err, fmt=marker, capsize=2, label=label)
    for r in rows:
        ax.annotate(r["codec"], (r["bytes_per_token"], r["ndcg10"] - base["ndcg10"]), fontsize=7)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.axhspan(-0.01, 0.01, color="grey", alpha=0.12)
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def _interval(row: dict, key: str) -> str:
    ci = row.get(f"{key}_change_ci")
    return f" [{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else ""


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def markdown_table(rows: list[dict]) -> str:
    base = rows[0]
    lines = ["| codec | bytes/token | store MB | encode s | nDCG@10 (change [95% interval]) | + BM25 (change [95% interval]) "
             "| tau median / mean / min | ms/query |",
             "|---|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        lines.append(f"| {r['codec']} | {r['bytes_per_token']:g} | {r['store_bytes'] / 1e6:.1f} | {_seconds(r['encode_s'])} | "
                     f"{r['ndcg10']:.4f} ({r['ndcg10'] - base['ndcg10']:+.4f}{_interval(r, 'ndcg10')}) | "
                     f"{r['ndcg10_interpolated']:.4f} ({r['ndcg10_interpolated'] - base['ndcg10_interpolated']:+.4f}"
                     f"{_interval(r, 'ndcg10_interpolated')}) | "
                     f"{r['tau_median']:.3f} / {r.get('tau_mean', float('nan')):.3f} / {r['tau_min']:.3f} | {r['ms_per_query']:.0f} |")
    return "\n".join(lines)


def plot_combined(paths: list[Path], png: Path) -> None:
    """nDCG@10 change against the first row (fp16), alone and interpolated, one panel per ladder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(paths), figsize=(4.2 * len(paths), 4), sharey=True, squeeze=False)
    for ax, path in zip(axes[0], paths):
        _changes(ax, json.loads(path.read_text()))
        ax.set_xlabel("bytes per token")
        ax.set_title(path.stem.replace("codec-ladder-", ""))
    axes[0][0].set_ylabel(f"nDCG@10 change against {json.loads(paths[0].read_text())[0]['codec']}")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
