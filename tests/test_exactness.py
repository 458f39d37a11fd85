"""Decoder-only scores from stored states equal the full encoder-decoder forward."""

import numpy as np
import pytest
import torch

from conftest import FAMILIES
from pyserini_decrank import DecoderReranker, EncoderStateStore, QueryLikelihoodModel
from pyserini_decrank.encode import encode_corpus
from pyserini_decrank.io import Document

QUERY = "magnetic field of the electron"


def full_forward_log_likelihood(model: QueryLikelihoodModel, texts: list[str], query: str) -> np.ndarray:
    """Reference: the whole model run on (document, query) pairs, no stored states involved."""
    ids = model.tokenize_documents(texts)
    input_ids = torch.full((len(ids), max(map(len, ids))), model.pad_token_id)
    mask = torch.zeros_like(input_ids)
    for i, x in enumerate(ids):
        input_ids[i, : len(x)] = torch.tensor(x)
        mask[i, : len(x)] = 1
    labels = torch.tensor([model.query_labels(query)] * len(texts))
    with torch.no_grad():
        logits = model.model(input_ids=input_ids, attention_mask=mask, labels=labels).logits
    return logits.double().log_softmax(-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1).sum(-1).numpy()


def build_store(model, docs, path, codec):
    corpus = [Document(d, t) for d, t in docs.items()]
    encode_corpus(model, corpus, path, batch_size=7, shard_size=15, codec=codec, progress=False)
    return EncoderStateStore(path)


@pytest.mark.parametrize("family", FAMILIES)
def test_stored_states_score_like_full_forward(family, tiny_models, docs, tmp_path):
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models(family)))
    store = build_store(model, docs, tmp_path / "store", "fp32")
    reranker = DecoderReranker(model, store, batch_size=8)
    docids = list(docs)
    fast = reranker.score(QUERY, docids)
    reference = full_forward_log_likelihood(model, [docs[d] for d in docids], QUERY)
    np.testing.assert_allclose(fast, reference, atol=1e-4, rtol=0)
    assert np.ptp(reference) > 1e-3, "documents must get different scores for the test to mean anything"


def test_query_labels_end_with_eos_and_skip_start_token(tiny_models):
    for family in FAMILIES:
        model = QueryLikelihoodModel.from_pretrained(str(tiny_models(family)))
        labels = model.query_labels(QUERY)
        eos = model.model.config.eos_token_id
        if eos is None:
            eos = model.model.config.decoder.eos_token_id
        assert labels[-1] == eos, family
        assert labels[0] != model.decoder_start_token_id, family


@pytest.mark.parametrize("codec,tolerance", [("fp16", 0.05), ("bf16", 0.5)])
def test_half_precision_codecs_stay_close(codec, tolerance, tiny_models, docs, tmp_path):
    """Stated tolerance of the compact codecs: summed log-likelihood within ``tolerance`` nats, and
    the same order for documents whose fp32 scores differ by more than twice that."""
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    exact = DecoderReranker(model, build_store(model, docs, tmp_path / "fp32", "fp32")).score(QUERY, list(docs))
    compact = DecoderReranker(model, build_store(model, docs, tmp_path / codec, codec)).score(QUERY, list(docs))
    assert np.abs(exact - compact).max() < tolerance
    i, j = np.triu_indices(len(exact), 1)
    clear = np.abs(exact[i] - exact[j]) > 2 * tolerance
    assert clear.any()
    assert (np.sign(exact[i] - exact[j])[clear] == np.sign(compact[i] - compact[j])[clear]).all()


@pytest.mark.parametrize("family", ["t5", "t5v11", "bart", "bert2bert"])
def test_stored_cross_attention_keys_values_score_like_encoder_states(family, tiny_models, docs, tmp_path):
    """A ``cross-kv`` store skips the per-candidate key/value projections and changes nothing else."""
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models(family)))
    corpus = [Document(d, t) for d, t in docs.items()]
    encode_corpus(model, corpus, tmp_path / "kv", codec="fp32", content="cross-kv", shard_size=15, progress=False)
    kv_store = EncoderStateStore(tmp_path / "kv")
    layers, heads, head_dim = model.cross_kv_layout()
    assert kv_store.manifest.hidden_size == layers * 2 * heads * head_dim
    docids = list(docs)
    via_kv = DecoderReranker(model, kv_store, batch_size=8).score(QUERY, docids)
    reference = full_forward_log_likelihood(model, [docs[d] for d in docids], QUERY)
    np.testing.assert_allclose(via_kv, reference, atol=1e-4, rtol=0)


def test_cross_kv_store_is_tied_to_its_decoder(tiny_models, docs, tmp_path):
    from pyserini_decrank import DecrankError

    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    encode_corpus(model, [Document(d, t) for d, t in list(docs.items())[:5]], tmp_path, content="cross-kv", progress=False)
    other = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    with torch.no_grad():
        next(other.model.get_decoder().block[0].layer[1].EncDecAttention.k.parameters()).add_(0.1)
    other._fingerprint = None
    with pytest.raises(DecrankError, match="decoder differs"):
        DecoderReranker(other, EncoderStateStore(tmp_path))
    with pytest.raises(DecrankError, match="holds cross-kv, not encoder-states"):
        EncoderStateStore(tmp_path).check_model(model.fingerprint())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("family", FAMILIES)
def test_a_store_encoded_and_reranked_on_cuda_scores_like_the_full_forward_on_cpu(family, tiny_models, docs, tmp_path):
    """Stated tolerance of the GPU path at fp32: 1e-3 nats of the CPU's full forward (TF32 off, torch's default)."""
    cpu = QueryLikelihoodModel.from_pretrained(str(tiny_models(family)))
    cuda = QueryLikelihoodModel.from_pretrained(str(tiny_models(family)), device="cuda")
    store = build_store(cuda, docs, tmp_path / "store", "fp32")
    docids = list(docs)
    on_gpu = DecoderReranker(cuda, store, batch_size=8).score(QUERY, docids)
    reference = full_forward_log_likelihood(cpu, [docs[d] for d in docids], QUERY)
    np.testing.assert_allclose(on_gpu, reference, atol=1e-3, rtol=0)
