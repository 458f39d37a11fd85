"""Which batch size should `decrank rerank` use? Median ms per query of ``DecoderReranker.score`` for several
batch sizes, taken in turn on each query in one process, so that the machine's drift hits them alike.

    python eval/batch_size.py --store STORE --topics TOPICS --run RUN [--model decrank-minilm] \
        [--precision fp32] [--sizes 16,32,64,100] [--depth 100] [--threads 2] [--json OUT.json]

With ``--json`` the figures (every query's times, the CPU they ran on) go to OUT.json and a plot beside it.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from pyserini_decrank import DecoderReranker, EncoderStateStore, QueryLikelihoodModel, retain_freed_memory
from pyserini_decrank.io import read_run, read_topics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("--store", "--topics", "--run"):
        ap.add_argument(name, required=True)
    ap.add_argument("--model", default="decrank-minilm")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--attention", default="eager")
    ap.add_argument("--sizes", default="16,32,64,100")
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    retain_freed_memory()
    topics, run = read_topics(args.topics), read_run(args.run)
    model = QueryLikelihoodModel.from_pretrained(args.model, precision=args.precision, attention=args.attention)
    reranker = DecoderReranker(model, EncoderStateStore(args.store))
    sizes = [int(s) for s in args.sizes.split(",")]
    times: dict[int, list[float]] = {size: [] for size in sizes}
    for qid, hits in run.items():
        docids = [h.docid for h in hits[: args.depth]]
        for size in sizes:
            reranker.batch_size = size
            start = time.perf_counter()
            reranker.score(topics[qid], docids, qid=qid)
            times[size].append((time.perf_counter() - start) * 1e3)
    print(f"{args.precision}: median ms per query by batch size " +
          ", ".join(f"{size}: {statistics.median(ms):.1f}" for size, ms in times.items()))
    if args.json:
        record = {"config": {k: v for k, v in vars(args).items() if k != "json"}, "cpu": _cpu(),
                  "median_ms": {str(size): statistics.median(ms) for size, ms in times.items()},
                  "ms_per_query": {str(size): ms for size, ms in times.items()}}
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
        plot(times, args.precision, Path(args.json).with_suffix(".png"))


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def plot(times: dict[int, list[float]], precision: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.boxplot(list(times.values()), showfliers=False)
    ax.set_xticks(range(1, len(times) + 1), [str(s) for s in times])
    ax.set_xlabel("candidates per batch (--batch-size)")
    ax.set_ylabel(f"ms per query ({precision})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
