"""faiss codecs in the store: trained once, saved with their sha256, reused on resume, decoded in one step,
and every misuse one clear error."""

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch

from pyserini_decrank import DecrankError, EncoderStateStore, QueryLikelihoodModel, StoreWriter
from pyserini_decrank.encode import encode_corpus
from pyserini_decrank.io import Document
from pyserini_decrank.store import FaissCodec

FP = {"model": "m", "encoder_sha256": "e", "tokenizer_sha256": "t", "document_prefix": ""}


def states(n, dim=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {f"d{i}": torch.randn(int(torch.randint(3, 12, (1,), generator=g)), dim, generator=g) for i in range(n)}


def write(path, docs, codec, shard_size=16, train_tokens=500):
    with StoreWriter(path, FP, hidden_size=32, max_length=16, codec=codec, shard_size=shard_size,
                     codec_train_tokens=train_tokens) as w:
        for docid, s in docs.items():
            w.add(docid, s, token_ids=np.arange(len(s)))


@pytest.mark.parametrize("codec, bytes_per_token, tolerance", [("SQ8", 32, 0.05), ("PQ8x4", 4, 1.2), ("OPQ4,PQ4x4", 2, 1.5)])
def test_codec_round_trip_and_size(tmp_path, codec, bytes_per_token, tolerance):
    docs = states(200)
    write(tmp_path, docs, codec)
    store = EncoderStateStore(tmp_path)
    assert store.info()["bytes_per_token"] == bytes_per_token
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["codec"] == codec
    assert manifest["codec_sha256"] == hashlib.sha256((tmp_path / "codec.faiss").read_bytes()).hexdigest()
    ids = list(docs)[:40]
    decoded = store.get_many(ids)
    for docid, got in zip(ids, decoded):
        assert got.shape == docs[docid].shape and got.dtype == torch.float32
        assert (got - docs[docid]).pow(2).mean().sqrt() < tolerance  # states are unit-variance
    # one vectorised decode equals document-by-document decoding
    one_by_one = [store.get(d) for d in ids]
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(decoded, one_by_one))


