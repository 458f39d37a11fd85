"""Copy-aware scoring: document token ids in the store, the mixture's maths against a full forward, the gate."""

import hashlib
import io
import json
import math

import numpy as np
import pytest
import torch

from conftest import FAMILIES
from pyserini_decrank import DecoderReranker, EncoderStateStore, QueryLikelihoodModel
from pyserini_decrank.encode import encode_corpus
from pyserini_decrank.errors import DecrankError
from pyserini_decrank.io import Document
from pyserini_decrank.model import COPY_HEAD_FILE, CopyHead, CopySpec
from pyserini_decrank.model import INITIAL_GATE
from pyserini_decrank.store import document_crc

QUERY = "magnetic field of the electron"


def _corpus(docs, n=8):
    return [Document(d, t) for d, t in list(docs.items())[:n]]


def _store(model, docs, folder, **options):
    encode_corpus(model, _corpus(docs), folder, progress=False, **options)
    return EncoderStateStore(folder)


def _reference(model: QueryLikelihoodModel, text: str, query: str, copy: CopySpec) -> float:
    """The copy score from one full encoder-decoder forward (eager attention, weights returned by the
    library), written from the definition and sharing no scoring code with the package."""
    net = model.model
    net.set_attn_implementation("eager")
    ids = model.tokenize_documents([text])[0]
    labels = model.query_ids(query)
    decoder_input = [model.decoder_start_token_id] + labels[:-1]
    captured = {}
    handle = net.get_output_embeddings().register_forward_hook(lambda m, i, o: captured.update(hidden=i[0]))
    try:
        with torch.no_grad():
            out = net(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                      decoder_input_ids=torch.tensor([decoder_input]), output_attentions=True)
    finally:
        handle.remove()
        net.set_attn_implementation("sdpa")
    p_vocab = out.logits[0].float().softmax(-1)
    specials = model.special_token_ids
    copyable = torch.tensor([i not in specials for i in ids], dtype=torch.float32)
    if copy.kind == "attention":
        a = out.cross_attentions[-1][0].mean(0) * copyable  # T x L
    else:
        a = copyable.expand(len(labels), -1).clone()
    a = a / a.sum(-1, keepdim=True)
    if copy.gate is None:
        with torch.no_grad():
            g = torch.sigmoid(model.copy_head.linear(captured["hidden"][0].float())).squeeze(-1)
    else:
        g = torch.full((len(labels),), copy.gate)
    total = 0.0
    for t, w in enumerate(labels):
        p_copy = float(sum(a[t, j] for j, x in enumerate(ids) if x == w))
        total += math.log((1 - float(g[t])) * float(p_vocab[t, w]) + float(g[t]) * p_copy)
    return total


def _with_learned_gate(model: QueryLikelihoodModel) -> None:
    head = model.add_copy_head()
    torch.manual_seed(1)
    with torch.no_grad():
        head.linear.weight.normal_(0, 0.5)


# ---------------------------------------------------------------------- the spec
def test_copy_spec_forms():
    assert CopySpec.parse("none") == CopySpec()
    assert CopySpec.parse("0.1") == CopySpec("uniform", 0.1)
    assert CopySpec.parse("attention:0.25") == CopySpec("attention", 0.25)
    assert CopySpec.parse("attention") == CopySpec("attention", None) and CopySpec.parse("attention").learned
    assert str(CopySpec.parse("uniform:0.1")) == "uniform:0.1"
    for bad in ("1.5", "-0.1", "tf:0.1", "none:0.1", "abc", "uniform:x"):
        with pytest.raises(DecrankError):
            CopySpec.parse(bad)


# ---------------------------------------------------------------------- the store
def test_store_keeps_token_ids_under_the_checksum(tiny_models, docs, tmp_path):
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("bert2bert")))
    store = _store(model, docs, tmp_path / "s", codec="fp32")
    assert store.has_token_ids and store.info()["token_ids"] == "stored"
    ids = list(docs)[:3]
    states, tokens = store.get_many_with_tokens(ids)
    for docid, s, t in zip(ids, states, tokens):
        expected = model.tokenize_documents([docs[docid]])[0]
        assert len(t) == s.shape[0] == len(expected)
        assert [int(~x) if x < 0 else int(x) for x in t] == expected
        specials = [int(~x) for x in t if x < 0]
        assert specials and set(specials) <= model.special_token_ids  # [CLS] and [SEP] are marked
    changed = tokens[0].copy()
    changed[1] += 1
    assert document_crc(ids[0], 0, len(changed), states[0].numpy(), changed) != \
        document_crc(ids[0], 0, len(changed), states[0].numpy(), tokens[0])


