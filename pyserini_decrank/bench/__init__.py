"""Benchmarking the decoder-only path against cross-attention (``decrank bench``)."""

from ._bench import (SHAPES, BenchResult, Candidates, bench_one, load_bench_model, make_candidates, matmul_peak_gflops,
                     plot, save_json)

__all__ = ["SHAPES", "BenchResult", "Candidates", "bench_one", "load_bench_model", "make_candidates",
           "matmul_peak_gflops", "plot", "save_json"]
