"""Where the time of each path goes: the cross-attention forward and the decoder-only path, one query each,
under torch's profiler, on the same random candidates as `decrank bench`.

It answers how far the decoder path could still go at a given shape: its matrix products alone set a floor
on its time, so "cross time / decoder matrix-product time" bounds the ratio any exact decoder path reaches.

    python eval/profile_decoder.py --shape t5-base --precision bf16 --content cross-kv --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

from pyserini_decrank import retain_freed_memory
from pyserini_decrank.bench import DECODER_PATHS, load_bench_model, make_candidates
from pyserini_decrank.model import QueryLikelihoodModel, ScoringConfig
from pyserini_decrank.model import set_attention
from pyserini_decrank.rerank import CrossAttentionReranker

MATRIX_PRODUCTS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}


def profiled_ms(run, repeats: int) -> tuple[float, dict[str, float]]:
    """Median wall time of ``run`` and, from one profiled call, the self time of each operator (ms)."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    ops = {e.key: e.self_cpu_time_total / 1e3 for e in prof.key_averages()}
    return statistics.median(times), ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="t5-base")
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--content", default="cross-kv", choices=list(DECODER_PATHS))
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--doc-tokens", type=int, default=80)
    parser.add_argument("--query-tokens", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--attention", default="eager", choices=["sdpa", "eager"])
    parser.add_argument("--json", help="write the summary here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    retain_freed_memory()
    model, tokenizer = load_bench_model(args.shape)
    set_attention(model, args.attention)
    qlm = QueryLikelihoodModel(model, tokenizer, ScoringConfig(), name_or_path=args.shape, precision=args.precision,
                               cross_attention="absorbed" if args.content == "absorbed" else "project")
    cross = CrossAttentionReranker(model, tokenizer, precision=args.precision)
    candidates = make_candidates(qlm, args.depth, args.doc_tokens, args.query_tokens, args.content)

    def run_cross() -> None:
        cross.score_ids(candidates.cross_ids, torch.ones_like(candidates.cross_ids))

    def run_decoder() -> None:
        qlm.score_documents(candidates.label_ids, candidates.documents, cross_kv=candidates.cross_kv)

    summary = {key: getattr(args, key) for key in ("shape", "precision", "content", "depth", "doc_tokens",
                                                      "query_tokens", "threads", "attention")}
    for name, run in (("cross", run_cross), ("decoder", run_decoder)):
        wall, ops = profiled_ms(run, args.repeats)
        products = sum(ms for op, ms in ops.items() if op in MATRIX_PRODUCTS)
        top = sorted(ops.items(), key=lambda item: -item[1])[:8]
        summary[name] = {"ms": round(wall, 1), "matrix_product_ms": round(products, 1),
                         "top_ops_ms": {op: round(ms, 1) for op, ms in top}}
        print(f"{name}: {wall:.0f} ms median, matrix products {products:.0f} ms in the profiled call; top operators:")
        for op, ms in top:
            print(f"  {op:<24} {ms:9.1f} ms")
    bound = summary["cross"]["ms"] / summary["decoder"]["matrix_product_ms"]
    summary["ratio"] = round(summary["cross"]["ms"] / summary["decoder"]["ms"], 2)
    summary["ratio_if_decoder_were_only_matrix_products"] = round(bound, 2)
    print(f"ratio cross/decoder {summary['ratio']}; with the decoder's matrix products alone: {bound:.2f}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(summary, out, indent=2)


if __name__ == "__main__":
    main()
