"""``EncoderStateStore``: query-independent encoder states of a whole corpus, sharded and memory-mapped.

Layout of a store folder::

    manifest.json                 format version, model fingerprint, codec, counts, shards (sizes, sha256)
    shards/00000/states.bin       token states of many documents back to back (tokens x hidden, codec dtype)
    shards/00000/offsets.npy      first token of each document (documents + 1 entries)
    shards/00000/checksums.npy    CRC-32 of each document: its docid, its offsets and its states' bytes
    shards/00000/texthashes.npy   a 64-bit hash of each document's text, to tell a changed corpus on resume
    shards/00000/tokens.npy       the encoder's input id of every stored token (int32, aligned with the states;
                                  a special token as ``~id``), for scorers that copy from the document
    shards/00000/docids.*.npy     the shard's docid table (see ``_docids``)
    codec.faiss                   a trained faiss codec, when the codec is one (its sha256 in the manifest)

Durability, as storage engines have it: a shard is written to a temporary folder, synced, renamed into
place and only then listed in the manifest (itself replaced atomically), so a crash never leaves a listed
shard half-written and an interrupted ``encode`` resumes from the shards already listed. Every read is
checked: a shard's small files against their sha256 when it is first touched, each document's states
against its CRC when they are read, so a flipped byte is an error before it can change a score. One
writer at a time: ``StoreWriter`` holds an exclusive lock on ``.lock`` (released by the OS if it dies).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import warnings
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ..errors import DecrankError, MissingDocidsError
from ._codecs import CODEC_FILE, CODECS, FaissCodec, get_codec
from ._docids import DOCID_FILES, DocidTable, build_docid_arrays, hashes_of

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
STATES_FILE = "states.bin"
OFFSETS_FILE = "offsets.npy"
CHECKSUMS_FILE = "checksums.npy"
TEXT_HASHES_FILE = "texthashes.npy"
# optional: a shard written before token ids were stored lacks it, and still serves every scorer that does not copy
TOKENS_FILE = "tokens.npy"
LOCK_FILE = ".lock"
# token states a trainable codec is trained on: the first ones the store receives, subsampled to this many
CODEC_TRAIN_TOKENS = 20_000


class UnfinishedStoreWarning(UserWarning):
    """A store whose ``encode`` has not finished: it answers for the documents it holds."""


_warned_unfinished: set[str] = set()


def document_crc(docid: str, start: int, end: int, states: np.ndarray, token_ids: np.ndarray | None = None) -> int:
    """CRC-32 (zlib's, about 3 GB/s) of what a read of one document depends on: its docid, offsets, states
    and, in a shard that stores them, its token ids."""
    crc = zlib.crc32(docid.encode("utf-8"))
    crc = zlib.crc32(np.array([start, end], dtype="<i8").tobytes(), crc)
    crc = zlib.crc32(np.ascontiguousarray(states).view(np.uint8), crc)
    if token_ids is not None:
        crc = zlib.crc32(np.ascontiguousarray(token_ids, dtype="<i4").view(np.uint8), crc)
    return crc


def text_hash(text: str) -> int:
    """64-bit hash of a document's text (never 0, which marks "not recorded")."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little") or 1
# what must agree between a store and the model that reads it
IDENTITY_KEYS = ("content", "encoder_sha256", "tokenizer_sha256", "document_prefix", "decoder_sha256")


@dataclass
class ShardInfo:
    name: str
    num_docs: int
    num_tokens: int
    files: dict[str, dict] = field(default_factory=dict)  # file name -> {"bytes": int, "sha256": str}


@dataclass
class Manifest:
    model: dict
    max_length: int
    hidden_size: int
    codec: str
    num_docs: int = 0
    num_tokens: int = 0
    shards: list[ShardInfo] = field(default_factory=list)
    complete: bool = False
    format_version: int = FORMAT_VERSION
    kind: str = "decrank-store"
    codec_sha256: str | None = None  # of codec.faiss, for a trained codec
    build: dict = field(default_factory=dict)  # the encode options the bytes depend on: batch and shard size
    checksum: str | None = None  # sha256 of every other field: a hand edit is detected (None: an older store)

    def save(self, folder: Path) -> None:
        """Written whole beside the old one, synced, then renamed over it; a failure leaves the old one."""
        data = asdict(self)
        data["checksum"] = self.checksum = _manifest_sha256(data)
        tmp = folder / (MANIFEST + ".tmp")
        try:
            with open(tmp, "w") as f:
                json.dump(data, f, indent=2)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, folder / MANIFEST)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise DecrankError(f"{folder / MANIFEST}: cannot write the store's manifest ({exc.strerror or exc}); "
                               "the previous one is kept") from None

    @classmethod
    def load(cls, folder: Path) -> "Manifest":
        path = folder / MANIFEST
        if not path.is_file():
            raise DecrankError(f"{folder}: not an encoder-state store (no {MANIFEST}); build one with `decrank encode`")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DecrankError(f"{path}: unreadable manifest ({exc})") from None
        if not isinstance(data, dict):
            raise DecrankError(f"{path}: unreadable manifest (not a JSON object)")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise DecrankError(f"{path}: store format version {version!r}; this pyserini-decrank reads version "
                               f"{FORMAT_VERSION} only: build the store again with `decrank encode`")
        try:
            fields_sha256 = _manifest_sha256(data)
            data["shards"] = [ShardInfo(**s) for s in data["shards"]]
            manifest = cls(**data)
        except (TypeError, KeyError) as exc:
            raise DecrankError(f"{path}: unreadable manifest ({exc})") from None
        if not all(isinstance(f, dict) and isinstance(f.get("bytes"), int) and isinstance(f.get("sha256"), str)
                   for shard in manifest.shards for f in shard.files.values()):
            raise DecrankError(f"{path}: unreadable manifest (a shard file without bytes and sha256)")
        if manifest.checksum is not None and manifest.checksum != fields_sha256:
            raise DecrankError(f"{path}: the manifest was altered after it was written (its checksum does not match "
                               "its fields); restore it or encode the store again")
        if manifest.num_docs != sum(sh.num_docs for sh in manifest.shards) or \
                manifest.num_tokens != sum(sh.num_tokens for sh in manifest.shards):
            raise DecrankError(f"{path}: the manifest's totals ({manifest.num_docs} documents, {manifest.num_tokens} "
                               "tokens) differ from its shards' sums: altered; restore it or encode the store again")
        return manifest


