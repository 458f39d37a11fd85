"""``decrank bench``: the cross-attention and decoder-only paths side by side, in one process, on the
same candidates, with the machine's matrix-product throughput measured in the same run as the limit.

Random weights and random token ids: timing does not depend on them. Each configuration is timed over
several queries after a warm-up query; medians and 95th percentiles are reported. The decoder path is
timed from per-document matrices, as the store hands them back, so batching them is part of its cost.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..errors import DecrankError
from ..model import PRECISIONS, CopySpec, QueryLikelihoodModel, ScoringConfig
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


def _time(fn: Callable[[int], None], queries: int) -> list[float]:
    fn(-1)  # warm-up
    out = []
    for q in range(queries):
        start = time.perf_counter()
        fn(q)
        out.append(time.perf_counter() - start)
    return out


def _time_alternating(fns: list[Callable[[int], None]], queries: int) -> list[list[float]]:
    """Each function's times over ``queries``, taking turns query by query (after one warm-up each), so that
    a drift in the machine's speed touches all of them alike."""
    for fn in fns:
        fn(-1)
    out: list[list[float]] = [[] for _ in fns]
    for q in range(queries):
        for times, fn in zip(out, fns):
            start = time.perf_counter()
            fn(q)
            times.append(time.perf_counter() - start)
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


@dataclass
class CrossTiming:
    """The cross-attention baseline's times and FLOPs, measured once and shared by every row beside it."""

    times: list[float] | None = None
    flops: int = 0


def make_candidates(qlm: QueryLikelihoodModel, depth: int, doc_tokens: int, query_tokens: int,
                    content: str = "encoder-states", codec: str | None = None) -> Candidates:
    """Random candidates as a store of ``codec`` would hand them back (default: numbers in the compute
    precision). A faiss codec is trained on these candidates' own token states first."""
    torch.manual_seed(1)
    config = qlm.model.config
    vocab = getattr(config, "vocab_size", None) or 30522
    vocab = getattr(getattr(config, "decoder", None), "vocab_size", vocab)
    doc_ids = torch.randint(10, vocab, (depth, doc_tokens))
    cross_ids = torch.randint(10, vocab, (depth, query_tokens + doc_tokens + TEMPLATE_TOKENS))
    label_ids = torch.randint(10, vocab, (query_tokens + 1,)).tolist()
    with torch.inference_mode():
        states = torch.cat([qlm.encoder(input_ids=doc_ids[i : i + 50]).last_hidden_state for i in range(0, depth, 50)])
    cross_kv = content == "cross-kv"
    if cross_kv:
        states = qlm.cross_keys_values(states, torch.ones(states.shape[:2], dtype=torch.long))
    name = codec or qlm.precision
    if name in NUMERIC_CODECS:
        dtype = PRECISIONS[name] or torch.float32
        return Candidates(cross_ids=cross_ids, documents=list(states.to(dtype).unbind(0)), label_ids=label_ids,
                          cross_kv=cross_kv, codec=name, bytes_per_token=states.shape[-1] * dtype.itemsize,
                          token_ids=list(doc_ids.numpy()))
    faiss_codec = FaissCodec(name, states.shape[-1])
    flat = states.reshape(-1, states.shape[-1]).float()
    faiss_codec.train(flat.numpy())
    codes = faiss_codec.to_storage(flat).reshape(depth, doc_tokens, -1)
    return Candidates(cross_ids=cross_ids, documents=list(codes), label_ids=label_ids, cross_kv=False, codec=name,
                      bytes_per_token=float(faiss_codec.code_size), decode=faiss_codec.decode_many,
                      token_ids=list(doc_ids.numpy()))


