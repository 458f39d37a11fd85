"""Readers of runs, topics, corpora and qrels, and their one-line errors."""

import gzip
import json

import pytest

from pyserini_decrank import DecrankError
from pyserini_decrank.io import read_corpus, read_qrels, read_run, read_topics


def test_run_is_grouped_and_in_first_stage_order(tmp_path):
    path = tmp_path / "run.txt"
    path.write_text("q1 Q0 b 2 3.0 bm25\nq2 Q0 x 1 9 bm25\nq1 Q0 a 1 5.0 bm25\nq1 Q0 c 3 3.0 bm25\n")
    run = read_run(path)
    assert list(run) == ["q1", "q2"]
    assert [h.docid for h in run["q1"]] == ["a", "b", "c"]


@pytest.mark.parametrize("line,message", [
    ("q1 Q0 a 1 5.0\n", r"run.txt:2: malformed run line"),
    ("q1 Q0 a one 5.0 t\n", r"run.txt:2: rank and score must be numbers"),
    ("q1 Q0 x 2 5.0 t\n", r"run.txt:2: docid x appears twice"),
])
def test_malformed_run_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "run.txt"
    path.write_text("q1 Q0 x 1 6.0 t\n" + line)
    with pytest.raises(DecrankError, match=message):
        read_run(path)


def test_topics_in_every_format(tmp_path):
    (tmp_path / "t.tsv").write_text("1\tfirst query\n2\tsecond\n")
    (tmp_path / "q.jsonl").write_text('{"_id": "7", "text": "claim"}\n')
    (tmp_path / "t.trec").write_text("<top>\n<num>3</num><title>\nMICROWAVE  TECHNIQUES\n</title>\n</top>\n"
                                     "<top>\n<num> Number: 301\n<title> Topic: oil spills\n<desc> ...\n</top>\n")
    with gzip.open(tmp_path / "t.tsv.gz", "wt") as f:
        f.write("9\tgz query\n")
    assert read_topics(str(tmp_path / "t.tsv")) == {"1": "first query", "2": "second"}
    assert read_topics(str(tmp_path / "q.jsonl")) == {"7": "claim"}
    assert read_topics(str(tmp_path / "t.trec")) == {"3": "MICROWAVE TECHNIQUES", "301": "oil spills"}
    assert read_topics(str(tmp_path / "t.tsv.gz")) == {"9": "gz query"}


def test_malformed_topics(tmp_path):
    (tmp_path / "t.tsv").write_text("1\tok\nno tab here\n")
    with pytest.raises(DecrankError, match=r"t.tsv:2: malformed topic line"):
        read_topics(str(tmp_path / "t.tsv"))
    with pytest.raises(DecrankError, match="topics file not found"):
        read_topics(str(tmp_path / "absent.tsv"))


def test_corpus_formats(tmp_path):
    beir = tmp_path / "beir"
    beir.mkdir()
    (beir / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "Title", "text": "body"}) + "\n")
    (tmp_path / "c.jsonl").write_text(json.dumps({"id": "p1", "contents": "passage"}) + "\n")
    (tmp_path / "c.tsv").write_text("t1\tplain text\nt2\tA title\tand body\n")
    (tmp_path / "c.trec").write_text("<DOC>\n<DOCNO>11</DOCNO>\nsome physics\ntext\n</DOC>\n")
    (tmp_path / "r.json").write_text(json.dumps([{"query": {"text": "q"}, "hits": [
        {"docid": "7", "content": "seven"}, {"docid": "8", "content": "eight"}]},
        {"query": {"text": "r"}, "hits": [{"docid": "7", "content": "seven"}]}]))
    pairs = lambda spec: [(d.docid, d.text) for d in read_corpus(spec)]
    assert pairs(beir) == [("d1", "Title body")]
    assert pairs(tmp_path / "c.jsonl") == [("p1", "passage")]
    assert pairs(tmp_path / "c.tsv") == [("t1", "plain text"), ("t2", "A title and body")]
    assert pairs(tmp_path / "c.trec") == [("11", "some physics text")]
    assert pairs(tmp_path / "r.json") == [("7", "seven"), ("8", "eight")]


def test_bad_corpus_lines(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"id": "1", "contents": "x"}\n{oops\n')
    with pytest.raises(DecrankError, match=r"c.jsonl:2: not a JSON line"):
        list(read_corpus(tmp_path / "c.jsonl"))
    with pytest.raises(DecrankError, match="corpus not found"):
        list(read_corpus(tmp_path / "nothing.jsonl"))


def test_qrels_trec_and_beir(tmp_path):
    (tmp_path / "q.txt").write_text("1 0 a 2\n1 0 b 0\n")
    (tmp_path / "q.tsv").write_text("query-id\tcorpus-id\tscore\n5\tx\t1\n")
    assert read_qrels(str(tmp_path / "q.txt")) == {"1": {"a": 2, "b": 0}}
    assert read_qrels(str(tmp_path / "q.tsv")) == {"5": {"x": 1}}
    (tmp_path / "bad.txt").write_text("1 0 a 1\n1 0 a 1 extra\n")
    with pytest.raises(DecrankError, match=r"bad.txt:2: malformed qrels line"):
        read_qrels(str(tmp_path / "bad.txt"))
