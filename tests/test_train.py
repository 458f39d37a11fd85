"""``decrank train``: every objective runs, is deterministic for a seed, resumes, and rerank picks up the
objective from the saved model."""

import json

import numpy as np
import pytest
import torch
import yaml

from pyserini_decrank import QueryLikelihoodModel
from pyserini_decrank.errors import DecrankError
from pyserini_decrank.model import pad_labels, pad_states
from pyserini_decrank.train import TrainConfig, Trainer, read_pairs

pytestmark = pytest.mark.slow  # training: `pytest -m 'not slow'` leaves it out


def config(tiny_models, pairs_file, out, **over):
    base = dict(pairs=[str(pairs_file)], output=str(out), base=str(tiny_models("t5")), steps=6, batch_size=8,
                lr=1e-3, warmup_steps=1, max_length=32, checkpoint_every=3, bf16=False)
    return TrainConfig(**{**base, **over})


def weights(path):
    model = QueryLikelihoodModel.from_pretrained(str(path))
    return torch.cat([p.detach().flatten() for p in model.model.parameters()])


@pytest.mark.parametrize("objective", ["mle", "unlikelihood", "rll", "label"])
def test_objectives_train_and_record_their_score(objective, tiny_models, pairs_file, tmp_path):
    trainer = Trainer.from_config(config(tiny_models, pairs_file, tmp_path / objective, objective=objective, negatives="random"), progress=False)
    with torch.no_grad():
        first = float(trainer.loss(trainer._batch(0)))
    trainer.run()
    assert np.isfinite(first)
    record = json.loads((tmp_path / objective / "train_record.json").read_text())
    assert record["steps_done"] == 6 and len(record["loss_curve"]) >= 1
    model = QueryLikelihoodModel.from_pretrained(str(tmp_path / objective))
    assert model.config.objective == objective
    states, mask = pad_states(model.encode(["magnetic field of the electron wave"]))
    score = model.score_states(pad_labels([model.query_labels("electron wave")]), states, mask)
    if objective == "label":
        assert model.query_labels("electron wave")[-1] == model.label_token_ids()[0]
        assert float(score[0]) <= 0 and float(score[0]) > -50  # log p(true) against false
    assert torch.isfinite(score).all()


def test_mle_lowers_the_loss_on_its_training_pairs(tiny_models, pairs_file, tmp_path):
    trainer = Trainer.from_config(config(tiny_models, pairs_file, tmp_path, steps=30), progress=False)
    batch = trainer._batch(0)
    with torch.no_grad():
        before = float(trainer.loss(batch))
    trainer.run()
    trainer.qlm.model.eval()
    with torch.no_grad():
        after = float(trainer.loss(batch))
    assert after < before - 0.5


def test_same_seed_same_model_and_resume_continues(tiny_models, pairs_file, tmp_path):
    Trainer.from_config(config(tiny_models, pairs_file, tmp_path / "a", objective="rll"), progress=False).run()
    Trainer.from_config(config(tiny_models, pairs_file, tmp_path / "b", objective="rll"), progress=False).run()
    torch.testing.assert_close(weights(tmp_path / "a"), weights(tmp_path / "b"))
    interrupted = Trainer.from_config(config(tiny_models, pairs_file, tmp_path / "c", objective="rll", steps=6, max_minutes=0.0), progress=False)
    interrupted.run()
    assert interrupted.step == 1  # stopped by the time budget after its first step, checkpoint saved
    resumed = Trainer.from_config(config(tiny_models, pairs_file, tmp_path / "c", objective="rll", steps=6), progress=False)
    resumed.resume()
    assert resumed.step == 1
    resumed.run()
    torch.testing.assert_close(weights(tmp_path / "a"), weights(tmp_path / "c"))


def test_a_checkpoint_from_before_an_option_existed_resumes_with_its_default(tiny_models, pairs_file, tmp_path):
    cfg = config(tiny_models, pairs_file, tmp_path / "old", steps=4, max_minutes=0.0)
    Trainer.from_config(cfg, progress=False).run()
    state = torch.load(tmp_path / "old" / "checkpoint.pt", weights_only=False)
    del state["config"]["unlabelled_queries"]  # as written before the option was added
    torch.save(state, tmp_path / "old" / "checkpoint.pt")
    resumed = Trainer.from_config(config(tiny_models, pairs_file, tmp_path / "old", steps=4), progress=False)
    resumed.resume()
    assert resumed.step == 1
    state["config"]["lr"] *= 2  # a real difference still refuses
    torch.save(state, tmp_path / "old" / "checkpoint.pt")
    with pytest.raises(DecrankError, match="different training configuration"):
        Trainer.from_config(config(tiny_models, pairs_file, tmp_path / "old", steps=4), progress=False).resume()


