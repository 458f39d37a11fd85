"""The ``distil`` objective: its loss, its teacher (the frozen encoder pooled is the bi-encoder), the teacher
lists' cache, and training with it end to end."""

import json
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from pyserini_decrank import QueryLikelihoodModel, read_corpus, read_qrels, read_run, read_topics
from pyserini_decrank.errors import DecrankError
from pyserini_decrank.train import (Distil, MinedList, PairSet, Pair, StepScores, TrainConfig, Trainer, embed_stored,
                                    embed_texts, get_objective, teacher_lists)


def step_scores(student: torch.Tensor, teacher: torch.Tensor) -> StepScores:
    """Rows of one token each, so a row's query log-likelihood is its single token's log-probability."""
    rows = student.numel()
    return StepScores(student.reshape(rows, 1), torch.zeros(rows, 1, 0), torch.zeros(rows, 1, dtype=torch.long),
                      torch.tensor([k % student.shape[1] == 0 for k in range(rows)]), student.shape[1],
                      teacher.reshape(rows))


def test_distil_loss_is_kl_from_the_teacher_plus_weighted_mle():
    student = torch.tensor([[-2.0, -3.0, -5.0], [-4.0, -1.0, -2.0]])
    teacher = torch.tensor([[0.9, 0.5, 0.1], [0.3, 0.8, 0.2]])
    loss = Distil(temperature=0.1, mle_weight=0.5).loss(step_scores(student, teacher))
    p = F.softmax(teacher / 0.1, -1)
    kl = (p * (p.log() - F.log_softmax(student, -1))).sum(-1).mean()
    mle = -(student[:, 0]).mean()
    assert float(loss) == pytest.approx(float(kl + 0.5 * mle), rel=1e-6)


def test_distil_gradient_moves_the_student_towards_the_teachers_order():
    student = torch.tensor([[-5.0, -1.0, -3.0]], requires_grad=True)
    teacher = torch.tensor([[0.9, 0.1, 0.5]])
    objective = Distil(temperature=0.5, mle_weight=0.0)
    for _ in range(200):
        loss = objective.loss(step_scores(student, teacher))
        (grad,) = torch.autograd.grad(loss, student)
        student = (student - 0.5 * grad).detach().requires_grad_()
    assert student[0].argsort(descending=True).tolist() == [0, 2, 1]
    assert float(objective.loss(step_scores(student.detach(), teacher))) < 1e-3


def test_distil_needs_a_positive_temperature_and_the_teachers_scores():
    with pytest.raises(DecrankError, match="temperature"):
        get_objective("distil", temperature=0.0)
    scores = step_scores(torch.zeros(1, 2), torch.zeros(1, 2))
    scores.teacher = None
    with pytest.raises(DecrankError, match="teacher"):
        Distil().loss(scores)


def test_label_distil_teaches_the_label_score_and_keeps_mle_on_the_query_tokens():
    """Rows of two targets, a query token then the label: the list score is log softmax(relevance, opposite)
    at the label (plus the query token's log p with ``adds_likelihood``); MLE reads the query token only."""
    from pyserini_decrank.train import LabelDistil

    query_lp = torch.tensor([[-1.0, -2.0], [-0.5, -3.0]])
    pair = torch.tensor([[[-0.1, -2.0], [-1.5, -0.3]], [[-0.7, -0.7], [-3.0, -0.05]]])  # queries x group x 2
    teacher = torch.tensor([[0.8, 0.2], [0.1, 0.9]])
    rows = query_lp.numel()
    token_lp = torch.stack([query_lp.reshape(rows), torch.full((rows,), -9.0)], -1)  # the label's own lp: unused
    extra = torch.zeros(rows, 2, 2)
    extra[:, 1] = pair.reshape(rows, 2)
    step = StepScores(token_lp, extra, torch.ones(rows, 2, dtype=torch.long), torch.tensor([True, False, True, False]),
                      2, teacher.reshape(rows))
    label = pair.log_softmax(-1)[..., 0]
    p = F.softmax(teacher / 0.5, -1)
    for adds, student in ((False, label), (True, label + query_lp)):
        kl = (p * (p.log() - F.log_softmax(student, -1))).sum(-1).mean()
        mle = -query_lp[:, 0].mean()
        loss = LabelDistil(temperature=0.5, mle_weight=0.3, adds_likelihood=adds).loss(step)
        assert float(loss) == pytest.approx(float(kl + 0.3 * mle), rel=1e-6)
    assert isinstance(get_objective("label-distil", label_adds_likelihood=True), LabelDistil)
    assert get_objective("label-distil", label_adds_likelihood=True).adds_likelihood