def _manifest_sha256(data: dict) -> str:
    fields_only = {k: v for k, v in data.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(fields_only, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _identity_mismatch(stored: dict, fingerprint: dict) -> str | None:
    defaults = {"content": "encoder-states"}
    for key in IDENTITY_KEYS:
        if stored.get(key, defaults.get(key)) != fingerprint.get(key, defaults.get(key)):
            if key == "content":
                return f"it holds {stored.get(key)}, not {fingerprint.get(key)}"
            what = key.removesuffix("_sha256").replace("_", " ")
            return f"its {what} differs from the model's (store built by {stored.get('model')!r})"
    return None


class EncoderStateStore:
    """Read side: slices of the memory-mapped states, looked up by docid, each checked against its CRC
    (``verify_reads=False`` skips that check; the sha256 of a shard's small files is checked either way)."""

    def __init__(self, path: str | Path, verify_reads: bool = True) -> None:
        self.path = Path(path)
        self.verify_reads = verify_reads
        self.manifest = Manifest.load(self.path)
        self.codec = _stored_codec(self.path, self.manifest)
        for shard in self.manifest.shards:
            for fname, meta in shard.files.items():
                fpath = self.path / "shards" / shard.name / fname
                if not fpath.is_file():
                    raise DecrankError(f"{fpath}: shard file is missing")
                size = fpath.stat().st_size
                if size != meta["bytes"]:
                    raise DecrankError(f"{fpath}: shard file is truncated or altered ({size} bytes, manifest says {meta['bytes']})")
            missing = {STATES_FILE, OFFSETS_FILE, CHECKSUMS_FILE, TEXT_HASHES_FILE, *DOCID_FILES.values()} - set(shard.files)
            if missing:
                raise DecrankError(f"{self.path / MANIFEST}: shard {shard.name} lists no {sorted(missing)[0]}")
            expected = shard.num_tokens * self.codec.width(self.manifest.hidden_size) * self.codec.storage.itemsize
            if shard.files[STATES_FILE]["bytes"] != expected:
                raise DecrankError(f"{self.path / MANIFEST}: shard {shard.name} holds {shard.files[STATES_FILE]['bytes']} "
                                   f"bytes of states, not the {expected} that {shard.num_tokens} tokens take in codec "
                                   f"{self.manifest.codec!r}: the manifest was altered")
        if not self.manifest.complete and str(self.path.resolve()) not in _warned_unfinished:
            _warned_unfinished.add(str(self.path.resolve()))
            warnings.warn(f"store {self.path} is unfinished ({self.manifest.num_docs} documents so far): "
                          "run `decrank encode` again to complete it", UnfinishedStoreWarning, stacklevel=2)
        shards = len(self.manifest.shards)
        self._states: list[np.ndarray | None] = [None] * shards
        self._offsets: list[np.ndarray | None] = [None] * shards
        self._checksums: list[np.ndarray | None] = [None] * shards
        self._tokens: list[np.ndarray | None] = [None] * shards
        self._tables: list[DocidTable | None] = [None] * shards

    @classmethod
    def open(cls, path: str | Path, verify_reads: bool = True) -> "EncoderStateStore":
        return cls(path, verify_reads=verify_reads)

    # ------------------------------------------------------------------ shard access (lazy, checked mmaps)
    def _shard_dir(self, i: int) -> Path:
        return self.path / "shards" / self.manifest.shards[i].name

    def _check_small_files(self, i: int) -> None:
        """The sha256 of every shard file but the states (small: ids, offsets, checksums) on first touch."""
        shard = self.manifest.shards[i]
        for fname, meta in shard.files.items():
            if fname != STATES_FILE and _sha256_file(self._shard_dir(i) / fname) != meta["sha256"]:
                raise DecrankError(f"{self._shard_dir(i) / fname}: checksum differs from the manifest (corrupted shard)")

    def _load(self, path: Path) -> np.ndarray:
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DecrankError(f"{path}: unreadable array ({exc})") from None

    def _table(self, i: int) -> DocidTable:
        if self._tables[i] is None:
            self._check_small_files(i)
            self._tables[i] = DocidTable({name: self._load(self._shard_dir(i) / fname) for name, fname in DOCID_FILES.items()})
        return self._tables[i]

    def _shard_arrays(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._states[i] is None:
            self._table(i)  # checks the small files once
            shard = self.manifest.shards[i]
            offsets = self._load(self._shard_dir(i) / OFFSETS_FILE)
            if (offsets.shape != (shard.num_docs + 1,) or offsets[0] != 0 or offsets[-1] != shard.num_tokens
                    or (np.diff(offsets) < 0).any()):
                raise DecrankError(f"{self._shard_dir(i) / OFFSETS_FILE}: offsets do not fit the shard (corrupted)")
            checksums = self._load(self._shard_dir(i) / CHECKSUMS_FILE)
            if checksums.shape != (shard.num_docs,):
                raise DecrankError(f"{self._shard_dir(i) / CHECKSUMS_FILE}: one checksum per document expected")
            if TOKENS_FILE in shard.files:
                tokens = self._load(self._shard_dir(i) / TOKENS_FILE)
                if tokens.shape != (shard.num_tokens,) or tokens.dtype != np.int32:
                    raise DecrankError(f"{self._shard_dir(i) / TOKENS_FILE}: one int32 token id per stored token expected")
                self._tokens[i] = tokens
            shape = (shard.num_tokens, self.codec.width(self.manifest.hidden_size))
            if shard.num_tokens == 0:
                states = np.zeros(shape, dtype=self.codec.storage)
            else:
                # copy-on-write mapping: writable for torch.from_numpy, yet never writes the file
                states = np.memmap(self._shard_dir(i) / STATES_FILE, dtype=self.codec.storage, mode="c", shape=shape)
            self._offsets[i], self._checksums[i], self._states[i] = offsets, checksums, states
        return self._states[i], self._offsets[i], self._checksums[i]

    # ------------------------------------------------------------------ lookups
    def __len__(self) -> int:
        return self.manifest.num_docs

    def __contains__(self, docid: str) -> bool:
        return self.locate([docid])[0][0] >= 0

    def locate(self, docids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(shard, row) of each docid; shard -1 where the store does not hold it."""
        shards = np.full(len(docids), -1, dtype=np.int64)
        rows = np.full(len(docids), -1, dtype=np.int64)
        hashes = hashes_of(docids)
        pending = np.arange(len(docids))
        for i in range(len(self.manifest.shards)):
            if len(pending) == 0:
                break
            found = self._table(i).rows_of([docids[j] for j in pending], hashes[pending])
            hit = found >= 0
            shards[pending[hit]] = i
            rows[pending[hit]] = found[hit]
            pending = pending[~hit]
        return shards, rows

    def missing(self, docids: Sequence[str]) -> list[str]:
        shards, _ = self.locate(docids)
        return [d for d, s in zip(docids, shards) if s < 0]

    @property
    def has_token_ids(self) -> bool:
        """Whether every shard stores its documents' token ids (what copy scorers read)."""
        return all(TOKENS_FILE in shard.files for shard in self.manifest.shards)

    def check_token_ids(self) -> None:
        """Refuses a store whose shards (written before token ids were stored) lack them."""
        if not self.has_token_ids:
            raise DecrankError(f"store {self.path} holds no document token ids (it was written before stores kept "
                               "them), which copying reads: encode the corpus again into a new store folder")

    def get_many(self, docids: Sequence[str]) -> list[torch.Tensor]:
        """Each document's states (``tokens x hidden``), zero-copy views of the mapped shard, each checked
        against its CRC first (with ``verify_reads``)."""
        return self.get_many_with_tokens(docids, with_tokens=False)[0]

    def get_many_with_tokens(self, docids: Sequence[str], with_tokens: bool = True
                             ) -> tuple[list[torch.Tensor], list[np.ndarray] | None]:
        """``get_many``'s states and each document's stored token ids (int32, a special token as ``~id``), both
        covered by the one CRC check; ``None`` for the ids unless ``with_tokens``."""
        shards, rows = self.locate(docids)
        if (shards < 0).any():
            raise MissingDocidsError(f"store {self.path}", [d for d, s in zip(docids, shards) if s < 0])
        if with_tokens:
            self.check_token_ids()
        stored, token_ids = [], []
        for docid, shard, row in zip(docids, shards, rows):
            states, offsets, checksums = self._shard_arrays(int(shard))
            start, end = int(offsets[row]), int(offsets[row + 1])
            document = states[start:end]
            tokens = self._tokens[int(shard)]
            tokens = None if tokens is None else tokens[start:end]
            if self.verify_reads and document_crc(docid, start, end, document, tokens) != int(checksums[row]):
                raise DecrankError(f"{self._shard_dir(int(shard)) / STATES_FILE}: document {docid} fails its checksum "
                                   "(corrupted store; `decrank store verify` checks every file)")
            stored.append(document)
            token_ids.append(tokens)
        return self.codec.decode_many(stored), (token_ids if with_tokens else None)

    def get(self, docid: str) -> torch.Tensor:
        return self.get_many([docid])[0]

    def docids(self) -> Iterator[str]:
        for i in range(len(self.manifest.shards)):
            yield from self._table(i)

    def text_hashes(self) -> dict[str, int]:
        """docid -> hash of the text it was encoded from (for ``encode`` to tell a changed corpus)."""
        out = {}
        for i in range(len(self.manifest.shards)):
            hashes = self._load(self._shard_dir(i) / TEXT_HASHES_FILE)
            for row, docid in enumerate(self._table(i)):
                out[docid] = int(hashes[row])
        return out

    def text_hashes_of(self, docids: Sequence[str]) -> np.ndarray:
        """The hash of the text each docid was encoded from (``text_hash``); 0 where the store does not hold
        the docid or did not record its text, so that a caller can tell whether stored states fit a text."""
        shards, rows = self.locate(docids)
        out = np.zeros(len(docids), dtype=np.uint64)
        for shard in np.unique(shards[shards >= 0]):
            hashes = self._load(self._shard_dir(int(shard)) / TEXT_HASHES_FILE)
            here = shards == shard
            out[here] = hashes[rows[here]]
        return out

    # ------------------------------------------------------------------ checks
    def check_model(self, fingerprint: dict, max_length: int | None = None) -> None:
        """Refuses a model whose encoder, tokenizer or document template did not build this store."""
        problem = _identity_mismatch(self.manifest.model, fingerprint)
        if problem:
            raise DecrankError(f"store {self.path} does not fit model {fingerprint.get('model')!r}: {problem}")
        if max_length is not None and max_length != self.manifest.max_length:
            raise DecrankError(
                f"store {self.path} was built with max length {self.manifest.max_length}, not {max_length}"
            )

    def problems(self) -> list[str]:
        """Every shard file whose sha256 differs from the manifest (reads the whole store)."""
        found = []
        if self.manifest.codec_sha256 and _sha256_file(self.path / CODEC_FILE) != self.manifest.codec_sha256:
            found.append(f"{self.path / CODEC_FILE}: checksum differs from the manifest (corrupted codec)")
        for shard in self.manifest.shards:
            for fname, meta in shard.files.items():
                fpath = self.path / "shards" / shard.name / fname
                if _sha256_file(fpath) != meta["sha256"]:
                    found.append(f"{fpath}: checksum differs from the manifest (corrupted shard)")
        return found

    def verify(self) -> None:
        """Checks every shard file's sha256 against the manifest; the first mismatch is an error."""
        found = self.problems()
        if found:
            raise DecrankError(found[0] + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""))

    def info(self) -> dict:
        """What ``decrank store info`` prints: model, codec, counts, bytes per token, size on disk."""
        m = self.manifest
        on_disk = sum(meta["bytes"] for shard in m.shards for meta in shard.files.values())
        if (self.path / CODEC_FILE).is_file():
            on_disk += (self.path / CODEC_FILE).stat().st_size
        states = sum(shard.files[STATES_FILE]["bytes"] for shard in m.shards)
        return {"path": str(self.path), "model": m.model.get("model"), "content": m.model.get("content", "encoder-states"),
                "codec": m.codec, "hidden_size": m.hidden_size, "max_length": m.max_length, "documents": m.num_docs,
                "tokens": m.num_tokens, "shards": len(m.shards), "complete": m.complete,
                "token_ids": "stored" if self.has_token_ids else
                             f"missing in {sum(TOKENS_FILE not in s.files for s in m.shards)} shard(s)",
                "bytes_per_token": states / m.num_tokens if m.num_tokens else 0.0, "bytes_on_disk": on_disk,
                "manifest_checksum": "checked" if m.checksum else "none (a store written before manifests had one)"}

    def __repr__(self) -> str:
        m = self.manifest
        return (f"EncoderStateStore({str(self.path)!r}, docs={m.num_docs}, tokens={m.num_tokens}, "
                f"codec={m.codec}, shards={len(m.shards)}, complete={m.complete})")


def store_codec(folder: str | Path):
    """The codec a store's shards are written in (a trained one read back and checked), for a worker
    writing shards that another process lists."""
    folder = Path(folder)
    return _stored_codec(folder, Manifest.load(folder))


def _stored_codec(folder: Path, manifest: Manifest):
    """The manifest's codec; a trained one is read from the store, checked against its sha256."""
    if manifest.codec in CODECS:
        return CODECS[manifest.codec]
    if not manifest.codec_sha256:
        if manifest.shards:
            raise DecrankError(f"{folder / MANIFEST}: codec {manifest.codec!r} without its trained codec's sha256")
        return get_codec(manifest.codec, manifest.hidden_size)  # not trained yet: nothing was stored
    return FaissCodec.from_file(manifest.codec, manifest.hidden_size, folder / CODEC_FILE, manifest.codec_sha256)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_file(path: Path, data: bytes) -> dict:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _acquire_lock(folder: Path) -> int:
    """An exclusive lock on ``folder/.lock`` holding this process's pid. The OS drops it when the holder
    dies, so a lock left by a killed writer (a stale lock) is simply taken over."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DecrankError(f"store {folder}: cannot take its lock {folder / LOCK_FILE} ({exc.strerror or exc}); "
                           "a store is written in a folder this user can write") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode("utf-8", errors="replace").strip() or "unknown"
        os.close(fd)
        raise DecrankError(f"store {folder} is being written by another process (pid {holder}, lock "
                           f"{folder / LOCK_FILE}): wait for it to finish, or stop it") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def shard_name(index: int) -> str:
    return f"{index:05d}"


def write_shard(store: str | Path, name: str, ids: Sequence[str], states: Sequence[np.ndarray],
                text_hashes: Sequence[int], token_ids: Sequence[np.ndarray]) -> ShardInfo:
    """Writes one shard of codec-encoded ``states`` and their ``token_ids`` (int32, a special token as ``~id``, one per
    state row) into ``store/shards/name`` (a temporary folder, synced, then renamed into place) and returns
    what the manifest lists of it. It takes no lock: the one writer that lists it holds that. A folder of
    that name not listed yet (left by an earlier try) is replaced."""
    shards = Path(store) / "shards"
    tmp, final = shards / f"{name}.{os.getpid()}.tmp", shards / name  # a worker's own, should two write one shard
    try:
        return _write_shard_files(tmp, final, ids, states, text_hashes, token_ids)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DecrankError(f"store {store}: cannot write shard {name} ({exc.strerror or exc}); the shards listed "
                           "before it are kept: free space and run encode again to resume") from None


def _write_shard_files(tmp: Path, final: Path, ids: Sequence[str], states: Sequence[np.ndarray],
                       text_hashes: Sequence[int], token_ids: Sequence[np.ndarray]) -> ShardInfo:
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    lengths = [s.shape[0] for s in states]
    for docid, length, tokens in zip(ids, lengths, token_ids):
        if len(tokens) != length:
            raise DecrankError(f"docid {docid}: {len(tokens)} token ids for {length} stored token states")
    token_ids = [np.asarray(t, dtype=np.int32) for t in token_ids]
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    checksums = np.array([document_crc(d, int(offsets[i]), int(offsets[i + 1]), s, t)
                          for i, (d, s, t) in enumerate(zip(ids, states, token_ids))], dtype=np.uint32)
    all_tokens = np.concatenate(token_ids) if token_ids else np.zeros(0, dtype=np.int32)
    files = {
        STATES_FILE: _write_file(tmp / STATES_FILE, b"".join(np.ascontiguousarray(s).tobytes() for s in states)),
        OFFSETS_FILE: _write_file(tmp / OFFSETS_FILE, _npy_bytes(offsets)),
        CHECKSUMS_FILE: _write_file(tmp / CHECKSUMS_FILE, _npy_bytes(checksums)),
        TEXT_HASHES_FILE: _write_file(tmp / TEXT_HASHES_FILE, _npy_bytes(np.array(text_hashes, dtype=np.uint64))),
        TOKENS_FILE: _write_file(tmp / TOKENS_FILE, _npy_bytes(all_tokens.astype(np.int32))),
    }
    for key, array in build_docid_arrays(list(ids)).items():
        files[DOCID_FILES[key]] = _write_file(tmp / DOCID_FILES[key], _npy_bytes(array))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return ShardInfo(name=final.name, num_docs=len(lengths), num_tokens=int(offsets[-1]), files=files)


# the encode options a store's bytes depend on, as recorded when none is given
BUILD_DEFAULTS = {"shard_size": 100_000, "batch_size": 32}

_SHARD_NAME = re.compile(r"^\d{5}(\.\d+)?(\.tmp)?$")
# what a writer leaves in a folder before its first manifest: such a folder counts as empty
_LEFTOVERS = {LOCK_FILE, MANIFEST + ".tmp", CODEC_FILE + ".tmp"}


def _only_leftovers(folder: Path) -> bool:
    """Whether ``folder`` holds nothing but what a writer stopped before it listed a shard leaves: its lock,
    a manifest's or codec's temporary copy, a ``shards`` folder with unlisted shard folders at most."""
    for entry in os.listdir(folder):
        if entry == "shards" and (folder / entry).is_dir():
            if any(not _SHARD_NAME.match(s) for s in os.listdir(folder / entry)):
                return False
        elif entry not in _LEFTOVERS:
            return False
    return True


class StoreWriter:
    """Appends documents' states shard by shard; reopening an existing store resumes it.

    It holds the store's lock while open; refuses a folder that is neither empty nor a store; and when it
    fails before its first shard in a folder it created, it leaves nothing behind.
    """

    def __init__(
        self,
        path: str | Path,
        fingerprint: dict,
        hidden_size: int,
        max_length: int,
        codec: str = "fp16",
        shard_size: int | None = None,
        codec_train_tokens: int = CODEC_TRAIN_TOKENS,
        batch_size: int | None = None,
    ) -> None:
        self.path = Path(path)
        # the options the bytes depend on: None takes the store's own on resume, else the default
        self._asked = {"shard_size": shard_size, "batch_size": batch_size}
        self.codec_train_tokens = codec_train_tokens
        for name, value in self._asked.items():
            if value is not None and value < 1:
                raise DecrankError(f"{name} must be at least 1, not {value}")
        get_codec(codec, hidden_size)  # an unknown or misfit codec is refused before anything is written
        if self.path.exists() and not self.path.is_dir():
            raise DecrankError(f"{self.path}: not a folder, so it cannot hold a store")
        self._created = not self.path.exists() or _only_leftovers(self.path)
        if not self._created and not (self.path / MANIFEST).is_file():
            raise DecrankError(f"{self.path}: neither an encoder-state store (no {MANIFEST}) nor empty; "
                               "give a new or empty folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DecrankError(f"{self.path}: cannot create the store folder ({exc.strerror or exc})") from None
        self._lock: int | None = _acquire_lock(self.path)
        try:
            self._open(fingerprint, hidden_size, max_length, codec)
        except BaseException:
            self._release()
            raise

    def _open(self, fingerprint: dict, hidden_size: int, max_length: int, codec: str) -> None:
        if (self.path / MANIFEST).is_file():
            self.manifest = Manifest.load(self.path)
            problem = _identity_mismatch(self.manifest.model, fingerprint)
            for key, want in (("max length", (self.manifest.max_length, max_length)),
                              ("hidden size", (self.manifest.hidden_size, hidden_size)),
                              ("codec", (self.manifest.codec, codec))):
                if want[0] != want[1]:
                    problem = problem or f"it was built with {key} {want[0]}, not {want[1]}"
            for key, value in self._asked.items():  # a store started before these were recorded is not checked
                if value is not None and self.manifest.build.get(key, value) != value:
                    problem = problem or (f"it was started with {key.replace('_', ' ')} {self.manifest.build[key]}, "
                                          f"not {value} (its bytes depend on it): resume with the same, or leave it out")
            self.build = {k: v if v is not None else self.manifest.build.get(k, BUILD_DEFAULTS[k])
                          for k, v in self._asked.items()}
            if problem:
                raise DecrankError(f"cannot add to store {self.path}: {problem}; write to another store folder",
                                   cli=f"cannot add to store {self.path}: {problem}; choose another --store")
        else:
            self.build = {k: v if v is not None else BUILD_DEFAULTS[k] for k, v in self._asked.items()}
            self.manifest = Manifest(model=dict(fingerprint), max_length=max_length, hidden_size=hidden_size, codec=codec,
                                     build=dict(self.build))
            self.manifest.save(self.path)
        self.shard_size, self.batch_size = self.build["shard_size"], self.build["batch_size"]
        self.codec = _stored_codec(self.path, self.manifest)
        try:
            (self.path / "shards").mkdir(exist_ok=True)
        except OSError as exc:
            raise DecrankError(f"store {self.path}: cannot create its shards folder ({exc.strerror or exc})") from None
        self.remove_unlisted_shards()
        self._pending_ids: list[str] = []
        self._pending_states: list[np.ndarray] = []
        self._pending_text_hashes: list[int] = []
        self._pending_tokens: list[np.ndarray] = []

    def remove_unlisted_shards(self) -> None:
        """Removes shard folders the manifest does not list: half-written by a crash, or by a worker that died."""
        listed = {s.name for s in self.manifest.shards}
        for leftover in (self.path / "shards").iterdir():
            if leftover.name not in listed and _SHARD_NAME.match(leftover.name) and leftover.is_dir():
                shutil.rmtree(leftover)

    def _release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def existing_docids(self) -> set[str]:
        """Docids already stored (for resuming); built once per encode run, never at read time."""
        return set(self.stored_text_hashes())

    def stored_text_hashes(self) -> dict[str, int]:
        """docid -> hash of its text, of every document already stored."""
        if not self.manifest.shards:
            return {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnfinishedStoreWarning)
            return EncoderStateStore(self.path).text_hashes()

    def add(self, docid: str, states: torch.Tensor, text_hash: int = 0, token_ids: np.ndarray | None = None) -> None:
        """Buffers one document (``text_hash``: ``text_hash(text)``, 0 if unknown; ``token_ids``: the encoder's
        input ids, int32, a special token as ``~id``, one per state row); full shards are written."""
        if not docid or any(c.isspace() for c in docid):
            raise DecrankError(f"docid {docid!r} is empty or holds whitespace, which no TREC run line can carry")
        if states.ndim != 2 or states.shape[1] != self.manifest.hidden_size:
            raise DecrankError(f"states of {docid!r} have shape {tuple(states.shape)}, store expects (*, {self.manifest.hidden_size})")
        if token_ids is None:
            raise DecrankError(f"docid {docid!r}: no token ids; a store keeps each document's token ids")
        if len(token_ids) != states.shape[0]:
            raise DecrankError(f"docid {docid!r}: {len(token_ids)} token ids for {states.shape[0]} token states")
        self._pending_ids.append(docid)
        self._pending_tokens.append(np.asarray(token_ids, dtype=np.int32))
        # an untrained codec keeps the states as they are until it is trained on the first ones
        self._pending_states.append(self.codec.to_storage(states) if self.codec.is_trained
                                    else states.detach().float().numpy())
        self._pending_text_hashes.append(text_hash)
        if len(self._pending_ids) >= self.shard_size:
            self.flush(whole_shards_only=True)

    def train_codec(self, states: Sequence[np.ndarray]) -> None:
        """Trains the codec on ``states`` (the first documents' token states; a fixed-seed subsample of
        ``codec_train_tokens`` of them beyond that) and saves it atomically in the store."""
        sample = np.concatenate([np.asarray(s, dtype=np.float32) for s in states])
        if len(sample) > self.codec_train_tokens:
            chosen = np.random.default_rng(0).choice(len(sample), self.codec_train_tokens, replace=False)
            sample = sample[np.sort(chosen)]
        self.codec.train(sample)
        data = self.codec.to_bytes()
        tmp = self.path / (CODEC_FILE + ".tmp")
        try:
            meta = _write_file(tmp, data)
            os.replace(tmp, self.path / CODEC_FILE)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise DecrankError(f"store {self.path}: cannot write its trained codec ({exc.strerror or exc}); "
                               "free space and run encode again") from None
        self.manifest.codec_sha256 = meta["sha256"]
        self.manifest.save(self.path)

    def codec_training_documents(self, token_counts: Sequence[int]) -> int | None:
        """How many of the next documents (with these token counts) the codec is trained on when they are
        added one by one: the first flush with a whole shard pending and enough tokens; None if not yet."""
        tokens = 0
        for n, count in enumerate(token_counts, 1):
            tokens += count
            if n >= self.shard_size and tokens >= self.codec_train_tokens:
                return n
        return None

    def _train_codec(self) -> None:
        """Trains the codec on what waits, then encodes it."""
        self.train_codec(self._pending_states)
        self._pending_states = [self.codec.to_storage(torch.from_numpy(s)) for s in self._pending_states]

    def flush(self, whole_shards_only: bool = False) -> None:
        """Writes what is pending as shards of ``shard_size`` documents (and, unless ``whole_shards_only``,
        the rest as a last, smaller one). An untrained codec first waits for enough token states."""
        if not self._pending_ids or (whole_shards_only and len(self._pending_ids) < self.shard_size):
            return
        if not self.codec.is_trained:
            if whole_shards_only and sum(len(s) for s in self._pending_states) < self.codec_train_tokens:
                return
            self._train_codec()
        while len(self._pending_ids) >= self.shard_size or (self._pending_ids and not whole_shards_only):
            n = self.shard_size
            ids, states, hashes = self._pending_ids[:n], self._pending_states[:n], self._pending_text_hashes[:n]
            tokens = self._pending_tokens[:n]
            self._pending_ids, self._pending_states = self._pending_ids[n:], self._pending_states[n:]
            self._pending_text_hashes, self._pending_tokens = self._pending_text_hashes[n:], self._pending_tokens[n:]
            self._write_shard(ids, states, hashes, tokens)

    def _write_shard(self, ids: list[str], states: list[np.ndarray], text_hashes: list[int],
                     token_ids: list[np.ndarray]) -> None:
        name = shard_name(len(self.manifest.shards))
        self.list_shard(write_shard(self.path, name, ids, states, text_hashes, token_ids))

    def list_shard(self, shard: ShardInfo) -> None:
        """Lists a shard written in place (by this writer, or by a worker holding no lock) next in the manifest."""
        if shard.name != shard_name(len(self.manifest.shards)):
            raise DecrankError(f"store {self.path}: shard {shard.name} listed out of order "
                               f"(next is {shard_name(len(self.manifest.shards))})")
        self.manifest.shards.append(shard)
        self.manifest.num_docs += shard.num_docs
        self.manifest.num_tokens += shard.num_tokens
        self.manifest.save(self.path)

    def close(self, complete: bool = True) -> None:
        """Finishes the store (the last, smaller shard too) when ``complete``. Otherwise (an error, a signal)
        it writes no more shards: whole shards were written as they filled, and what is still buffered (or
        half-converted, should the signal land inside ``flush``) is dropped and encoded again on resume, so
        that the resumed store equals an uninterrupted one."""
        if self._lock is None:
            return
        try:
            if complete:
                self.flush()
            self.manifest.complete = complete
            self.manifest.save(self.path)
        finally:
            self._release()

    def _discard(self) -> None:
        """Removes what this writer made in a folder it created, when it failed before storing anything."""
        self._pending_ids, self._pending_states, self._pending_text_hashes, self._pending_tokens = [], [], [], []
        self._release()
        for name in (MANIFEST, MANIFEST + ".tmp", CODEC_FILE, CODEC_FILE + ".tmp", LOCK_FILE):
            (self.path / name).unlink(missing_ok=True)
        shards = self.path / "shards"
        if shards.is_dir():
            for leftover in shards.iterdir():  # shards half-written, or written but never listed
                if _SHARD_NAME.match(leftover.name) and leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
            if not any(shards.iterdir()):
                shards.rmdir()
        if not any(self.path.iterdir()):
            self.path.rmdir()

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self._created and not self.manifest.shards:
            self._discard()
            return
        # on an error, keep the shards written; the store stays resumable (see ``close``)
        self.close(complete=exc_type is None)
