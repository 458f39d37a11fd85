"""What a careful user and a reliability engineer would try: each case gives one clear error line or the
right behaviour, and nothing already written is lost."""

import gzip
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pyserini_decrank import DecrankError, EncoderStateStore, QueryLikelihoodModel, StoreWriter
from pyserini_decrank.cli import main
from pyserini_decrank.io import read_run, read_topics
from pyserini_decrank.model import weights_sha256


@pytest.fixture(scope="module")
def setup(tiny_models, docs, tmp_path_factory):
    root = tmp_path_factory.mktemp("reliability")
    (root / "corpus.tsv").write_text("".join(f"{d}\t{t}\n" for d, t in docs.items()))
    ids = list(docs)
    (root / "run.txt").write_text("".join(f"q1 Q0 {d} {i + 1} {30 - i} bm25\n" for i, d in enumerate(ids[:10]))
                                  + "".join(f"q2 Q0 {d} {i + 1} {30 - i} bm25\n" for i, d in enumerate(ids[10:20])))
    (root / "run_all.txt").write_text("".join(f"q1 Q0 {d} {i + 1} {50 - i} bm25\n" for i, d in enumerate(ids)))
    (root / "topics.tsv").write_text("q1\tdigital data storage\nq2\telectron wave frequency\n")
    model = str(tiny_models("t5"))
    code, _, err = cli("encode", "--model", model, "--corpus", root / "corpus.tsv", "--store", root / "store",
                       "--shard-size", "16", "--codec", "fp32")
    assert code == 0, err
    return root, model


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def one_line_error(code, err, *fragments):
    """Exit status 2 and one ``decrank: error:`` line (progress bars, which redraw with \\r, aside)."""
    lines = [line.split("\r")[-1] for line in err.split("\n")]
    lines = [line for line in lines if line.strip() and not line.startswith(("decrank: warning:", "encode:", "rerank:"))]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("decrank: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def rerank(root, model, *extra, **over):
    args = {"--model": model, "--store": root / "store", "--topics": root / "topics.tsv", "--run": root / "run.txt",
            "--output": root / "out.txt", "--depth": 5}
    args.update(over)
    return cli("rerank", *[x for k, v in args.items() for x in (k, v)], *extra)


# 1 ---------------------------------------------------------------- store identity from bytes
def test_fingerprint_is_the_same_on_every_thread_count(tiny_models):
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5v11")))
    before = torch.get_num_threads()
    try:
        prints = set()
        for threads in (1, 2, 3, 4):
            torch.set_num_threads(threads)
            prints.add(weights_sha256(model.encoder))
    finally:
        torch.set_num_threads(before)
    assert len(prints) == 1


def test_a_store_encoded_on_one_thread_is_read_on_two(setup, tmp_path):
    root, model = setup
    before = torch.get_num_threads()
    try:
        code, _, err = cli("encode", "--model", model, "--corpus", root / "corpus.tsv", "--store", tmp_path / "s",
                           "--threads", "1")
        assert code == 0, err
        code, _, err = rerank(root, model, "--threads", "2", **{"--store": tmp_path / "s", "--output": tmp_path / "o.txt"})
        assert code == 0, err
    finally:
        torch.set_num_threads(before)


# 2 ---------------------------------------------------------------- corruption is never used silently
@pytest.mark.parametrize("target", ["states.bin", "offsets.npy", "checksums.npy", "docids.bytes.npy"])
def test_a_flipped_byte_is_an_error_not_a_score(setup, tmp_path, target):
    root, model = setup
    shutil.copytree(root / "store", tmp_path / "store")
    path = tmp_path / "store" / "shards" / "00000" / target
    data = bytearray(path.read_bytes())
    data[len(data) - 5] ^= 0x10  # in the payload, past any header
    path.write_bytes(bytes(data))
    code, _, err = rerank(root, model, **{"--store": tmp_path / "store", "--run": root / "run_all.txt", "--depth": 40,
                                          "--output": tmp_path / "out.txt"})
    one_line_error(code, err, str(path.parent))
    assert not (tmp_path / "out.txt").exists()


# 3 ---------------------------------------------------------------- runs are never lost
def test_output_that_is_an_input_is_refused(setup):
    root, model = setup
    before = (root / "run.txt").read_text()
    one_line_error(*rerank(root, model, **{"--output": root / "run.txt"})[::2], "--output", "is also --run")
    one_line_error(*rerank(root, model, "--interpolated", "0.5", root / "topics.tsv")[::2], "is also --topics")
    assert (root / "run.txt").read_text() == before


def test_a_failure_midway_keeps_the_previous_output_and_the_queries_done(setup, monkeypatch):
    root, model = setup
    (root / "previous.txt").write_text("the previous run\n")
    from pyserini_decrank.rerank import DecoderReranker

    original = DecoderReranker._score_many  # what scoring a run calls, one query per batch by default
    calls = []

    def failing_on_the_second_query(self, queries, docids):
        calls.append(queries)
        if len(calls) == 2:
            raise DecrankError("simulated failure")
        return original(self, queries, docids)

    monkeypatch.setattr(DecoderReranker, "_score_many", failing_on_the_second_query)
    line = one_line_error(*rerank(root, model, **{"--output": root / "previous.txt"})[::2], "simulated failure")
    assert "previous.txt is unchanged" in line and "1 queries done" in line
    assert (root / "previous.txt").read_text() == "the previous run\n"
    partial = (root / "previous.txt.partial").read_text().splitlines()
    assert {row.split()[0] for row in partial} == {"q1"} and len(partial) == 10


# 4 ---------------------------------------------------------------- numbers and scores
@pytest.mark.parametrize("option, value", [("--batch-size", "-3"), ("--depth", "-1"), ("--depth", "-5"), ("--depth", "0"),
                                           ("--threads", "-1"), ("--depth", "many")])
def test_rerank_numbers_are_checked(setup, option, value):
    root, model = setup
    one_line_error(*rerank(root, model, **{option: value})[::2], option)


@pytest.mark.parametrize("option, value", [("--batch-size", "0"), ("--max-length", "-5"), ("--shard-size", "0")])
def test_encode_numbers_are_checked(setup, tmp_path, option, value):
    root, model = setup
    one_line_error(*cli("encode", "--model", model, "--corpus", root / "corpus.tsv", "--store", tmp_path / "s",
                        option, value)[::2], option)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("score", ["nan", "inf", "-inf"])
def test_a_non_finite_score_in_the_input_run_is_refused(setup, tmp_path, score):
    root, model = setup
    bad = tmp_path / "run.txt"
    bad.write_text((root / "run.txt").read_text().replace(" 28 bm25", f" {score} bm25", 1))
    one_line_error(*rerank(root, model, **{"--run": bad})[::2], f"{bad}:3:", "not a finite number")


# 5, 6 ------------------------------------------------------------- folders and writers
def test_encode_refuses_a_folder_that_is_not_a_store(setup, tmp_path):
    root, model = setup
    (tmp_path / "mine" / "shards" / "00000").mkdir(parents=True)
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    one_line_error(*cli("encode", "--model", model, "--corpus", root / "corpus.tsv", "--store", tmp_path / "mine")[::2],
                   "neither an encoder-state store", "nor empty")
    assert (tmp_path / "mine" / "shards" / "00000").is_dir() and (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_a_second_writer_gets_one_line(setup, tmp_path):
    root, model = setup
    shutil.copytree(root / "store", tmp_path / "store")
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    holder = StoreWriter(tmp_path / "store", manifest["model"], manifest["hidden_size"], manifest["max_length"], codec="fp32")
    try:
        one_line_error(*cli("encode", "--model", model, "--corpus", root / "corpus.tsv", "--store", tmp_path / "store",
                            "--codec", "fp32")[::2], "being written by another process", f"pid {os.getpid()}")
    finally:
        holder.close()
    assert not list((tmp_path / "store" / "shards").glob("*.tmp"))
    code, _, err = cli("encode", "--model", model, "--corpus", root / "corpus.tsv", "--store", tmp_path / "store",
                       "--codec", "fp32")
    assert code == 0, err  # the lock went with its holder


# 8 ---------------------------------------------------------------- readers and stores
def test_invalid_utf8_is_one_line_and_leaves_no_store(setup, tmp_path):
    root, model = setup
    (tmp_path / "corpus.tsv").write_bytes(b"d1\tfine text\nd2\tbad \xff byte\n")
    one_line_error(*cli("encode", "--model", model, "--corpus", tmp_path / "corpus.tsv", "--store", tmp_path / "s")[::2],
                   "corpus.tsv:2:", "not valid UTF-8")
    assert not (tmp_path / "s").exists()
    (tmp_path / "topics.tsv").write_bytes(b"q1\tok\nq2\t\xc3\x28\n")
    one_line_error(*rerank(root, model, **{"--topics": tmp_path / "topics.tsv"})[::2], "topics.tsv:2:", "UTF-8")


def test_a_typo_in_the_corpus_leaves_no_store_folder(setup, tmp_path):
    root, model = setup
    one_line_error(*cli("encode", "--model", model, "--corpus", tmp_path / "corpsu.tsv", "--store", tmp_path / "s")[::2],
                   "corpus not found")
    assert not (tmp_path / "s").exists()


def test_gz_topics_that_are_not_gzip(setup, tmp_path):
    root, model = setup
    (tmp_path / "topics.tsv.gz").write_text("q1\tnot compressed\n")
    one_line_error(*rerank(root, model, **{"--topics": tmp_path / "topics.tsv.gz"})[::2], "not a readable gzip file")
    with gzip.open(tmp_path / "ok.tsv.gz", "wt") as f:
        f.write("q1\tdigital data\nq2\telectron\n")
    assert read_topics(str(tmp_path / "ok.tsv.gz")) == {"q1": "digital data", "q2": "electron"}


@pytest.mark.parametrize("content, fragment", [("[]", "not a JSON object"), ("{}", "format version None"),
                                               ('{"format_version": 1}', "format version 1; this pyserini-decrank reads version 2")])
def test_bad_manifests(setup, tmp_path, content, fragment):
    root, model = setup
    shutil.copytree(root / "store", tmp_path / "store")
    (tmp_path / "store" / "manifest.json").write_text(content)
    one_line_error(*rerank(root, model, **{"--store": tmp_path / "store"})[::2], fragment)


def test_a_bad_npy_header(setup, tmp_path):
    root, model = setup
    shutil.copytree(root / "store", tmp_path / "store")
    path = tmp_path / "store" / "shards" / "00000" / "offsets.npy"
    data = bytearray(path.read_bytes())
    data[:6] = b"XXXXXX"
    path.write_bytes(bytes(data))
    one_line_error(*rerank(root, model, **{"--store": tmp_path / "store"})[::2], "00000")


def test_output_under_a_file(setup, tmp_path):
    root, model = setup
    (tmp_path / "file").write_text("x")
    one_line_error(*rerank(root, model, **{"--output": tmp_path / "file" / "out.txt"})[::2], "cannot write the run here")


def test_a_byte_order_mark_is_not_part_of_the_first_id(setup, tmp_path):
    root, model = setup
    (tmp_path / "topics.tsv").write_bytes("\ufeffq1\tdigital data storage\nq2\twave\n".encode())
    assert list(read_topics(str(tmp_path / "topics.tsv"))) == ["q1", "q2"]
    (tmp_path / "run.txt").write_bytes(b"\xef\xbb\xbf" + (root / "run.txt").read_bytes())
    assert list(read_run(tmp_path / "run.txt")) == ["q1", "q2"]
    (tmp_path / "corpus.tsv").write_bytes("\ufeffd1\tsome text\n".encode())
    code, _, err = cli("encode", "--model", model, "--corpus", tmp_path / "corpus.tsv", "--store", tmp_path / "s")
    assert code == 0, err
    assert list(EncoderStateStore(tmp_path / "s").docids()) == ["d1"]


def test_duplicate_qids_and_docids(setup, tmp_path):
    root, model = setup
    (tmp_path / "topics.tsv").write_text("q1\tone\nq2\ttwo\nq1\tagain\n")
    one_line_error(*rerank(root, model, **{"--topics": tmp_path / "topics.tsv"})[::2], "topics.tsv:3:",
                   "query q1 appears twice (first at line 1)")
    (tmp_path / "corpus.tsv").write_text("d1\tone\nd2\ttwo\nd1\tthree\n")
    one_line_error(*cli("encode", "--model", model, "--corpus", tmp_path / "corpus.tsv", "--store", tmp_path / "s")[::2],
                   "docid d1 appears twice", "--on-duplicate first")
    code, _, err = cli("encode", "--model", model, "--corpus", tmp_path / "corpus.tsv", "--store", tmp_path / "s",
                       "--on-duplicate", "first")
    assert code == 0, err
    assert len(EncoderStateStore(tmp_path / "s")) == 2


def test_docids_with_whitespace_are_refused_at_encode(setup, tmp_path):
    root, model = setup
    (tmp_path / "corpus.jsonl").write_text(json.dumps({"id": "a b", "contents": "text"}) + "\n")
    one_line_error(*cli("encode", "--model", model, "--corpus", tmp_path / "corpus.jsonl", "--store", tmp_path / "s")[::2],
                   "docid 'a b'", "whitespace")
    assert not (tmp_path / "s").exists()


def test_changed_text_for_a_stored_docid_is_reported(setup, tmp_path):
    root, model = setup
    (tmp_path / "corpus.tsv").write_text("d1\tone text\nd2\ttwo text\n")
    assert cli("encode", "--model", model, "--corpus", tmp_path / "corpus.tsv", "--store", tmp_path / "s")[0] == 0
    (tmp_path / "corpus.tsv").write_text("d1\tone text\nd2\ta changed text\nd3\tnew\n")
    one_line_error(*cli("encode", "--model", model, "--corpus", tmp_path / "corpus.tsv", "--store", tmp_path / "s")[::2],
                   "docid d2: its text differs")


def test_an_unfinished_store_warns_once(setup, tmp_path):
    root, model = setup
    shutil.copytree(root / "store", tmp_path / "store")
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    manifest["complete"] = False
    manifest.pop("checksum")  # as a store written before manifests had one (an edit is refused: test_store_edits)
    (tmp_path / "store" / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = rerank(root, model, **{"--store": tmp_path / "store"})
    assert code == 0
    assert [line for line in err.splitlines() if "warning" in line] == [
        f"decrank: warning: store {tmp_path / 'store'} is unfinished ({manifest['num_docs']} documents so far): "
        "run `decrank encode` again to complete it"]


def test_store_info_and_verify(setup, tmp_path):
    root, model = setup
    code, out, _ = cli("store", "info", "--json", root / "store")
    info = json.loads(out)
    assert code == 0 and info["codec"] == "fp32" and info["documents"] == 40 and info["bytes_per_token"] == 4 * info["hidden_size"]
    assert info["bytes_on_disk"] >= info["tokens"] * info["bytes_per_token"]
    code, out, _ = cli("store", "verify", root / "store")
    assert code == 0 and "all match" in out
    shutil.copytree(root / "store", tmp_path / "store")
    path = tmp_path / "store" / "shards" / "00001" / "states.bin"
    data = bytearray(path.read_bytes())
    data[3] ^= 1
    path.write_bytes(bytes(data))
    code, out, err = cli("store", "verify", tmp_path / "store")
    assert code == 1 and "00001/states.bin" in err and "1 differ" in out
    assert np.isfinite(EncoderStateStore(root / "store").get(next(iter(EncoderStateStore(root / "store").docids()))).numpy()).all()


def test_fuzzed_run_files_give_a_complete_output_or_one_line_and_none(setup, tmp_path_factory):
    """`decrank rerank` on fuzzed run files: either exit 0 and a whole run, or one error line and no output."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    root, model = setup
    valid = (root / "run.txt").read_bytes()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from eval.fault_injection import INSERTS, apply_edits

    edit = st.tuples(st.integers(0, 4), st.integers(0, 1 << 16), st.sampled_from(INSERTS))

    @settings(max_examples=25, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(edits=st.lists(edit, min_size=1, max_size=4))
    def check(edits):
        folder = tmp_path_factory.mktemp("fuzz")
        (folder / "run.txt").write_bytes(apply_edits(valid, edits))
        code, _, err = rerank(root, model, **{"--run": folder / "run.txt", "--output": folder / "out.txt"})
        if code == 0:
            assert (folder / "out.txt").is_file() and not (folder / "out.txt.partial").exists()
        else:
            one_line_error(code, err)
            assert not (folder / "out.txt").exists() and not (folder / "out.txt.partial").exists()

    check()
