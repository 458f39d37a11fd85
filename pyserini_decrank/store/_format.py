"""The store's on-disk format: the layout below, the manifest, per-document checksums and text hashes, and the
atomic write of one shard (``EncoderStateStore`` reads it, ``StoreWriter`` writes it).

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

import hashlib
import json
import os
import shutil
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DecrankError
from ._docids import DOCID_FILES, build_docid_arrays

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
STATES_FILE = "states.bin"
OFFSETS_FILE = "offsets.npy"
CHECKSUMS_FILE = "checksums.npy"
TEXT_HASHES_FILE = "texthashes.npy"
# optional: a shard written before token ids were stored lacks it, and still serves every scorer that does not copy
TOKENS_FILE = "tokens.npy"
LOCK_FILE = ".lock"



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


def identity_mismatch(stored: dict, fingerprint: dict) -> str | None:
    defaults = {"content": "encoder-states"}
    for key in IDENTITY_KEYS:
        if stored.get(key, defaults.get(key)) != fingerprint.get(key, defaults.get(key)):
            if key == "content":
                return f"it holds {stored.get(key)}, not {fingerprint.get(key)}"
            what = key.removesuffix("_sha256").replace("_", " ")
            return f"its {what} differs from the model's (store built by {stored.get('model')!r})"
    return None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_file(path: Path, data: bytes) -> dict:
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
        STATES_FILE: write_file(tmp / STATES_FILE, b"".join(np.ascontiguousarray(s).tobytes() for s in states)),
        OFFSETS_FILE: write_file(tmp / OFFSETS_FILE, _npy_bytes(offsets)),
        CHECKSUMS_FILE: write_file(tmp / CHECKSUMS_FILE, _npy_bytes(checksums)),
        TEXT_HASHES_FILE: write_file(tmp / TEXT_HASHES_FILE, _npy_bytes(np.array(text_hashes, dtype=np.uint64))),
        TOKENS_FILE: write_file(tmp / TOKENS_FILE, _npy_bytes(all_tokens.astype(np.int32))),
    }
    for key, array in build_docid_arrays(list(ids)).items():
        files[DOCID_FILES[key]] = write_file(tmp / DOCID_FILES[key], _npy_bytes(array))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return ShardInfo(name=final.name, num_docs=len(lengths), num_tokens=int(offsets[-1]), files=files)


# the encode options a store's bytes depend on, as recorded when none is given
