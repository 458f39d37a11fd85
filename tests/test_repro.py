"""The reproduction page checks itself: every committed run scores as the page says, and an altered run
is reported as FAIL with exit status 1."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["run_files/repro.yaml", "docs/experiments/repro.yaml"]


def check(*args):
    return subprocess.run([sys.executable, "-m", "eval.repro", "--check", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True)


def test_every_committed_run_scores_as_its_page_says():
    for page in PAGES:
        proc = check("--config", page)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        lines = proc.stdout.splitlines()
        assert lines and not any(line.startswith("FAIL") for line in lines)
        if (ROOT / "../shared/data").is_dir():  # CI and the developers' machines have the shared data
            assert not any(line.startswith("SKIP") for line in lines), proc.stdout


def test_an_altered_run_fails_its_cell(tmp_path):
    config = yaml.safe_load((ROOT / "run_files/repro.yaml").read_text())
    condition = next(c for c in config["conditions"] if c["name"] == "decrank-minilm")
    original = ROOT / condition["runs"]["vaswani"]["run"]
    # every query's ranking turned upside down: the scores negated
    altered = [line.split() for line in original.read_text().splitlines()]
    (tmp_path / "run.txt").write_text("".join(f"{q} Q0 {d} {r} {-float(s)} {t}\n" for q, _, d, r, s, t in altered))
    condition["runs"] = {"vaswani": dict(condition["runs"]["vaswani"], run=str(tmp_path / "run.txt"))}
    config["conditions"] = [condition]
    (tmp_path / "page.yaml").write_text(yaml.safe_dump(config))
    proc = check("--config", tmp_path / "page.yaml")
    assert proc.returncode == 1
    assert any(line.startswith("FAIL") and "ndcg_cut.10" in line for line in proc.stdout.splitlines()), proc.stdout
    (tmp_path / "run.txt").unlink()
    proc = check("--config", tmp_path / "page.yaml")
    assert proc.returncode == 1 and "run file not found" in proc.stdout


def repro(*args):
    return subprocess.run([sys.executable, "-m", "eval.repro", *map(str, args)], cwd=ROOT, capture_output=True, text=True)


def test_run_remakes_a_committed_condition_from_its_command_template(tmp_path):
    """BM25 + bi-encoder on Vaswani: its command mixes two committed runs, in seconds and with the shipped data only."""
    proc = repro("--run", "biencoder-bm25", "--collection", "vaswani", "--workdir", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [line.split()[0] for line in proc.stdout.splitlines()[:-1]] == ["OK"] * 3
    assert "ranks as run_files/vaswani/run.biencoder-bm25.txt" in proc.stderr
    made = (tmp_path / "vaswani" / "biencoder-bm25.txt").read_text().splitlines()
    committed = (ROOT / "run_files/vaswani/run.biencoder-bm25.txt").read_text().splitlines()
    assert [line.split()[:4] for line in made] == [line.split()[:4] for line in committed]


@pytest.mark.slow  # Pyserini indexes and searches 11,429 abstracts (about half a minute)
def test_run_remakes_the_bm25_run_with_pyserini(tmp_path):
    proc = repro("--run", "bm25", "--collection", "vaswani", "--workdir", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "3 OK, 0 FAIL" in proc.stdout and "ranks as run_files/vaswani/run.bm25.txt" in proc.stderr


def test_an_unknown_condition_is_one_error_line():
    proc = repro("--run", "no-such-condition")
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert "unknown condition 'no-such-condition'" in proc.stderr


def test_the_pages_tables_are_the_ones_the_yaml_gives(tmp_path):
    page = tmp_path / "README.md"
    page.write_text((ROOT / "run_files/README.md").read_text())
    proc = repro("--table", "--write", page)
    assert proc.returncode == 0 and proc.stdout.startswith("3 table(s)")
    assert page.read_text() == (ROOT / "run_files/README.md").read_text()
