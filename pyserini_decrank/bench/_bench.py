"""``decrank bench``: the cross-attention and decoder-only paths side by side, in one process, on the
same candidates, with the machine's matrix-product throughput measured in the same run as the limit.

Random weights and random token ids: timing does not depend on them. Each configuration is timed over
several query batches after a warm-up batch; medians and 95th percentiles per query are reported. The
decoder path is timed from per-document matrices on the CPU, as the store hands them back, so batching them
(and, on a GPU, copying them over) is part of its cost. With ``query_batch`` N, the candidates of N queries
go through both paths together, as ``decrank rerank --query-batch`` pools them; on a GPU each batch is
timed with CUDA events after the device is synchronised.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ..errors import DecrankError
from ..model import PRECISIONS, CopySpec, QueryLikelihoodModel, ScoringConfig, check_device
from ..rerank import BiEncoderReranker, CrossAttentionReranker
from ..store import FaissCodec

# T5 v1.0 shapes (tied embeddings), as in the public t5-small/base/large configs
SHAPES = {
    "t5-small": dict(d_model=512, d_ff=2048, num_layers=6, num_heads=8, d_kv=64),
    "t5-base": dict(d_model=768, d_ff=3072, num_layers=12, num_heads=12, d_kv=64),
    "t5-large": dict(d_model=1024, d_ff=4096, num_layers=24, num_heads=16, d_kv=64),
}
TEMPLATE_TOKENS = 8  # "Query: ... Document: ... Relevant:" around query and document


@dataclass
class BenchResult:
    shape: str
    content: str  # what the decoder path reads and how (``DECODER_PATHS``)
    codec: str  # the codec of the store it reads
    bytes_per_token: float  # that store's bytes per token
    depth: int
    doc_tokens: int
    query_tokens: int
    precision: str
    attention: str  # the attention kernel both paths ran
    threads: int
    queries: int
    cross_ms: float
    cross_p95_ms: float
    decoder_ms: float
    decoder_p95_ms: float
    ratio: float
    flop_ratio: float  # cross FLOPs / decoder FLOPs: the speed-up at equal efficiency
    cross_candidates_per_s: float
    decoder_candidates_per_s: float
    cross_gflops: float
    decoder_gflops: float
    peak_gflops: float
    decoder_fraction_of_peak: float
    device: str = "cpu"  # where both paths ran (the GPU's name on CUDA)
    query_batch: int = 1  # queries whose candidates went through together; the *_ms fields are per query
    batch_size: int = 100  # rows per forward pass of either path
    codes_decoded_on: str = "cpu"  # where a faiss codec's codes were decoded: the CPU (faiss) or the GPU (torch)
    cross_queries_per_s: float = 0.0
    decoder_queries_per_s: float = 0.0
    biencoder_ms: float | None = None
    copy: str = "none"  # copy-aware scoring timed beside the decoder path (``CopySpec``'s form)
    decoder_copy_ms: float | None = None  # the decoder path with that copying, median
    copy_overhead: float | None = None  # decoder_copy_ms / decoder_ms - 1, both from this run


class _StubTokenizer:
    """Enough of a tokenizer for timing: the bench feeds token ids directly."""

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab
        self.pad_token_id, self.cls_token_id, self.bos_token_id = 0, None, None

    def __call__(self, text, add_special_tokens=True, **_):
        return {"input_ids": [5] if text == "true" else [6]}

    def decode(self, ids):
        return "x"

    def get_vocab(self):
        return {str(i): i for i in range(8)}


def _t5(shape: str) -> tuple[torch.nn.Module, object]:
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(vocab_size=32128, feed_forward_proj="relu", tie_word_embeddings=True, dropout_rate=0.0,
                      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, **SHAPES[shape])
    return T5ForConditionalGeneration(config).eval(), _StubTokenizer(config.vocab_size)


def load_bench_model(shape: str) -> tuple[torch.nn.Module, object]:
    if shape in SHAPES:
        return _t5(shape)
    qlm = QueryLikelihoodModel.from_pretrained(shape)
    return qlm.model, qlm.tokenizer


def matmul_peak_gflops(precision: str, max_n: int = 2048, min_seconds: float = 0.05, repeats: int = 7,
                       device: str = "cpu") -> float:
    """Median throughput of an n-cubed matrix product at ``precision`` on ``device``: that chip's limit. ``n``
    doubles from 256 until one product takes ``min_seconds`` (or reaches ``max_n``), so that a CPU without bf16
    matrix instructions, where bf16 runs hundreds of times slower, is measured in seconds, not minutes."""
    dtype = PRECISIONS[precision] or torch.float32
    on = torch.device(device)
    sync = torch.cuda.synchronize if on.type == "cuda" else (lambda: None)
    n = 256
    while True:
        a, b = torch.randn(n, n, dtype=dtype, device=on), torch.randn(n, n, dtype=dtype, device=on)
        a @ b
        sync()
        start = time.perf_counter()
        a @ b
        sync()
        if time.perf_counter() - start >= min_seconds or n >= max_n:
            break
        n *= 2
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


class Timer:
    """Seconds one call takes on ``device``: wall time on a CPU; on a GPU, CUDA events recorded around the
    call after the device is synchronised, so queued kernels are neither missed nor counted twice."""

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)

    def __call__(self, fn: Callable[[int], None], q: int) -> float:
        if self.device.type != "cuda":
            start = time.perf_counter()
            fn(q)
            return time.perf_counter() - start
        torch.cuda.synchronize(self.device)
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        fn(q)
        end.record()
        end.synchronize()
        return begin.elapsed_time(end) / 1e3


def _time(fn: Callable[[int], None], queries: int, timer: Timer | None = None) -> list[float]:
    timer = timer or Timer()
    fn(-1)  # warm-up
    return [timer(fn, q) for q in range(queries)]


def _time_alternating(fns: list[Callable[[int], None]], queries: int, timer: Timer | None = None) -> list[list[float]]:
    """Each function's times over ``queries``, taking turns query by query (after one warm-up each), so that
    a drift in the machine's speed touches all of them alike."""
    timer = timer or Timer()
    for fn in fns:
        fn(-1)
    out: list[list[float]] = [[] for _ in fns]
    for q in range(queries):
        for times, fn in zip(out, fns):
            times.append(timer(fn, q))
    return out


