"""Raw texts in, in sentence-transformers' shape (``rank``, ``predict``): the store is a cache, not a
precondition. The decoder's scores of texts encoded on the fly equal the store path's within the store
codec's rounding; stored states are used only for ids stored with the same text."""

import numpy as np
import pytest

from pyserini_decrank import BiEncoderReranker, DecoderReranker, DecrankError, EncoderStateStore, QueryLikelihoodModel
from pyserini_decrank.encode import encode_corpus
from pyserini_decrank.io import Document

QUERY = "digital data storage"
# an fp16 store rounds each state to 11 significant bits; summed over a query's tokens that moves a
# log-likelihood by well under 0.01 on these tiny models
FP16_TOLERANCE = 0.01


def _store(model, docs, path, codec="fp16", content="encoder-states"):
    encode_corpus(model, [Document(d, t) for d, t in docs.items()], path, codec=codec, content=content,
                  batch_size=7, progress=False)
    return EncoderStateStore(path)


@pytest.mark.parametrize("family,copy,content", [("t5", "none", "encoder-states"),
                                                 ("bert2bert", "attention:0.3", "encoder-states"),
                                                 ("bart", "uniform:0.2", "cross-kv")])
def test_texts_encoded_on_the_fly_score_as_the_store_does(family, copy, content, tiny_models, docs, tmp_path):
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models(family)), copy=copy)
    ids, texts = list(docs)[:12], [docs[d] for d in list(docs)[:12]]
    store = _store(model, {d: docs[d] for d in ids}, tmp_path / "store", content=content)
    with_store = DecoderReranker(model, store, batch_size=5)
    from_store = with_store.score(QUERY, ids)

    on_the_fly = DecoderReranker(model, batch_size=5).score_texts(QUERY, texts)  # no store at all
    np.testing.assert_allclose(on_the_fly, from_store, atol=FP16_TOLERANCE, rtol=0)
    assert not np.array_equal(on_the_fly, from_store)  # really encoded here: the fp16 rounding shows

    cached = with_store.score_texts(QUERY, texts, doc_ids=ids)  # every id stored with this text: read back
    np.testing.assert_allclose(cached, from_store, atol=1e-5, rtol=0)

    # some ids the store lacks, one whose text changed: those are encoded, the rest read
    mixed_ids = ids[:6] + [f"new-{i}" for i in range(5)] + [ids[11]]
    mixed_texts = texts[:6] + texts[6:11] + [texts[11] + " changed"]
    mixed = with_store.score_texts(QUERY, mixed_texts, doc_ids=mixed_ids)
    np.testing.assert_allclose(mixed[:6], from_store[:6], atol=1e-5, rtol=0)
    np.testing.assert_allclose(mixed[6:11], on_the_fly[6:11], atol=1e-4, rtol=0)
    changed = DecoderReranker(model).score_texts(QUERY, [texts[11] + " changed"])[0]
    assert mixed[11] == pytest.approx(changed, abs=1e-4) and abs(mixed[11] - from_store[11]) > 1e-3


def test_rank_has_sentence_transformers_shape(tiny_models, docs):
    reranker = DecoderReranker(QueryLikelihoodModel.from_pretrained(str(tiny_models("t5"))))
    texts = [docs[d] for d in list(docs)[:8]]
    scores = reranker.score_texts(QUERY, texts)
    ranked = reranker.rank(QUERY, texts)
    assert [r["corpus_id"] for r in ranked] == list(np.argsort(-scores, kind="stable"))
    assert [r["score"] for r in ranked] == sorted(scores.tolist(), reverse=True) and set(ranked[0]) == {"corpus_id", "score"}
    top = reranker.rank(QUERY, texts, doc_ids=[f"d{i}" for i in range(8)], top_k=3, return_documents=True)
    assert [r["corpus_id"] for r in top] == [f"d{r['corpus_id']}" for r in ranked[:3]]
    assert [r["text"] for r in top] == [texts[r["corpus_id"]] for r in ranked[:3]]
    pairs = [(QUERY, texts[0]), ("electron wave", texts[1]), (QUERY, texts[2])]
    predicted = reranker.predict(pairs)
    assert predicted[0] == pytest.approx(scores[0], abs=1e-5) and predicted[2] == pytest.approx(scores[2], abs=1e-5)
    assert predicted[1] == pytest.approx(reranker.score_texts("electron wave", [texts[1]])[0], abs=1e-5)


def test_the_biencoder_ranks_texts_as_it_reranks_docids(docs):
    ids = list(docs)[:6]
    reranker = BiEncoderReranker.from_pretrained(texts=docs)
    np.testing.assert_allclose(reranker.score_texts(QUERY, [docs[d] for d in ids]), reranker.score(QUERY, ids), atol=1e-6)


@pytest.mark.parametrize("call,message", [
    (lambda r: r.rank(QUERY, []), "no documents"),
    (lambda r: r.rank(QUERY, ["a text", 3]), "document 1 is a int"),
    (lambda r: r.rank(QUERY, "one string"), "documents must be a list of strings"),
    (lambda r: r.rank(QUERY, ["a", "b"], doc_ids=["x"]), "1 doc_ids for 2 documents"),
    (lambda r: r.rank(QUERY, ["a", "b"], doc_ids=["x", "x"]), "docid x appears twice"),
    (lambda r: r.rank(QUERY, ["a", "b"], doc_ids=["x", 2]), "doc_ids[1] is a int"),
    (lambda r: r.rank(QUERY, ["a"], top_k=0), "top_k must be a whole number"),
    (lambda r: r.rank("", ["a"]), "the query is empty"),
    (lambda r: r.predict([(QUERY, "a", "b")]), "pair 0 is not a (query, document) pair"),
    (lambda r: r.score("q", ["doc-000"]), "no entry for docid(s) doc-000"),
])
def test_bad_raw_input_is_one_clear_error(call, message, tiny_models):
    reranker = DecoderReranker(QueryLikelihoodModel.from_pretrained(str(tiny_models("t5"))))
    with pytest.raises(DecrankError) as info:
        call(reranker)
    assert message in str(info.value) and "\n" not in str(info.value)
