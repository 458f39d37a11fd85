"""The command line: every user-caused error is one line with no traceback, and nothing written is lost."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

from pyserini_decrank.cli import main


@pytest.fixture(scope="module")
def setup(tiny_models, docs, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    (root / "corpus.tsv").write_text("".join(f"{d}\t{t}\n" for d, t in docs.items()))
    ids = list(docs)
    (root / "run.txt").write_text("".join(f"q1 Q0 {d} {i + 1} {30 - i} bm25\n" for i, d in enumerate(ids[:12]))
                                  + "".join(f"q2 Q0 {d} {i + 1} {30 - i} bm25\n" for i, d in enumerate(ids[12:20])))
    (root / "topics.tsv").write_text("q1\tdigital data storage\nq2\telectron wave frequency\n")
    model = str(tiny_models("t5"))
    result = CliRunner().invoke(main, ["encode", "--model", model, "--corpus", str(root / "corpus.tsv"),
                                       "--store", str(root / "store"), "--shard-size", "16"])
    assert result.exit_code == 0, result.output
    return root, model


def run_cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code, stderr, *fragments):
    assert code == 2
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("decrank: error: "), stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0]


def rerank_args(root, model, **over):
    args = {"--model": model, "--store": root / "store", "--topics": root / "topics.tsv",
            "--run": root / "run.txt", "--output": root / "out.txt", "--depth": 5}
    args.update(over)
    return ["rerank", *[x for k, v in args.items() for x in (k, v)]]


def test_rerank_writes_a_sorted_trec_run(setup):
    root, model = setup
    code, _, err = run_cli(*rerank_args(root, model, **{"--tag": "mine"}))
    assert code == 0, err
    lines = [line.split() for line in (root / "out.txt").read_text().splitlines()]
    assert len(lines) == 20 and all(len(p) == 6 and p[1] == "Q0" and p[5] == "mine" for p in lines)
    q1 = [p for p in lines if p[0] == "q1"]
    assert [int(p[3]) for p in q1] == list(range(1, 13))
    assert [float(p[4]) for p in q1] == sorted((float(p[4]) for p in q1), reverse=True)
    bm25 = [line.split()[2] for line in (root / "run.txt").read_text().splitlines() if line.startswith("q1")]
    assert [p[2] for p in q1[5:]] == bm25[5:]  # below --depth: first-stage order


def test_interpolated_outputs_come_from_the_same_scores_as_separate_runs(setup):
    root, model = setup
    code, _, err = run_cli(*rerank_args(root, model, **{"--output": root / "plain.txt"}), "--interpolated", "0.5",
                           root / "mixed.txt", "--interpolated", "0.2", root / "mixed2.txt")
    assert code == 0, err
    for alpha, name in (("0.5", "mixed.txt"), ("0.2", "mixed2.txt")):
        code, _, err = run_cli(*rerank_args(root, model, **{"--output": root / "alone.txt", "--alpha": alpha}))
        assert code == 0, err
        ranked = lambda path: [line.split()[:3] for line in path.read_text().splitlines()]
        assert ranked(root / name) == ranked(root / "alone.txt")
    code, _, err = run_cli(*rerank_args(root, model, **{"--output": root / "alone.txt"}))
    assert (root / "plain.txt").read_text() == (root / "alone.txt").read_text()


def test_alpha_model_is_the_alpha_the_model_carries(setup, tmp_path):
    import shutil

    from pyserini_decrank.model import ScoringConfig

    root, model = setup
    carrying = tmp_path / "with-alpha"
    shutil.copytree(model, carrying)
    config = ScoringConfig.load(carrying) or ScoringConfig()
    config.alpha = 0.2
    config.save(carrying)
    code, _, err = run_cli(*rerank_args(root, carrying, **{"--output": tmp_path / "model.txt", "--alpha": "model"}))
    assert code == 0, err
    code, _, err = run_cli(*rerank_args(root, carrying, **{"--output": tmp_path / "given.txt", "--alpha": "0.2"}))
    assert code == 0, err
    assert (tmp_path / "model.txt").read_text() == (tmp_path / "given.txt").read_text()
    code, _, err = run_cli(*rerank_args(root, carrying, **{"--output": tmp_path / "alone.txt"}),
                           "--interpolated", "model", tmp_path / "mixed.txt")
    assert code == 0, err
    ranked = lambda path: [line.split()[:3] for line in path.read_text().splitlines()]
    assert ranked(tmp_path / "mixed.txt") == ranked(tmp_path / "given.txt")
    assert_one_line_error(*run_cli(*rerank_args(root, model, **{"--alpha": "model"}))[::2], "--alpha model", "carries no alpha")
    code, _, err = run_cli("rerank", "--method", "biencoder", "--corpus", root / "corpus.tsv", "--topics", root / "topics.tsv",
                           "--run", root / "run.txt", "--output", tmp_path / "bi.txt", "--alpha", "model")
    assert_one_line_error(code, err, "--method biencoder has none")


@pytest.mark.parametrize("option, value", [("--depth", "0"), ("--batch-size", "-3"), ("--alpha", "1.5"), ("--alpha", "modal")])
def test_bad_numbers_are_refused_by_flag_name(setup, option, value):
    root, model = setup
    assert_one_line_error(*run_cli(*rerank_args(root, model, **{option: value}))[::2], option)


def test_unknown_docid_fails_before_writing_and_keeps_old_output(setup):
    root, model = setup
    bad_run = root / "bad_run.txt"
    bad_run.write_text((root / "run.txt").read_text() + "q2 Q0 ghost 9 1.0 bm25\n")
    (root / "kept.txt").write_text("earlier results\n")
    code, _, err = run_cli(*rerank_args(root, model, **{"--run": bad_run, "--output": root / "kept.txt", "--depth": 100}))
    assert_one_line_error(code, err, "ghost", "--skip-missing")
    assert (root / "kept.txt").read_text() == "earlier results\n"
    code, _, err = run_cli(*rerank_args(root, model, **{"--run": bad_run, "--depth": 100}), "--skip-missing")
    assert code == 0 and "ghost" not in (root / "out.txt").read_text()


@pytest.mark.parametrize("case", ["malformed_run", "empty_query", "missing_topic", "malformed_topics"])
def test_bad_inputs(setup, case):
    root, model = setup
    if case == "malformed_run":
        (root / "r.txt").write_text("q1 Q0 doc-000 1 3.0 bm25\nq1 Q0 doc-001 2\n")
        over, expect = {"--run": root / "r.txt"}, ["r.txt:2:", "malformed run line"]
    elif case == "empty_query":
        (root / "t.tsv").write_text("q1\t   \nq2\tok\n")
        over, expect = {"--topics": root / "t.tsv"}, ["query q1 is empty"]
    elif case == "missing_topic":
        (root / "t2.tsv").write_text("q1\tok\n")
        over, expect = {"--topics": root / "t2.tsv"}, ["query q2 of the run is not in"]
    else:
        (root / "t3.tsv").write_text("q1\tok\nq2 no tab\n")
        over, expect = {"--topics": root / "t3.tsv"}, ["t3.tsv:2:", "malformed topic line"]
    assert_one_line_error(*run_cli(*rerank_args(root, model, **over))[::2], *expect)


def test_store_model_mismatch(setup, tiny_models):
    root, _ = setup
    code, _, err = run_cli(*rerank_args(root, str(tiny_models("bart"))))
    assert_one_line_error(code, err, "does not fit model", "encoder differs")


def test_truncated_shard_and_missing_store(setup, tmp_path):
    root, model = setup
    import shutil

    shutil.copytree(root / "store", tmp_path / "store")
    shard = tmp_path / "store" / "shards" / "00001" / "states.bin"
    shard.write_bytes(shard.read_bytes()[:100])
    assert_one_line_error(*run_cli(*rerank_args(root, model, **{"--store": tmp_path / "store"}))[::2], "00001/states.bin", "truncated")
    assert_one_line_error(*run_cli(*rerank_args(root, model, **{"--store": tmp_path / "nothing"}))[::2], "not an encoder-state store")


def test_eval_table_and_bad_qrels(setup):
    root, model = setup
    (root / "qrels.txt").write_text("q1 0 doc-003 2\nq1 0 doc-009 1\nq2 0 doc-015 1\n")
    code, out, err = run_cli("eval", "--qrels", root / "qrels.txt", "-m", "ndcg_cut.10", "-m", "map", root / "run.txt")
    assert code == 0, err
    assert "| run.txt" in out and "ndcg_cut.10" in out and out.count("\n") == 3
    (root / "bad_qrels.txt").write_text("q1 0 doc-003\n")
    assert_one_line_error(*run_cli("eval", "--qrels", root / "bad_qrels.txt", root / "run.txt")[::2], "bad_qrels.txt:1:")
    assert_one_line_error(*run_cli("eval", "--qrels", root / "qrels.txt", "-m", "nope", root / "run.txt")[::2], "unknown trec_eval measure")


def test_a_device_torch_cannot_use_is_one_line_before_any_loading(setup):
    root, model = setup
    common = ["--model", model, "--corpus", root / "corpus.tsv"]
    assert_one_line_error(*run_cli("encode", *common, "--store", root / "s2", "--device", "gpu0")[::2],
                          "--device gpu0: not a torch device")
    assert not (root / "s2").exists()  # nothing written
    assert_one_line_error(*run_cli(*rerank_args(root, model), "--device", "gpu0")[::2], "--device gpu0: not a torch device")
    assert_one_line_error(*run_cli(*rerank_args(root, model), "--method", "cross", "--corpus", root / "corpus.tsv",
                                   "--device", "gpu0")[::2], "--device gpu0: not a torch device")
    import torch

    if not torch.cuda.is_available():
        assert_one_line_error(*run_cli("encode", *common, "--store", root / "s3", "--device", "cuda")[::2],
                              "--device cuda: torch sees no CUDA device here")


def test_errors_print_no_traceback_in_a_real_process(setup):
    root, model = setup
    proc = subprocess.run([sys.executable, "-m", "pyserini_decrank", *map(str, rerank_args(root, model, **{"--store": root / "absent"}))],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert_one_line_error(proc.returncode, proc.stderr, "not an encoder-state store")


def test_threads_bound_faiss_as_well_as_torch():
    """A PQ store is decoded by faiss beside torch: --threads must bound both pools."""
    import faiss
    import torch

    from pyserini_decrank.cli import _threads

    before = torch.get_num_threads(), faiss.omp_get_max_threads()
    try:
        _threads(1)
        assert (torch.get_num_threads(), faiss.omp_get_max_threads()) == (1, 1)
    finally:
        torch.set_num_threads(before[0])
        faiss.omp_set_num_threads(before[1])


def test_rerank_copy_runs_and_its_errors_are_one_line(setup, tmp_path):
    root, model = setup
    code, _, err = run_cli(*rerank_args(root, model, **{"--output": tmp_path / "copy.txt", "--copy": "attention:0.2"}))
    assert code == 0, err
    plain = run_cli(*rerank_args(root, model, **{"--output": tmp_path / "plain.txt"}))
    assert plain[0] == 0
    assert (tmp_path / "copy.txt").read_text() != (tmp_path / "plain.txt").read_text()
    for spec, fragment in (("2", "--copy 2: lambda must be in [0, 1)"), ("tf:0.1", "--copy tf:0.1: unknown copy kind"),
                           ("attention", "--copy attention: model")):
        code, _, err = run_cli(*rerank_args(root, model, **{"--output": tmp_path / "x.txt", "--copy": spec}))
        assert_one_line_error(code, err, fragment)
    code, _, err = run_cli("rerank", "--method", "biencoder", "--corpus", root / "corpus.tsv", "--topics",
                           root / "topics.tsv", "--run", root / "run.txt", "--output", tmp_path / "x.txt", "--copy", "0.1")
    assert_one_line_error(code, err, "--copy is an option of --method decoder")
    assert not (tmp_path / "x.txt").exists()


@pytest.mark.parametrize("option,value", [("--copy", "0.2"), ("--head-precision", "fp32"), ("--cross-attention", "project"),
                                          ("--query-prefix", "q: "), ("--document-prefix", "d: ")])
def test_decoder_only_options_are_refused_for_other_methods(setup, tmp_path, option, value):
    root, _ = setup
    code, _, err = run_cli("rerank", "--method", "biencoder", "--corpus", root / "corpus.tsv", "--topics",
                           root / "topics.tsv", "--run", root / "run.txt", "--output", tmp_path / "bi.txt", option, value)
    assert_one_line_error(code, err, f"{option} is an option of --method decoder; --method biencoder has none")
    assert not (tmp_path / "bi.txt").exists()


def test_store_transcode_writes_the_store_again_and_its_errors_are_one_line(setup, tmp_path):
    root, _ = setup
    code, _, stderr = run_cli("store", "transcode", root / "store", tmp_path / "fp32", "--codec", "fp32")
    assert code == 0 and "transcoded 40 documents" in stderr
    code, stdout, _ = run_cli("store", "info", tmp_path / "fp32")
    assert code == 0 and "codec: fp32" in stdout and "documents: 40" in stdout
    code, _, stderr = run_cli("store", "transcode", root / "store", root / "store", "--codec", "fp32")
    assert_one_line_error(code, stderr, "another folder than its source")
    code, _, stderr = run_cli("store", "transcode", root / "store", tmp_path / "bad", "--codec", "PQ7")
    assert_one_line_error(code, stderr, "codec 'PQ7'")
    assert not (tmp_path / "bad").exists()
