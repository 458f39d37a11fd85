"""Encode a corpus once into an encoder-state store: the offline half of ED2LM."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

from tqdm.auto import tqdm

from ..errors import DecrankError
from ..io import Document
from ..model import QueryLikelihoodModel, pad_states
from ..store import StoreWriter, text_hash


ON_DUPLICATE = ("error", "first")


@dataclass
class EncodeStats:
    encoded: int
    skipped: int  # already in the store (resumed), or repeated in the corpus with on_duplicate="first"
    total_in_store: int


def _chunks(docs: Iterable[Document], size: int) -> Iterator[list[Document]]:
    it = iter(docs)
    while chunk := list(islice(it, size)):
        yield chunk


def _first_occurrences(chunk: list[Document], seen: dict[str, int], stored: dict[str, int], on_duplicate: str,
                       store: str | Path) -> list[tuple[Document, int]]:
    """The chunk's documents whose docid the corpus has not shown before, with their text hashes; a
    repeated docid is an error unless ``on_duplicate="first"``, a changed text for a stored one always."""
    out = []
    for doc in chunk:
        position = len(seen) + 1
        if doc.docid in seen:
            if on_duplicate == "error":
                message = f"docid {doc.docid} appears twice in the corpus (documents {seen[doc.docid]} and {position})"
                raise DecrankError(f"{message}; pass on_duplicate='first' to keep the first",
                                   cli=f"{message}; pass --on-duplicate first to keep the first")
            continue
        seen[doc.docid] = position
        digest = text_hash(doc.text)
        if stored.get(doc.docid, 0) not in (0, digest):
            raise DecrankError(f"docid {doc.docid}: its text differs from the text stored for it in {store} "
                               "(the corpus changed); encode into a new store")
        out.append((doc, digest))
    return out


def _encode(model: QueryLikelihoodModel, batch: list[list[int]], cross_kv: bool) -> list:
    """Each document's encoder states or, for a ``cross-kv`` store, its cross-attention keys/values."""
    states = model.encode_ids(batch)
    if not cross_kv:
        return states
    padded, mask = pad_states(states)
    kv = model.cross_keys_values(padded, mask)
    return [kv[j, : s.shape[0]] for j, s in enumerate(states)]


def encode_corpus(
    model: QueryLikelihoodModel,
    corpus: Iterable[Document],
    store: str | Path,
    max_length: int | None = None,
    batch_size: int = 32,
    shard_size: int = 100_000,
    codec: str = "fp16",
    progress: bool = True,
    content: str = "encoder-states",
    on_duplicate: str = "error",
) -> EncodeStats:
    """Writes the encoder states of every document not yet in ``store``; rerunning resumes.

    With ``content="cross-kv"`` it writes each decoder layer's cross-attention keys and values instead
    (``layers * 2`` times the width): query time then skips those projections, and the store is tied
    to this decoder.

    Batches are a function of the corpus alone: the corpus is read in chunks of ``32 * batch_size``
    documents, each sorted by token length (so batches carry little padding) and cut into batches; a batch
    holding any document not yet stored is encoded whole. A resumed store is therefore byte-identical to an
    uninterrupted one. A docid seen twice is an error (``on_duplicate="first"`` keeps the first); a stored
    docid whose text has changed since is an error.
    """
    for name, value in (("batch_size", batch_size), ("shard_size", shard_size), ("max_length", max_length)):
        if value is not None and value < 1:
            raise DecrankError(f"{name} must be at least 1, not {value}")
    if on_duplicate not in ON_DUPLICATE:
        raise DecrankError(f"unknown on_duplicate {on_duplicate!r}; known: {', '.join(ON_DUPLICATE)}")
    max_length = max_length or model.config.max_length
    encoded = skipped = 0
    cross_kv = content == "cross-kv"
    fingerprint = model.fingerprint(content)
    width = model.hidden_size
    if cross_kv:
        layers, heads, head_dim = model.cross_kv_layout()
        width = layers * 2 * heads * head_dim
    with StoreWriter(store, fingerprint, width, max_length, codec=codec, shard_size=shard_size) as writer:
        stored = writer.stored_text_hashes()
        seen: dict[str, int] = {}  # docid -> its position in the corpus
        bar = tqdm(desc="encode", unit="doc", disable=not progress, dynamic_ncols=True)
        try:  # the bar is closed before any error line is printed
            for chunk in _chunks(corpus, batch_size * 32):
                firsts = _first_occurrences(chunk, seen, stored, on_duplicate, store)
                skipped += len(chunk) - len(firsts)
                ids = model.tokenize_documents([doc.text for doc, _ in firsts], max_length) if firsts else []
                order = sorted(range(len(firsts)), key=lambda i: len(ids[i]), reverse=True)
                for start in range(0, len(order), batch_size):
                    batch = order[start : start + batch_size]
                    if all(firsts[i][0].docid in stored for i in batch):
                        skipped += len(batch)
                        continue
                    for i, states in zip(batch, _encode(model, [ids[i] for i in batch], cross_kv)):
                        doc, digest = firsts[i]
                        if doc.docid in stored:
                            skipped += 1
                        else:
                            writer.add(doc.docid, states, digest)
                            encoded += 1
                bar.update(len(chunk))
        finally:
            bar.close()
    return EncodeStats(encoded=encoded, skipped=skipped, total_in_store=writer.manifest.num_docs)
