"""A model on the Hugging Face hub is read as a folder is: its ``decrank_config.json`` and copy head come with
it. Tested offline through the real hub-id code path: a temporary ``HF_HOME`` laid out as the hub cache lays
a model out (``models--ORG--NAME/snapshots/COMMIT``, ``refs/main``), with ``HF_HUB_OFFLINE=1``."""

import json
import os
import shutil
import subprocess
import sys

from pyserini_decrank.model import ScoringConfig

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_cache(home, repo_id, folder):
    repo = home / "hub" / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)


def test_a_hub_id_brings_its_decrank_config_and_copy_head(tiny_models, tmp_path):
    from pyserini_decrank import QueryLikelihoodModel

    qlm = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    qlm.config = ScoringConfig(max_length=48, query_prefix="q: ", alpha=0.3, objective="distil")
    qlm.add_copy_head()
    qlm.set_copy("attention")
    qlm.save_pretrained(tmp_path / "model")
    hub_cache(tmp_path / "hf", "someone/decrank-tiny", tmp_path / "model")
    script = ("from pyserini_decrank import QueryLikelihoodModel; import json; "
              "m = QueryLikelihoodModel.from_pretrained('someone/decrank-tiny'); "
              "print(json.dumps([m.config.max_length, m.config.query_prefix, m.config.alpha, m.config.copy, "
              "m.copy_head is not None]))")
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.pop("HF_HUB_CACHE", None)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [48, "q: ", 0.3, "attention", True]


def test_a_hub_model_without_a_decrank_config_gets_the_defaults(tiny_models, tmp_path):
    hub_cache(tmp_path / "hf", "someone/plain-t5", tiny_models("t5"))
    for extra in ("decrank_config.json", "copy_head.safetensors"):
        (tmp_path / "hf" / "hub" / "models--someone--plain-t5" / "snapshots" / COMMIT / extra).unlink(missing_ok=True)
    script = ("from pyserini_decrank import QueryLikelihoodModel; "
              "m = QueryLikelihoodModel.from_pretrained('someone/plain-t5'); print(m.config.max_length, m.copy_head)")
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.pop("HF_HUB_CACHE", None)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == f"{ScoringConfig().max_length} None"