def _drop_token_ids(folder):
    """A store as written before token ids were kept: no tokens file, CRCs over docid, offsets and states."""
    manifest = json.loads((folder / "manifest.json").read_text())
    store = EncoderStateStore(folder)
    for i, shard in enumerate(manifest["shards"]):
        shard_dir = folder / "shards" / shard["name"]
        states, offsets, _ = store._shard_arrays(i)
        del shard["files"]["tokens.npy"]
        (shard_dir / "tokens.npy").unlink()
        table = list(store._table(i))
        crcs = np.array([document_crc(d, int(offsets[r]), int(offsets[r + 1]), states[offsets[r]:offsets[r + 1]])
                         for r, d in enumerate(table)], dtype=np.uint32)
        buf = io.BytesIO()
        np.save(buf, crcs, allow_pickle=False)
        (shard_dir / "checksums.npy").write_bytes(buf.getvalue())
        shard["files"]["checksums.npy"] = {"bytes": len(buf.getvalue()), "sha256": hashlib.sha256(buf.getvalue()).hexdigest()}
    manifest.pop("checksum", None)  # as a store written before manifests had one
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_a_store_without_token_ids_serves_all_but_copying(tiny_models, docs, tmp_path):
    path = str(tiny_models("t5"))
    model = QueryLikelihoodModel.from_pretrained(path)
    folder = tmp_path / "old"
    _store(model, docs, folder)
    _drop_token_ids(folder)
    store = EncoderStateStore(folder)
    assert not store.has_token_ids and "missing" in store.info()["token_ids"]
    plain = DecoderReranker(model, store)
    assert len(plain.score(QUERY, list(docs)[:4])) == 4
    with pytest.raises(DecrankError, match="encode the corpus again"):
        DecoderReranker.from_pretrained(path, store=str(folder), copy="0.1")


# ---------------------------------------------------------------------- the maths
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("copy", ["uniform:0.3", "attention:0.3", "attention"])
def test_copy_scores_equal_the_full_forward(family, copy, tiny_models, docs, tmp_path):
    """Decoder-only over stored states (absorbed and projected; cross-kv for a fixed gate) against one full
    forward of each document, to fp32 rounding (1e-4 nats summed over the query)."""
    path = str(tiny_models(family))
    spec = CopySpec.parse(copy)
    query = " ".join(list(docs.values())[0].split()[:4])  # words the first document holds
    scores = []
    for cross_attention in ("absorbed", "project"):
        model = QueryLikelihoodModel.from_pretrained(path, cross_attention=cross_attention)
        if spec.learned:
            _with_learned_gate(model)
        model.set_copy(spec)
        store = _store(model, docs, tmp_path / cross_attention, codec="fp32")
        scores.append(DecoderReranker(model, store).score(query, list(docs)[:8]))
    if not spec.learned:
        model = QueryLikelihoodModel.from_pretrained(path, copy=str(spec))
        store = _store(model, docs, tmp_path / "kv", codec="fp32", content="cross-kv")
        scores.append(DecoderReranker(model, store).score(query, list(docs)[:8]))
    reference = np.array([_reference(model, docs[d], query, spec) for d in list(docs)[:8]])
    for got in scores:
        np.testing.assert_allclose(got, reference, atol=1e-4, rtol=0)
    plain = QueryLikelihoodModel.from_pretrained(path)
    without = DecoderReranker(plain, EncoderStateStore(tmp_path / "project")).score(query, list(docs)[:8])
    assert np.abs(scores[0] - without).max() > 1e-3  # copying changed the scores


def test_uniform_copy_is_smoothed_query_likelihood(tiny_models, docs, tmp_path):
    """With uniform copying the score is sum_t log((1 - l) p_model + l tf(q_t, d) / |d|), |d| the document's
    tokens less the special ones, and a document that holds no query token scores log(1 - l) per token less."""
    path = str(tiny_models("t5v11"))
    plain = QueryLikelihoodModel.from_pretrained(path)
    store = _store(plain, docs, tmp_path / "s", codec="fp32")
    docid = list(docs)[0]
    states, tokens = store.get_many_with_tokens([docid])
    labels = plain.query_ids(QUERY)
    from pyserini_decrank.model import pad_labels, pad_states

    s, mask = pad_states(states)
    with torch.no_grad():
        token_lp, _ = plain.token_log_probs(pad_labels([labels]), s, mask)
    ids = [int(x) for x in tokens[0] if x >= 0]
    lam = 0.2
    expected = sum(math.log((1 - lam) * math.exp(float(lp)) + lam * ids.count(w) / len(ids))
                   for w, lp in zip(labels, token_lp[0]))
    copying = QueryLikelihoodModel.from_pretrained(path, copy=f"uniform:{lam}")
    got = float(DecoderReranker(copying, store).score(QUERY, [docid])[0])
    assert abs(got - expected) < 1e-4


