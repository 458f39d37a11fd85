"""The whole chain a Pyserini user runs, on a real Lucene index of a few dozen documents.

Pyserini steps run in child processes: a process that holds the JVM must not fork, and the JVM's
options are fixed when it starts, so pytest itself never starts one.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from pyserini_decrank import DecoderReranker, EncoderStateStore, QueryLikelihoodModel
from pyserini_decrank.evaluate import evaluate_run
from pyserini_decrank.io import read_qrels, read_run

pytestmark = pytest.mark.slow  # the Java pipeline: `pytest -m 'not slow'` leaves it out


def decrank(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "pyserini_decrank", *map(str, args)], capture_output=True, text=True, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def pipeline(tiny_models, docs, tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    (root / "collection").mkdir()
    with open(root / "collection" / "docs.jsonl", "w") as f:
        for docid, text in docs.items():
            f.write(json.dumps({"id": docid, "contents": text}) + "\n")
    (root / "topics.tsv").write_text("1\tdigital data storage memory\n2\telectron magnetic field\n3\tcancer vaccine trial\n")
    (root / "qrels.txt").write_text("".join(f"{q} 0 {d} {g}\n" for q, d, g in
                                            [(1, "doc-001", 1), (1, "doc-004", 2), (2, "doc-010", 1), (3, "doc-020", 1), (3, "doc-021", 2)]))
    decrank("pyserini", "index.lucene", "--collection", "JsonCollection", "--input", root / "collection",
            "--index", root / "index", "--generator", "DefaultLuceneDocumentGenerator", "--threads", "1", "--storeRaw")
    decrank("pyserini", "search.lucene", "--index", root / "index", "--topics", root / "topics.tsv",
            "--output", root / "run.bm25.txt", "--bm25", "--hits", "20")
    model = tiny_models("bert2bert")
    decrank("encode", "--model", model, "--corpus", root / "index", "--store", root / "store", "--shard-size", "16")
    decrank("rerank", "--model", model, "--store", root / "store", "--topics", root / "topics.tsv",
            "--run", root / "run.bm25.txt", "--output", root / "run.decrank.txt", "--depth", "10")
    table = decrank("eval", "--qrels", root / "qrels.txt", root / "run.bm25.txt", root / "run.decrank.txt").stdout
    return root, model, table


def test_bm25_run_comes_from_pyserini(pipeline, docs):
    root, _, _ = pipeline
    run = read_run(root / "run.bm25.txt")
    assert set(run) == {"1", "2", "3"}
    assert all(h.docid in docs for hits in run.values() for h in hits)


def test_store_holds_every_indexed_document(pipeline, docs):
    root, _, _ = pipeline
    store = EncoderStateStore(root / "store")
    assert len(store) == len(docs) and store.manifest.complete and len(store.manifest.shards) == 3
    assert sorted(store.docids()) == sorted(docs)


def test_reranked_run_matches_the_python_api(pipeline):
    root, model, _ = pipeline
    bm25, reranked = read_run(root / "run.bm25.txt"), read_run(root / "run.decrank.txt")
    api = DecoderReranker(QueryLikelihoodModel.from_pretrained(str(model)), EncoderStateStore(root / "store"))
    topics = dict(line.split("\t") for line in (root / "topics.tsv").read_text().splitlines())
    for qid, hits in bm25.items():
        expected = api.rerank(topics[qid], hits, k=10)
        assert [h.docid for h in reranked[qid]] == [h.docid for h in expected]
        np.testing.assert_allclose([h.score for h in reranked[qid]], [h.score for h in expected], atol=1e-5)


def test_eval_table_reports_both_runs(pipeline):
    root, _, table = pipeline
    qrels = read_qrels(str(root / "qrels.txt"))
    for name in ("run.bm25.txt", "run.decrank.txt"):
        row = next(line for line in table.splitlines() if f"| {name}" in line)
        ev = evaluate_run(qrels, read_run(root / name), ["ndcg_cut.10", "recip_rank.10", "recall.100"])
        assert [float(x) for x in row.split("|")[2:5]] == pytest.approx([round(v, 4) for v in ev.means.values()], abs=1e-4)
