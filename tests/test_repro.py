"""The reproduction page checks itself: every committed run scores as the page says, and an altered run
is reported as FAIL with exit status 1."""

import subprocess
import sys
from pathlib import Path

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
