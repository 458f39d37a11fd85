"""Passages encoded per second by a model's encoder on one device: the rate behind the README's collection-scale
table (what writing a store costs per GPU or core).

    python eval/encode_rate.py --json run_files/bench/encode-rate-h100.json --device cuda \
        [--shape t5-base] [--doc-tokens 87] [--precision bf16 ...] [--batch-size 256 ...] [--repeats 10]

Random token ids of the given length (the shape's cost does not depend on the weights or the text); each
configuration is warmed up once, then timed ``repeats`` times (synchronised on a GPU), and its median kept.
FLOPs per passage are counted with ``torch.utils.flop_counter``, so the JSON carries the rate beside the share of
the device's measured matrix-product peak it reaches. A PNG beside the JSON plots the rate against the batch size.
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
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    precisions = args.precisions or ["bf16"]
    batch_sizes = args.batch_sizes or [64, 256, 1024]
    model, _ = load_bench_model(args.shape)
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
            result["rows"].append(row)
            print(json.dumps(row), flush=True)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
