"""Encode and re-rank throughput on a Ray cluster with one worker and with two, side by side in one run, and
one core's encode rate at the T5-base shape: the measured inputs of the README's capacity plan.

    python eval/ray_throughput.py --corpus ../shared/data/dl19/retrieve_results_dl19_top100.json \
        --topics ../shared/data/dl19/topics.dl19-passage.txt --run ../shared/data/dl19/trec_results_dl19_top100.txt \
        --docs 3000 --repeats 3 --workdir WORK --json run_files/cluster/throughput.json

Without ``--address`` it starts a cluster of two one-CPU nodes here (a head node and a second node, as
``ray start`` makes them) and stops it at the end. Worker counts alternate in order (1, 2, then 2, 1, ...)
so that drift in the machine's speed falls on both. Each timing is one whole call of the Python API,
workers' start-up (loading the model) included. The stores written with one and two workers are checked to
be byte-identical. Re-ranking takes the queries of ``--run`` whose candidates are all among the encoded
documents, at depth 100. Writes the JSON and a PNG beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
RAY = str(Path(sys.executable).parent / "ray")


def start_cluster() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([RAY, "stop", "--force"], env=ENV, capture_output=True)
    subprocess.run([RAY, "start", "--head", "--num-cpus", "1", "--port", str(port), "--include-dashboard", "false",
                    "--disable-usage-stats"], env=ENV, capture_output=True, check=True)
    subprocess.run([RAY, "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1"], env=ENV, capture_output=True,
                   check=True)
    return f"127.0.0.1:{port}"


def digest(store: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(store.rglob("*")):
        if path.is_file() and path.name != ".lock":
            h.update(str(path.relative_to(store)).encode() + path.read_bytes())
    return h.hexdigest()


def t5_base_encode_rate(doc_tokens: int, docs: int = 64, batch_size: int = 32) -> dict:
    """One thread, a T5-base-shaped encoder (random weights: the cost is the shape's), passages of the
    measured average length."""
    import torch

    from pyserini_decrank.bench import load_bench_model

    torch.set_num_threads(1)
    model, _ = load_bench_model("t5-base")
    encoder = model.get_encoder().eval()
    ids = torch.randint(10, 32000, (batch_size, doc_tokens))
    with torch.inference_mode():
        encoder(input_ids=ids[:4])  # warm-up
        times = []
        for _ in range(docs // batch_size):
            start = time.perf_counter()
            encoder(input_ids=ids)
            times.append(time.perf_counter() - start)
    return {"shape": "t5-base", "doc_tokens": doc_tokens, "threads": 1, "batch_size": batch_size,
            "docs_per_s": round(batch_size / statistics.median(times), 2)}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, key, unit in ((axes[0], "encode", "documents/s"), (axes[1], "rerank", "queries/s")):
        rates = result[key]["median_rate"]
        workers = sorted(rates, key=int)
        bars = ax.bar([f"{w} worker{'s' * (w != '1')}" for w in workers], [rates[w] for w in workers],
                      color=["#1f77b4", "#ff7f0e"])
        ax.bar_label(bars, fmt="%.1f")
        ax.set_title(f"{key}: {result[key]['speedup']:.2f}x with two")
        ax.set_ylabel(unit)
    fig.suptitle("Ray, one-CPU workers on a 2-node local cluster (medians)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--topics", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--model", default="decrank-minilm")
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--shard-size", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--doc-tokens", type=float, default=87.1, help="for the T5-base encode rate")
    parser.add_argument("--address", default=None)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--json", required=True)
    args = parser.parse_args()

    from pyserini_decrank import read_corpus, read_run, read_topics
    from pyserini_decrank.cluster import RayOptions, encode_corpus_on_ray, write_run_on_ray
    from pyserini_decrank.rerank import load_reranker

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    docs = [d for _, d in zip(range(args.docs), read_corpus(args.corpus))]
    encoded = {d.docid for d in docs}
    run = {qid: hits for qid, hits in read_run(args.run).items() if all(h.docid in encoded for h in hits[:100])}
    queries = read_topics(args.topics)
    address = args.address or start_cluster()
    result: dict = {"model": args.model, "docs": len(docs), "shard_size": args.shard_size, "address_given": bool(args.address),
                    "encode": {"seconds": {"1": [], "2": []}}, "rerank": {"seconds": {"1": [], "2": []}, "queries": len(run),
                                                                           "depth": 100}}
    digests = set()
    try:
        for repeat in range(args.repeats):
            for workers in ((1, 2) if repeat % 2 == 0 else (2, 1)):
                store = work / f"store-{workers}"
                shutil.rmtree(store, ignore_errors=True)
                start = time.perf_counter()
                encode_corpus_on_ray(args.model, docs, store, RayOptions(address, workers=workers),
                                     shard_size=args.shard_size, progress=False)
                seconds = time.perf_counter() - start
                result["encode"]["seconds"][str(workers)].append(round(seconds, 2))
                digests.add(digest(store))
                print(f"encode, {workers} worker(s): {len(docs) / seconds:.1f} documents/s", flush=True)
            if run:
                options = dict(method="decoder", model=args.model, store=str((work / "store-1").resolve()))
                reranker = load_reranker(**options)
                for workers in ((1, 2) if repeat % 2 == 0 else (2, 1)):
                    start = time.perf_counter()
                    write_run_on_ray(reranker, options, queries, run, str(work / f"run-{workers}.txt"), depth=100,
                                     ray=RayOptions(address, workers=workers), progress=False)
                    seconds = time.perf_counter() - start
                    result["rerank"]["seconds"][str(workers)].append(round(seconds, 2))
                    print(f"rerank, {workers} worker(s): {len(run) / seconds:.2f} queries/s", flush=True)
    finally:
        import ray

        ray.shutdown()  # leave the cluster before it stops, or its raylets' ends read as crashes
        if not args.address:
            subprocess.run([RAY, "stop", "--force"], env=ENV, capture_output=True)
    result["stores_identical"] = len(digests) == 1
    result["runs_identical"] = (not run) or (work / "run-1.txt").read_bytes() == (work / "run-2.txt").read_bytes()
    for key, count in (("encode", len(docs)), ("rerank", len(run))):
        rates = {w: round(count / statistics.median(s), 2) for w, s in result[key]["seconds"].items() if s}
        result[key]["median_rate"] = rates
        result[key]["speedup"] = round(rates["2"] / rates["1"], 2) if len(rates) == 2 else None
    result["t5_base_one_core"] = t5_base_encode_rate(round(args.doc_tokens))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    plot(result, Path(args.json).with_suffix(".png"))
    print(json.dumps({k: result[k] for k in ("encode", "rerank", "stores_identical", "runs_identical", "t5_base_one_core")}))


if __name__ == "__main__":
    main()
