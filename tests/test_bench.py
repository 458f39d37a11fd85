"""``decrank bench`` reports what it promises: both paths timed on the same candidates, ratios, GFLOP/s
against a peak measured in the same run, JSON and a PNG plot. (Timings themselves are never asserted.)"""

import json

import pytest
from click.testing import CliRunner

from pyserini_decrank.cli import main

pytestmark = pytest.mark.slow  # the bench: `pytest -m 'not slow'` leaves it out


def test_bench_writes_json_and_plot(tiny_models, tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, ["bench", "--shape", str(tiny_models("t5")), "--depth", "6", "--doc-tokens", "12",
                                       "--query-tokens", "4", "--precision", "fp32", "--precision", "bf16",
                                       "--queries", "2", "--content", "encoder-states", "--content", "cross-kv",
                                       "--json", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [(r["precision"], r["content"]) for r in rows] == [
        ("fp32", "encoder-states"), ("fp32", "cross-kv"), ("bf16", "encoder-states"), ("bf16", "cross-kv")]
    for r in rows:
        for key in ("cross_ms", "decoder_ms", "ratio", "decoder_gflops", "peak_gflops"):
            assert r[key] > 0
        assert abs(r["ratio"] - r["cross_ms"] / r["decoder_ms"]) < 0.02 * r["ratio"] + 0.01
        assert r["cross_p95_ms"] >= r["cross_ms"] and r["decoder_p95_ms"] >= r["decoder_ms"]
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert "| shape" in result.stdout


def test_both_kinds_of_stored_candidates_score_alike(tiny_models):
    """The bench's keys/values rows time the same work as its encoder-state rows: same candidates, same scores."""
    import torch

    from pyserini_decrank.bench import make_candidates
    from pyserini_decrank.model import QueryLikelihoodModel

    qlm = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    states = make_candidates(qlm, depth=5, doc_tokens=9, query_tokens=4, content="encoder-states")
    kv = make_candidates(qlm, depth=5, doc_tokens=9, query_tokens=4, content="cross-kv")
    assert kv.cross_kv and not states.cross_kv and kv.label_ids == states.label_ids
    assert torch.equal(kv.cross_ids, states.cross_ids) and len(kv.documents) == 5
    with torch.inference_mode():
        from_states = qlm.score_documents(states.label_ids, states.documents, cross_kv=False)
        from_kv = qlm.score_documents(kv.label_ids, kv.documents, cross_kv=True)
    torch.testing.assert_close(from_kv, from_states, rtol=1e-5, atol=1e-5)


def test_bench_times_absorbed_attention_from_a_pq_store(tiny_models, tmp_path):
    """``--content absorbed`` and ``--codec`` rows beside today's; a cross-kv row with a faiss codec is
    skipped with a line saying why; the cross-attention baseline is one measurement shared by every row."""
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, ["bench", "--shape", str(tiny_models("t5")), "--depth", "20", "--doc-tokens", "16",
                                       "--query-tokens", "4", "--queries", "2", "--content", "encoder-states",
                                       "--content", "cross-kv", "--content", "absorbed", "--codec", "fp16",
                                       "--codec", "PQ8x4", "--json", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [(r["content"], r["codec"]) for r in rows] == [
        ("encoder-states", "fp16"), ("encoder-states", "PQ8x4"), ("cross-kv", "fp16"), ("absorbed", "fp16"),
        ("absorbed", "PQ8x4")]
    assert "skipping --content cross-kv with --codec PQ8x4" in result.stderr
    assert len({(r["cross_ms"], r["cross_p95_ms"]) for r in rows}) == 1
    by = {(r["content"], r["codec"]): r for r in rows}
    assert by[("absorbed", "PQ8x4")]["bytes_per_token"] == 4 and by[("absorbed", "fp16")]["bytes_per_token"] == 64
    # absorbed does fewer FLOPs than projecting the same states
    assert by[("absorbed", "fp16")]["flop_ratio"] > by[("encoder-states", "fp16")]["flop_ratio"]


def test_absorbed_bench_rows_score_like_projected_ones(tiny_models):
    """What the absorbed rows time gives the same scores as the projected rows, from the same PQ codes."""
    import torch

    from pyserini_decrank.bench import make_candidates
    from pyserini_decrank.model import QueryLikelihoodModel

    path = str(tiny_models("t5"))
    projected = QueryLikelihoodModel.from_pretrained(path, cross_attention="project")
    absorbed = QueryLikelihoodModel.from_pretrained(path, cross_attention="absorbed")
    pq = make_candidates(projected, depth=20, doc_tokens=16, query_tokens=4, codec="PQ8x4")
    assert pq.codec == "PQ8x4" and pq.documents[0].dtype.name == "uint8"
    decoded = pq.decode(pq.documents)
    with torch.inference_mode():
        torch.testing.assert_close(absorbed.score_documents(pq.label_ids, decoded),
                                   projected.score_documents(pq.label_ids, decoded), rtol=0, atol=1e-4)


@pytest.mark.parametrize("copy", ["attention:0.1", "uniform"])
def test_bench_times_copying_beside_the_plain_decoder(copy, tiny_models, tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, ["bench", "--shape", str(tiny_models("bart")), "--depth", "6", "--doc-tokens", "12",
                                       "--query-tokens", "4", "--queries", "2", "--content", "absorbed",
                                       "--content", "cross-kv", "--copy", copy, "--json", str(out)])
    assert result.exit_code == 0, result.output
    for row in json.loads(out.read_text()):
        assert row["copy"] == copy and row["decoder_copy_ms"] > 0
        ratio = row["decoder_copy_ms"] / row["decoder_ms"]  # both rounded to 0.01 ms
        assert 1 + row["copy_overhead"] == pytest.approx(ratio, rel=0.02)
    assert "copy_overhead" in result.stdout
    bad = CliRunner().invoke(main, ["bench", "--shape", str(tiny_models("bart")), "--copy", "2"])
    assert bad.exit_code == 2 and "--copy 2: lambda must be in [0, 1)" in bad.output and "Traceback" not in bad.output


def test_bench_batches_queries_and_reports_queries_per_second(tiny_models, tmp_path):
    """``--query-batch``: rows per batch size, per-query times and queries/s that agree, the chip named."""
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, ["bench", "--shape", str(tiny_models("t5")), "--depth", "6", "--doc-tokens", "12",
                                       "--query-tokens", "4", "--queries", "2", "--content", "absorbed",
                                       "--query-batch", "1", "--query-batch", "3", "--batch-size", "18",
                                       "--json", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [r["query_batch"] for r in rows] == [1, 3] and all(r["batch_size"] == 18 for r in rows)
    for r in rows:
        assert r["device"].startswith("cpu")
        assert r["decoder_queries_per_s"] == pytest.approx(1000 / r["decoder_ms"], rel=0.01)
        assert r["cross_queries_per_s"] == pytest.approx(1000 / r["cross_ms"], rel=0.01)
    # FLOPs per query do not depend on how many queries share a batch: the FLOP ratio stays
    assert rows[0]["flop_ratio"] == pytest.approx(rows[1]["flop_ratio"], rel=0.01)
    assert "queries/batch=3" in result.stderr


def test_bench_query_batch_scores_each_row_with_its_own_query(tiny_models):
    """What a batched bench row times is real scoring: each candidate row read with its own query's labels."""
    import torch

    from pyserini_decrank.bench import make_candidates
    from pyserini_decrank.model import QueryLikelihoodModel

    qlm = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    candidates = make_candidates(qlm, depth=4, doc_tokens=9, query_tokens=4, query_batch=3)
    assert len(candidates.batch_label_ids) == 3 and candidates.batch_label_ids[0] == candidates.label_ids
    assert candidates.batch_cross_ids.shape[0] == 12
    labels = [ids for ids in candidates.batch_label_ids for _ in range(4)]
    with torch.inference_mode():
        together = qlm.score_documents(labels, candidates.documents * 3)
        apart = torch.cat([qlm.score_documents(ids, candidates.documents) for ids in candidates.batch_label_ids])
    torch.testing.assert_close(together, apart, rtol=1e-6, atol=1e-5)
    assert not torch.allclose(apart[:4], apart[4:8])


def test_bench_on_a_missing_gpu_is_one_line(tiny_models):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = CliRunner().invoke(main, ["bench", "--shape", str(tiny_models("t5")), "--device", "cuda"])
    assert result.exit_code != 0 and "--device cuda: torch sees no CUDA device here" in result.output
    assert "Traceback" not in result.output


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_bench_on_the_gpu(tiny_models, tmp_path):
    """Both paths on the GPU, timed with CUDA events; the peak measured on the same GPU; PQ codes decoded there."""
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, ["bench", "--shape", str(tiny_models("t5")), "--device", "cuda", "--depth", "32",
                                       "--doc-tokens", "12", "--query-tokens", "4", "--queries", "2", "--precision", "bf16",
                                       "--content", "absorbed", "--codec", "PQ4", "--query-batch", "1",
                                       "--query-batch", "4", "--json", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert all(r["device"].startswith("cuda: ") and r["decoder_ms"] > 0 and r["peak_gflops"] > 0 for r in rows)
    assert [r["batch_size"] for r in rows] == [32, 128] and all(r["codes_decoded_on"] == "gpu" for r in rows)
