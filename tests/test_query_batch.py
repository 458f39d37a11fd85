"""Queries batched together (``query_batch``, ``decrank rerank --query-batch``): the candidates of several
queries share decoder batches, and every score equals the one-query-at-a-time score within the path's
tolerance (fp32: 1e-5 nats plus 1e-6 of the score, summing rounding of a dozen tokens' log-probabilities
in another batch shape; bf16: 0.05 nats, what a bf16 product moves by in another batch shape)."""

import numpy as np
import pytest
import torch

from conftest import FAMILIES
from pyserini_decrank import DecoderReranker, DecrankError, EncoderStateStore, Hit, QueryLikelihoodModel
from pyserini_decrank.cli import main
from pyserini_decrank.encode import encode_corpus
from pyserini_decrank.io import Document, read_run
from pyserini_decrank.rerank import CrossAttentionReranker

# lengths differ, so that labels are padded beside longer queries
QUERIES = {"q1": "digital data storage", "q2": "electron", "q3": "magnetic field of the electron wave in a circuit",
           "q4": "protein cell", "q5": "the virus vaccine dose for a patient trial"}
FP32_TOLERANCE, FP32_RELATIVE, BF16_TOLERANCE = 1e-5, 1e-6, 0.05


def _store(model, docs, folder, **options) -> EncoderStateStore:
    encode_corpus(model, [Document(d, t) for d, t in docs.items()], folder, progress=False, **options)
    return EncoderStateStore(folder)


def _requests(docs):
    """Each query with its own candidates: different counts, some shared between queries."""
    ids = list(docs)
    return [(text, ids[3 * i : 3 * i + 7 + 2 * i], qid) for i, (qid, text) in enumerate(QUERIES.items())]


def _one_at_a_time(reranker, requests):
    return [reranker.score(query, docids, qid=qid) for query, docids, qid in requests]


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_scores_equal_one_query_at_a_time(family, tiny_models, docs, tmp_path):
    """Every family, attention copying (where the family has the cross-attention it reads) and a learned gate."""
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models(family)))
    store = _store(model, docs, tmp_path, codec="fp32")
    if family in ("t5", "bart"):
        model.add_copy_head()
        torch.manual_seed(0)
        with torch.no_grad():
            model.copy_head.linear.weight.normal_(0, 0.5)
        model.set_copy("attention")
    requests = _requests(docs)
    single = _one_at_a_time(DecoderReranker(model, store, batch_size=4), requests)
    for query_batch, batch_size in ((2, 4), (5, 64), (3, 1)):
        batched = DecoderReranker(model, store, batch_size=batch_size, query_batch=query_batch).score_many(requests)
        assert [len(s) for s in batched] == [len(s) for s in single]
        for a, b in zip(batched, single):
            np.testing.assert_allclose(a, b, atol=FP32_TOLERANCE, rtol=FP32_RELATIVE)


def test_batched_cross_kv_and_label_scores(tiny_models, docs, tmp_path):
    """A cross-kv store, and a model scored by its relevance label (whose last position differs per query)."""
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    requests = _requests(docs)
    kv = _store(model, docs, tmp_path / "kv", content="cross-kv", codec="fp32")
    single = _one_at_a_time(DecoderReranker(model, kv, batch_size=5), requests)
    batched = DecoderReranker(model, kv, batch_size=32, query_batch=5).score_many(requests)
    for a, b in zip(batched, single):
        np.testing.assert_allclose(a, b, atol=FP32_TOLERANCE, rtol=FP32_RELATIVE)
    model.config.score = "label"
    states = _store(model, docs, tmp_path / "states", codec="fp32")
    single = _one_at_a_time(DecoderReranker(model, states, batch_size=5), requests)
    batched = DecoderReranker(model, states, batch_size=32, query_batch=4).score_many(requests)
    assert not np.allclose(np.concatenate(single)[:5], np.concatenate(single)[5:10])  # a real label score
    for a, b in zip(batched, single):
        np.testing.assert_allclose(a, b, atol=FP32_TOLERANCE, rtol=FP32_RELATIVE)


def test_batched_bf16_within_its_tolerance(tiny_models, docs, tmp_path):
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")), precision="bf16")
    store = _store(model, docs, tmp_path, codec="bf16")
    requests = _requests(docs)
    single = _one_at_a_time(DecoderReranker(model, store, batch_size=4), requests)
    batched = DecoderReranker(model, store, batch_size=64, query_batch=5).score_many(requests)
    worst = max(float(np.abs(a - b).max()) for a, b in zip(batched, single))
    assert worst <= BF16_TOLERANCE


def test_batch_rerank_keeps_run_order_and_rankings(tiny_models, docs, tmp_path):
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    store = _store(model, docs, tmp_path, codec="fp32")
    hits = {qid: [Hit(d, 10.0 - i) for i, d in enumerate(docids)] for _, docids, qid in reversed(_requests(docs))}
    single = DecoderReranker(model, store, batch_size=4).batch_rerank(QUERIES, hits, k=6)
    batched = DecoderReranker(model, store, batch_size=32, query_batch=3).batch_rerank(QUERIES, hits, k=6)
    assert list(batched) == list(hits) == list(single)
    for qid in hits:
        assert [h.docid for h in batched[qid]] == [h.docid for h in single[qid]]
        np.testing.assert_allclose([h.score for h in batched[qid]], [h.score for h in single[qid]], atol=FP32_TOLERANCE, rtol=FP32_RELATIVE)
        assert len(batched[qid]) == len(hits[qid])  # the tail after depth 6 is kept


