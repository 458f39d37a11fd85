"""PyTerrier: ``first_stage >> DecrankReRanker`` over DataFrames and ``pt.Experiment`` give the scores and
measures of ``decrank rerank`` and ``decrank eval`` on the same run; ``DecrankIndexer`` builds the store."""

import numpy as np
import pandas as pd
import pytest

pt = pytest.importorskip("pyterrier")  # the [pyterrier] extra; `make test` installs it

from click.testing import CliRunner  # noqa: E402

from pyserini_decrank import DecoderReranker, DecrankError, QueryLikelihoodModel, read_run  # noqa: E402
from pyserini_decrank.cli import main  # noqa: E402
from pyserini_decrank.evaluate import evaluate_run  # noqa: E402
from pyserini_decrank.pyterrier import DecrankIndexer, DecrankReRanker  # noqa: E402

TOPICS = {"q1": "digital data storage", "q2": "electron wave frequency"}


@pytest.fixture(scope="module")
def setup(tiny_models, docs, tmp_path_factory):
    root = tmp_path_factory.mktemp("pt")
    model_path = str(tiny_models("t5"))
    store = DecrankIndexer(root / "store", model=model_path, progress=False).index(
        {"docno": d, "text": t} for d, t in docs.items())
    ids = list(docs)
    (root / "run.txt").write_text("".join(f"q1 Q0 {d} {i + 1} {30 - i} bm25\n" for i, d in enumerate(ids[:12]))
                                  + "".join(f"q2 Q0 {d} {i + 1} {30 - i} bm25\n" for i, d in enumerate(ids[12:20])))
    (root / "topics.tsv").write_text("".join(f"{q}\t{t}\n" for q, t in TOPICS.items()))
    (root / "qrels.txt").write_text(f"q1 0 {ids[5]} 2\nq1 0 {ids[9]} 1\nq2 0 {ids[15]} 1\n")
    run = pd.DataFrame([{"qid": q, "docno": h.docid, "score": h.score, "rank": h.rank - 1}
                        for q, hits in read_run(root / "run.txt").items() for h in hits])
    first_stage = pt.Transformer.from_df(run)
    reranker = DecrankReRanker(DecoderReranker(QueryLikelihoodModel.from_pretrained(model_path), store))
    return root, model_path, store, first_stage, reranker


def topics_frame():
    return pd.DataFrame([{"qid": q, "query": t} for q, t in TOPICS.items()])


def cli_scores(root, model, *extra):
    out = root / f"cli{len(extra)}.txt"
    result = CliRunner().invoke(main, ["rerank", "--model", model, "--store", str(root / "store"), "--topics",
                                       str(root / "topics.tsv"), "--run", str(root / "run.txt"), "--output", str(out),
                                       "--depth", "100", *extra])
    assert result.exit_code == 0, result.output
    return {(q, h.docid): h.score for q, hits in read_run(out).items() for h in hits}, out


def test_a_pipeline_scores_as_decrank_rerank_does(setup):
    root, model, store, first_stage, reranker = setup
    result = (first_stage >> reranker)(topics_frame())
    expected, _ = cli_scores(root, model)
    assert len(result) == len(expected) == 20
    got = {(r.qid, r.docno): r.score for r in result.itertuples()}
    assert got.keys() == expected.keys()
    np.testing.assert_allclose([got[k] for k in expected], list(expected.values()), atol=1e-5)  # run files keep 6 decimals
    for _, group in result.groupby("qid"):  # ranked by the new score, PyTerrier numbering from 0
        assert list(group["rank"]) == list(range(len(group))) and group["score"].is_monotonic_decreasing


def test_with_alpha_it_interpolates_the_frames_score_as_the_cli_does(setup):
    root, model, store, first_stage, reranker = setup
    interpolating = DecrankReRanker(DecoderReranker(reranker.reranker.model, store, alpha=0.3))
    got = {(r.qid, r.docno): r.score for r in (first_stage >> interpolating)(topics_frame()).itertuples()}
    expected, _ = cli_scores(root, model, "--alpha", "0.3")
    np.testing.assert_allclose([got[k] for k in expected], list(expected.values()), atol=1e-5)


def test_queries_batched_together_rank_as_one_at_a_time(setup):
    """``query_batch``: a frame's queries share decoder batches, and the ranking is the same."""
    root, model, store, first_stage, reranker = setup
    batched = DecrankReRanker(DecoderReranker(reranker.reranker.model, store, batch_size=64, query_batch=3))
    one, together = (first_stage >> reranker)(topics_frame()), (first_stage >> batched)(topics_frame())
    assert list(one["qid"]) == list(together["qid"]) and list(one["docno"]) == list(together["docno"])
    np.testing.assert_allclose(one["score"], together["score"], atol=1e-5, rtol=1e-6)


def test_a_text_column_is_read_and_the_store_serves_the_docnos_it_holds(setup, docs):
    root, model, store, first_stage, reranker = setup
    with_text = first_stage >> pt.apply.text(lambda row: docs[row["docno"]]) >> reranker
    plain = (first_stage >> reranker)(topics_frame())
    texts = with_text(topics_frame())
    np.testing.assert_allclose(texts["score"], plain["score"], atol=1e-5)
    no_store = DecrankReRanker(DecoderReranker(reranker.reranker.model))  # texts alone, encoded on the fly
    fresh = (first_stage >> pt.apply.text(lambda row: docs[row["docno"]]) >> no_store)(topics_frame())
    np.testing.assert_allclose(fresh.sort_values(["qid", "docno"])["score"],
                               plain.sort_values(["qid", "docno"])["score"], atol=0.01)  # the store is fp16


def test_pt_experiment_measures_as_decrank_eval_does(setup):
    root, model, store, first_stage, reranker = setup
    rows = [line.split() for line in (root / "qrels.txt").read_text().splitlines()]
    qrels = pd.DataFrame([{"qid": q, "docno": d, "label": int(g)} for q, _, d, g in rows])
    table = pt.Experiment([first_stage, first_stage >> reranker], topics_frame(), qrels, plan="tree",
                          eval_metrics=["ndcg_cut_10", "map"], names=["bm25", "bm25 >> decrank"])
    _, cli_run = cli_scores(root, model)
    from pyserini_decrank import read_qrels

    ours = evaluate_run(read_qrels(str(root / "qrels.txt")), read_run(cli_run), ["ndcg_cut.10", "map"])
    row = table.set_index("name").loc["bm25 >> decrank"]
    assert row["ndcg_cut_10"] == pytest.approx(ours.means["ndcg_cut.10"], abs=1e-4)
    assert row["map"] == pytest.approx(ours.means["map"], abs=1e-4)


@pytest.mark.parametrize("drop", ["query", "docno", "qid"])
def test_a_frame_without_a_needed_column_is_one_clear_error(setup, drop):
    *_, first_stage, reranker = setup
    frame = (first_stage)(topics_frame()).drop(columns=[drop])
    with pytest.raises(DecrankError) as info:
        reranker.transform(frame)
    assert f"no {drop!r} column" in str(info.value) and "\n" not in str(info.value)


def test_the_indexer_refuses_dicts_without_docno_or_text(tmp_path, tiny_models):
    indexer = DecrankIndexer(tmp_path / "store", model=str(tiny_models("t5")), progress=False)
    with pytest.raises(DecrankError, match="document 1 of the iterable has no 'docno'"):
        indexer.index([{"docno": "a", "text": "fine"}, {"text": "no id"}])
    with pytest.raises(DecrankError, match="document b: its 'text' is a float"):
        indexer.index([{"docno": "b", "text": float("nan")}])