def bench_one(model, tokenizer, shape: str, depth: int, doc_tokens: int, query_tokens: int, precision: str,
              queries: int = 5, batch_size: int = 100, with_biencoder: bool = False,
              content: str = "encoder-states", codec: str | None = None,
              cross_timing: CrossTiming | None = None, copy: str = "none") -> BenchResult:
    """One row: the decoder path reading ``content`` from a ``codec`` store against the cross-attention
    baseline (timed here, or once for all rows that share ``cross_timing``); with ``copy``, the decoder path
    with that copy-aware scoring is timed too, alternating with the plain one query by query (a learned
    gate is a fresh copy head: its cost does not depend on its weights)."""
    if content not in DECODER_PATHS:
        raise DecrankError(f"unknown bench content {content!r}; known: {', '.join(DECODER_PATHS)}")
    qlm = QueryLikelihoodModel(model, tokenizer, ScoringConfig(), name_or_path=shape, precision=precision,
                               cross_attention=_cross_attention_of(content))
    cross = CrossAttentionReranker(model, tokenizer, precision=precision)
    candidates = make_candidates(qlm, depth, doc_tokens, query_tokens, content, codec)
    cross_ids, documents, label_ids = candidates.cross_ids, candidates.documents, candidates.label_ids
    cross_kv, decode = candidates.cross_kv, candidates.decode

    def run_cross(_: int) -> None:
        for i in range(0, depth, batch_size):
            ids = cross_ids[i : i + batch_size]
            cross.score_ids(ids, torch.ones_like(ids))

    def run_decoder(_: int, scorer: QueryLikelihoodModel = qlm) -> None:
        for i in range(0, depth, batch_size):  # what DecoderReranker.score does once the store has answered
            tokens = candidates.token_ids[i : i + batch_size] if scorer.copy.active else None
            scorer.score_documents(label_ids, decode(documents[i : i + batch_size]), cross_kv=cross_kv, token_ids=tokens)

    cross_timing = cross_timing or CrossTiming()
    if cross_timing.times is None:
        cross_timing.times, cross_timing.flops = _time(run_cross, queries), _flops(run_cross)
    cross_t, cross_flops = cross_timing.times, cross_timing.flops
    copy_ms, spec = None, CopySpec.parse(copy)
    if spec.active:
        copying = QueryLikelihoodModel(model, tokenizer, ScoringConfig(), name_or_path=shape, precision=precision,
                                       cross_attention=_cross_attention_of(content))
        if spec.learned:
            copying.add_copy_head()
        copying.set_copy(spec)
        decoder_t, copy_t = _time_alternating([run_decoder, lambda q: run_decoder(q, copying)], queries)
        copy_ms = statistics.median(copy_t) * 1e3
    else:
        decoder_t = _time(run_decoder, queries)
    decoder_flops = _flops(run_decoder)
    peak = matmul_peak_gflops(precision)
    cross_ms, decoder_ms = statistics.median(cross_t) * 1e3, statistics.median(decoder_t) * 1e3
    biencoder_ms = None
    if with_biencoder:
        bi = BiEncoderReranker.from_pretrained(texts={})
        bi.batch_size = batch_size
        bi_ids = torch.randint(1000, 30000, (depth, doc_tokens))

        def run_bi(_: int) -> None:
            with torch.inference_mode():
                for i in range(0, depth, batch_size):
                    bi.model(input_ids=bi_ids[i : i + batch_size])

        biencoder_ms = statistics.median(_time(run_bi, queries)) * 1e3
    return BenchResult(
        shape=shape, content=content, codec=candidates.codec, bytes_per_token=candidates.bytes_per_token, depth=depth,
        doc_tokens=doc_tokens, query_tokens=query_tokens, precision=precision,
        attention=getattr(model.config, "_attn_implementation", None) or "default", threads=torch.get_num_threads(), queries=queries,
        cross_ms=round(cross_ms, 2), cross_p95_ms=round(_p95(cross_t) * 1e3, 2),
        decoder_ms=round(decoder_ms, 2), decoder_p95_ms=round(_p95(decoder_t) * 1e3, 2),
        ratio=round(cross_ms / decoder_ms, 2), flop_ratio=round(cross_flops / decoder_flops, 2),
        cross_candidates_per_s=round(depth / (cross_ms / 1e3), 1), decoder_candidates_per_s=round(depth / (decoder_ms / 1e3), 1),
        cross_gflops=round(cross_flops / (cross_ms / 1e3) / 1e9, 3), decoder_gflops=round(decoder_flops / (decoder_ms / 1e3) / 1e9, 3),
        peak_gflops=round(peak, 1), decoder_fraction_of_peak=round(decoder_flops / (decoder_ms / 1e3) / 1e9 / peak, 3),
        biencoder_ms=None if biencoder_ms is None else round(biencoder_ms, 2),
        copy=str(spec), decoder_copy_ms=None if copy_ms is None else round(copy_ms, 2),
        copy_overhead=None if copy_ms is None else round(copy_ms / decoder_ms - 1, 3),
    )


def plot(results: list[BenchResult], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    short = {"encoder-states": "states", "cross-kv": "kv", "absorbed": "absorbed"}
    labels = [f"{r.shape} {r.precision}\n{short[r.content]} {r.codec}\nd={r.depth} {r.doc_tokens} tok" for r in results]
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
    ax.set_title(f"re-ranking cost per query, {results[0].threads} threads")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def save_json(results: list[BenchResult], path: str | Path) -> None:
    Path(path).write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
