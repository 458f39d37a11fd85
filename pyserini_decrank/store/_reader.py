"""``EncoderStateStore``: a store opened for reading, every read checked (the format: ``_format``)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ..errors import DecrankError, MissingDocidsError
from ._codecs import CODEC_FILE, CODECS, FaissCodec, get_codec
from ._docids import DOCID_FILES, DocidTable, hashes_of
from ._format import (CHECKSUMS_FILE, MANIFEST, OFFSETS_FILE, STATES_FILE, TEXT_HASHES_FILE, TOKENS_FILE, Manifest,
                      document_crc, identity_mismatch, sha256_file)



class UnfinishedStoreWarning(UserWarning):
    """A store whose ``encode`` has not finished: it answers for the documents it holds."""


_warned_unfinished: set[str] = set()


class EncoderStateStore:
    """Read side: slices of the memory-mapped states, looked up by docid, each checked against its CRC
    (``verify_reads=False`` skips that check; the sha256 of a shard's small files is checked either way)."""

    def __init__(self, path: str | Path, verify_reads: bool = True) -> None:
        self.path = Path(path)
        self.verify_reads = verify_reads
        self.manifest = Manifest.load(self.path)
        self.codec = stored_codec(self.path, self.manifest)
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
            if fname != STATES_FILE and sha256_file(self._shard_dir(i) / fname) != meta["sha256"]:
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

    def get_many_with_tokens(self, docids: Sequence[str], with_tokens: bool = True, decode: bool = True
                             ) -> tuple[list[torch.Tensor], list[np.ndarray] | None]:
        """``get_many``'s states and each document's stored token ids (int32, a special token as ``~id``), both
        covered by the one CRC check; ``None`` for the ids unless ``with_tokens``. ``decode=False`` hands back
        a faiss codec's codes as they are stored (uint8, tokens x code size) for a caller that decodes them
        elsewhere (``FaissCodec.device_decoder``)."""
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
        states = self.codec.decode_many(stored) if decode else [torch.from_numpy(np.asarray(a)) for a in stored]
        return states, (token_ids if with_tokens else None)

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
        problem = identity_mismatch(self.manifest.model, fingerprint)
        if problem:
            raise DecrankError(f"store {self.path} does not fit model {fingerprint.get('model')!r}: {problem}")
        if max_length is not None and max_length != self.manifest.max_length:
            raise DecrankError(
                f"store {self.path} was built with max length {self.manifest.max_length}, not {max_length}"
            )

    def problems(self) -> list[str]:
        """Every shard file whose sha256 differs from the manifest (reads the whole store)."""
        found = []
        if self.manifest.codec_sha256 and sha256_file(self.path / CODEC_FILE) != self.manifest.codec_sha256:
            found.append(f"{self.path / CODEC_FILE}: checksum differs from the manifest (corrupted codec)")
        for shard in self.manifest.shards:
            for fname, meta in shard.files.items():
                fpath = self.path / "shards" / shard.name / fname
                if sha256_file(fpath) != meta["sha256"]:
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
    return stored_codec(folder, Manifest.load(folder))


def stored_codec(folder: Path, manifest: Manifest):
    """The manifest's codec; a trained one is read from the store, checked against its sha256."""
    if manifest.codec in CODECS:
        return CODECS[manifest.codec]
    if not manifest.codec_sha256:
        if manifest.shards:
            raise DecrankError(f"{folder / MANIFEST}: codec {manifest.codec!r} without its trained codec's sha256")
        return get_codec(manifest.codec, manifest.hidden_size)  # not trained yet: nothing was stored
    return FaissCodec.from_file(manifest.codec, manifest.hidden_size, folder / CODEC_FILE, manifest.codec_sha256)