def _cross_attention_of(content: str) -> str:
    """How the decoder path of a bench content reads stored states."""
    return "absorbed" if content == "absorbed" else "project"


def _flops(fn: Callable[[int], None]) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        fn(0)
    return counter.get_total_flops()


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


# what the decoder path reads and how: encoder states through the library's key/value projections, stored
# cross-attention keys/values, or encoder states with the projections absorbed into the query
# how the timed decoder path reads a store: encoder states projected by the library, stored keys/values,
# or encoder states with cross-attention absorbed (``model.CONTENTS`` is what a store holds)
DECODER_PATHS = ("encoder-states", "cross-kv", "absorbed")
NUMERIC_CODECS = ("fp32", "fp16", "bf16")


def codec_fits_content(codec: str | None, content: str) -> bool:
    """A cross-kv store keeps numbers: faiss codecs are trained on encoder states (``--codec`` on encode)."""
    return content != "cross-kv" or codec is None or codec in NUMERIC_CODECS


@dataclass
class Candidates:
    """The same random candidates for both paths: what each would be handed for one query."""

    cross_ids: torch.Tensor  # (depth, query + document + template tokens), the cross path's input
    documents: list  # what a store of ``codec`` holds per document: a matrix of numbers, or faiss codes
    label_ids: list[int]  # the query's tokens and end-of-sequence token
    cross_kv: bool  # whether ``documents`` hold cross-attention keys/values rather than encoder states
    codec: str = "fp32"
    bytes_per_token: float = 4.0
    decode: Callable[[list], list[torch.Tensor]] = list  # the store's one decoding step per batch of documents
    token_ids: list = field(default_factory=list)  # each document's token ids, for copy-aware scoring
    batch_label_ids: list[list[int]] = field(default_factory=list)  # every query's labels in a query batch, this one first
    batch_cross_ids: torch.Tensor | None = None  # (queries x depth, ...) the cross path's input for a query batch
    device_decode: Callable[[torch.Tensor], torch.Tensor] | None = None  # the codec's torch decoder, where it has one