def test_frozen_minilm_encoder_pooled_is_the_biencoder():
    """The teacher needs no second model: our encoder's states, mean-pooled, are all-MiniLM-L6-v2's embedding."""
    from pyserini_decrank.model import ScoringConfig, build_minilm_encoder_decoder
    from pyserini_decrank.rerank import BiEncoderReranker

    model, tokenizer = build_minilm_encoder_decoder(decoder_layers=1)
    qlm = QueryLikelihoodModel(model, tokenizer, ScoringConfig(max_length=64))
    texts = ["the magnetic moment of the electron", "a quiet harbour town at dusk, its boats asleep"]
    ours = embed_texts(qlm, texts, max_length=64)
    theirs = BiEncoderReranker.from_pretrained(max_length=64).embed(texts)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


@pytest.fixture()
def tiny_pairs():
    from _tiny import sentences

    texts = sentences(12, seed=5)
    return PairSet([Pair(" ".join(t.split()[:3]), i) for i, t in enumerate(texts)], texts)


def test_teacher_lists_score_the_positive_first_and_come_back_from_their_cache(tiny_models, tiny_pairs, tmp_path, monkeypatch):
    qlm = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    mined = [MinedList([((i + 1) % 12, 7.0), ((i + 2) % 12, 5.0)], 9.0 if i % 2 else None) for i in range(12)]
    cache = tmp_path / "lists.json"
    lists = teacher_lists(qlm, tiny_pairs, mined, "biencoder", 0.5, 32, cache, progress=False)
    queries = embed_texts(qlm, [p.query for p in tiny_pairs.pairs], 32)
    passages = embed_texts(qlm, tiny_pairs.passages, 32)
    for i, item in enumerate(lists):
        assert item.passages == [i, (i + 1) % 12, (i + 2) % 12]
        expected = passages[item.passages] @ queries[i]
        assert item.scores == pytest.approx(expected.tolist(), abs=1e-5)
    mixed = teacher_lists(qlm, tiny_pairs, mined, "bm25+biencoder", 1.0, 32, tmp_path / "mixed.json", progress=False)
    assert mixed[1].scores == pytest.approx([1.0, 0.5, 0.0])  # BM25 alone: 9 (the positive's own), 7, 5
    assert mixed[0].scores == pytest.approx([0.0, 1.0, 0.0])  # positive not retrieved: the list's lowest, 5

    def fail(*args, **kwargs):
        raise AssertionError("recomputed instead of read from the cache")

    monkeypatch.setattr("pyserini_decrank.train._teacher.embed_texts", fail)
    again = teacher_lists(qlm, tiny_pairs, mined, "biencoder", 0.5, 32, cache, progress=False)
    assert [x.scores for x in again] == [x.scores for x in lists]
    with pytest.raises(AssertionError, match="recomputed"):  # other lists: the cache does not answer for them
        teacher_lists(qlm, tiny_pairs, mined[::-1], "biencoder", 0.5, 32, cache, progress=False)


def test_stored_states_pool_to_the_same_embedding(tiny_models, docs, tmp_path):
    from pyserini_decrank import EncoderStateStore
    from pyserini_decrank.encode import encode_corpus
    from pyserini_decrank.io import Document

    qlm = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    encode_corpus(qlm, (Document(d, t) for d, t in docs.items()), str(tmp_path / "store"), max_length=32,
                  codec="fp32", progress=False)
    stored = embed_stored(EncoderStateStore(tmp_path / "store"), list(docs))
    torch.testing.assert_close(stored, embed_texts(qlm, list(docs.values()), 32), atol=1e-5, rtol=1e-5)


def distil_config(tiny_models, pairs_file, out, **over):
    base = dict(pairs=[str(pairs_file)], output=str(out), base=str(tiny_models("t5")), objective="distil",
                negatives="bm25", num_negatives=3, freeze_encoder=True, steps=6, batch_size=4, lr=3e-3,
                warmup_steps=1, max_length=32, checkpoint_every=3, bf16=False, temperature=0.1)
    return TrainConfig(**{**base, **over})


