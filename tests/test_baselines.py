"""The baselines share the re-ranking API: monoT5-style cross-attention and the MiniLM bi-encoder."""

import numpy as np
import pytest
import torch

from pyserini_decrank import DecrankError, Hit
from pyserini_decrank.rerank import BiEncoderReranker, CrossAttentionReranker

QUERY = "magnetic field of the electron"


def test_cross_attention_scores_true_against_false(tiny_models, docs):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    path = str(tiny_models("t5"))
    model, tok = AutoModelForSeq2SeqLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    reranker = CrossAttentionReranker(model, tok, texts=docs, batch_size=4)
    ids = list(docs)[:6]
    scores = reranker.score(QUERY, ids)
    for docid, score in zip(ids, scores):  # one at a time, no padding, by hand
        enc = tok(f"Query: {QUERY} Document: {docs[docid]} Relevant:", return_tensors="pt")
        with torch.no_grad():
            logits = model(**enc, decoder_input_ids=torch.zeros((1, 1), dtype=torch.long)).logits[0, 0]
        yes, no = tok.convert_tokens_to_ids("true"), tok.convert_tokens_to_ids("false")
        assert score == pytest.approx(float(logits[[yes, no]].log_softmax(-1)[0]), abs=1e-5)
    assert np.ptp(scores) > 0
    out = reranker.rerank(QUERY, [Hit(d, 0.0) for d in ids])
    assert [h.docid for h in out] == [ids[i] for i in np.argsort(-scores, kind="stable")]
    with pytest.raises(DecrankError, match="no entry for docid"):
        reranker.score(QUERY, ["unknown"])


def test_biencoder_is_cosine_of_mean_pooled_minilm(docs):
    reranker = BiEncoderReranker.from_pretrained(texts=docs)
    ids = list(docs)[:5]
    scores = reranker.score(QUERY, ids)
    q, d = reranker.embed([QUERY]), reranker.embed([docs[i] for i in ids])
    np.testing.assert_allclose(scores, (d @ q[0]).numpy(), atol=1e-6)
    assert torch.allclose(q.norm(dim=-1), torch.ones(1)) and np.all(np.abs(scores) <= 1 + 1e-6)


def test_the_biencoder_takes_precision_attention_and_device(docs):
    """bf16 products with fp32 pooling stay within 0.02 of fp32's cosines (bf16's 8-bit mantissa over six
    layers), eager attention equals sdpa's, and a device that is not there is one error."""
    ids = list(docs)[:10]
    exact = BiEncoderReranker.from_pretrained(texts=docs).score(QUERY, ids)
    eager = BiEncoderReranker.from_pretrained(texts=docs, attention="eager").score(QUERY, ids)
    np.testing.assert_allclose(eager, exact, atol=1e-5)
    half = BiEncoderReranker.from_pretrained(texts=docs, precision="bf16").score(QUERY, ids)
    assert half.dtype == np.float32 and np.abs(half - exact).max() < 0.02
    if not torch.cuda.is_available():
        with pytest.raises(DecrankError, match="cuda"):
            BiEncoderReranker.from_pretrained(texts=docs, device="cuda")