@dataclass
class CrossTiming:
    """The cross-attention baseline's times and FLOPs, measured once and shared by every row beside it."""

    times: list[float] | None = None
    flops: int = 0


def make_candidates(qlm: QueryLikelihoodModel, depth: int, doc_tokens: int, query_tokens: int,
                    content: str = "encoder-states", codec: str | None = None, query_batch: int = 1) -> Candidates:
    """Random candidates as a store of ``codec`` would hand them back (default: numbers in the compute
    precision), on the CPU. A faiss codec is trained on these candidates' own token states first. With
    ``query_batch`` N, N queries share the ``depth`` stored candidates (what a query costs does not depend
    on which documents it reads), each with its own labels and its own cross-attention input."""
    torch.manual_seed(1)
    config = qlm.model.config
    vocab = getattr(config, "vocab_size", None) or 30522
    vocab = getattr(getattr(config, "decoder", None), "vocab_size", vocab)
    doc_ids = torch.randint(10, vocab, (depth, doc_tokens))
    cross_ids = torch.randint(10, vocab, (depth, query_tokens + doc_tokens + TEMPLATE_TOKENS))
    label_ids = torch.randint(10, vocab, (query_tokens + 1,)).tolist()
    batch_labels = [label_ids] + [torch.randint(10, vocab, (query_tokens + 1,)).tolist() for _ in range(query_batch - 1)]
    batch_cross = torch.cat([cross_ids, torch.randint(10, vocab, ((query_batch - 1) * depth, cross_ids.shape[1]))])
    with torch.inference_mode():
        states = torch.cat([qlm.encoder(input_ids=doc_ids[i : i + 50].to(qlm.device)).last_hidden_state.cpu()
                            for i in range(0, depth, 50)])
    cross_kv = content == "cross-kv"
    if cross_kv:
        states = qlm.cross_keys_values(states, torch.ones(states.shape[:2], dtype=torch.long)).cpu()
    name = codec or qlm.precision
    batch = dict(batch_label_ids=batch_labels, batch_cross_ids=batch_cross)
    if name in NUMERIC_CODECS:
        dtype = PRECISIONS[name] or torch.float32
        return Candidates(cross_ids=cross_ids, documents=list(states.to(dtype).unbind(0)), label_ids=label_ids,
                          cross_kv=cross_kv, codec=name, bytes_per_token=states.shape[-1] * dtype.itemsize,
                          token_ids=list(doc_ids.numpy()), **batch)
    faiss_codec = FaissCodec(name, states.shape[-1])
    flat = states.reshape(-1, states.shape[-1]).float()
    faiss_codec.train(flat.numpy())
    codes = faiss_codec.to_storage(flat).reshape(depth, doc_tokens, -1)
    return Candidates(cross_ids=cross_ids, documents=list(codes), label_ids=label_ids, cross_kv=False, codec=name,
                      bytes_per_token=float(faiss_codec.code_size), decode=faiss_codec.decode_many,
                      token_ids=list(doc_ids.numpy()), device_decode=faiss_codec.device_decoder(), **batch)


def default_batch_size(device: str | torch.device, depth: int, query_batch: int) -> int:
    """Rows per forward pass when none is given: 100 on a CPU (about the fastest on 2 to 16 cores); on a GPU,
    a whole query batch in one pass, up to 8,192 rows (the cross path's activations at T5-large stay within
    a few GB)."""
    return 100 if torch.device(device).type != "cuda" else min(depth * query_batch, 8192)


