"""``StoreWriter``: the one process that writes a store (an exclusive lock), shard by shard, resumable."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import DecrankError
from ._codecs import CODEC_FILE, CODEC_TRAIN_TOKENS, codec_training_sample, get_codec
from ._format import (LOCK_FILE, MANIFEST, Manifest, ShardInfo, identity_mismatch, shard_name, write_file,
                      write_shard)
from ._reader import EncoderStateStore, UnfinishedStoreWarning, stored_codec


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


BUILD_DEFAULTS = {"shard_size": 100_000, "batch_size": 32, "codec_train_tokens": CODEC_TRAIN_TOKENS}

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
        codec_train_tokens: int | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.path = Path(path)
        # the options the bytes depend on: None takes the store's own on resume, else the default
        self._asked = {"shard_size": shard_size, "batch_size": batch_size, "codec_train_tokens": codec_train_tokens}
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
            problem = identity_mismatch(self.manifest.model, fingerprint)
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
        self.codec_train_tokens = self.build["codec_train_tokens"]
        self.codec = stored_codec(self.path, self.manifest)
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
        self.codec.train(codec_training_sample(states, self.codec_train_tokens))
        data = self.codec.to_bytes()
        tmp = self.path / (CODEC_FILE + ".tmp")
        try:
            meta = write_file(tmp, data)
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
