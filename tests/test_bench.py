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