def test_the_training_device_is_checked_and_a_run_resumes_on_another(tiny_models, pairs_file, tmp_path):
    with pytest.raises(DecrankError, match="unknown device .gpu0."):
        Trainer.from_config(config(tiny_models, pairs_file, tmp_path / "bad", device="gpu0"), progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(DecrankError, match="sees no CUDA device"):
            Trainer.from_config(config(tiny_models, pairs_file, tmp_path / "none", device="cuda"), progress=False)
    Trainer.from_config(config(tiny_models, pairs_file, tmp_path / "moved", max_minutes=0.0), progress=False).run()
    resumed = Trainer.from_config(config(tiny_models, pairs_file, tmp_path / "moved", device="cpu:0"), progress=False)
    resumed.resume()
    assert resumed.step == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("objective", ["rll", "label"])
def test_cuda_training_matches_cpu_training(objective, tiny_models, pairs_file, tmp_path):
    """fp32 on both: the same three steps give the same losses and weights to 1e-3 (TF32 off, torch's default)."""
    runs = {}
    for device in ("cpu", "cuda"):
        trainer = Trainer.from_config(config(tiny_models, pairs_file, tmp_path / device, objective=objective,
                                             negatives="random", steps=3, device=device), progress=False)
        trainer.run()
        runs[device] = trainer
    cpu, cuda = runs["cpu"], runs["cuda"]
    assert cpu.losses and cuda.losses
    np.testing.assert_allclose(cpu.losses, cuda.losses, atol=1e-3)
    torch.testing.assert_close(weights(tmp_path / "cpu"), weights(tmp_path / "cuda"), atol=1e-3, rtol=1e-3)


def test_frozen_encoder_from_a_store_matches_encoding_on_the_fly(tiny_models, pairs_file, tmp_path):
    on_the_fly = Trainer.from_config(config(tiny_models, pairs_file, tmp_path / "fly", freeze_encoder=True), progress=False)
    from_store = Trainer.from_config(config(tiny_models, pairs_file, tmp_path / "st", freeze_encoder=True,
                                encoder_store=str(tmp_path / "store")), progress=False)
    batch = on_the_fly._batch(0)
    with torch.no_grad():
        assert float(on_the_fly.loss(batch)) == pytest.approx(float(from_store.loss(batch)), abs=0.05)  # bf16 store
    on_the_fly.run()
    encoder = QueryLikelihoodModel.from_pretrained(str(tmp_path / "fly"))
    base = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    assert encoder.fingerprint()["encoder_sha256"] == base.fingerprint()["encoder_sha256"]


def test_pairs_from_beir_folder(tmp_path):
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "title": "T", "text": "x"}\n{"_id": "d2", "text": "y"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "1", "text": "q one"}\n')
    (tmp_path / "qrels_train.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t0\n")
    data = read_pairs([str(tmp_path)])
    assert [(p.query, data.passages[p.passage]) for p in data.pairs] == [("q one", "T x")]


def test_bm25_negatives_are_mined_through_pyserini(pairs_file, tmp_path):
    from pyserini_decrank.train import mine_bm25_negatives

    data = read_pairs([str(pairs_file)])
    mined = mine_bm25_negatives(data, tmp_path, depth=5, threads=1)
    assert len(mined) == len(data.pairs)
    assert sum(1 for negs in mined if negs) > len(mined) // 2
    for pair, negs in zip(data.pairs, mined):
        assert pair.passage not in negs and len(negs) <= 5
        query_words = set(pair.query.split())
        if negs:  # BM25's best negative shares a word with the query
            assert query_words & set(data.passages[negs[0]].split())


def test_a_kept_bm25_run_answers_only_for_the_queries_it_was_searched_for(pairs_file, tmp_path):
    from pyserini_decrank.train import bm25_search

    data = read_pairs([str(pairs_file)])
    queries = [p.query for p in data.pairs[:5]]
    first = bm25_search(data.passages, queries, tmp_path, depth=3, threads=1)
    again = bm25_search(data.passages, queries, tmp_path, depth=3, threads=1)  # read from the kept run
    assert again == first and all(first)
    more = queries + [" ".join(reversed(data.pairs[7].query.split()))]  # one query more: searched again
    grown = bm25_search(data.passages, more, tmp_path, depth=3, threads=1)
    assert grown[:5] == first and grown[5]


