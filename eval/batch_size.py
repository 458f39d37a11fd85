"""Which batch size should `decrank rerank` use? Median ms per query of ``DecoderReranker.score`` for several
batch sizes, taken in turn on each query in one process, so that the machine's drift hits them alike.

    python eval/batch_size.py --store STORE --topics TOPICS --run RUN [--model decrank-minilm] \
        [--precision fp32] [--sizes 16,32,64,100] [--depth 100] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

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


if __name__ == "__main__":
    main()
