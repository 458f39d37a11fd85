"""The shipped default: assembled offline from the PyPI MiniLM encoder and the packaged decoder."""

import numpy as np

from pyserini_decrank import QueryLikelihoodModel
from pyserini_decrank.model import pad_labels, pad_states
from pyserini_decrank.model import DEFAULT_MODEL


def test_decrank_minilm_loads_offline_and_prefers_the_relevant_passage(tmp_path, monkeypatch):
    monkeypatch.setenv("DECRANK_CACHE", str(tmp_path))
    assert DEFAULT_MODEL == "decrank-minilm"
    model = QueryLikelihoodModel.from_pretrained("decrank-minilm")
    assert model.config.objective == "mle" and model.hidden_size == 384
    # both chosen on the two-domain dev split (run_files/copy/screen-decrank-minilm.json)
    assert model.config.alpha == 0.5 and model.config.copy == "attention:0.2"
    passages = ["Paris is the capital and most populous city of France.",
                "The mitochondrion is an organelle that produces energy in the cell.",
                "Photosynthesis converts light energy into chemical energy in plants."]
    queries = ["what is the capital of france", "which organelle produces energy in cells",
               "how do plants turn light into chemical energy"]
    states, mask = pad_states(model.encode(passages))
    tokens = model.copyable_tokens(model.tokenize_documents(passages), mask.shape[1])
    scores = np.array([model.score_states(pad_labels([model.query_labels(q)] * 3), states, mask,
                                          document_tokens=tokens).numpy() for q in queries])
    assert (scores.argmax(axis=1) == np.arange(3)).all(), scores
    again = QueryLikelihoodModel.from_pretrained("decrank-minilm")  # second load comes from the cache
    assert again.fingerprint()["encoder_sha256"] == model.fingerprint()["encoder_sha256"]
