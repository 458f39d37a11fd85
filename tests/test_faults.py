"""Fault injection, bounded in time (`python -m eval.fault_injection` runs the same at scale):
SIGKILL, SIGTERM or SIGINT during encode (fp16, and SQ8 before its codec's training point) or a full disk,
then resume, gives a byte-identical store; hand edits of a manifest are reported; two reranks of one output
never mix; every flipped bit or truncation in a store
is reported before it can change a score; fuzzed inputs to every reader parse or give one error line."""

import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from eval.fault_injection import (concurrent_reranks, disk_full_and_resume, edit_manifests,  # noqa: E402
                                  flip_and_truncate, fuzz_readers, kill_and_resume, synthetic_corpus)

pytestmark = pytest.mark.slow  # subprocesses and many store copies: `pytest -m 'not slow'` leaves it out


@pytest.fixture(scope="module")
def killed(tiny_models, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("kills")
    corpus = synthetic_corpus(workdir / "corpus.tsv", 400)
    return kill_and_resume(str(tiny_models("t5")), corpus, workdir, seeds=[0, 1, 2]), workdir


def test_killed_encodes_resume_to_a_byte_identical_store(killed):
    report, _ = killed
    assert report.kills == 3 and report.identical == 3 and report.different == []


def test_sigint_and_sigterm_resume_byte_identically_even_before_the_codec_is_trained(killed, tiny_models):
    """SIGINT used to write the pending documents as a short shard and train SQ8 on what it had seen."""
    _, workdir = killed
    report = kill_and_resume(str(tiny_models("t5")), workdir / "corpus.tsv", workdir, seeds=[3, 4],
                             signals=(signal.SIGINT, signal.SIGTERM), codecs=("fp16", "SQ8"))
    assert report.kills == 8 and report.different == [] and report.identical == 8


def test_a_full_disk_during_encode_is_one_line_and_resumes_byte_identically(killed, tiny_models):
    _, workdir = killed
    report = disk_full_and_resume(str(tiny_models("t5")), workdir / "corpus.tsv", workdir, seeds=[0, 1, 2])
    assert report.runs == 3 and report.stopped == 3 and report.one_line == 3 and report.tracebacks == []
    assert report.identical == 3


def test_every_hand_edit_of_a_manifest_is_reported(killed):
    _, workdir = killed
    report = edit_manifests(workdir / "reference", workdir)
    assert report.edits >= 13 and report.undetected == []


def test_two_reranks_of_one_output_never_mix(killed, tiny_models):
    _, workdir = killed
    report = concurrent_reranks(str(tiny_models("t5")), workdir / "reference", workdir / "corpus.tsv", workdir, pairs=2)
    assert report.pairs == 2 and report.mixed == 0 and report.tracebacks == []


def test_every_store_fault_is_detected_or_harmless(killed, tmp_path):
    _, workdir = killed
    report = flip_and_truncate(workdir / "reference", tmp_path, faults=60, seed=1)
    assert report.faults == 60 and report.silent == []
    assert report.detected + report.harmless == 60 and report.detected > 0
    assert report.by_file.get("states.bin", 0) > 0


def test_fuzzed_inputs_never_give_a_traceback(tmp_path):
    report = fuzz_readers(400, tmp_path)
    assert report.inputs == 400 and report.tracebacks == []
    assert report.parsed > 0 and report.errors > 0  # both outcomes are exercised


@pytest.mark.parametrize("codec", ["fp16", "SQ8"])
def test_an_interrupted_encode_resumes_to_the_uninterrupted_store_before_and_after_the_codec_is_trained(
        tiny_models, tmp_path, codec):
    """KeyboardInterrupt (what SIGINT and, under the CLI, SIGTERM raise) after k documents, on a corpus whose
    SQ8 codec is trained part-way (20,000 token states): no short shard, no codec trained on fewer states."""
    from eval.fault_injection import tree_digest
    from pyserini_decrank import QueryLikelihoodModel
    from pyserini_decrank.encode import encode_corpus
    from pyserini_decrank.io import read_corpus

    corpus = synthetic_corpus(tmp_path / "corpus.tsv", 1500)
    qlm = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    options = dict(max_length=64, batch_size=8, shard_size=100, codec=codec, progress=False)
    encode_corpus(qlm, read_corpus(corpus), tmp_path / "reference", **options)
    expected = tree_digest(tmp_path / "reference")

    def interrupted(k):
        for i, doc in enumerate(read_corpus(corpus)):
            if i == k:
                raise KeyboardInterrupt
            yield doc

    for k in (150, 950, 1420):
        store = tmp_path / f"interrupted-{k}"
        with pytest.raises(KeyboardInterrupt):
            encode_corpus(qlm, interrupted(k), store, **options)
        encode_corpus(qlm, read_corpus(corpus), store, **options)
        assert tree_digest(store) == expected, k


def test_an_interrupt_inside_the_codecs_first_flush_resumes_byte_identically(tiny_models, tmp_path, monkeypatch):
    """A signal landing between the codec's training and its first shards (the buffered states half
    converted to codes) must not write them: a later flush would have stored raw states as codes."""
    from eval.fault_injection import tree_digest
    from pyserini_decrank import QueryLikelihoodModel
    from pyserini_decrank.encode import encode_corpus
    from pyserini_decrank.io import read_corpus
    from pyserini_decrank.store import _codecs

    corpus = synthetic_corpus(tmp_path / "corpus.tsv", 1500)
    qlm = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    options = dict(max_length=64, batch_size=8, shard_size=100, codec="SQ8", progress=False)
    encode_corpus(qlm, read_corpus(corpus), tmp_path / "reference", **options)
    calls = {"n": 0}
    real = _codecs.FaissCodec.to_storage

    def interrupted(self, states):
        calls["n"] += 1
        if calls["n"] == 50:  # inside the conversion of what waited for the training
            raise KeyboardInterrupt
        return real(self, states)

    monkeypatch.setattr(_codecs.FaissCodec, "to_storage", interrupted)
    with pytest.raises(KeyboardInterrupt):
        encode_corpus(qlm, read_corpus(corpus), tmp_path / "s", **options)
    monkeypatch.undo()
    encode_corpus(qlm, read_corpus(corpus), tmp_path / "s", **options)
    assert tree_digest(tmp_path / "s") == tree_digest(tmp_path / "reference")


@pytest.mark.parametrize("codec", ["fp16", "SQ8"])
def test_an_interrupt_between_writing_the_first_shard_and_listing_it_resumes(tiny_models, tmp_path, monkeypatch, codec):
    """The first shard renamed into place but not yet listed: the folder then has no shard listed; what the
    stopped writer leaves must not make the next encode refuse the folder."""
    from eval.fault_injection import tree_digest
    from pyserini_decrank import QueryLikelihoodModel
    from pyserini_decrank.encode import encode_corpus
    from pyserini_decrank.io import read_corpus
    from pyserini_decrank.store import StoreWriter

    corpus = synthetic_corpus(tmp_path / "corpus.tsv", 300)
    qlm = QueryLikelihoodModel.from_pretrained(str(tiny_models("t5")))
    options = dict(max_length=64, batch_size=8, shard_size=100, codec=codec, progress=False)
    encode_corpus(qlm, read_corpus(corpus), tmp_path / "reference", **options)

    def stopped(self, shard):
        raise KeyboardInterrupt

    monkeypatch.setattr(StoreWriter, "list_shard", stopped)
    with pytest.raises(KeyboardInterrupt):
        encode_corpus(qlm, read_corpus(corpus), tmp_path / "s", **options)
    monkeypatch.undo()
    encode_corpus(qlm, read_corpus(corpus), tmp_path / "s", **options)
    assert tree_digest(tmp_path / "s") == tree_digest(tmp_path / "reference")
