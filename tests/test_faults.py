"""Fault injection, bounded in time (`python -m eval.fault_injection` runs the same at scale):
kill -9 during encode then resume gives a byte-identical store; every flipped bit or truncation in a store
is reported before it can change a score; fuzzed inputs to every reader parse or give one error line."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from eval.fault_injection import (flip_and_truncate, fuzz_readers, kill_and_resume,  # noqa: E402
                                  synthetic_corpus)

pytestmark = pytest.mark.slow  # subprocesses and many store copies: `pytest -m 'not slow'` leaves it out


@pytest.fixture(scope="module")
def killed(tiny_models, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("kills")
    corpus = synthetic_corpus(workdir / "corpus.tsv", 400)
    return kill_and_resume(str(tiny_models("t5")), corpus, workdir, seeds=[0, 1, 2]), workdir


def test_killed_encodes_resume_to_a_byte_identical_store(killed):
    report, _ = killed
    assert report.kills == 3 and report.identical == 3 and report.different == []


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