def test_minilm_training_ships_a_decoder_delta_and_can_continue_from_it(pairs_file, tmp_path, monkeypatch):
    """``--base minilm --freeze-encoder`` writes a package (decoder only); a second stage whose base is
    that model keeps the shared word embeddings frozen and ships a package again."""
    from safetensors.torch import load_file

    from pyserini_decrank.model import DECODER_WEIGHTS, SHARED_KEYS, has_minilm_encoder

    monkeypatch.setenv("DECRANK_CACHE", str(tmp_path / "cache"))  # where a package folder is assembled
    common = dict(pairs=[str(pairs_file)], steps=2, batch_size=4, lr=1e-3, warmup_steps=1, max_length=24,
                  decoder_layers=1, freeze_encoder=True, bf16=False)
    first = Trainer.from_config(TrainConfig(output=str(tmp_path / "one"), base="minilm", card_datasets=["rajpurkar/squad"],
                                            **common), progress=False)
    first.run()
    card = yaml.safe_load((tmp_path / "one" / "README.md").read_text().split("---")[1])  # the hub's model card
    assert card["base_model"] == "sentence-transformers/all-MiniLM-L6-v2" and card["datasets"] == ["rajpurkar/squad"]
    assert card["library_name"] == "pyserini-decrank" and "ed2lm" in card["tags"]
    assert set(load_file(str(tmp_path / "one" / "package" / DECODER_WEIGHTS))).isdisjoint(SHARED_KEYS)
    second = Trainer.from_config(TrainConfig(output=str(tmp_path / "two"), base=str(tmp_path / "one"), objective="rll",
                                 negatives="random", num_negatives=1, **common), progress=False)
    assert second.ships_as_delta
    assert not any("word_embeddings" in name for name in second.trainable)
    second.run()
    assert "base_model" not in yaml.safe_load((tmp_path / "two" / "README.md").read_text().split("---")[1])  # a folder
    delta = load_file(str(tmp_path / "two" / "package" / DECODER_WEIGHTS))
    before = load_file(str(tmp_path / "one" / "package" / DECODER_WEIGHTS))
    assert delta.keys() == before.keys()
    assert any(not torch.equal(delta[k], before[k]) for k in delta)
    assert has_minilm_encoder(QueryLikelihoodModel.from_pretrained(str(tmp_path / "two")).model)
    assert json.loads((tmp_path / "two" / "package" / "decrank_config.json").read_text())["objective"] == "rll"
    packaged = QueryLikelihoodModel.from_pretrained(str(tmp_path / "two" / "package"))  # the delta folder, by path
    full = QueryLikelihoodModel.from_pretrained(str(tmp_path / "two"))
    states, mask = pad_states(full.encode(["magnetic field of the electron wave"]))
    labels = pad_labels([full.query_labels("electron wave")])
    assert packaged.config.objective == "rll"
    torch.testing.assert_close(packaged.score_states(labels, states, mask), full.score_states(labels, states, mask),
                               atol=0.05, rtol=0)  # the package's decoder is fp16


@pytest.mark.parametrize("copy", ["uniform", "attention"])
def test_copy_trains_its_gate_saves_it_and_resumes(copy, tiny_models, pairs_file, tmp_path, docs):
    """The learned gate moves from its start, ships in the model folder with the copy kind declared, scores
    like the trained model, resumes from a checkpoint to the same weights, and reads a store's token ids
    the same as token ids made on the fly."""
    from pyserini_decrank import DecoderReranker, EncoderStateStore
    from pyserini_decrank.encode import encode_corpus
    from pyserini_decrank.io import Document

    cfg = dict(objective="rll", negatives="random", copy=copy, freeze_encoder=True)
    fly = Trainer.from_config(config(tiny_models, pairs_file, tmp_path / "f", **cfg), progress=False)
    stored = Trainer.from_config(config(tiny_models, pairs_file, tmp_path / "s", encoder_store=str(tmp_path / "store"),
                                        **cfg), progress=False)
    with torch.no_grad():
        assert float(fly.loss(fly._batch(0))) == pytest.approx(float(stored.loss(stored._batch(0))), abs=0.05)  # bf16 store
    Trainer.from_config(config(tiny_models, pairs_file, tmp_path / "a", **cfg), progress=False).run()
    model = QueryLikelihoodModel.from_pretrained(str(tmp_path / "a"))
    assert model.copy.kind == copy and model.copy.learned and model.config.copy == copy
    assert float(model.copy_head.linear.weight.detach().abs().sum()) > 0  # trained from zero
    cut = Trainer.from_config(config(tiny_models, pairs_file, tmp_path / "b", max_minutes=0.0, **cfg), progress=False)
    cut.run()
    Trainer.from_config(config(tiny_models, pairs_file, tmp_path / "b", **cfg), progress=False).run()
    again = QueryLikelihoodModel.from_pretrained(str(tmp_path / "b"))
    torch.testing.assert_close(again.copy_head.linear.weight, model.copy_head.linear.weight)
    encode_corpus(model, [Document(d, t) for d, t in list(docs.items())[:5]], tmp_path / "docs", progress=False)
    scores = DecoderReranker(model, EncoderStateStore(tmp_path / "docs")).score("magnetic field", list(docs)[:5])
    assert np.isfinite(scores).all()


