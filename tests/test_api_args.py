"""The Python API's entry points check their arguments: anything a caller can get wrong is a DecrankError
naming it, never an AttributeError or TypeError from deep inside; corpus fields and lengths are checked too."""

import json
from dataclasses import dataclass

import numpy as np
import pytest

from pyserini_decrank.errors import DecrankError
from pyserini_decrank.io import Hit, read_corpus
from pyserini_decrank.rerank import Reranker


class ByLength(Reranker):
    """Scores a docid by its length: a re-ranker with no model, for the argument checks."""

    def _score(self, query, docids):
        return np.array([float(len(d)) for d in docids])

    def _score_texts(self, query, texts, docids):
        return np.array([float(len(t)) for t in texts])

    def missing(self, docids):
        return [d for d in docids if d.startswith("unknown")]

    @property
    def where(self):
        return "nowhere"


@dataclass
class PyseriniLike:
    docid: str
    score: float


HITS = [Hit("a", 3.0), Hit("bbb", 2.0), Hit("cc", 1.0)]


def test_good_hits_of_any_shape_with_docid_and_score_are_reranked():
    ranked = ByLength().rerank("q", [PyseriniLike("a", 3.0), PyseriniLike("bbb", 2.0)])
    assert [h.docid for h in ranked] == ["bbb", "a"] and isinstance(ranked[0], PyseriniLike)
    assert [h.docid for h in ByLength().rerank("q", iter(HITS), k=np.int64(2))] == ["bbb", "a", "cc"]


@pytest.mark.parametrize("hits,message", [
    ([{"docid": "a", "score": 1.0}], "hit 0 is a dict"), ([("a", 1.0)], "hit 0 is a tuple"), (["a"], "hit 0 is a str"),
    ("abc", "not str"), ({"a": 1.0}, "not dict"), ([PyseriniLike("a", None)], "hit 0 is a PyseriniLike"),
    ([PyseriniLike(1, 1.0)], "string docid"), ([Hit("a", float("inf"))], "non-finite score"),
    ([Hit("a", 1.0), Hit("a", 0.5)], "docid a appears twice"), ([Hit("a", True)], "numeric score"),
])
def test_bad_hits_are_one_error_naming_them(hits, message):
    with pytest.raises(DecrankError, match=message):
        ByLength().rerank("q", hits)


@pytest.mark.parametrize("k", [0, -1, 2.5, "3", True, False])
def test_a_bad_depth_is_refused_not_rounded(k):
    with pytest.raises(DecrankError, match="whole number of at least 1"):
        ByLength().rerank("q", HITS, k=k)


@pytest.mark.parametrize("query,message", [(123, "must be a string"), (None, "must be a string"), ("", "empty"),
                                           ("\u200b\u200d", "empty"), ("\u0301\u0302", "empty"), ("  \t", "empty")])
def test_a_query_without_anything_to_read_is_refused(query, message):
    with pytest.raises(DecrankError, match=message):
        ByLength().rerank(query, HITS)


def test_batch_rerank_takes_mappings_and_score_takes_strings():
    with pytest.raises(DecrankError, match="mapping from qid, not a list"):
        ByLength().batch_rerank({"1": "q"}, [HITS])
    with pytest.raises(DecrankError, match="mapping from qid, not a list"):
        ByLength().batch_rerank(["q"], {"1": HITS})
    assert list(ByLength().batch_rerank({"1": "q"}, {"1": HITS})) == ["1"]
    with pytest.raises(DecrankError, match="sequence of strings"):
        ByLength().score("q", "abc")
    with pytest.raises(DecrankError, match="other types"):
        ByLength().score("q", [1, 2])
    with pytest.raises(DecrankError, match="alpha must be a number"):
        ByLength(alpha="0.5")