@pytest.mark.slow
def test_distil_trains_towards_its_teacher_and_resumes_identically(tiny_models, pairs_file, tmp_path):
    trainer = Trainer.from_config(distil_config(tiny_models, pairs_file, tmp_path / "a", steps=30), progress=False)
    lists = json.loads((tmp_path / "a" / "teacher-lists.json").read_text())["lists"]
    assert len(lists) == len(trainer.data.pairs) and all(len(x["passages"]) >= 4 for x in lists)
    batch = trainer._batch(0)
    state = trainer.sampler.rng.getstate()
    with torch.no_grad():
        before = float(trainer.loss(batch))
    trainer.sampler.rng.setstate(state)  # the same lists after training
    trainer.run()
    trainer.qlm.model.eval()
    with torch.no_grad():
        after = float(trainer.loss(batch))
    assert math.isfinite(before) and after < before
    assert QueryLikelihoodModel.from_pretrained(str(tmp_path / "a")).config.objective == "distil"

    whole = Trainer.from_config(distil_config(tiny_models, pairs_file, tmp_path / "b"), progress=False)
    whole.run()
    halves = Trainer.from_config(distil_config(tiny_models, pairs_file, tmp_path / "c"), progress=False)
    halves.run(stop_at=3)
    assert halves.step == 3
    resumed = Trainer.from_config(distil_config(tiny_models, pairs_file, tmp_path / "c"), progress=False)
    resumed.run()
    a = torch.cat([p.flatten() for p in whole.qlm.model.parameters()])
    b = torch.cat([p.flatten() for p in resumed.qlm.model.parameters()])
    torch.testing.assert_close(a, b)


@pytest.mark.slow
def test_label_distil_trains_the_label_the_saved_model_is_scored_by(tiny_models, pairs_file, tmp_path):
    cfg = distil_config(tiny_models, pairs_file, tmp_path / "l", objective="label-distil", steps=30,
                        label_adds_likelihood=True)
    trainer = Trainer.from_config(cfg, progress=False)
    batch = trainer._batch(0)
    state = trainer.sampler.rng.getstate()
    with torch.no_grad():
        before = float(trainer.loss(batch))
    trainer.sampler.rng.setstate(state)
    trainer.run()
    trainer.qlm.model.eval()
    with torch.no_grad():
        after = float(trainer.loss(batch))
    assert math.isfinite(before) and after < before
    saved = QueryLikelihoodModel.from_pretrained(str(tmp_path / "l"))
    assert saved.config.objective == "label-distil" and saved.config.reads_label and saved.config.label_adds_likelihood
    assert saved.query_labels("what is bm25")[-1] == saved.label_token_ids()[0]


def test_distil_without_mined_lists_or_frozen_encoder_is_one_error(tiny_models, pairs_file, tmp_path):
    for wrong in (dict(negatives="random"), dict(freeze_encoder=False)):
        with pytest.raises(DecrankError, match="BM25-mined lists") as error:
            Trainer.from_config(distil_config(tiny_models, pairs_file, tmp_path, **wrong), progress=False)
        assert "--freeze-encoder and --negatives bm25" in error.value.cli_message
    assert not (tmp_path / "teacher-lists.json").exists()


def test_a_query_without_a_passage_gets_a_list_of_candidates_only(tiny_models, tiny_pairs, tmp_path):
    qlm = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    data = PairSet(tiny_pairs.pairs[:2] + [Pair("quiet harbour boats", None)], tiny_pairs.passages)
    mined = [MinedList([(5, 7.0), (6, 5.0)], None), MinedList([(7, 7.0), (8, 5.0)], 8.0),
             MinedList([(3, 9.0), (4, 6.0), (9, 1.0)], None)]
    lists = teacher_lists(qlm, data, mined, "biencoder", 0.5, 32, tmp_path / "lists.json", progress=False)
    assert [x.passages for x in lists] == [[0, 5, 6], [1, 7, 8], [3, 4, 9]]
    query = embed_texts(qlm, ["quiet harbour boats"], 32)[0]
    assert lists[2].scores == pytest.approx((embed_texts(qlm, [data.passages[i] for i in (3, 4, 9)], 32) @ query).tolist(), abs=1e-5)
    mixed = teacher_lists(qlm, data, mined, "bm25+biencoder", 1.0, 32, tmp_path / "mixed.json", progress=False)
    assert mixed[2].scores == pytest.approx([1.0, 0.625, 0.0])  # BM25 alone over its candidates: 9, 6, 1


