"""Passages encoded per second by a model's encoder on one device: the rate behind the README's collection-scale
table (what writing a store costs per GPU or core).

    python eval/encode_rate.py --json run_files/bench/encode-rate-h100.json --device cuda \
        [--shape t5-base] [--doc-tokens 87] [--precision bf16 ...] [--batch-size 256 ...] [--repeats 10] [--profile 256] \
        [--store-path]

Random token ids of the given length (the shape's cost does not depend on the weights or the text); each
configuration is warmed up once, then timed ``repeats`` times (synchronised on a GPU), and its median kept.
FLOPs per passage are counted with ``torch.utils.flop_counter``, so the JSON carries the rate beside the share of
the device's measured matrix-product peak it reaches. A PNG beside the JSON plots the rate against the batch size.

``--profile B`` also runs ``repeats`` batches of B under torch's profiler (first precision) and records where the
time goes: the device's kernel time by kind (matrix products, attention's softmax and batched products,
everything else), how busy the device was over the wall time (the rest is launch overhead and host work), and
the ten costliest operators.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from pyserini_decrank.bench import load_bench_model, matmul_peak_gflops
from pyserini_decrank.model import PRECISIONS


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def encoder_flops(encoder: torch.nn.Module, doc_tokens: int, device: torch.device) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    ids = torch.randint(10, 32000, (1, doc_tokens), device=device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        encoder(input_ids=ids)
    return float(counter.get_total_flops())


def rate(encoder, batch_size: int, doc_tokens: int, dtype: torch.dtype, device: torch.device, repeats: int) -> float:
    ids = torch.randint(10, 32000, (batch_size, doc_tokens), device=device)
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        encoder(input_ids=ids)
        synchronise(device)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            encoder(input_ids=ids)
            synchronise(device)
            times.append(time.perf_counter() - start)
    return batch_size / statistics.median(times)


MATMUL_MARKS = ("gemm", "matmul", "aten::mm", "aten::addmm", "aten::linear", "cutlass", "sm80_", "sm90_", "mkldnn", "onednn")
ATTENTION_MARKS = ("softmax", "bmm", "attention", "fmha", "flash")


def kernel_kind(name: str) -> str:
    lowered = name.lower()
    if any(mark in lowered for mark in ATTENTION_MARKS):
        return "attention"
    if any(mark in lowered for mark in MATMUL_MARKS):
        return "matmul"
    return "other"


def profile(encoder, batch_size: int, doc_tokens: int, dtype: torch.dtype, device: torch.device, repeats: int) -> dict:
    """Where ``repeats`` forward passes of a batch spend their time (see the module's docstring)."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    ids = torch.randint(10, 32000, (batch_size, doc_tokens), device=device)
    on_gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        encoder(input_ids=ids)
        synchronise(device)
        with torch_profile(activities=activities) as prof:
            start = time.perf_counter()
            for _ in range(repeats):
                encoder(input_ids=ids)
            synchronise(device)
            wall = time.perf_counter() - start
    events = prof.key_averages()
    # device time on a GPU; on a CPU the operators' own time (leaves only, so nothing is counted twice)
    timed = [(e.key, (e.self_device_time_total if on_gpu else e.self_cpu_time_total) / 1e6) for e in events]
    timed = [(k, t) for k, t in timed if t > 0 and (on_gpu or k.startswith("aten::") or "mkldnn" in k)]
    kinds: dict[str, float] = {}
    for key, seconds in timed:
        kinds[kernel_kind(key)] = kinds.get(kernel_kind(key), 0.0) + seconds
    busy = sum(kinds.values())
    return {"batch_size": batch_size, "repeats": repeats, "wall_s": round(wall, 4),
            "busy_s": round(busy, 4), "busy_share_of_wall": round(busy / wall, 3),
            "by_kind_s": {k: round(v, 4) for k, v in sorted(kinds.items())},
            "top": [{"name": k[:120], "s": round(t, 4)} for k, t in sorted(timed, key=lambda kt: -kt[1])[:10]]}


def store_path_rate(qlm, batch_size: int, doc_tokens: int, repeats: int) -> float:
    """Passages per second through what `decrank encode` runs per batch (``QueryLikelihoodModel.encode_ids``:
    padding the ids, the encoder under the model's compute precision with weights cast once, and the states
    copied back to the host unpadded), beside the bare encoder's ``rate``: the difference is ours to fix."""
    batch = torch.randint(10, 32000, (batch_size, doc_tokens)).tolist()
    qlm.encode_ids(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        qlm.encode_ids(batch)  # ends with a copy to the host: synchronised
        times.append(time.perf_counter() - start)
    return batch_size / statistics.median(times)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for precision in result["precisions"]:
        rows = [r for r in result["rows"] if r["precision"] == precision]
        ax.plot([r["batch_size"] for r in rows], [r["docs_per_s"] for r in rows], "o-", label=precision)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size (passages)")
    ax.set_ylabel("passages encoded per second")
    ax.set_title(f"{result['shape']} encoder, {result['doc_tokens']} tokens, {result['device_name']}", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--shape", default="t5-base")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--doc-tokens", type=int, default=87)
    ap.add_argument("--precision", dest="precisions", action="append", choices=list(PRECISIONS))
    ap.add_argument("--batch-size", dest="batch_sizes", action="append", type=int)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--profile", type=int, default=None, metavar="BATCH", help="profile this batch size (first precision)")
    ap.add_argument("--store-path", action="store_true",
                    help="also time `decrank encode`'s own per-batch path (padding, cast-once weights, copy to the host)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    precisions = args.precisions or ["bf16"]
    batch_sizes = args.batch_sizes or [64, 256, 1024]
    model, tokenizer = load_bench_model(args.shape)
    encoder = model.get_encoder().eval().to(device)
    flops = encoder_flops(encoder, args.doc_tokens, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    result = {"shape": args.shape, "doc_tokens": args.doc_tokens, "device": args.device, "device_name": name,
              "torch": torch.__version__, "repeats": args.repeats, "gflops_per_passage": round(flops / 1e9, 2),
              "precisions": precisions, "peak_tflops": {}, "rows": []}
    for precision in precisions:
        dtype = PRECISIONS[precision] or torch.float32
        # the chip's matrix-product ceiling, from products of up to 8192 x 8192
        peak = matmul_peak_gflops(precision, max_n=8192, repeats=args.repeats, device=args.device) / 1e3
        result["peak_tflops"][precision] = round(peak, 2)
        for batch_size in batch_sizes:
            docs_per_s = rate(encoder, batch_size, args.doc_tokens, dtype, device, args.repeats)
            row = {"precision": precision, "batch_size": batch_size, "docs_per_s": round(docs_per_s, 1),
                   "share_of_peak": round(docs_per_s * flops / 1e12 / peak, 3)}
            if args.store_path:
                from pyserini_decrank.model import QueryLikelihoodModel, ScoringConfig

                qlm = QueryLikelihoodModel(model, tokenizer, ScoringConfig(), name_or_path=args.shape, device=args.device,
                                           precision=precision)
                store_rate = store_path_rate(qlm, batch_size, args.doc_tokens, args.repeats)
                row.update(store_path_docs_per_s=round(store_rate, 1),
                           store_path_share_of_peak=round(store_rate * flops / 1e12 / peak, 3))
            result["rows"].append(row)
            print(json.dumps(row), flush=True)
    if args.profile:
        dtype = PRECISIONS[precisions[0]] or torch.float32
        result["profile"] = profile(encoder, args.profile, args.doc_tokens, dtype, device, args.repeats)
        print(json.dumps(result["profile"]), flush=True)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