def test_the_copy_gate_trains_at_its_own_rate(tiny_models, pairs_file, tmp_path):
    from pyserini_decrank.model import INITIAL_GATE

    moved = {}
    for copy_lr in (None, 0.1):
        cfg = config(tiny_models, pairs_file, tmp_path / str(copy_lr), objective="rll", negatives="random",
                     copy="uniform", copy_lr=copy_lr, lr=1e-4)
        trainer = Trainer.from_config(cfg, progress=False)
        assert [g["lr"] for g in trainer.optimizer.param_groups][-1] > 0
        trainer.run()
        start = np.log(INITIAL_GATE / (1 - INITIAL_GATE))
        moved[copy_lr] = abs(float(trainer.qlm.copy_head.linear.bias.detach()) - start)
    assert moved[0.1] > 10 * moved[None]


# ---------------------------------------------------------------------- quantisation-aware training
def test_codec_aware_training_reads_states_through_the_codec_and_declares_it(tiny_models, pairs_file, tmp_path):
    """``codec``: the decoder trains on states encoded and decoded by a store codec, trained once on the
    training passages and kept, so that a resumed run reads the same codes; the model declares the codec."""
    from pyserini_decrank.store import FaissCodec
    from pyserini_decrank.train import TRAIN_CODEC_FILE

    out = tmp_path / "qat"
    options = dict(freeze_encoder=True, encoder_store=str(tmp_path / "store"), codec="PQ8x4", max_minutes=0.0)
    trainer = Trainer.from_config(config(tiny_models, pairs_file, out, **options), progress=False)
    states, mask, _ = trainer._passage_states([0, 1, 2])
    through = trainer._through_codec(states, mask)
    codec = trainer.training_codec()
    assert isinstance(codec, FaissCodec) and (out / TRAIN_CODEC_FILE).is_file()
    real = mask.bool()
    torch.testing.assert_close(through[real], codec.round_trip(states[real].float()))
    assert not torch.allclose(through[real], states[real], atol=1e-3)  # really quantised
    assert torch.equal(through[~real], states[~real])  # padding untouched
    trainer.run()  # one step, then out of time
    resumed = Trainer.from_config(config(tiny_models, pairs_file, out, **{**options, "max_minutes": None}), progress=False)
    resumed.resume()
    torch.testing.assert_close(resumed._through_codec(states, mask), through)  # the kept codec, not a retrained one
    resumed.run()
    model = QueryLikelihoodModel.from_pretrained(str(out))
    assert model.config.codec == "PQ8x4"
    assert '"codec": "PQ8x4"' in (out / "README.md").read_text()
    with pytest.raises(DecrankError, match="different training configuration"):
        Trainer.from_config(config(tiny_models, pairs_file, out, **{**options, "codec": "PQ4x4"}), progress=False).run()


def test_codec_aware_training_refuses_what_it_cannot_do(tiny_models, pairs_file, tmp_path):
    with pytest.raises(DecrankError, match="codec needs freeze_encoder"):
        Trainer.from_config(config(tiny_models, pairs_file, tmp_path / "a", codec="PQ8x4"), progress=False)
    with pytest.raises(DecrankError, match="codec 'PQ7x3x1'"):
        Trainer.from_config(config(tiny_models, pairs_file, tmp_path / "b", codec="PQ7x3x1", freeze_encoder=True),
                            progress=False)