def test_unlabelled_queries_are_added_once_and_drawn_one_candidate_longer(tiny_pairs, tmp_path):
    import random

    from pyserini_decrank.train import NegativeSampler, add_unlabelled_queries

    topics = tmp_path / "topics.tsv"
    known = tiny_pairs.pairs[0].query
    topics.write_text(f"q1\t{known.upper()}\nq2\tquiet  harbour boats\nq3\tQuiet harbour boats\n")
    data = add_unlabelled_queries(tiny_pairs, [str(topics)])
    assert [(p.query, p.passage) for p in data.pairs[12:]] == [("quiet  harbour boats", None)]
    assert len(data.labelled) == 12
    mined = [[(i + k) % 12 for k in range(1, 6)] for i in range(13)]
    sampler = NegativeSampler("bm25", data, 3, random.Random(0), mined, distinct=True)
    drawn = sampler.sample([0, 12])
    assert len(drawn[0]) == 3 and len(drawn[1]) == 4 and len(set(drawn[1])) == 4
    short = NegativeSampler("bm25", data, 5, random.Random(0), mined, distinct=True)
    with pytest.raises(DecrankError, match="no passage and fewer than 6"):
        short.sample([12])


@pytest.mark.slow
def test_distil_trains_on_queries_without_passages(tiny_models, pairs_file, tmp_path):
    queries = [line.split("\t")[0] for line in pairs_file.read_text().splitlines()[1:]]
    topics = tmp_path / "unlabelled.tsv"  # the same words in another order: new queries, candidates to be found
    topics.write_text("".join(f"u{i}\t{' '.join(reversed(q.split()))}\n" for i, q in enumerate(queries[:20])))
    cfg = distil_config(tiny_models, pairs_file, tmp_path / "u", unlabelled_queries=[str(topics)], steps=4)
    trainer = Trainer.from_config(cfg, progress=False)
    unlabelled = [i for i, p in enumerate(trainer.data.pairs) if p.passage is None]
    assert unlabelled and len(trainer.data.labelled) + len(unlabelled) == len(trainer.data.pairs)
    seen = []
    original = trainer.objective.loss

    def spy(step):
        seen.append(step)
        return original(step)

    trainer.objective.loss = spy
    with torch.no_grad():
        assert math.isfinite(float(trainer.loss([unlabelled[0], 0])))
    step = seen[0]
    assert step.is_positive.tolist() == [False] * 4 + [True, False, False, False]
    assert step.teacher.shape == (8,)
    trainer.objective.loss = original
    trainer.run()
    record = json.loads((tmp_path / "u" / "train_record.json").read_text())
    assert record["unlabelled_queries"] == len(unlabelled) and record["pairs"] == len(trainer.data.labelled)
    with pytest.raises(DecrankError, match="teacher") as error:
        Trainer.from_config(TrainConfig(pairs=[str(pairs_file)], output=str(tmp_path / "m"), base=str(tiny_models("t5")),
                                        unlabelled_queries=[str(topics)]), progress=False)
    assert "--unlabelled-queries needs --objective distil" in error.value.cli_message


def test_the_packaged_alpha_is_the_best_mean_that_keeps_every_dev_domain_at_or_above_bm25():
    from eval.distil_dev import choose_alpha

    def domain(values):  # nDCG@10 at alphas 0, 0.3, 0.6 and 1 (BM25 alone)
        return {"alone": values[0], "alpha": {str(a): v for a, v in zip((0.0, 0.3, 0.6, 1.0), values)}}

    row = {**domain([0.66, 0.80, 0.75, 0.70]), "beir": {"sci": domain([0.30, 0.69, 0.72, 0.70])}}
    assert choose_alpha(row) == ("0.6", 0.735)  # 0.3 has the best mean (0.745) but is below BM25 on sci
    assert choose_alpha(domain([0.70, 0.72, 0.72, 0.70])) == ("0.3", 0.72)  # a tie goes to the smaller alpha


