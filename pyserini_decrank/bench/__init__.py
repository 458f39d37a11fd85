"""Benchmarking the decoder-only path against cross-attention (``decrank bench``)."""

from ._bench import (DECODER_PATHS, SHAPES, BenchResult, Candidates, CrossTiming, Timer, bench_one, codec_fits_content,
                     default_batch_size, device_name, load_bench_model, make_candidates, matmul_peak_gflops, plot,
                     save_json)

__all__ = ["DECODER_PATHS", "SHAPES", "BenchResult", "Candidates", "CrossTiming", "Timer", "bench_one", "codec_fits_content",
           "default_batch_size", "device_name", "load_bench_model", "make_candidates", "matmul_peak_gflops", "plot",
           "save_json"]