def bench_one(model, tokenizer, shape: str, depth: int, doc_tokens: int, query_tokens: int, precision: str,
              queries: int = 5, batch_size: int | None = None, with_biencoder: bool = False,
              content: str = "encoder-states", codec: str | None = None,
              cross_timing: CrossTiming | None = None, copy: str = "none", device: str = "cpu",
              query_batch: int = 1) -> BenchResult:
    """One row: the decoder path reading ``content`` from a ``codec`` store against the cross-attention
    baseline (timed here, or once for all rows that share ``cross_timing``), both on ``device``, the
    candidates of ``query_batch`` queries together in forward passes of ``batch_size`` rows
    (``default_batch_size``); ``queries`` such batches are timed. With ``copy``, the decoder path with that
    copy-aware scoring is timed too, alternating with the plain one batch by batch (a learned gate is a
    fresh copy head: its cost does not depend on its weights)."""
    if content not in DECODER_PATHS:
        raise DecrankError(f"unknown bench content {content!r}; known: {', '.join(DECODER_PATHS)}")
    check_device(device)
    batch_size = batch_size or default_batch_size(device, depth, query_batch)
    qlm = QueryLikelihoodModel(model, tokenizer, ScoringConfig(), name_or_path=shape, precision=precision,
                               cross_attention=_cross_attention_of(content), device=device)
    cross = CrossAttentionReranker(model, tokenizer, precision=precision, device=device)
    candidates = make_candidates(qlm, depth, doc_tokens, query_tokens, content, codec, query_batch)
    rows = depth * query_batch
    cross_ids = candidates.batch_cross_ids[:rows]
    documents = candidates.documents * query_batch  # references: each query of the batch reads the same stored rows
    labels = [ids for ids in candidates.batch_label_ids for _ in range(depth)]
    token_ids = candidates.token_ids * query_batch
    cross_kv, decode, on_device = candidates.cross_kv, candidates.decode, None
    if torch.device(device).type == "cuda" and candidates.device_decode is not None:
        # as DecoderReranker does on a GPU: codes go over, and are decoded there
        on_device, decode = candidates.device_decode, list
        documents = [torch.from_numpy(np.asarray(codes)) for codes in candidates.documents] * query_batch
    timer = Timer(device)

    def run_cross(_: int) -> None:
        for i in range(0, rows, batch_size):
            ids = cross_ids[i : i + batch_size]
            cross.score_ids(ids, torch.ones_like(ids))

    def run_decoder(_: int, scorer: QueryLikelihoodModel = qlm) -> None:
        for i in range(0, rows, batch_size):  # what DecoderReranker.score_many does once the store has answered
            tokens = token_ids[i : i + batch_size] if scorer.copy.active else None
            scorer.score_documents(labels[i : i + batch_size], decode(documents[i : i + batch_size]), cross_kv=cross_kv,
                                   token_ids=tokens, decode=on_device)

    cross_timing = cross_timing or CrossTiming()
    if cross_timing.times is None:
        cross_timing.times, cross_timing.flops = _time(run_cross, queries, timer), _flops(run_cross)
    cross_t, cross_flops = cross_timing.times, cross_timing.flops
    copy_ms, spec = None, CopySpec.parse(copy)
    if spec.active:
        copying = QueryLikelihoodModel(model, tokenizer, ScoringConfig(), name_or_path=shape, precision=precision,
                                       cross_attention=_cross_attention_of(content), device=device)
        if spec.learned:
            copying.add_copy_head()
        copying.set_copy(spec)
        decoder_t, copy_t = _time_alternating([run_decoder, lambda q: run_decoder(q, copying)], queries, timer)
        copy_ms = statistics.median(copy_t) * 1e3 / query_batch
    else:
        decoder_t = _time(run_decoder, queries, timer)
    decoder_flops = _flops(run_decoder)
    on_gpu = torch.device(device).type == "cuda"
    peak = matmul_peak_gflops(precision, device=device, max_n=8192 if on_gpu else 2048)
    # per query: each timed call scored a batch of ``query_batch`` queries
    cross_t, decoder_t = [t / query_batch for t in cross_t], [t / query_batch for t in decoder_t]
    cross_ms, decoder_ms = statistics.median(cross_t) * 1e3, statistics.median(decoder_t) * 1e3
    biencoder_ms = None
    if with_biencoder:
        bi = BiEncoderReranker.from_pretrained(texts={}, device=device)
        bi.batch_size = batch_size
        bi_ids = torch.randint(1000, 30000, (rows, doc_tokens))

        def run_bi(_: int) -> None:
            with torch.inference_mode():
                for i in range(0, rows, batch_size):
                    bi.model(input_ids=bi_ids[i : i + batch_size].to(bi.device))

        biencoder_ms = statistics.median(_time(run_bi, queries, timer)) * 1e3 / query_batch
    decoder_s, cross_s = decoder_ms / 1e3, cross_ms / 1e3
    return BenchResult(
        shape=shape, content=content, codec=candidates.codec, bytes_per_token=candidates.bytes_per_token, depth=depth,
        doc_tokens=doc_tokens, query_tokens=query_tokens, precision=precision,
        attention=getattr(model.config, "_attn_implementation", None) or "default", threads=torch.get_num_threads(), queries=queries,
        cross_ms=round(cross_ms, 2), cross_p95_ms=round(_p95(cross_t) * 1e3, 2),
        decoder_ms=round(decoder_ms, 2), decoder_p95_ms=round(_p95(decoder_t) * 1e3, 2),
        ratio=round(cross_ms / decoder_ms, 2), flop_ratio=round(cross_flops / decoder_flops, 2),
        cross_candidates_per_s=round(depth / cross_s, 1), decoder_candidates_per_s=round(depth / decoder_s, 1),
        cross_gflops=round(cross_flops / query_batch / cross_s / 1e9, 3),
        decoder_gflops=round(decoder_flops / query_batch / decoder_s / 1e9, 3),
        peak_gflops=round(peak, 1), decoder_fraction_of_peak=round(decoder_flops / query_batch / decoder_s / 1e9 / peak, 3),
        device=device_name(device), query_batch=query_batch, batch_size=batch_size,
        codes_decoded_on="gpu" if on_device is not None else "cpu",
        cross_queries_per_s=round(1 / cross_s, 2), decoder_queries_per_s=round(1 / decoder_s, 2),
        biencoder_ms=None if biencoder_ms is None else round(biencoder_ms, 2),
        copy=str(spec), decoder_copy_ms=None if copy_ms is None else round(copy_ms, 2),
        copy_overhead=None if copy_ms is None else round(copy_ms / decoder_ms - 1, 3),
    )