@pytest.mark.parametrize("line,message", [
    ({"id": 1.0, "contents": "x"}, "'id' must be a string"), ({"id": None, "contents": "x"}, "'id' must be a string"),
    ({"id": True, "contents": "x"}, "'id' must be a string"), ({"id": "a", "contents": 5}, "'contents' must be a string"),
    ({"_id": "a", "title": ["t"], "text": "x"}, "'title' must be a string"),
    ({"docid": "a", "content": {"x": 1}}, "'content' must be a string"),
])
def test_corpus_ids_and_texts_that_are_not_strings_are_refused(tmp_path, line, message):
    (tmp_path / "c.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(DecrankError, match=f"c.jsonl:1: {message}"):
        list(read_corpus(tmp_path / "c.jsonl"))


def test_integer_ids_and_missing_titles_still_read(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"id": 7, "contents": "x"}\n{"_id": "b", "title": null, "text": "y"}\n')
    assert [(d.docid, d.text) for d in read_corpus(tmp_path / "c.jsonl")] == [("7", "x"), ("b", "y")]


@pytest.mark.parametrize("family", ["t5", "bart"])
def test_max_length_is_checked_against_the_tokenizer_and_the_positions(tiny_models, family, tmp_path):
    from pyserini_decrank import QueryLikelihoodModel
    from pyserini_decrank.encode import encode_corpus
    from pyserini_decrank.io import Document

    qlm = QueryLikelihoodModel.from_pretrained(str(tiny_models(family)))
    specials = qlm.tokenizer.num_special_tokens_to_add()
    docs = [Document("d", "word " * 3000)]
    with pytest.raises(DecrankError, match="need at least"):
        encode_corpus(qlm, docs, tmp_path / "a", max_length=specials, progress=False)
    if family == "bart":  # learned positions: a limit
        limit = qlm.model.config.max_position_embeddings
        with pytest.raises(DecrankError, match=f"at most {limit} tokens"):
            encode_corpus(qlm, docs, tmp_path / "b", max_length=limit + 1, progress=False)
    encode_corpus(qlm, docs, tmp_path / "c", max_length=specials + 1, progress=False)
    assert not (tmp_path / "a").exists()


def test_score_takes_docids_from_any_iterable():
    assert ByLength().score("q", (d for d in ["a", "bbb"])).tolist() == [1.0, 3.0]


def test_encode_corpus_takes_a_model_or_its_name(tiny_models, tmp_path):
    from pyserini_decrank import EncoderStateStore, QueryLikelihoodModel
    from pyserini_decrank.encode import encode_corpus
    from pyserini_decrank.io import Document

    corpus = [Document("a", "digital data storage"), Document("b", "electron wave")]
    encode_corpus(str(tiny_models("t5")), corpus, tmp_path / "by-name", progress=False)
    encode_corpus(QueryLikelihoodModel.from_pretrained(str(tiny_models("t5"))), corpus, tmp_path / "loaded", progress=False)
    by_name, loaded = EncoderStateStore(tmp_path / "by-name"), EncoderStateStore(tmp_path / "loaded")
    assert by_name.manifest.model["encoder_sha256"] == loaded.manifest.model["encoder_sha256"]
    assert all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(by_name.get_many(["a", "b"]), loaded.get_many(["a", "b"])))


def test_the_score_is_read_as_the_config_says_whatever_the_objective_is_called(tmp_path):
    from pyserini_decrank.model import ScoringConfig

    ScoringConfig(objective="a-new-objective", score="label").save(tmp_path)
    assert ScoringConfig.load(tmp_path).reads_label  # a new objective needs no change in model/
    ScoringConfig(objective="label").save(tmp_path)  # written before `score` was recorded: read off the objective
    assert ScoringConfig.load(tmp_path).reads_label and ScoringConfig(objective="distil").score_kind == "likelihood"
    (tmp_path / "decrank_config.json").write_text(json.dumps({"score": "loudness"}))
    with pytest.raises(DecrankError, match="decrank_config.json: unknown score 'loudness'; known: likelihood, label"):
        ScoringConfig.load(tmp_path)
