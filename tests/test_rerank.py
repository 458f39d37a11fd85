"""DecoderReranker: order, depth, ties, interpolation, missing docids, the pygaggle shape, eval."""

from dataclasses import dataclass

import numpy as np
import torch
import pytest

from pyserini_decrank import DecoderReranker, DecrankError, EncoderStateStore, Hit, PygaggleReranker, QueryLikelihoodModel
from pyserini_decrank.encode import encode_corpus
from pyserini_decrank.evaluate import evaluate_run
from pyserini_decrank.io import Document
from pyserini_decrank.rerank import Query, Text

QUERY = "digital data storage"


@pytest.fixture(scope="module")
def reranker(tiny_models, docs, tmp_path_factory):
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    path = tmp_path_factory.mktemp("store")
    encode_corpus(model, [Document(d, t) for d, t in docs.items()], path, codec="fp32", progress=False)
    return DecoderReranker(model, EncoderStateStore(path), batch_size=6)


@dataclass
class LuceneLikeHit:  # the attributes of Pyserini's LuceneSearcher hits that re-ranking reads
    docid: str
    score: float
    lucene_docid: int = 0


def test_rerank_sorts_by_score_and_keeps_tail(reranker, docs):
    hits = [Hit(d, 100.0 - i, i + 1) for i, d in enumerate(docs)]
    out = reranker.rerank(QUERY, hits, k=20)
    scores = reranker.score(QUERY, [h.docid for h in hits[:20]])
    assert [h.docid for h in out[:20]] == [hits[i].docid for i in np.argsort(-scores, kind="stable")]
    assert [h.docid for h in out[20:]] == [h.docid for h in hits[20:]]
    assert all(a.score >= b.score for a, b in zip(out, out[1:]))
    assert isinstance(out[0], Hit) and out[0].rank == hits[[h.docid for h in hits].index(out[0].docid)].rank


def test_accepts_any_hit_with_docid_and_score(reranker, docs):
    hits = [LuceneLikeHit(d, 1.0) for d in list(docs)[:5]]
    out = reranker.rerank(QUERY, hits)
    assert {h.docid for h in out} == {h.docid for h in hits} and isinstance(out[0], LuceneLikeHit)


def test_ties_keep_first_stage_order(reranker, docs):
    docid = list(docs)[0]
    out = DecoderReranker(reranker.model, reranker.store, alpha=1.0).rerank(QUERY, [Hit(docid, 1.0), Hit(list(docs)[1], 1.0)])
    assert [h.docid for h in out] == [docid, list(docs)[1]]


def test_alpha_interpolates_normalised_scores(reranker, docs):
    hits = [Hit(d, float(i)) for i, d in enumerate(list(docs)[:10])]
    raw = reranker.score(QUERY, [h.docid for h in hits])
    mixed = DecoderReranker(reranker.model, reranker.store, alpha=0.3).rerank(QUERY, hits)
    norm = lambda x: (x - x.min()) / (x.max() - x.min())
    expected = 0.3 * norm(np.arange(10.0)) + 0.7 * norm(raw.astype(float))
    assert [h.docid for h in mixed] == [hits[i].docid for i in np.argsort(-expected, kind="stable")]
    assert mixed[0].score == pytest.approx(expected.max())


def test_missing_docid_error_and_skip(reranker, docs):
    hits = [Hit("ghost-1", 3.0), Hit(list(docs)[0], 2.0), Hit("ghost-2", 1.0)]
    with pytest.raises(DecrankError, match="ghost-1, ghost-2.*query q9.*skip_missing=True") as caught:
        reranker.rerank(QUERY, hits, qid="q9")
    assert "--skip-missing" in caught.value.cli_message and "--" not in str(caught.value)  # library: arguments
    skipping = DecoderReranker(reranker.model, reranker.store, skip_missing=True)
    assert [h.docid for h in skipping.rerank(QUERY, hits)] == [list(docs)[0]]


def test_empty_query_is_an_error(reranker, docs):
    with pytest.raises(DecrankError, match="query 42 is empty"):
        reranker.rerank("  ", [Hit(list(docs)[0], 1.0)], qid="42")


def test_batch_rerank_and_batch_size_do_not_change_scores(reranker, docs):
    ids = list(docs)
    hits = {"a": [Hit(d, 1.0) for d in ids[:17]], "b": [Hit(d, 1.0) for d in ids[17:]]}
    out = reranker.batch_rerank({"a": QUERY, "b": "electron wave"}, hits)
    one_by_one = DecoderReranker(reranker.model, reranker.store, batch_size=1).score(QUERY, ids[:17])
    np.testing.assert_allclose(sorted((h.score for h in out["a"]), reverse=True), sorted(one_by_one, reverse=True), atol=1e-5)
    with pytest.raises(DecrankError, match="query b of the run has no topic"):
        reranker.batch_rerank({"a": QUERY}, hits)


