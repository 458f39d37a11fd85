"""Absorbed cross-attention gives the library's scores, in every supported family, from any codec."""

import numpy as np
import pytest
import torch

from conftest import FAMILIES
from pyserini_decrank import DecoderReranker, EncoderStateStore, QueryLikelihoodModel
from pyserini_decrank.encode import encode_corpus
from pyserini_decrank.errors import DecrankError
from pyserini_decrank.io import Document
from pyserini_decrank.model import pad_labels, pad_states
from pyserini_decrank.model import _absorbed

QUERY = "magnetic field of the electron"


def _counting(monkeypatch) -> list[int]:
    calls = []
    real = _absorbed.absorbed_attention

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_absorbed, "absorbed_attention", spy)
    return calls


@pytest.mark.parametrize("family", FAMILIES)
def test_absorbed_equals_projected_in_fp32(family, tiny_models, docs, monkeypatch):
    """Within fp32 rounding (1e-4 nats summed over the query), documents of different lengths padded
    together, key and value biases (BART, BERT) and BART/BERT query scaling included."""
    path = str(tiny_models(family))
    projected = QueryLikelihoodModel.from_pretrained(path, cross_attention="project")
    absorbed = QueryLikelihoodModel.from_pretrained(path, cross_attention="absorbed")
    texts = list(docs.values())[:10]
    states, mask = pad_states(projected.encode(texts))
    assert not bool(mask.all()), "the documents must need padding for the mask to be tested"
    labels = pad_labels([projected.query_labels(QUERY)] * len(texts))
    reference = projected.score_states(labels, states, mask)
    calls = _counting(monkeypatch)
    got = absorbed.score_states(labels, states, mask)
    assert len(calls) == len(_absorbed.cross_attention_modules(absorbed.model)) >= 2
    np.testing.assert_allclose(got.numpy(), reference.numpy(), atol=1e-4, rtol=0)
    assert np.ptp(reference.numpy()) > 1e-3


@pytest.mark.parametrize("family", FAMILIES)
def test_every_supported_family_absorbs_by_default(family, tiny_models):
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models(family)))
    assert model.absorbed
    layers = model.model.config.decoder.num_hidden_layers if family == "bert2bert" else 2
    assert len(_absorbed.cross_attention_modules(model.model)) == layers


def test_project_keeps_the_library_path(tiny_models, docs, monkeypatch):
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")), cross_attention="project")
    calls = _counting(monkeypatch)
    states, mask = pad_states(model.encode(list(docs.values())[:3]))
    model.score_states(pad_labels([model.query_labels(QUERY)] * 3), states, mask)
    assert not model.absorbed and calls == []


@pytest.mark.parametrize("family", ["t5v11", "bart"])
def test_absorbed_bf16_stays_within_the_bf16_tolerance(family, tiny_models, docs):
    """The stated tolerance of bf16 compute (as for the projected path): 0.5 nats summed against fp32."""
    path = str(tiny_models(family))
    exact = QueryLikelihoodModel.from_pretrained(path, cross_attention="project")
    fast = QueryLikelihoodModel.from_pretrained(path, cross_attention="absorbed", precision="bf16")
    texts = list(docs.values())[:8]
    states, mask = pad_states(exact.encode(texts))
    labels = pad_labels([exact.query_labels(QUERY)] * len(texts))
    difference = (fast.score_states(labels, states, mask) - exact.score_states(labels, states, mask)).abs()
    assert float(difference.max()) < 0.5


def test_absorbed_from_a_product_quantised_store(tiny_models, docs, tmp_path):
    """A PQ store's decoded states give the same scores absorbed as projected."""
    path = str(tiny_models("t5"))
    corpus = [Document(d, t) for d, t in docs.items()] * 1
    absorbed = QueryLikelihoodModel.from_pretrained(path)
    encode_corpus(absorbed, corpus, tmp_path / "pq", codec="PQ4x4", shard_size=15, progress=False)
    store = EncoderStateStore(tmp_path / "pq")
    docids = list(docs)
    got = DecoderReranker(absorbed, store).score(QUERY, docids)
    projected = QueryLikelihoodModel.from_pretrained(path, cross_attention="project")
    reference = DecoderReranker(projected, store).score(QUERY, docids)
    np.testing.assert_allclose(got, reference, atol=1e-4, rtol=0)