def device_name(device: str | torch.device) -> str:
    """The chip a figure comes from: ``cuda: NVIDIA H100 80GB HBM3``, or ``cpu: `` and the processor's model
    name where the system tells it."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return "cpu: " + line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu: " + (platform.processor() or platform.machine())


def plot(results: list[BenchResult], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    short = {"encoder-states": "states", "cross-kv": "kv", "absorbed": "absorbed"}
    labels = [f"{r.shape} {r.precision}\n{short[r.content]} {r.codec}\nd={r.depth} {r.doc_tokens} tok"
              + (f"\n{r.query_batch} q/batch" if r.query_batch > 1 else "") for r in results]
    x = range(len(results))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(results)), 4.5))
    ax.bar([i - 0.2 for i in x], [r.cross_ms for r in results], width=0.4, label="cross-attention (monoT5 way)")
    ax.bar([i + 0.2 for i in x], [r.decoder_ms for r in results], width=0.4, label="decoder only (ED2LM)")
    for i, r in zip(x, results):
        ax.text(i, max(r.cross_ms, r.decoder_ms) * 1.05, f"{r.ratio:.1f}x", ha="center")
    ax.set_yscale("log")
    ax.set_ylabel("median ms per query (log scale)")
    ax.set_xticks(list(x), labels, fontsize=8)
    ax.legend()
    where = results[0].device if results[0].device.startswith("cuda") else f"{results[0].device}, {results[0].threads} threads"
    ax.set_title(f"re-ranking cost per query ({where})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def save_json(results: list[BenchResult], path: str | Path) -> None:
    Path(path).write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