def test_a_resumed_store_with_a_trained_codec_is_byte_identical(tmp_path):
    docs = states(300)
    write(tmp_path / "whole", docs, "PQ8x4", shard_size=50)  # trained on the first 500 token states
    writer = StoreWriter(tmp_path / "cut", FP, hidden_size=32, max_length=16, codec="PQ8x4", shard_size=50,
                         codec_train_tokens=500)
    for docid, s in list(docs.items())[:130]:
        writer.add(docid, s, token_ids=np.arange(len(s)))
    writer._release()  # the process dies: 2 shards listed, the codec trained and saved
    assert len(json.loads((tmp_path / "cut" / "manifest.json").read_text())["shards"]) == 2
    with StoreWriter(tmp_path / "cut", FP, hidden_size=32, max_length=16, codec="PQ8x4", shard_size=50,
                     codec_train_tokens=500) as resumed:
        done = resumed.existing_docids()
        for docid, s in docs.items():
            if docid not in done:
                resumed.add(docid, s, token_ids=np.arange(len(s)))
    digest = lambda root: {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"}
    assert digest(tmp_path / "whole") == digest(tmp_path / "cut")


@pytest.mark.parametrize("codec, fragment", [("PQ7", "not a faiss codec for 32-wide states"),
                                             ("Banana", "not a faiss codec"), ("fp8", "not a faiss codec")])
def test_bad_specs_are_refused_before_anything_is_written(tmp_path, codec, fragment):
    with pytest.raises(DecrankError, match=fragment):
        StoreWriter(tmp_path / "s", FP, hidden_size=32, max_length=16, codec=codec)
    assert not (tmp_path / "s").exists()


def test_too_few_states_to_train(tmp_path):
    with pytest.raises(DecrankError, match="cannot be trained on .* token states"):
        write(tmp_path / "s", states(3), "PQ4x8")  # 256 centroids, a few dozen states


def test_a_missing_or_altered_codec_file(tmp_path):
    write(tmp_path / "s", states(100), "SQ8")
    shutil.copytree(tmp_path / "s", tmp_path / "altered")
    codec = tmp_path / "altered" / "codec.faiss"
    data = bytearray(codec.read_bytes())
    data[-1] ^= 1
    codec.write_bytes(bytes(data))
    with pytest.raises(DecrankError, match="codec.faiss: the trained codec differs from the manifest"):
        EncoderStateStore(tmp_path / "altered")
    (tmp_path / "s" / "codec.faiss").unlink()
    with pytest.raises(DecrankError, match="codec.faiss: the store's trained codec is missing"):
        EncoderStateStore(tmp_path / "s")


def test_encode_and_rerank_through_a_pq_store(tiny_models, docs, tmp_path):
    from pyserini_decrank import DecoderReranker

    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    corpus = [Document(d, t) for d, t in docs.items()]
    encode_corpus(model, corpus, tmp_path / "fp32", codec="fp32", progress=False)
    encode_corpus(model, corpus, tmp_path / "sq8", codec="SQ8", progress=False)
    exact = DecoderReranker(model, EncoderStateStore(tmp_path / "fp32")).score("digital data storage", list(docs))
    coded = DecoderReranker(model, EncoderStateStore(tmp_path / "sq8")).score("digital data storage", list(docs))
    assert np.abs(exact - coded).max() < 0.1  # SQ8 keeps 8 bits per value
    assert isinstance(EncoderStateStore(tmp_path / "sq8").codec, FaissCodec)


def test_codec_training_sample_is_the_stores(tmp_path):
    """The writer and quantisation-aware training share one sample: all tokens up to the limit, else a
    fixed-seed subsample in order."""
    from pyserini_decrank.store import codec_training_sample

    docs = [np.full((3, 2), i, dtype=np.float32) for i in range(10)]
    np.testing.assert_array_equal(codec_training_sample(docs, 100), np.concatenate(docs))
    sample = codec_training_sample(docs, 7)
    assert sample.shape == (7, 2) and np.all(np.diff(sample[:, 0]) >= 0)  # a subsample, in order
    np.testing.assert_array_equal(sample, codec_training_sample(docs, 7))


def test_rerank_warns_once_when_the_store_codec_is_not_the_models(tiny_models, docs, tmp_path):
    """A model trained through a codec (``decrank train --codec``) declares it; a store of another codec is
    one warning line, from the API and the CLI; the same codec, or a model that declares none, is silent."""
    import warnings

    from click.testing import CliRunner

    from pyserini_decrank import DecoderReranker
    from pyserini_decrank.cli import main
    from pyserini_decrank.rerank import CodecMismatchWarning

    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    corpus = [Document(d, t) for d, t in docs.items()]
    encode_corpus(model, corpus, tmp_path / "fp16", codec="fp16", progress=False)
    encode_corpus(model, corpus, tmp_path / "sq8", codec="SQ8", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DecoderReranker(model, EncoderStateStore(tmp_path / "fp16"))  # declares none: silent
        model.config.codec = "SQ8"
        DecoderReranker(model, EncoderStateStore(tmp_path / "sq8"))  # the codec it declares: silent
    with pytest.warns(CodecMismatchWarning, match="trained to read states through codec SQ8; store .*fp16 holds fp16"):
        DecoderReranker(model, EncoderStateStore(tmp_path / "fp16"))
    model.save_pretrained(tmp_path / "model")
    (tmp_path / "topics.tsv").write_text("q1\tdigital data storage\n")
    (tmp_path / "run.txt").write_text("".join(f"q1 Q0 {d} {r + 1} {9 - r} bm25\n" for r, d in enumerate(list(docs)[:5])))
    result = CliRunner().invoke(main, ["rerank", "--model", str(tmp_path / "model"), "--store", str(tmp_path / "fp16"),
                                       "--topics", str(tmp_path / "topics.tsv"), "--run", str(tmp_path / "run.txt"),
                                       "--output", str(tmp_path / "out.txt")])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if "codec" in line]
    assert len(lines) == 1 and lines[0].startswith("decrank: warning: model ") and "--codec SQ8" in lines[0]
    assert (tmp_path / "out.txt").read_text().count("\n") == 5


@pytest.mark.parametrize("codec", ["PQ4", "OPQ4,PQ4"])
def test_pq_codes_decode_in_torch_as_faiss_decodes_them(tmp_path, codec):
    """``PQDecoder``: what a GPU decodes from 8-bit PQ codes (behind an OPQ rotation or not) is faiss's decoding
    within fp32 rounding; codecs it does not know (4-bit codes, SQ) decode through faiss only."""
    docs = states(300)
    write(tmp_path, docs, codec, shard_size=400, train_tokens=2000)
    store = EncoderStateStore(tmp_path)
    decoder = store.codec.device_decoder()
    assert decoder is not None
    ids = list(docs)[:20]
    codes, _ = store.get_many_with_tokens(ids, with_tokens=False, decode=False)
    assert codes[0].dtype == torch.uint8 and codes[0].shape[1] == 4
    for code, exact in zip(codes, store.get_many(ids)):
        torch.testing.assert_close(decoder(code), exact, rtol=0, atol=1e-5 * float(exact.abs().max()))
    assert FaissCodec("PQ8x4", 32).device_decoder() is None and FaissCodec("SQ8", 32).device_decoder() is None


def test_decoding_on_the_device_scores_as_faiss_decoding(tiny_models, docs, tmp_path):
    """The GPU path (codes moved to the model's device, decoded there), exercised on the CPU: same scores."""
    from pyserini_decrank import DecoderReranker

    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    corpus = [Document(d, t) for d, t in docs.items()]
    encode_corpus(model, corpus, tmp_path / "pq", codec="OPQ4,PQ4", progress=False)
    store = EncoderStateStore(tmp_path / "pq")
    plain = DecoderReranker(model, store, batch_size=8)
    on_device = DecoderReranker(model, store, batch_size=8, decode_on_device=True, query_batch=2)
    assert plain.device_decoder is None and on_device.device_decoder is not None
    requests = [("digital data storage", list(docs)[:15], "q1"), ("electron wave", list(docs)[10:], "q2")]
    for a, b in zip(plain.score_many(requests), on_device.score_many(requests)):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-6)