def test_pygaggle_shape(reranker, docs):
    """As pygaggle's ``Reranker``: ``rescore`` keeps the given order, ``rerank`` sorts by score."""
    ids = list(docs)[:6]
    texts = [Text(docs[d], metadata={"docid": d}) for d in ids]
    expected = reranker.score(QUERY, ids)
    rescored = PygaggleReranker(reranker).rescore(Query(QUERY), texts)
    np.testing.assert_allclose([t.score for t in rescored], expected)
    assert [t.metadata["docid"] for t in rescored] == ids and texts[0].score == 0.0
    ranked = PygaggleReranker(reranker).rerank(Query(QUERY), texts)
    assert [t.metadata["docid"] for t in ranked] == [ids[i] for i in np.argsort(-expected, kind="stable")]
    assert [t.score for t in ranked] == sorted((t.score for t in ranked), reverse=True)


def test_pygaggle_texts_are_read_and_docids_alone_still_work(reranker, docs):
    ids = list(docs)[:4]
    changed = [Text(docs[d] + " electron storage", metadata={"docid": d}) for d in ids]  # not the stored texts
    scores = [t.score for t in PygaggleReranker(reranker).rescore(Query(QUERY), changed)]
    np.testing.assert_allclose(scores, reranker.score_texts(QUERY, [t.text for t in changed]), atol=1e-5)
    assert not np.allclose(scores, reranker.score(QUERY, ids))
    by_id = [Text("", metadata={"docid": d}) for d in ids]  # no text: looked up in the store
    np.testing.assert_allclose([t.score for t in PygaggleReranker(reranker).rescore(Query(QUERY), by_id)],
                               reranker.score(QUERY, ids), atol=1e-6)
    with pytest.raises(DecrankError, match="text 0 has neither text nor a metadata"):
        PygaggleReranker(reranker).rescore(Query(QUERY), [Text("")])


def test_a_non_finite_score_is_an_error_naming_query_and_docid(tiny_models, docs, reranker):
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    with torch.no_grad():
        model.model.decoder.final_layer_norm.weight[:] = float("nan")  # the decoder only: the store still fits
    poisoned = DecoderReranker(model, reranker.store)
    first = list(docs)[0]
    with pytest.raises(DecrankError, match=f"non-finite score .* query q7, docid {first}"):
        poisoned.rerank(QUERY, [Hit(first, 1.0)], qid="q7")


def test_fp16_compute_is_refused_for_t5_models(tiny_models):
    with pytest.raises(DecrankError, match="fp16 compute overflows .* use bf16 or fp32"):
        QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")), precision="fp16")
    QueryLikelihoodModel.from_pretrained(str(tiny_models("bart")), precision="fp16")  # not a T5 family


def test_one_scoring_pass_gives_every_alpha(reranker, docs):
    hits = [Hit(d, float(30 - i)) for i, d in enumerate(list(docs)[:12])]
    plain, mixed = reranker.rerank_alphas(QUERY, hits, [None, 0.4], k=8)
    assert plain == reranker.rerank(QUERY, hits, k=8)
    same_batches = DecoderReranker(reranker.model, reranker.store, batch_size=reranker.batch_size, alpha=0.4)
    assert mixed == same_batches.rerank(QUERY, hits, k=8)


def test_evaluate_matches_hand_computed_measures():
    qrels = {"q": {"a": 2, "b": 1, "z": 1}}
    run = {"q": [Hit("x", 3.0), Hit("a", 2.0), Hit("b", 1.0)]}
    ev = evaluate_run(qrels, run, ["recip_rank", "recip_rank.1", "recall.100", "ndcg_cut.10", "map"], relevance_level=2)
    assert ev.means["recip_rank"] == pytest.approx(0.5)
    assert ev.means["recip_rank.1"] == 0.0
    # trec_eval -c: every judged query counts, one the run lacks as 0
    two = {"q": {"a": 1}, "missing": {"a": 1}}
    assert evaluate_run(two, {"q": [Hit("a", 1.0)]}, ["ndcg_cut.10"]).means["ndcg_cut.10"] == pytest.approx(1.0)
    complete = evaluate_run(two, {"q": [Hit("a", 1.0)]}, ["ndcg_cut.10"], complete=True)
    assert complete.means["ndcg_cut.10"] == pytest.approx(0.5) and complete.num_queries == 2
    assert ev.means["recall.100"] == pytest.approx(1.0)  # only "a" counts at level 2
    ideal = 2 / np.log2(2) + 1 / np.log2(3) + 1 / np.log2(4)  # trec_eval's gains are the grades
    assert ev.means["ndcg_cut.10"] == pytest.approx((2 / np.log2(3) + 1 / np.log2(4)) / ideal, abs=1e-4)
    assert ev.means["map"] == pytest.approx(0.5)
