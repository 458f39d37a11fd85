"""The decoder path's speed levers keep its scores: weights cast once, the blocked vocabulary
projection, keys/values assembled straight into place, the allocator setting."""

import numpy as np
import pytest
import torch

from conftest import FAMILIES
from pyserini_decrank import QueryLikelihoodModel
from pyserini_decrank import retain_freed_memory
from pyserini_decrank.model import ComputeWeights, vocab_log_probs
from pyserini_decrank.model import pad_labels, pad_states

QUERY = "magnetic field of the electron"


def test_blocked_vocab_log_probs_equal_a_full_log_softmax():
    torch.manual_seed(0)
    hidden, weight, bias = torch.randn(2, 7, 16), torch.randn(50, 16), torch.randn(50)
    columns = torch.randint(0, 50, (2, 7, 3))
    reference = torch.log_softmax(hidden @ weight.T + bias, -1).gather(-1, columns)
    for block_rows in (1, 3, 14, 100):
        got = vocab_log_probs(hidden, weight, bias, columns, block_rows=block_rows)
        torch.testing.assert_close(got, reference, atol=1e-5, rtol=0)


def test_bias_added_after_the_head_is_kept(tiny_models, docs):
    """BART adds ``final_logits_bias`` to the logits after its projection: the blocked head must too."""
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("bart")))
    with torch.no_grad():
        model.model.final_logits_bias.normal_(0, 3.0)
    texts = list(docs.values())[:6]
    states, mask = pad_states(model.encode(texts))
    labels = pad_labels([model.query_labels(QUERY)] * len(texts))
    with torch.no_grad():
        logits = model.model(encoder_outputs=(states,), attention_mask=mask,
                             decoder_input_ids=model.model.prepare_decoder_input_ids_from_labels(labels)).logits
    reference = logits.log_softmax(-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1).sum(-1)
    torch.testing.assert_close(model.score_states(labels, states, mask), reference, atol=1e-4, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_bf16_compute_matches_autocast_and_leaves_the_model_alone(family, tiny_models, docs):
    """Cast-once weights give what plain autocast gives (the same rounding), within 1e-3 nats summed;
    the model's own weights stay fp32 for fingerprints, training and other precisions."""
    path = str(tiny_models(family))
    fast = QueryLikelihoodModel.from_pretrained(path, precision="bf16")
    before = fast.fingerprint()
    texts = list(docs.values())[:8]
    states, mask = pad_states(fast.encode(texts))
    labels = pad_labels([fast.query_labels(QUERY)] * len(texts))
    got = fast.score_states(labels, states, mask)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        token_lp, _ = fast.token_log_probs(labels, states, mask)  # plain autocast: casts on every call
    np.testing.assert_allclose(got.numpy(), token_lp.sum(-1).float().numpy(), atol=1e-3, rtol=0)
    assert all(p.dtype == torch.float32 for p in fast.model.parameters())
    fast._fingerprint = None
    assert fast.fingerprint() == before


def test_compute_weights_restore_the_originals_even_on_error():
    layer = torch.nn.Linear(4, 4)
    original = layer.weight
    copies = ComputeWeights(layer, torch.bfloat16)
    with pytest.raises(RuntimeError), copies.applied():
        assert layer.weight.dtype == torch.bfloat16
        raise RuntimeError("boom")
    assert layer.weight is original


@pytest.mark.parametrize("family", ["t5", "bart", "bert2bert"])
def test_keys_values_assembled_in_place_equal_padded_ones(family, tiny_models, docs):
    """Documents of different lengths, copied straight into the attention layout, score as the padded batch."""
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models(family)))
    texts = [t * (1 + i % 3) for i, t in enumerate(list(docs.values())[:7])]
    states, mask = pad_states(model.encode(texts))
    kv = model.cross_keys_values(states, mask)
    documents = [kv[i, : int(mask[i].sum())] for i in range(len(texts))]
    assert len({d.shape[0] for d in documents}) > 1
    labels = pad_labels([model.query_labels(QUERY)] * len(texts))
    reference = model.score_states(labels, states, mask)
    in_place = model.score_documents(model.query_labels(QUERY), documents, cross_kv=True)
    torch.testing.assert_close(in_place, reference, atol=1e-4, rtol=0)


