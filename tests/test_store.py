"""The encoder-state store: round trip, zero-copy reads, docid table, resume, damage and mismatch."""

import json
import shutil

import numpy as np
import pytest
import torch

from pyserini_decrank import DecrankError, EncoderStateStore, QueryLikelihoodModel, StoreWriter
from pyserini_decrank.encode import encode_corpus
from pyserini_decrank.io import Document
from pyserini_decrank.store import MissingDocidsError
from pyserini_decrank.store import DocidTable, UnfinishedStoreWarning, build_docid_arrays

FP = {"model": "m", "encoder_sha256": "e", "tokenizer_sha256": "t", "document_prefix": ""}


def random_states(n: int, hidden: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {f"d{i}": torch.randn(int(torch.randint(1, 9, (1,), generator=g)), hidden, generator=g) for i in range(n)}


@pytest.mark.parametrize("codec", ["fp32", "fp16", "bf16"])
def test_round_trip_across_shards(codec, tmp_path):
    states = random_states(25)
    with StoreWriter(tmp_path, FP, hidden_size=8, max_length=16, codec=codec, shard_size=10) as w:
        for docid, s in states.items():
            w.add(docid, s, token_ids=np.arange(len(s)))
    store = EncoderStateStore(tmp_path)
    assert len(store) == 25 and len(store.manifest.shards) == 3 and store.manifest.complete
    assert store.manifest.num_tokens == sum(s.shape[0] for s in states.values())
    got = store.get_many(list(reversed(list(states))))
    for (_, want), have in zip(reversed(list(states.items())), got):
        assert have.dtype == {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[codec]
        torch.testing.assert_close(have.float(), want.to(have.dtype).float(), rtol=0, atol=0)
    assert sorted(store.docids()) == sorted(states)
    store.verify()


def test_reads_are_zero_copy_views_of_the_mapping(tmp_path):
    with StoreWriter(tmp_path, FP, hidden_size=8, max_length=16, codec="fp32") as w:
        for docid, s in random_states(5).items():
            w.add(docid, s, token_ids=np.arange(len(s)))
    store = EncoderStateStore(tmp_path)
    a, b = store.get_many(["d1", "d2"])
    mapped, _, _ = store._shard_arrays(0)
    assert np.shares_memory(a.numpy(), mapped) and np.shares_memory(b.numpy(), mapped)


def test_docid_table_lookup_and_unknown_ids():
    ids = [f"MARCO_{i}" for i in range(5000)] + ["ü-ñ", "", "a b"]
    table = DocidTable(build_docid_arrays(ids))
    rows = table.rows_of(["MARCO_4999", "ü-ñ", "missing", "a b", "MARCO_0"])
    assert [ids[r] if r >= 0 else None for r in rows] == ["MARCO_4999", "ü-ñ", None, "a b", "MARCO_0"]


def test_docid_table_survives_hash_collisions(monkeypatch):
    from pyserini_decrank.store import _docids

    monkeypatch.setattr(_docids, "docid_hash", lambda docid: len(docid))  # many collisions
    ids = ["aa", "bb", "cc", "d", "eee"]
    table = DocidTable(_docids.build_docid_arrays(ids))
    assert list(table.rows_of(["cc", "bb", "zz", "eee"])) == [2, 1, -1, 4]


def test_missing_docids_are_named(tmp_path):
    with StoreWriter(tmp_path, FP, hidden_size=8, max_length=16) as w:
        w.add("known", torch.zeros(2, 8), token_ids=np.arange(2))
    store = EncoderStateStore(tmp_path)
    with pytest.raises(MissingDocidsError, match="nope1, nope2"):
        store.get_many(["known", "nope1", "nope2"])
    assert "known" in store and "nope1" not in store


def test_crash_keeps_flushed_shards_and_resume_completes(tmp_path):
    states = random_states(12)
    writer = StoreWriter(tmp_path, FP, hidden_size=8, max_length=16, shard_size=5)
    for docid, s in list(states.items())[:11]:
        writer.add(docid, s, token_ids=np.arange(len(s)))  # two shards flushed, one document buffered, then the process "dies":
    writer._release()  # the OS drops a dead process's lock
    (tmp_path / "shards" / "00002.tmp").mkdir()  # a half-written shard
    with pytest.warns(UnfinishedStoreWarning, match="is unfinished \\(10 documents so far\\)"):
        store = EncoderStateStore(tmp_path)
    assert len(store) == 10 and not store.manifest.complete
    store.get("d9")
    resumed = StoreWriter(tmp_path, FP, hidden_size=8, max_length=16, shard_size=5)
    assert not (tmp_path / "shards" / "00002.tmp").exists()
    done = resumed.existing_docids()
    for docid, s in states.items():
        if docid not in done:
            resumed.add(docid, s, token_ids=np.arange(len(s)))
    resumed.close()
    store = EncoderStateStore(tmp_path)
    assert len(store) == 12 and store.manifest.complete


def test_truncated_and_missing_shards_are_refused(tmp_path):
    with StoreWriter(tmp_path, FP, hidden_size=8, max_length=16, shard_size=3) as w:
        for docid, s in random_states(6).items():
            w.add(docid, s, token_ids=np.arange(len(s)))
    states_file = tmp_path / "shards" / "00001" / "states.bin"
    states_file.write_bytes(states_file.read_bytes()[:-4])
    with pytest.raises(DecrankError, match=r"00001/states.bin: shard file is truncated"):
        EncoderStateStore(tmp_path)
    shutil.rmtree(tmp_path / "shards" / "00001")
    with pytest.raises(DecrankError, match=r"00001/.*is missing"):
        EncoderStateStore(tmp_path)


def test_not_a_store_and_bad_manifest(tmp_path):
    with pytest.raises(DecrankError, match="not an encoder-state store"):
        EncoderStateStore(tmp_path)
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(DecrankError, match="unreadable manifest"):
        EncoderStateStore(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(DecrankError, match="format version 99"):
        EncoderStateStore(tmp_path)


def test_store_refuses_another_model_tokenizer_or_max_length(tiny_models, docs, tmp_path):
    t5 = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    encode_corpus(t5, [Document(d, t) for d, t in docs.items()], tmp_path, progress=False)
    store = EncoderStateStore(tmp_path)
    store.check_model(t5.fingerprint())
    t5v11 = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5v11")))
    with pytest.raises(DecrankError, match="encoder differs"):
        store.check_model(t5v11.fingerprint())
    other_tok = dict(t5.fingerprint(), tokenizer_sha256="x")
    with pytest.raises(DecrankError, match="tokenizer differs"):
        store.check_model(other_tok)
    with pytest.raises(DecrankError, match="max length"):
        store.check_model(t5.fingerprint(), max_length=7)
    with pytest.raises(DecrankError, match="max length 64, not 32"):
        encode_corpus(t5, [Document("new", "text")], tmp_path, max_length=32, progress=False)
    with pytest.raises(DecrankError, match="encoder differs"):
        encode_corpus(t5v11, [Document("new", "text")], tmp_path, progress=False)


def test_encode_resumes_without_reencoding(tiny_models, docs, tmp_path):
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("bert2bert")))
    corpus = [Document(d, t) for d, t in docs.items()]
    first = encode_corpus(model, corpus[:15], tmp_path, shard_size=4, progress=False)
    with pytest.raises(DecrankError, match=f"docid {corpus[0].docid} appears twice in the corpus \\(documents 1 and 41\\)"):
        encode_corpus(model, corpus + corpus[:3], tmp_path, shard_size=4, progress=False)
    again = encode_corpus(model, corpus + corpus[:3], tmp_path, shard_size=4, progress=False, on_duplicate="first")
    assert (first.encoded, again.encoded, again.skipped, again.total_in_store) == (15, 25, 18, 40)


def test_fingerprint_is_stable_across_loads_of_a_warm_started_model(tmp_path):
    """A saved BERT encoder-decoder has no pooler; reloading draws one at random, which must not matter."""
    from pyserini_decrank.model import ScoringConfig
    from pyserini_decrank.model import build_minilm_encoder_decoder

    model, tokenizer = build_minilm_encoder_decoder(decoder_layers=1)
    QueryLikelihoodModel(model, tokenizer, ScoringConfig()).save_pretrained(tmp_path)
    first = QueryLikelihoodModel.from_pretrained(str(tmp_path)).fingerprint()
    second = QueryLikelihoodModel.from_pretrained(str(tmp_path)).fingerprint()
    assert first["encoder_sha256"] == second["encoder_sha256"]