def _bert_to_gpt2(tmp_path):
    """A decoder whose cross-attention this project does not know (GPT-2's fused ``c_attn``)."""
    from transformers import BertConfig, EncoderDecoderConfig, EncoderDecoderModel, GPT2Config

    from _tiny import bert_tokenizer

    tok = bert_tokenizer()
    enc = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=64)
    dec = GPT2Config(vocab_size=tok.vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                     add_cross_attention=True, is_decoder=True)
    config = EncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    config.decoder_start_token_id, config.pad_token_id, config.eos_token_id = tok.cls_token_id, tok.pad_token_id, tok.sep_token_id
    torch.manual_seed(0)
    return EncoderDecoderModel(config=config).eval(), tok


def test_unknown_decoder_keeps_the_library_path_and_refuses_absorbed(tmp_path, docs):
    model, tok = _bert_to_gpt2(tmp_path)
    auto = QueryLikelihoodModel(model, tok, name_or_path="bert2gpt2")
    assert not auto.absorbed
    states, mask = pad_states(auto.encode(list(docs.values())[:3]))
    assert torch.isfinite(auto.score_states(pad_labels([auto.query_labels(QUERY)] * 3), states, mask)).all()
    with pytest.raises(DecrankError, match="absorbed cross-attention does not know the decoder of 'bert2gpt2'"):
        QueryLikelihoodModel(model, tok, name_or_path="bert2gpt2", cross_attention="absorbed")
    with pytest.raises(DecrankError, match="unknown cross-attention 'fast'"):
        QueryLikelihoodModel(model, tok, cross_attention="fast")


def test_rerank_option_reaches_the_model(tiny_models, docs, tmp_path):
    """``decrank rerank --cross-attention`` goes through ``load_reranker`` to the model."""
    from click.testing import CliRunner

    from pyserini_decrank.cli import main
    from pyserini_decrank.rerank import load_reranker

    path = str(tiny_models("bart"))
    corpus = tmp_path / "docs.tsv"
    corpus.write_text("".join(f"{d}\t{t}\n" for d, t in docs.items()))
    encode_corpus(QueryLikelihoodModel.from_pretrained(path), [Document(d, t) for d, t in docs.items()],
                  tmp_path / "store", codec="fp32", progress=False)
    for choice, absorbed in (("project", False), ("absorbed", True), ("auto", True)):
        reranker = load_reranker("decoder", model=path, store=str(tmp_path / "store"), cross_attention=choice)
        assert reranker.model.absorbed is absorbed
    result = CliRunner().invoke(main, ["rerank", "--model", path, "--store", str(tmp_path / "store"), "--topics",
                                       str(corpus), "--run", str(corpus), "--output", str(tmp_path / "out"),
                                       "--cross-attention", "fast"])
    assert result.exit_code == 2 and "'fast' is not one of 'auto', 'project', 'absorbed'" in result.output


def test_a_decoder_deeper_than_its_encoder_is_absorbed(tmp_path, docs):
    """T5 and BART count decoder layers apart from encoder layers: every decoder layer is absorbed."""
    from transformers import T5Config, T5ForConditionalGeneration

    from _tiny import t5_tokenizer

    tok = t5_tokenizer(tmp_path / "spm")
    config = T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=3, num_heads=4,
                      relative_attention_num_buckets=8, dropout_rate=0.0, pad_token_id=0, eos_token_id=1,
                      decoder_start_token_id=0)
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(config).eval()
    absorbed = QueryLikelihoodModel(model, tok, name_or_path="t5-1-3")
    assert absorbed.absorbed and len(_absorbed.cross_attention_modules(model)) == 3
    projected = QueryLikelihoodModel(model, tok, cross_attention="project")
    states, mask = pad_states(projected.encode(list(docs.values())[:4]))
    labels = pad_labels([projected.query_labels(QUERY)] * 4)
    torch.testing.assert_close(absorbed.score_states(labels, states, mask), projected.score_states(labels, states, mask),
                               atol=1e-4, rtol=0)