def test_retain_freed_memory_is_safe_to_call_twice():
    import sys

    first, second = retain_freed_memory(), retain_freed_memory()
    assert first == second
    assert first is sys.platform.startswith("linux")  # glibc takes the setting; elsewhere a no-op


@pytest.mark.parametrize("family", ["t5", "bert2bert"])
def test_eager_attention_scores_like_the_default(family, tiny_models, docs):
    texts = list(docs.values())[:6]
    scores = {}
    for attention in (None, "eager"):
        model = QueryLikelihoodModel.from_pretrained(str(tiny_models(family)), attention=attention)
        states, mask = pad_states(model.encode(texts))
        scores[attention] = model.score_states(pad_labels([model.query_labels(QUERY)] * len(texts)), states, mask)
    torch.testing.assert_close(scores["eager"], scores[None], atol=1e-4, rtol=0)


def test_unknown_attention_is_one_clear_error(tiny_models):
    from pyserini_decrank import DecrankError

    with pytest.raises(DecrankError, match="unknown attention 'flash'"):
        QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")), attention="flash")


@pytest.mark.parametrize("family", ["t5", "bert2bert"])
def test_fp32_head_under_bf16_is_closer_to_fp32(family, tiny_models, docs):
    """``head_precision="fp32"`` keeps the vocabulary projection out of the bf16 copies and out of
    autocast; the rest runs in bf16, so the scores sit between bf16's and fp32's. All three read the same
    fp32 states (as from a store encoded at fp32), so that only the decoder's precision differs."""
    path = str(tiny_models(family))
    texts = list(docs.values())[:8]
    scores, models = {}, {}
    states = mask = None
    for name, precision, head in (("fp32", "fp32", "compute"), ("bf16", "bf16", "compute"), ("mixed", "bf16", "fp32")):
        models[name] = QueryLikelihoodModel.from_pretrained(path, precision=precision, head_precision=head)
        if states is None:
            states, mask = pad_states(models[name].encode(texts))
        scores[name] = models[name].score_states(pad_labels([models[name].query_labels(QUERY)] * len(texts)), states, mask)
    def cast(name):
        head = models[name].model.get_output_embeddings()
        return any(m is head for m, _ in models[name].compute._weights.copies)

    assert cast("bf16") and not cast("mixed")
    error = {k: (scores[k] - scores["fp32"]).abs().max().item() for k in ("bf16", "mixed")}
    assert error["mixed"] < error["bf16"]
    assert error["mixed"] < 0.5  # the bf16 codec's stated tolerance, tests/test_exactness.py


def test_encode_precision_bf16_encodes_in_bf16(tiny_models, docs, tmp_path):
    """`decrank encode --precision bf16`: the encoder's products run in bf16 (states within bf16 rounding of
    fp32 ones, and not equal to them); the store keeps them in its codec as usual."""
    from click.testing import CliRunner

    from pyserini_decrank import EncoderStateStore
    from pyserini_decrank.cli import main

    path = str(tiny_models("t5"))
    corpus = tmp_path / "corpus.tsv"
    corpus.write_text("".join(f"{d}\t{t}\n" for d, t in list(docs.items())[:10]))
    for precision in ("fp32", "bf16"):
        result = CliRunner().invoke(main, ["encode", "--model", path, "--corpus", str(corpus), "--store",
                                           str(tmp_path / precision), "--codec", "fp32", "--precision", precision])
        assert result.exit_code == 0, result.output
    exact, rounded = (EncoderStateStore(tmp_path / p).get_many(list(docs)[:10]) for p in ("fp32", "bf16"))
    worst = max(float((a - b).abs().max() / a.abs().max()) for a, b in zip(exact, rounded))
    assert 0 < worst < 0.05
    bad = CliRunner().invoke(main, ["encode", "--model", path, "--corpus", str(corpus), "--store", str(tmp_path / "x"),
                                    "--precision", "fp16"])
    assert bad.exit_code != 0 and "fp16" in bad.output and "Traceback" not in bad.output