def test_cross_attention_baseline_pools_queries_alike(tiny_models, docs):
    """The baseline gets the same batching, so that speed comparisons are fair; its scores do not change."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    path = str(tiny_models("t5"))
    cross = CrossAttentionReranker(AutoModelForSeq2SeqLM.from_pretrained(path), AutoTokenizer.from_pretrained(path), docs,
                                   batch_size=4)
    requests = _requests(docs)
    single = _one_at_a_time(cross, requests)
    cross.query_batch, cross.batch_size = 5, 64
    for a, b in zip(cross.score_many(requests), single):
        np.testing.assert_allclose(a, b, atol=FP32_TOLERANCE, rtol=FP32_RELATIVE)


def test_query_batch_must_be_a_whole_number(tiny_models, docs, tmp_path):
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    store = _store(model, docs, tmp_path, codec="fp32")
    for bad in (0, -1, 2.5, True):
        with pytest.raises(DecrankError, match="query_batch must be a whole number of at least 1"):
            DecoderReranker(model, store, query_batch=bad)


def test_cli_query_batch_writes_the_same_run(tiny_models, docs, tmp_path):
    from click.testing import CliRunner

    model_dir = str(tiny_models("t5"))
    _store(QueryLikelihoodModel.from_pretrained(model_dir), docs, tmp_path / "store")
    (tmp_path / "topics.tsv").write_text("".join(f"{qid}\t{text}\n" for qid, text in QUERIES.items()))
    ids = list(docs)
    (tmp_path / "run.txt").write_text("".join(f"{qid} Q0 {d} {r + 1} {30 - r} bm25\n" for n, qid in enumerate(QUERIES)
                                              for r, d in enumerate(ids[n : n + 12])))
    common = ["rerank", "--model", model_dir, "--store", str(tmp_path / "store"), "--topics", str(tmp_path / "topics.tsv"),
              "--run", str(tmp_path / "run.txt"), "--depth", "10"]
    runner = CliRunner()
    for name, extra in (("one.txt", []), ("batched.txt", ["--query-batch", "4", "--batch-size", "40"])):
        result = runner.invoke(main, common + ["--output", str(tmp_path / name)] + extra)
        assert result.exit_code == 0, result.output
    one, batched = read_run(str(tmp_path / "one.txt")), read_run(str(tmp_path / "batched.txt"))
    assert list(one) == list(batched) == list(QUERIES)
    for qid in one:
        assert [h.docid for h in one[qid]] == [h.docid for h in batched[qid]]
        np.testing.assert_allclose([h.score for h in one[qid]], [h.score for h in batched[qid]], atol=2e-6)
    result = runner.invoke(main, common + ["--output", str(tmp_path / "bad.txt"), "--query-batch", "0"])
    assert result.exit_code == 2 and "--query-batch" in result.output


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_the_gpu_batched_scores_from_pq_codes_equal_the_cpus(tiny_models, docs, tmp_path):
    """On a GPU: queries batched, PQ codes decoded there (the default), fp32 scores as the CPU's within 1e-3."""
    path = str(tiny_models("t5"))
    cpu = QueryLikelihoodModel.from_pretrained(path)
    store = _store(cpu, docs, tmp_path, codec="OPQ4,PQ4")
    requests = _requests(docs)
    expected = _one_at_a_time(DecoderReranker(cpu, store, batch_size=4), requests)
    gpu = DecoderReranker(QueryLikelihoodModel.from_pretrained(path, device="cuda"), store, batch_size=64, query_batch=5)
    assert gpu.device_decoder is not None
    for a, b in zip(gpu.score_many(requests), expected):
        np.testing.assert_allclose(a, b, atol=1e-3, rtol=1e-5)


def test_pooled_rows_are_batched_by_query_length(tiny_models, docs, tmp_path):
    """Pooled candidates are ordered by query length, then document length, so a batch does not pad every row
    to the longest query of the pool (on a CPU that padding cost more than pooling saved)."""
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    store = _store(model, docs, tmp_path, codec="fp32")
    reranker = DecoderReranker(model, store, batch_size=4, query_batch=5)
    seen = []
    score_documents = model.score_documents

    def recording(label_ids, documents, **kwargs):
        seen.append({len(ids) for ids in label_ids})
        return score_documents(label_ids, documents, **kwargs)

    model.score_documents = recording
    requests = _requests(docs)
    reranker.score_many(requests)
    lengths = {len(model.query_labels(query)) for query, _, _ in requests}
    assert len(lengths) >= 4 and sum(len(s) > 1 for s in seen) <= len(lengths) - 1  # only at the seams
