"""A store's manifest is trusted only as written: hand edits, a codec file from another store, and a manifest
that cannot be written are each one error line (the fault-injection script makes every kind of edit)."""

import json
import os
import shutil

import pytest

from pyserini_decrank.errors import DecrankError
from pyserini_decrank.store import EncoderStateStore, Manifest


@pytest.fixture(scope="module")
def stores(tiny_models, docs, tmp_path_factory):
    from pyserini_decrank import QueryLikelihoodModel
    from pyserini_decrank.encode import encode_corpus
    from pyserini_decrank.io import Document

    root = tmp_path_factory.mktemp("edits")
    qlm = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    for codec in ("fp16", "SQ8", "PQ4"):
        encode_corpus(qlm, (Document(d, t) for d, t in docs.items()), root / codec, max_length=32, codec=codec,
                      shard_size=8, progress=False)
    return root


@pytest.mark.parametrize("edit,message", [
    (lambda m: m.update(codec="bf16"), "altered"), (lambda m: m.update(num_docs=5), "altered"),
    (lambda m: m["build"].update(batch_size=1), "altered"),
])
def test_a_hand_edited_manifest_is_refused_by_readers_and_verify(stores, tmp_path, edit, message):
    shutil.copytree(stores / "fp16", tmp_path / "s")
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    edit(manifest)
    (tmp_path / "s" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DecrankError, match=message):
        EncoderStateStore(tmp_path / "s").verify()


def test_edits_that_rewrite_the_checksum_are_still_caught_by_the_cross_checks(stores, tmp_path):
    shutil.copytree(stores / "fp16", tmp_path / "s")
    manifest = Manifest.load(tmp_path / "s")
    manifest.codec = "fp32"  # twice the bytes per token: the states file's size no longer fits
    manifest.save(tmp_path / "s")
    with pytest.raises(DecrankError, match="bytes of states"):
        EncoderStateStore(tmp_path / "s")
    manifest.codec, manifest.num_docs = "fp16", manifest.num_docs - 1
    manifest.save(tmp_path / "s")
    with pytest.raises(DecrankError, match="differ from its shards' sums"):
        EncoderStateStore(tmp_path / "s")


def test_a_codec_file_from_a_store_of_another_codec_is_named_as_such(stores, tmp_path):
    shutil.copytree(stores / "SQ8", tmp_path / "s")
    shutil.copy(stores / "PQ4" / "codec.faiss", tmp_path / "s" / "codec.faiss")
    with pytest.raises(DecrankError, match="a codec file from another store"):
        EncoderStateStore(tmp_path / "s")


def test_a_manifest_that_cannot_be_written_keeps_the_old_one(stores, tmp_path, monkeypatch):
    shutil.copytree(stores / "fp16", tmp_path / "s")
    before = (tmp_path / "s" / "manifest.json").read_bytes()
    manifest = Manifest.load(tmp_path / "s")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(DecrankError, match="cannot write the store's manifest .No space left on device.; the previous one is kept"):
        manifest.save(tmp_path / "s")
    monkeypatch.undo()
    assert (tmp_path / "s" / "manifest.json").read_bytes() == before
    assert not (tmp_path / "s" / "manifest.json.tmp").exists()


def test_resuming_with_another_batch_or_shard_size_is_refused_and_left_out_takes_the_stores(stores, tiny_models, docs, tmp_path):
    from pyserini_decrank import QueryLikelihoodModel
    from pyserini_decrank.encode import encode_corpus
    from pyserini_decrank.io import Document

    qlm = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    corpus = [Document(d, t) for d, t in docs.items()]
    def interrupted():
        yield from corpus[:35]  # the first chunk (32 documents at batch size 1) is encoded, 4 shards
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encode_corpus(qlm, interrupted(), tmp_path / "s", max_length=32, codec="fp16", shard_size=8, batch_size=1,
                      progress=False)
    assert len(EncoderStateStore(tmp_path / "s")) > 0
    for option in ({"shard_size": 16}, {"batch_size": 8}):
        with pytest.raises(DecrankError, match="it was started with"):
            encode_corpus(qlm, corpus, tmp_path / "s", max_length=32, codec="fp16", progress=False,
                          **{"shard_size": 8, "batch_size": 1, **option})
    encode_corpus(qlm, corpus, tmp_path / "s", max_length=32, codec="fp16", progress=False)  # the store's own
    encode_corpus(qlm, corpus, tmp_path / "whole", max_length=32, codec="fp16", shard_size=8, batch_size=1, progress=False)
    from eval.fault_injection import tree_digest

    assert tree_digest(tmp_path / "s") == tree_digest(tmp_path / "whole")


def test_a_store_folder_that_cannot_be_written_is_one_line(stores, tiny_models, docs, tmp_path, monkeypatch):
    """Read-only folders (or an immutable manifest) cannot be made as root, which ignores permissions: the
    failing system call is simulated where encode first writes, its lock."""
    from pyserini_decrank import QueryLikelihoodModel
    from pyserini_decrank.encode import encode_corpus
    from pyserini_decrank.io import Document

    shutil.copytree(stores / "fp16", tmp_path / "s")
    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).endswith(".lock"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    qlm = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    with pytest.raises(DecrankError, match=r"cannot take its lock .* \(Permission denied\)"):
        encode_corpus(qlm, [Document(d, t) for d, t in docs.items()], tmp_path / "s", max_length=32, progress=False)
    monkeypatch.undo()
    assert len(EncoderStateStore(tmp_path / "s")) == len(docs)  # still readable, untouched
