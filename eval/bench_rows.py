"""Chosen rows of ``decrank bench``, each appended to a JSON-lines file the moment it ends: for a machine lent
for minutes, where a run stopped at its limit must keep what it measured. The rows of one precision share one
timing of the cross-attention baseline, as in ``decrank bench``; ``--threads`` bounds torch and faiss.

    python eval/bench_rows.py OUT.jsonl --shape t5-base --precision bf16 --precision fp32 \\
        --rows cross-kv:fp16,absorbed:PQ64,encoder-states:fp16,absorbed:fp16 --queries 3 --threads 2
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--shape", default="t5-base")
    parser.add_argument("--precision", action="append", default=None)
    parser.add_argument("--rows", default="cross-kv:fp16,absorbed:PQ64,encoder-states:fp16,absorbed:fp16",
                        help="content:codec pairs, comma-separated, in the order they are timed")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--doc-tokens", type=int, default=80)
    parser.add_argument("--query-tokens", type=int, default=10)
    parser.add_argument("--queries", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--attention", default="eager")
    args = parser.parse_args()

    import faiss
    import torch

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    from pyserini_decrank.bench import CrossTiming, bench_one, load_bench_model
    from pyserini_decrank.model import set_attention

    rows = [tuple(pair.split(":")) for pair in args.rows.split(",")]
    model, tokenizer = load_bench_model(args.shape)
    set_attention(model, args.attention)
    for precision in args.precision or ["fp32"]:
        cross = CrossTiming()
        for content, codec in rows:
            start = time.time()
            result = bench_one(model, tokenizer, args.shape, args.depth, args.doc_tokens, args.query_tokens, precision,
                               queries=args.queries, content=content, codec=codec, cross_timing=cross)
            with open(args.out, "a") as out:
                out.write(json.dumps(asdict(result)) + "\n")
            print(f"{precision} {content} {codec}: cross {result.cross_ms} ms, decoder {result.decoder_ms} ms, "
                  f"ratio {result.ratio}, flop_ratio {result.flop_ratio} ({time.time() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
