"""``EncoderStateStore``: query-independent encoder states of a whole corpus, sharded and memory-mapped.

Layout of a store folder::

    manifest.json              format version, model fingerprint, codec, counts, shards (sizes, sha256)
    shards/00000/states.bin    token states of many documents back to back (tokens x hidden, codec dtype)
    shards/00000/offsets.npy   first token of each document (documents + 1 entries)
    shards/00000/docids.*.npy  the shard's docid table (see ``_docids``)

A shard is written to a temporary folder, synced, renamed into place and only then listed in the
manifest (itself replaced atomically), so a crash never leaves a listed shard half-written and an
interrupted ``encode`` resumes from the shards already listed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ..errors import DecrankError
from ._codecs import get_codec
from ._docids import DOCID_FILES, DocidTable, build_docid_arrays, hashes_of, load_docid_table

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
STATES_FILE = "states.bin"
OFFSETS_FILE = "offsets.npy"
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

    def save(self, folder: Path) -> None:
        tmp = folder / (MANIFEST + ".tmp")
        with open(tmp, "w") as f:
            json.dump(asdict(self), f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, folder / MANIFEST)

    @classmethod
    def load(cls, folder: Path) -> "Manifest":
        path = folder / MANIFEST
        if not path.is_file():
            raise DecrankError(f"{folder}: not an encoder-state store (no {MANIFEST}); build one with `decrank encode`")
        try:
            data = json.loads(path.read_text())
            version = data.get("format_version")
            if version != FORMAT_VERSION:
                raise DecrankError(f"{path}: store format version {version}, this pyserini-decrank reads {FORMAT_VERSION}")
            data["shards"] = [ShardInfo(**s) for s in data["shards"]]
            return cls(**data)
        except (json.JSONDecodeError, TypeError, KeyError) as exc:
            raise DecrankError(f"{path}: unreadable manifest ({exc})") from None


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
    """Read side: zero-copy slices of stored states, looked up by docid."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.manifest = Manifest.load(self.path)
        self.codec = get_codec(self.manifest.codec)
        for shard in self.manifest.shards:
            for fname, meta in shard.files.items():
                fpath = self.path / "shards" / shard.name / fname
                if not fpath.is_file():
                    raise DecrankError(f"{fpath}: shard file is missing")
                size = fpath.stat().st_size
                if size != meta["bytes"]:
                    raise DecrankError(f"{fpath}: shard file is truncated or altered ({size} bytes, manifest says {meta['bytes']})")
        self._states: list[np.ndarray | None] = [None] * len(self.manifest.shards)
        self._offsets: list[np.ndarray | None] = [None] * len(self.manifest.shards)
        self._tables: list[DocidTable | None] = [None] * len(self.manifest.shards)

    @classmethod
    def open(cls, path: str | Path) -> "EncoderStateStore":
        return cls(path)

    # ------------------------------------------------------------------ shard access (lazy mmaps)
    def _shard_dir(self, i: int) -> Path:
        return self.path / "shards" / self.manifest.shards[i].name

    def _table(self, i: int) -> DocidTable:
        if self._tables[i] is None:
            self._tables[i] = load_docid_table(self._shard_dir(i))
        return self._tables[i]

    def _shard_arrays(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if self._states[i] is None:
            shard = self.manifest.shards[i]
            self._offsets[i] = np.load(self._shard_dir(i) / OFFSETS_FILE, mmap_mode="r")
            shape = (shard.num_tokens, self.manifest.hidden_size)
            if shard.num_tokens == 0:
                self._states[i] = np.zeros(shape, dtype=self.codec.storage)
            else:
                # copy-on-write mapping: writable for torch.from_numpy, yet never writes the file
                self._states[i] = np.memmap(self._shard_dir(i) / STATES_FILE, dtype=self.codec.storage, mode="c", shape=shape)
        return self._states[i], self._offsets[i]

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

    def get_many(self, docids: Sequence[str]) -> list[torch.Tensor]:
        """Each document's states (``tokens x hidden``), zero-copy views of the mapped shard."""
        shards, rows = self.locate(docids)
        if (shards < 0).any():
            raise MissingDocidsError(self.path, [d for d, s in zip(docids, shards) if s < 0])
        out = []
        for shard, row in zip(shards, rows):
            states, offsets = self._shard_arrays(int(shard))
            out.append(self.codec.from_storage(states[offsets[row] : offsets[row + 1]]))
        return out

    def get(self, docid: str) -> torch.Tensor:
        return self.get_many([docid])[0]

    def docids(self) -> Iterator[str]:
        for i in range(len(self.manifest.shards)):
            yield from self._table(i)

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

    def verify(self) -> None:
        """Checks every shard file's sha256 against the manifest (reads the whole store)."""
        for shard in self.manifest.shards:
            for fname, meta in shard.files.items():
                fpath = self.path / "shards" / shard.name / fname
                if _sha256_file(fpath) != meta["sha256"]:
                    raise DecrankError(f"{fpath}: checksum differs from the manifest (corrupted shard)")

    def __repr__(self) -> str:
        m = self.manifest
        return (f"EncoderStateStore({str(self.path)!r}, docs={m.num_docs}, tokens={m.num_tokens}, "
                f"codec={m.codec}, shards={len(m.shards)}, complete={m.complete})")


class MissingDocidsError(DecrankError):
    def __init__(self, store: Path, missing: list[str]) -> None:
        self.missing = missing
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        super().__init__(f"store {store} has no states for docid(s) {shown}")


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


class StoreWriter:
    """Appends documents' states shard by shard; reopening an existing store resumes it."""

    def __init__(
        self,
        path: str | Path,
        fingerprint: dict,
        hidden_size: int,
        max_length: int,
        codec: str = "fp16",
        shard_size: int = 100_000,
    ) -> None:
        self.path = Path(path)
        self.shard_size = shard_size
        get_codec(codec)
        (self.path / "shards").mkdir(parents=True, exist_ok=True)
        if (self.path / MANIFEST).is_file():
            self.manifest = Manifest.load(self.path)
            problem = _identity_mismatch(self.manifest.model, fingerprint)
            for key, want in (("max length", (self.manifest.max_length, max_length)),
                              ("hidden size", (self.manifest.hidden_size, hidden_size)),
                              ("codec", (self.manifest.codec, codec))):
                if want[0] != want[1]:
                    problem = problem or f"it was built with {key} {want[0]}, not {want[1]}"
            if problem:
                raise DecrankError(f"cannot add to store {self.path}: {problem}; write to another store folder",
                                   cli=f"cannot add to store {self.path}: {problem}; choose another --store")
        else:
            self.manifest = Manifest(model=dict(fingerprint), max_length=max_length, hidden_size=hidden_size, codec=codec)
            self.manifest.save(self.path)
        self.codec = get_codec(self.manifest.codec)
        listed = {s.name for s in self.manifest.shards}
        for leftover in (self.path / "shards").iterdir():  # half-written by a crash: never listed
            if leftover.name not in listed:
                shutil.rmtree(leftover)
        self._pending_ids: list[str] = []
        self._pending_states: list[np.ndarray] = []

    def existing_docids(self) -> set[str]:
        """Docids already stored (for resuming); built once per encode run, never at read time."""
        reader = EncoderStateStore(self.path)
        return set(reader.docids())

    def add(self, docid: str, states: torch.Tensor) -> None:
        if states.ndim != 2 or states.shape[1] != self.manifest.hidden_size:
            raise DecrankError(f"states of {docid!r} have shape {tuple(states.shape)}, store expects (*, {self.manifest.hidden_size})")
        self._pending_ids.append(docid)
        self._pending_states.append(self.codec.to_storage(states))
        if len(self._pending_ids) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self._pending_ids:
            return
        name = f"{len(self.manifest.shards):05d}"
        tmp = self.path / "shards" / (name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        lengths = [s.shape[0] for s in self._pending_states]
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        files = {
            STATES_FILE: _write_file(tmp / STATES_FILE, b"".join(s.tobytes() for s in self._pending_states)),
            OFFSETS_FILE: _write_file(tmp / OFFSETS_FILE, _npy_bytes(offsets)),
        }
        for key, array in build_docid_arrays(self._pending_ids).items():
            files[DOCID_FILES[key]] = _write_file(tmp / DOCID_FILES[key], _npy_bytes(array))
        os.replace(tmp, self.path / "shards" / name)
        shard = ShardInfo(name=name, num_docs=len(lengths), num_tokens=int(offsets[-1]), files=files)
        self.manifest.shards.append(shard)
        self.manifest.num_docs += shard.num_docs
        self.manifest.num_tokens += shard.num_tokens
        self.manifest.save(self.path)
        self._pending_ids, self._pending_states = [], []

    def close(self, complete: bool = True) -> None:
        self.flush()
        self.manifest.complete = complete
        self.manifest.save(self.path)

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # on an error, keep what was flushed and the buffered documents too; the store stays resumable
        self.close(complete=exc_type is None)