def test_in_domain_training_pairs_leave_out_dev_queries_and_test_judged_documents(tmp_path):
    from eval.distil_dev import DevDomain, beir_training_pairs

    (tmp_path / "corpus.jsonl").write_text("".join(
        f'{{"_id": "d{i}", "title": "T{i}", "text": "text {i}"}}\n' for i in range(4)))
    (tmp_path / "queries.jsonl").write_text("".join(f'{{"_id": "q{i}", "text": "query {i}"}}\n' for i in range(3)))
    (tmp_path / "qrels_train.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\nq1\td1\t1\nq2\td2\t1\nq2\td3\t0\n")
    (tmp_path / "qrels_test.tsv").write_text("query-id\tcorpus-id\tscore\nq9\td2\t1\n")
    dev = DevDomain({"q0": "query 0"}, {}, {}, None)
    out, counts = beir_training_pairs(tmp_path, "train", dev, tmp_path / "pairs.tsv")
    assert out.read_text() == "query 1\tT1 text 1\n"  # q0 is dev, d2 is judged in test, d3 is not relevant
    assert counts == {"pairs": 1, "queries": 1, "left_out_judged_in_test": 1}


def test_a_beir_folder_without_the_split_is_one_error(tmp_path):
    from eval.distil_dev import split_qrels

    (tmp_path / "qrels_test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\n")
    assert split_qrels(tmp_path, "test") == {"q0": {"d0": 1}}
    with pytest.raises(DecrankError, match="no qrels/train.tsv or qrels_train.tsv"):
        split_qrels(tmp_path, "train")


def test_dev_compare_measures_two_models_query_by_query_alone_and_with_bm25():
    from eval.distil_dev import DevDomain
    from eval.dev_compare import difference, per_query

    # two queries, three BM25 candidates each, the relevant one BM25's last
    bm25 = {q: [("a", 3.0), ("b", 2.0), ("rel", 1.0)] for q in ("q0", "q1")}
    domain = DevDomain({"q0": "x", "q1": "y"}, {q: {"rel": 1} for q in bm25}, bm25, None)
    model_a = {"q0": np.array([0.0, 1.0, 2.0]), "q1": np.array([2.0, 1.0, 0.0])}  # right for q0 only
    model_b = {"q0": np.array([0.0, 1.0, 2.0]), "q1": np.array([0.0, 1.0, 2.0])}  # right for both
    a, b = per_query(domain, model_a, None), per_query(domain, model_b, None)
    assert a == {"q0": 1.0, "q1": pytest.approx(0.5)} and b == {"q0": 1.0, "q1": 1.0}
    assert per_query(domain, model_b, 1.0) == {"q0": pytest.approx(0.5), "q1": pytest.approx(0.5)}  # BM25 alone
    row = difference(a, b)
    assert row["a"] == 0.75 and row["b"] == 1.0 and row["b_minus_a"] == 0.25 and row["queries"] == 2
    assert row["ci95"][0] == 0.0 and row["ci95"][1] == 0.5  # resampling two queries: both, one or the other


def test_a_dev_domain_is_written_as_a_collection_the_readers_take_back(tmp_path):
    from eval.dev_collections import write_collection
    from eval.distil_dev import DevDomain

    bm25 = {"q0": [("b", 2.5), ("a", 1.0)], "q1": [("c", 3.0), ("b", 0.5)]}
    texts = {"a": "text a", "b": "text b", "c": "text c", "unjudged": "never a candidate"}
    domain = DevDomain({"q0": "first  query", "q1": "second"}, {"q0": {"a": 1}, "q1": {"c": 2}}, bm25, None, None, texts)
    assert write_collection(domain, tmp_path / "dev") == {"documents": 3, "queries": 2}
    folder = tmp_path / "dev"
    assert [(d.docid, d.text) for d in read_corpus(folder / "corpus.jsonl")] == [("b", "text b"), ("a", "text a"), ("c", "text c")]
    assert read_topics(str(folder / "topics.tsv")) == {"q0": "first query", "q1": "second"}
    assert read_qrels(str(folder / "qrels.txt")) == {"q0": {"a": 1}, "q1": {"c": 2}}
    run = read_run(folder / "bm25.run")
    assert {q: [(h.docid, h.score) for h in hits] for q, hits in run.items()} == bm25
    with pytest.raises(DecrankError, match="no document texts"):
        write_collection(DevDomain({}, {}, {}, None), tmp_path / "none")
