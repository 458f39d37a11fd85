"""Fault injection at scale: kills during encode, bit flips and truncations in stores, fuzzed inputs.

    python -m eval.fault_injection [--kills 10] [--disk-full 10] [--concurrent 5] [--flips 500] [--fuzz 2000] [--json OUT.json]

Prints what it did and what came of it:
- signals: `decrank encode` sent SIGKILL, SIGTERM or SIGINT at random moments (one seed each, into an fp16 and
  an SQ8 store, whose codec is trained on the first token states), then run again to the end; the store must
  be byte-identical to one built without interruption (every file, manifest included);
- disk full: `decrank encode` under a file-size limit (`ulimit -f`) below the store's largest file, then run
  again with room: one error line, no traceback, and the byte-identical store;
- manifest edits: hand edits of a store's manifest (codec, counts, shards, build options, ...) must each be
  reported when the store is opened, read or verified;
- concurrent writers: two `decrank rerank`s writing one output a moment apart: the file must be one whole run;
- flips and truncations: a random bit of a random store file flipped (or the file cut short); every
  document is then read back, and the fault must either be reported as an error or change nothing;
  "silent" counts faults that changed a document's states without an error (must be 0);
- fuzz: random inputs to every reader (runs, topics, corpora, qrels, the manifest) and to
  `decrank rerank`; each must parse or fail with one `decrank: error:` line, never a traceback, and a
  failed command must leave no output behind.
The test suite (tests/test_faults.py) runs the same functions with small counts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pyserini_decrank.errors import DecrankError
from pyserini_decrank.io import read_corpus, read_qrels, read_run, read_topics
from pyserini_decrank.store import EncoderStateStore, Manifest

WORDS = ("protein cell gene virus vaccine dose patient trial physics electron magnetic field wave circuit "
         "computer memory storage digital data retrieval query document search index ranking the a of and").split()


def synthetic_corpus(path: Path, documents: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    path.write_text("".join(f"doc-{i:05d}\t{' '.join(rng.choice(WORDS) for _ in range(rng.randint(5, 60)))}\n"
                            for i in range(documents)))
    return path


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` but the lock, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


# ---------------------------------------------------------------------------------------------- kills
@dataclass
class KillReport:
    kills: int = 0
    killed_mid_encode: int = 0  # the process was still running when the signal came
    identical: int = 0
    different: list[str] = field(default_factory=list)  # signal/codec/seed whose resumed store differs, and how
    by_signal: dict[str, int] = field(default_factory=dict)  # signals sent, by name


def _encode_command(model: str, corpus: Path, store: Path, codec: str = "fp16") -> list[str]:
    return [sys.executable, "-m", "pyserini_decrank", "encode", "--model", model, "--corpus", str(corpus),
            "--store", str(store), "--shard-size", "64", "--batch-size", "8", "--threads", "1", "--codec", codec]


def _wait_for_store(store: Path, proc: subprocess.Popen) -> None:
    while not (store / "manifest.json").exists() and proc.poll() is None:
        time.sleep(0.002)


def reference_store(model: str, corpus: Path, workdir: Path, codec: str = "fp16") -> tuple[Path, float]:
    """A store built in one go, and how long from its opening to the end (where a fault can land)."""
    reference = workdir / ("reference" if codec == "fp16" else f"reference-{codec}")
    if (reference / "manifest.json").exists():
        return reference, 1.0
    proc = subprocess.Popen(_encode_command(model, corpus, reference, codec), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ, TQDM_DISABLE="1"))
    _wait_for_store(reference, proc)
    opened = time.perf_counter()
    if proc.wait() != 0:
        raise RuntimeError("the uninterrupted encode failed")
    return reference, time.perf_counter() - opened


def kill_and_resume(model: str, corpus: Path, workdir: Path, seeds: list[int],
                    signals: tuple[signal.Signals, ...] = (signal.SIGKILL,), codecs: tuple[str, ...] = ("fp16",)) -> KillReport:
    """For each seed, signal and codec: start an encode, send the signal at a random moment after it opened
    the store, finish it with a second run, and compare with a store built in one go. SQ8's codec is trained
    on the first token states: a signal before that point must not train it on fewer."""
    env = dict(os.environ, TQDM_DISABLE="1")
    report = KillReport()
    for codec in codecs:
        reference, duration = reference_store(model, corpus, workdir, codec)
        expected = tree_digest(reference)
        for sig in signals:
            for seed in seeds:
                rng = random.Random(seed)
                store = workdir / f"killed-{codec}-{sig.name}-{seed}"
                proc = subprocess.Popen(_encode_command(model, corpus, store, codec), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, env=env, text=True)
                _wait_for_store(store, proc)
                time.sleep(rng.uniform(0, duration))
                report.killed_mid_encode += proc.poll() is None
                proc.send_signal(sig)
                _, err = proc.communicate()
                report.kills += 1
                report.by_signal[sig.name] = report.by_signal.get(sig.name, 0) + 1
                resumed = subprocess.run(_encode_command(model, corpus, store, codec), capture_output=True, env=env,
                                         text=True)
                if "Traceback" in err:
                    report.different.append(f"{sig.name}/{codec}/{seed}: traceback {err.strip().splitlines()[-1]}")
                elif resumed.returncode != 0:
                    report.different.append(f"{sig.name}/{codec}/{seed}: resume failed {resumed.stderr.strip()[-200:]}")
                elif tree_digest(store) != expected:
                    differ = sorted(k for k, v in tree_digest(store).items() if expected.get(k) != v)
                    report.different.append(f"{sig.name}/{codec}/{seed}: files differ {differ[:3]}")
                else:
                    report.identical += 1
                shutil.rmtree(store)
    return report


@dataclass
class DiskFullReport:
    runs: int = 0
    stopped: int = 0  # the encode ran out of room (exit 2, one error line)
    one_line: int = 0
    tracebacks: list[str] = field(default_factory=list)
    identical: int = 0  # resumed (with room) to the uninterrupted store, byte for byte
    different: list[int] = field(default_factory=list)


def disk_full_and_resume(model: str, corpus: Path, workdir: Path, seeds: list[int]) -> DiskFullReport:
    """Encodes under a file-size limit (``ulimit -f``: a write past it fails as on a full disk) drawn per seed
    below the reference store's largest file, then resumes with room; the store must equal the reference."""
    import resource

    reference, _ = reference_store(model, corpus, workdir)
    expected = tree_digest(reference)
    largest = max(p.stat().st_size for p in reference.rglob("*") if p.is_file())
    env = dict(os.environ, TQDM_DISABLE="1")
    report = DiskFullReport()
    for seed in seeds:
        limit = random.Random(seed).randrange(1024, largest)
        store = workdir / f"full-{seed}"
        limited = subprocess.run(_encode_command(model, corpus, store), capture_output=True, text=True, env=env,
                                 preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
        report.runs += 1
        errors = [line for line in limited.stderr.splitlines() if line.startswith("decrank: error: ")]
        if "Traceback" in limited.stderr:
            report.tracebacks.append(f"limit {limit}: {limited.stderr.strip().splitlines()[-1]}")
        if limited.returncode != 0:
            report.stopped += 1
            report.one_line += limited.returncode == 2 and len(errors) == 1
        resumed = subprocess.run(_encode_command(model, corpus, store), capture_output=True, env=env)
        if resumed.returncode == 0 and tree_digest(store) == expected:
            report.identical += 1
        else:
            report.different.append(seed)
        shutil.rmtree(store, ignore_errors=True)
    return report


# --------------------------------------------------------------------------------------- manifest edits
@dataclass
class EditReport:
    edits: int = 0
    detected: int = 0  # opening, reading every document or `verify` gave one error
    undetected: list[str] = field(default_factory=list)


MANIFEST_EDITS = {  # what a hand edit of the manifest might change
    "codec fp16 -> bf16": lambda m: m.update(codec="bf16"),
    "codec fp16 -> fp32": lambda m: m.update(codec="fp32"),
    "num_docs - 1": lambda m: m.update(num_docs=m["num_docs"] - 1),
    "num_tokens + 1": lambda m: m.update(num_tokens=m["num_tokens"] + 1),
    "complete flipped": lambda m: m.update(complete=not m["complete"]),
    "max_length halved": lambda m: m.update(max_length=m["max_length"] // 2),
    "hidden_size + 1": lambda m: m.update(hidden_size=m["hidden_size"] + 1),
    "model renamed": lambda m: m["model"].update(model="another/model"),
    "encoder sha256 changed": lambda m: m["model"].update(encoder_sha256="0" * 64),
    "a shard's num_docs - 1": lambda m: m["shards"][0].update(num_docs=m["shards"][0]["num_docs"] - 1),
    "a shard file's sha256 changed": lambda m: m["shards"][0]["files"]["offsets.npy"].update(sha256="0" * 64),
    "the last shard dropped": lambda m: m["shards"].pop(),
    "batch size changed": lambda m: m["build"].update(batch_size=m["build"]["batch_size"] * 2),
}


def edit_manifests(store: Path, workdir: Path) -> EditReport:
    """Each edit of ``MANIFEST_EDITS`` on a fresh copy of ``store``, the manifest's checksum left as it was
    (as a hand edit leaves it): opening the store, reading every document and ``verify`` must report it."""
    import warnings

    warnings.simplefilter("ignore")
    docids = list(EncoderStateStore(store).docids())
    report = EditReport()
    for name, edit in MANIFEST_EDITS.items():
        copy = workdir / "edited"
        shutil.copytree(store, copy)
        manifest = json.loads((copy / "manifest.json").read_text())
        edit(manifest)
        (copy / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        report.edits += 1
        try:
            reader = EncoderStateStore(copy)
            reader.get_many(docids)
            reader.verify()
        except DecrankError:
            report.detected += 1
        else:
            report.undetected.append(name)
        shutil.rmtree(copy)
    return report


# ------------------------------------------------------------------------------------ concurrent writers
@dataclass
class ConcurrencyReport:
    pairs: int = 0
    mixed: int = 0  # the output is neither run whole: must be 0
    refused: int = 0  # the second writer stopped with one error line
    tracebacks: list[str] = field(default_factory=list)


def concurrent_reranks(model: str, store: Path, corpus: Path, workdir: Path, pairs: int, seed: int = 0) -> ConcurrencyReport:
    """Pairs of `decrank rerank` writing one output a random moment apart; the file must be one whole run."""
    rng = random.Random(seed)
    docids = [line.split("\t", 1)[0] for line in corpus.read_text().splitlines()][:30]
    queries = range(300)  # enough that the two writes overlap
    (workdir / "topics.tsv").write_text("".join(f"q{q}\t{' '.join(rng.sample(WORDS, 4))}\n" for q in queries))
    (workdir / "run.txt").write_text("".join(f"q{q} Q0 {d} {i + 1} {30 - i} bm25\n"
                                             for q in queries for i, d in enumerate(docids)))
    command = [sys.executable, "-m", "pyserini_decrank", "rerank", "--model", model, "--store", str(store),
               "--topics", str(workdir / "topics.tsv"), "--run", str(workdir / "run.txt"), "--depth", "30"]
    env = dict(os.environ, TQDM_DISABLE="1")
    whole = workdir / "whole.txt"
    subprocess.run([*command, "--output", str(whole)], check=True, capture_output=True, env=env)
    report = ConcurrencyReport()
    for i in range(pairs):
        out = workdir / f"concurrent-{i}.txt"
        first = subprocess.Popen([*command, "--output", str(out)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 env=env, text=True)
        time.sleep(rng.uniform(0, 2.0))
        second = subprocess.Popen([*command, "--output", str(out)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  env=env, text=True)
        errs = [first.communicate()[1], second.communicate()[1]]
        report.pairs += 1
        report.tracebacks += [e.strip().splitlines()[-1] for e in errs if "Traceback" in e]
        report.refused += sum("another process is writing" in e for e in errs)
        if not out.exists() or out.read_text() != whole.read_text():
            report.mixed += 1
    return report


# ---------------------------------------------------------------------------------------------- flips
@dataclass
class FlipReport:
    faults: int = 0
    detected: int = 0  # an error when opening or reading
    harmless: int = 0  # no error, and every document read back exactly as before
    silent: list[str] = field(default_factory=list)  # changed a document without an error: must stay empty
    by_file: dict[str, int] = field(default_factory=dict)


def _read_everything(store: Path, docids: list[str]) -> list[np.ndarray]:
    reader = EncoderStateStore(store)
    return [t.numpy().copy() for t in reader.get_many(docids)]


def flip_and_truncate(store: Path, workdir: Path, faults: int, seed: int = 0) -> FlipReport:
    """``faults`` random faults, each on a fresh copy of ``store``: a flipped bit (3 in 4) or a file cut short."""
    import warnings

    warnings.simplefilter("ignore")
    docids = list(EncoderStateStore(store).docids())
    original = _read_everything(store, docids)
    files = [p.relative_to(store) for p in sorted(store.rglob("*")) if p.is_file() and p.name != ".lock"]
    rng = random.Random(seed)
    report = FlipReport()
    for trial in range(faults):
        copy = workdir / f"flip-{trial}"
        shutil.copytree(store, copy)
        target = copy / rng.choice(files)
        data = bytearray(target.read_bytes())
        if data and rng.random() < 0.75:
            bit = rng.randrange(len(data) * 8)
            data[bit // 8] ^= 1 << (bit % 8)
            what = f"{target.relative_to(copy)} bit {bit}"
        else:
            data = data[: rng.randrange(len(data))] if data else data
            what = f"{target.relative_to(copy)} cut to {len(data)} bytes"
        target.write_bytes(bytes(data))
        key = target.name if target.name != "states.bin" else "states.bin"
        report.by_file[key] = report.by_file.get(key, 0) + 1
        report.faults += 1
        try:
            after = _read_everything(copy, docids)
        except DecrankError:
            report.detected += 1
        else:
            if all(a.shape == b.shape and a.tobytes() == b.tobytes() for a, b in zip(original, after)):
                report.harmless += 1
            else:
                report.silent.append(what)
        shutil.rmtree(copy)
    return report


# ---------------------------------------------------------------------------------------------- fuzz
@dataclass
class FuzzReport:
    inputs: int = 0
    parsed: int = 0
    errors: int = 0  # one clear DecrankError
    tracebacks: list[str] = field(default_factory=list)  # anything else: must stay empty


READERS = {  # file name -> reader of it
    "run.txt": read_run,
    "topics.tsv": lambda p: read_topics(str(p)),
    "queries.jsonl": lambda p: read_topics(str(p)),
    "topics.trec": lambda p: read_topics(str(p)),
    "topics.tsv.gz": lambda p: read_topics(str(p)),
    "corpus.tsv": lambda p: list(read_corpus(p)),
    "corpus.jsonl": lambda p: list(read_corpus(p)),
    "corpus.json": lambda p: list(read_corpus(p)),
    "docs.trec": lambda p: list(read_corpus(p)),
    "qrels.txt": lambda p: read_qrels(str(p)),
    "manifest.json": lambda p: Manifest.load(p.parent),
}

SEEDS = {  # a valid example of each, which the fuzzer mutates
    "run.txt": b"q1 Q0 d1 1 12.5 bm25\nq1 Q0 d2 2 11.0 bm25\nq2 Q0 d1 1 3 bm25\n",
    "topics.tsv": b"q1\tdigital data\nq2\telectron wave\n",
    "queries.jsonl": b'{"_id": "q1", "text": "digital data"}\n{"_id": "q2", "text": "wave"}\n',
    "topics.trec": b"<top>\n<num> Number: 1\n<title> digital data\n</top>\n<top>\n<num> 2\n<title> wave\n</top>\n",
    "topics.tsv.gz": b"q1\tdigital data\n",
    "corpus.tsv": b"d1\tsome text\nd2\ttitle\tmore text\n",
    "corpus.jsonl": b'{"id": "d1", "contents": "text"}\n{"_id": "d2", "title": "t", "text": "x"}\n',
    "corpus.json": b'[{"query": "q", "hits": [{"docid": "d1", "content": "text"}]}]',
    "docs.trec": b"<DOC>\n<DOCNO> d1 </DOCNO>\nsome text\n</DOC>\n<DOC><DOCNO>d2</DOCNO>more</DOC>\n",
    "qrels.txt": b"q1 0 d1 1\nq1 0 d2 0\nq2 0 d1 2\n",
    "manifest.json": json.dumps({"format_version": 2, "kind": "decrank-store", "model": {}, "max_length": 8,
                                 "hidden_size": 4, "codec": "fp16", "num_docs": 0, "num_tokens": 0, "shards": [],
                                 "complete": True}).encode(),
}


# one edit: (kind, position, bytes); kinds: 0 overwrite, 1 insert, 2 delete, 3 repeat a line, 4 drop a line
INSERTS = [b"\t", b"\n", b" ", b"\xff", b"\xef\xbb\xbf", b"nan", b"inf", b"{", b'"', b"<", b"<top>", b"<DOC>", b"\x00"]


def apply_edits(seed: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """``seed`` with ``edits`` applied in turn (positions wrap around the current length)."""
    data = bytearray(seed)
    for kind, position, payload in edits:
        pos = position % (len(data) + 1)
        if kind == 0 and data:
            data[min(pos, len(data) - 1)] = payload[0]
        elif kind == 1:
            data[pos:pos] = payload
        elif kind == 2 and data:
            del data[pos : pos + len(payload) * 2]
        elif kind in (3, 4):
            lines = bytes(data).split(b"\n")
            i = position % len(lines)
            if kind == 3:
                lines.insert(i, lines[i])
            else:
                del lines[i]
            data = bytearray(b"\n".join(lines))
    return bytes(data)


def fuzz_input(name: str, data: bytes, folder: Path, report: FuzzReport) -> None:
    """Feeds ``data`` as the file ``name`` to its reader and counts what came of it."""
    import traceback

    path = folder / name
    path.write_bytes(data)
    report.inputs += 1
    try:
        READERS[name](path)
        report.parsed += 1
    except DecrankError:
        report.errors += 1
    except Exception:  # noqa: BLE001 - counting exactly what must never happen
        report.tracebacks.append(f"{name} {data[:60]!r}: {traceback.format_exc().splitlines()[-1]}")


def fuzz_readers(count: int, workdir: Path, seed: int = 0) -> FuzzReport:
    """``count`` inputs drawn by hypothesis: every reader's valid example under random edits, or random
    bytes, plain or gzip-compressed."""
    import gzip

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    edit = st.tuples(st.integers(0, 4), st.integers(0, 1 << 16),
                     st.one_of(st.sampled_from(INSERTS), st.binary(min_size=1, max_size=4)))
    content = st.one_of(
        st.builds(lambda name, edits: (name, apply_edits(SEEDS[name], edits)), st.sampled_from(list(READERS)),
                  st.lists(edit, min_size=1, max_size=6)),
        st.tuples(st.sampled_from(list(READERS)), st.binary(max_size=200)),
    )
    report = FuzzReport()

    @settings(max_examples=count, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=content, compress=st.booleans())
    def run(case, compress):
        name, data = case
        fuzz_input(name, gzip.compress(data) if compress and name.endswith(".gz") else data, workdir, report)

    run()
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=10, help="seeds per signal (SIGKILL, SIGTERM, SIGINT) and codec")
    ap.add_argument("--disk-full", type=int, default=10)
    ap.add_argument("--concurrent", type=int, default=5)
    ap.add_argument("--flips", type=int, default=500)
    ap.add_argument("--fuzz", type=int, default=2000)
    ap.add_argument("--documents", type=int, default=1500)
    ap.add_argument("--json")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from _tiny import save_tiny  # the test suite's tiny random models

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = str(save_tiny("t5", tmp / "models"))
        corpus = synthetic_corpus(tmp / "corpus.tsv", args.documents)
        kills = kill_and_resume(model, corpus, tmp, seeds=list(range(args.kills)),
                                signals=(signal.SIGKILL, signal.SIGTERM, signal.SIGINT), codecs=("fp16", "SQ8"))
        print(f"signals: {kills.kills} {kills.by_signal} over fp16 and SQ8 stores (mid-encode {kills.killed_mid_encode}), "
              f"resumed stores byte-identical to the uninterrupted one: {kills.identical}, "
              f"different: {len(kills.different)} {kills.different or ''}")
        full = disk_full_and_resume(model, corpus, tmp, seeds=list(range(args.disk_full)))
        print(f"disk full: {full.runs} encodes under a file-size limit, {full.stopped} stopped ({full.one_line} with one "
              f"error line), tracebacks {len(full.tracebacks)}, resumed byte-identical {full.identical}, "
              f"different {len(full.different)}")
        edits = edit_manifests(tmp / "reference", tmp)
        print(f"manifest edits: {edits.detected} detected of {edits.edits} {edits.undetected or ''}")
        concurrent = concurrent_reranks(model, tmp / "reference", corpus, tmp, args.concurrent)
        print(f"concurrent reranks of one output: {concurrent.pairs} pairs, mixed outputs {concurrent.mixed}, second "
              f"writer refused {concurrent.refused}, tracebacks {len(concurrent.tracebacks)}")
        flips = flip_and_truncate(tmp / "reference", tmp, args.flips)
        print(f"store faults: {flips.faults} (by file {flips.by_file}), detected {flips.detected}, harmless "
              f"{flips.harmless}, silent {len(flips.silent)} {flips.silent[:5] or ''}")
        fuzz = fuzz_readers(args.fuzz, tmp)
        print(f"fuzzed inputs: {fuzz.inputs}, parsed {fuzz.parsed}, one-line errors {fuzz.errors}, "
              f"tracebacks {len(fuzz.tracebacks)} {fuzz.tracebacks[:5] or ''}")
        out = {"kills": asdict(kills), "disk_full": asdict(full), "manifest_edits": asdict(edits),
               "concurrent": asdict(concurrent), "flips": asdict(flips), "fuzz": asdict(fuzz)}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    failed = (kills.different or full.different or full.tracebacks or edits.undetected or concurrent.mixed
              or concurrent.tracebacks or flips.silent or fuzz.tracebacks)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
