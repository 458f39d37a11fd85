"""Re-ranking never destroys an input or mixes two runs: the output guard, concurrent writers, interpolation at
the ends of the float range, repeated --interpolated alphas, tags, empty and unreadable runs, full disks."""

import os
import resource
import subprocess
import sys

import numpy as np
import pytest

from pyserini_decrank.errors import DecrankError
from pyserini_decrank.io import RunWriter, check_tag, read_run, refuse_overwriting_inputs
from pyserini_decrank.rerank import interpolate

from test_cli import assert_one_line_error, rerank_args, run_cli, setup  # noqa: F401  (the module's fixture)


@pytest.mark.parametrize("target", ["store/manifest.json", "store/SHARD", "model/config.json", "run.txt",
                                    "topics.tsv", "run.txt.partial_of_output"])
def test_an_output_inside_any_input_is_refused_and_the_input_kept(setup, target):
    root, model = setup
    if target == "store/SHARD":
        target = str(next(p for p in (root / "store").rglob("*.npy")).relative_to(root))
    if target == "run.txt.partial_of_output":  # writing X first writes X.partial: an input named so is kept too
        (root / "in.txt.partial").write_text((root / "run.txt").read_text())
        args = rerank_args(root, model, **{"--run": root / "in.txt.partial", "--output": root / "in.txt"})
        protected = root / "in.txt.partial"
    else:
        path = (root / target) if not target.startswith("model/") else (root / model / target.split("/", 1)[1])
        args = rerank_args(root, model, **{"--output": path})
        protected = path
    before = protected.read_bytes()
    code, _, err = run_cli(*args)
    assert_one_line_error(code, err, "overwrit")
    assert protected.read_bytes() == before


def test_two_outputs_on_one_path_and_symlink_loops_are_one_line(setup, tmp_path):
    root, model = setup
    code, _, err = run_cli(*rerank_args(root, model, **{"--output": tmp_path / "a.txt"}), "--interpolated", "0.5", tmp_path / "a.txt")
    assert_one_line_error(code, err, "both would write the same file")
    loop = tmp_path / "loop"
    os.symlink(loop, loop)
    for option in ("--run", "--output", "--topics"):
        code, _, err = run_cli(*rerank_args(root, model, **{option: loop}))
        assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_the_same_alpha_twice_writes_both_paths_and_a_bad_tag_is_refused(setup, tmp_path):
    root, model = setup
    code, _, err = run_cli(*rerank_args(root, model, **{"--output": tmp_path / "o.txt"}), "--interpolated", "0.5",
                           tmp_path / "a.txt", "--interpolated", "0.5", tmp_path / "b.txt")
    assert code == 0, err
    assert (tmp_path / "a.txt").read_text() == (tmp_path / "b.txt").read_text() != ""
    for tag in ("my run", "", " x"):
        code, _, err = run_cli(*rerank_args(root, model, **{"--output": tmp_path / "t.txt", "--tag": tag}))
        assert_one_line_error(code, err, "--tag", "one word")
    with pytest.raises(DecrankError, match="one word"):
        check_tag("a\tb")


def test_interpolating_scores_at_the_ends_of_the_float_range_is_finite_and_ordered():
    first = np.array([1e308, -1e308, 0.0, 5.0])
    mixed = interpolate(first, np.array([1.0, 2.0, 3.0, 4.0]), 0.5)
    assert np.isfinite(mixed).all()
    assert mixed.tolist() == pytest.approx([0.5, 0.5 / 3, 0.5 * 0.5 + 0.5 * 2 / 3, 0.5 * 0.5 + 0.5])


def test_an_extreme_first_stage_run_is_reranked_into_a_run_eval_reads(setup, tmp_path):
    root, model = setup
    lines = (root / "run.txt").read_text().splitlines()
    lines[0] = " ".join(lines[0].split()[:4] + ["1e308", "bm25"])
    lines[1] = " ".join(lines[1].split()[:4] + ["-1e308", "bm25"])
    (tmp_path / "run.txt").write_text("\n".join(lines) + "\n")
    code, _, err = run_cli(*rerank_args(root, model, **{"--run": tmp_path / "run.txt", "--output": tmp_path / "o.txt",
                                                        "--alpha": "0.5"}))
    assert code == 0, err
    assert all(np.isfinite(h.score) for hits in read_run(tmp_path / "o.txt").values() for h in hits)


def test_an_empty_run_is_one_line_and_writes_nothing(setup, tmp_path):
    root, model = setup
    (tmp_path / "empty.txt").write_text("")
    code, _, err = run_cli(*rerank_args(root, model, **{"--run": tmp_path / "empty.txt", "--output": tmp_path / "o.txt"}))
    assert_one_line_error(code, err, "no hits")
    assert not (tmp_path / "o.txt").exists() and not (tmp_path / "o.txt.partial").exists()


def test_a_second_writer_of_the_same_run_stops_at_once_and_the_first_completes(tmp_path):
    first = RunWriter(tmp_path / "run.txt", "a")
    first.write("q1", [])
    with pytest.raises(DecrankError, match="another process is writing"):
        RunWriter(tmp_path / "run.txt", "b")
    from pyserini_decrank.io import Hit

    first.write("q2", [Hit("d", 1.0)])
    first.close()
    assert (tmp_path / "run.txt").read_text() == "q2 Q0 d 1 1.000000 a\n"
    again = RunWriter(tmp_path / "run.txt", "c")  # the lock went with the first writer
    again.close(complete=False)
    assert not (tmp_path / "run.txt.partial").exists()  # nothing written: nothing left behind


def test_concurrent_reranks_of_one_output_never_mix(setup, tmp_path):
    """Two processes a moment apart: one writes the run, the other is one line; the file is one whole run."""
    root, model = setup
    out = tmp_path / "o.txt"
    cmd = [sys.executable, "-m", "pyserini_decrank.cli", *map(str, rerank_args(root, model, **{"--output": out}))]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    assert any(code == 0 for _, _, code in results)
    for _, err, code in results:
        assert "Traceback" not in err
        if code:
            assert "another process is writing" in err
    alone = tmp_path / "alone.txt"
    code, _, err = run_cli(*rerank_args(root, model, **{"--output": alone}))
    assert out.read_text() == alone.read_text()


def test_a_full_disk_while_writing_the_run_is_one_line_and_keeps_the_old_run(setup, tmp_path):
    root, model = setup
    out = tmp_path / "o.txt"
    out.write_text("the old run\n")
    script = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200)); "
              "from pyserini_decrank.cli import main; sys.argv = ['decrank'] + sys.argv[1:]; main()")
    proc = subprocess.run([sys.executable, "-c", script, *map(str, rerank_args(root, model, **{"--output": out}))],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("decrank: error: ")]
    assert len(errors) == 1 and "cannot write (File too large)" in errors[0]
    assert out.read_text() == "the old run\n"


def test_the_guard_skips_names_that_are_not_paths(tmp_path):
    refuse_overwriting_inputs([("--output", tmp_path / "o.txt")], [("--topics", "msmarco-passage-dev-subset"),
                                                                  ("--model", "castorini/monot5-base-msmarco")])


def test_a_failed_interpolated_output_leaves_no_empty_partial(setup, tmp_path):
    root, model = setup
    (tmp_path / "a-file").write_text("x")
    code, _, err = run_cli(*rerank_args(root, model, **{"--output": tmp_path / "o.txt"}), "--interpolated", "0.5",
                           tmp_path / "a-file" / "mixed.txt")
    assert_one_line_error(code, err, "cannot write the run here")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