def test_learned_gate_saved_and_loaded(tiny_models, docs, tmp_path):
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("bart")))
    _with_learned_gate(model)
    model.set_copy("attention")
    model.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / COPY_HEAD_FILE).is_file()
    assert json.loads((tmp_path / "m" / "decrank_config.json").read_text())["copy"] == "attention"
    again = QueryLikelihoodModel.from_pretrained(str(tmp_path / "m"))
    assert again.copy == CopySpec("attention") and again.copy_head is not None
    store = _store(model, docs, tmp_path / "s")
    np.testing.assert_allclose(DecoderReranker(again, store).score(QUERY, list(docs)[:5]),
                               DecoderReranker(model, store).score(QUERY, list(docs)[:5]), atol=1e-5)


def test_a_learned_gate_the_model_lacks_is_one_error(tiny_models):
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    with pytest.raises(DecrankError, match="no learned copy gate"):
        model.set_copy("uniform")


def test_copy_gradients_reach_the_gate(tiny_models, docs):
    """Training reads the same scores: the gate and the attention both get gradients."""
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("bert2bert")), cross_attention="project")
    head = model.add_copy_head()
    model.set_copy("attention")
    from pyserini_decrank.model import copyable_tokens, pad_ids, pad_labels

    ids = model.tokenize_documents(list(docs.values())[:3])
    input_ids, mask = pad_ids(ids, model.pad_token_id)
    states = model.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
    tokens = copyable_tokens([model.stored_token_ids(i) for i in ids], mask.shape[1])
    labels = pad_labels([model.query_ids(" ".join(list(docs.values())[k].split()[:3])) for k in range(3)])
    token_lp, _ = model.token_log_probs(labels, states, mask, document_tokens=tokens, absorbed=False)
    (-token_lp.sum()).backward()
    assert head.linear.weight.grad is not None and float(head.linear.weight.grad.abs().sum()) > 0
    last_query = model.model.decoder.bert.encoder.layer[-1].crossattention.self.query.weight
    assert last_query.grad is not None and float(last_query.grad.abs().sum()) > 0
    assert CopyHead(8).log_gates(torch.zeros(1, 8))[0].exp().item() == pytest.approx(INITIAL_GATE)


@pytest.mark.parametrize("kind", ["uniform", "attention"])
def test_copy_terms_put_together_give_the_fixed_gate_score(kind, tiny_models, docs, tmp_path):
    """What a gate screen reads (one pass, any lambda) is what scoring with that lambda gives."""
    from pyserini_decrank.model import copyable_tokens, fixed_log_gates, mix_log_probs, pad_labels, pad_states

    path = str(tiny_models("bart"))
    model = QueryLikelihoodModel.from_pretrained(path)
    store = _store(model, docs, tmp_path / "s", codec="fp32")
    ids = list(docs)[:6]
    states, tokens = store.get_many_with_tokens(ids)
    padded, mask = pad_states(states)
    labels = pad_labels([model.query_ids(QUERY)] * len(ids))
    vocab_lp, copied = model.copy_terms(labels, padded, mask, copyable_tokens(tokens, mask.shape[1]), kind)
    for lam in (0.05, 0.5):
        mixed = mix_log_probs(vocab_lp, copied, *fixed_log_gates(lam, torch.device("cpu"))).sum(-1)
        model.set_copy(f"{kind}:{lam}")
        np.testing.assert_allclose(mixed.numpy(), DecoderReranker(model, store).score(QUERY, ids), atol=1e-5)


def test_copyable_tokens_from_the_tokenizer_equal_the_stores(tiny_models, docs, tmp_path):
    from pyserini_decrank.model import copyable_tokens

    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5v11")))
    store = _store(model, docs, tmp_path / "s")
    ids = list(docs)[:4]
    _, stored = store.get_many_with_tokens(ids)
    direct = model.copyable_tokens(model.tokenize_documents([docs[d] for d in ids]), 40)
    assert torch.equal(direct, copyable_tokens(stored, 40)) and bool((direct == -1).any())