def test_codec_train_tokens_is_recorded_and_resume_checks_it(tiny_models, docs, tmp_path):
    """`encode --codec-train-tokens`: the codec trains on that many token states (all there are, here 300 of
    more), the store records it, and resuming with another is one line."""
    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    corpus = [Document(d, t) for d, t in docs.items()]
    encode_corpus(model, corpus[:30], tmp_path / "a", codec="PQ4", codec_train_tokens=300, progress=False)
    encode_corpus(model, corpus[:30], tmp_path / "b", codec="PQ4", progress=False)
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["build"]["codec_train_tokens"] == 300
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["build"]["codec_train_tokens"] == 20_000
    assert (tmp_path / "a" / "codec.faiss").read_bytes() != (tmp_path / "b" / "codec.faiss").read_bytes()
    with pytest.raises(DecrankError, match="started with codec train tokens 300, not 400"):
        encode_corpus(model, corpus, tmp_path / "a", codec="PQ4", codec_train_tokens=400, progress=False)
    stats = encode_corpus(model, corpus, tmp_path / "a", codec="PQ4", progress=False)  # left out: the store's own
    assert stats.encoded == len(corpus) - 30


def test_a_store_transcoded_from_fp32_is_byte_identical_to_one_encoded_in_the_codec(tiny_models, docs, tmp_path,
                                                                                    monkeypatch):
    """`decrank store transcode`: the encoder runs once; each codec's store is written from the fp32 one, the
    same bytes (codec, shards, manifest entries) as encoding the corpus in that codec, and resumable."""
    from pyserini_decrank.store import transcode_store

    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    corpus = [Document(d, t) for d, t in docs.items()]
    encode_corpus(model, corpus, tmp_path / "fp32", codec="fp32", shard_size=16, progress=False)
    for codec in ("PQ4", "fp16"):
        encode_corpus(model, corpus, tmp_path / f"encoded-{codec}", codec=codec, shard_size=16, codec_train_tokens=300,
                      progress=False)
        assert transcode_store(tmp_path / "fp32", tmp_path / f"transcoded-{codec}", codec, codec_train_tokens=300,
                               progress=False) == len(docs)
        encoded = json.loads((tmp_path / f"encoded-{codec}" / "manifest.json").read_text())
        transcoded = json.loads((tmp_path / f"transcoded-{codec}" / "manifest.json").read_text())
        assert transcoded == encoded
    assert (tmp_path / "transcoded-PQ4" / "codec.faiss").read_bytes() == (tmp_path / "encoded-PQ4" / "codec.faiss").read_bytes()
    encoded_pq = json.loads((tmp_path / "encoded-PQ4" / "manifest.json").read_text())
    # a transcode stopped part-way (here by a signal while reading its third batch) resumes to the same bytes
    from pyserini_decrank.store import _transcode

    monkeypatch.setattr(_transcode, "READ_BATCH", 16)
    reads, read = [], EncoderStateStore.get_many_with_tokens

    def stopped_on_the_third(self, *args, **kwargs):
        reads.append(1)
        if len(reads) == 3:
            raise KeyboardInterrupt
        return read(self, *args, **kwargs)

    monkeypatch.setattr(EncoderStateStore, "get_many_with_tokens", stopped_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        transcode_store(tmp_path / "fp32", tmp_path / "cut", "PQ4", codec_train_tokens=300, progress=False)
    written = json.loads((tmp_path / "cut" / "manifest.json").read_text())
    assert not written["complete"] and 0 < len(written["shards"]) < len(encoded_pq["shards"])
    assert transcode_store(tmp_path / "fp32", tmp_path / "cut", "PQ4", progress=False) == len(docs) - 16 * len(written["shards"])
    assert json.loads((tmp_path / "cut" / "manifest.json").read_text()) == encoded_pq


def test_transcoding_refuses_codes_an_unfinished_store_and_its_own_folder(tiny_models, docs, tmp_path):
    from pyserini_decrank.store import transcode_store

    model = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    corpus = [Document(d, t) for d, t in docs.items()]
    encode_corpus(model, corpus, tmp_path / "sq8", codec="SQ8", progress=False)
    with pytest.raises(DecrankError, match="holds SQ8 codes, not the states"):
        transcode_store(tmp_path / "sq8", tmp_path / "out", "PQ4", progress=False)
    encode_corpus(model, corpus, tmp_path / "fp16", codec="fp16", progress=False)
    with pytest.raises(DecrankError, match="another folder than its source"):
        transcode_store(tmp_path / "fp16", tmp_path / "fp16", "PQ4", progress=False)
    first = next(iter(docs))
    encode_corpus(model, [Document(first, "another text altogether")], tmp_path / "other", codec="fp32", progress=False)
    with pytest.raises(DecrankError, match=f"document {first} there is not"):  # resuming a store of another corpus
        transcode_store(tmp_path / "fp16", tmp_path / "other", "fp32", progress=False)
    writer = StoreWriter(tmp_path / "stopped", FP, hidden_size=32, max_length=16, codec="fp32", shard_size=16)
    for docid, s in states(20).items():
        writer.add(docid, s, token_ids=np.arange(len(s)))
    writer.close(complete=False)  # one shard written, then stopped
    with pytest.warns(UserWarning), pytest.raises(DecrankError, match="is unfinished"):
        transcode_store(tmp_path / "stopped", tmp_path / "out", "PQ4", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_codec_ladder_from_one_encode_scores_as_one_encoding_each_codec(tiny_models, docs, tmp_path, monkeypatch):
    """eval/codec_ladder.py --transcode: the corpus is encoded once (fp32) and every codec's store written from it,
    which changes nothing a row measures but the time."""
    import sys

    from eval import codec_ladder

    ids = list(docs)
    (tmp_path / "corpus.tsv").write_text("".join(f"{d}\t{t}\n" for d, t in docs.items()))
    (tmp_path / "topics.tsv").write_text("q1\tdigital data storage\nq2\telectron wave frequency\n")
    (tmp_path / "run.txt").write_text("".join(f"{q} Q0 {d} {i + 1} {30 - i} bm25\n" for q, part in (("q1", ids[:12]), ("q2", ids[12:24]))
                                              for i, d in enumerate(part)))
    (tmp_path / "qrels.txt").write_text(f"q1 0 {ids[3]} 1\nq2 0 {ids[20]} 1\n")
    common = ["codec_ladder", "--corpus", tmp_path / "corpus.tsv", "--topics", tmp_path / "topics.tsv", "--run",
              tmp_path / "run.txt", "--qrels", tmp_path / "qrels.txt", "--model", tiny_models("t5"), "--codecs", "fp16,SQ8"]
    for name, extra in (("encoded", []), ("transcoded", ["--transcode"])):
        monkeypatch.setattr(sys, "argv", [str(a) for a in common + ["--workdir", tmp_path / name, "--json",
                                                                    tmp_path / f"{name}.json"] + extra])
        codec_ladder.main()
    encoded, transcoded = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("encoded", "transcoded"))
    assert [r["transcoded"] for r in transcoded] == [True, True] and not any(r["transcoded"] for r in encoded)
    assert (tmp_path / "transcoded" / "fp32").is_dir() and not (tmp_path / "encoded" / "fp32").exists()
    for spec in ("fp16", "SQ8"):
        assert (tmp_path / "transcoded" / f"scores-{spec}.json").read_text() == (tmp_path / "encoded" / f"scores-{spec}.json").read_text()
    for a, b in zip(encoded, transcoded):
        for key in ("codec", "store_bytes", "ndcg10", "ndcg10_interpolated", "tau_median", "ndcg10_change_ci"):
            assert a[key] == b[key]
