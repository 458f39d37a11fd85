"""Encode a corpus once into an encoder-state store: the offline half of ED2LM."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator

from tqdm.auto import tqdm

from ..errors import DecrankError
from ..io import Document
from ..model import QueryLikelihoodModel
from ..store import StoreWriter, text_hash


ON_DUPLICATE = ("error", "first")


@dataclass
class EncodeStats:
    encoded: int = 0
    skipped: int = 0  # already in the store (resumed), or repeated in the corpus with on_duplicate="first"
    total_in_store: int = 0


@dataclass
class EncodeBatch:
    """One batch exactly as it is encoded: its documents with their text hashes, and their token ids."""

    documents: list[tuple[Document, int]]
    ids: list[list[int]]


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


def check_encode_options(batch_size: int | None, shard_size: int | None, max_length: int | None, on_duplicate: str) -> None:
    for name, value in (("batch_size", batch_size), ("shard_size", shard_size), ("max_length", max_length)):
        if value is not None and value < 1:
            raise DecrankError(f"{name} must be at least 1, not {value}")
    if on_duplicate not in ON_DUPLICATE:
        raise DecrankError(f"unknown on_duplicate {on_duplicate!r}; known: {', '.join(ON_DUPLICATE)}")


def store_width(model: QueryLikelihoodModel, content: str) -> int:
    """Numbers per stored token: the hidden size, or every decoder layer's keys and values."""
    if content != "cross-kv":
        return model.hidden_size
    layers, heads, head_dim = model.cross_kv_layout()
    return layers * 2 * heads * head_dim


def document_batches(model: QueryLikelihoodModel, corpus: Iterable[Document], store: str | Path, stored: dict[str, int],
                     batch_size: int, max_length: int, on_duplicate: str, stats: EncodeStats,
                     on_chunk: Callable[[int], None] | None = None) -> Iterator[EncodeBatch]:
    """The batches of ``corpus`` in the order they are encoded, a function of the corpus alone: chunks of
    ``32 * batch_size`` documents, each sorted by token length (so batches carry little padding) and cut
    into batches. Stored documents stay in their batches, so that a resumed store equals an uninterrupted one."""
    seen: dict[str, int] = {}  # docid -> its position in the corpus
    for chunk in _chunks(corpus, batch_size * 32):
        firsts = _first_occurrences(chunk, seen, stored, on_duplicate, store)
        stats.skipped += len(chunk) - len(firsts)
        ids = model.tokenize_documents([doc.text for doc, _ in firsts], max_length) if firsts else []
        order = sorted(range(len(firsts)), key=lambda i: len(ids[i]), reverse=True)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            yield EncodeBatch([firsts[i] for i in batch], [ids[i] for i in batch])
        if on_chunk is not None:
            on_chunk(len(chunk))


def encode_corpus(
    model: QueryLikelihoodModel | str,
    corpus: Iterable[Document],
    store: str | Path,
    max_length: int | None = None,
    batch_size: int | None = None,
    shard_size: int | None = None,
    codec: str = "fp16",
    progress: bool = True,
    content: str = "encoder-states",
    on_duplicate: str = "error",
    codec_train_tokens: int | None = None,
) -> EncodeStats:
    """Writes the encoder states of every document not yet in ``store``; rerunning resumes. ``model`` is a
    loaded model or a name (a folder, hub id or packaged name, as ``encode_corpus_on_ray`` takes it).

    With ``content="cross-kv"`` it writes each decoder layer's cross-attention keys and values instead
    (``layers * 2`` times the width): query time then skips those projections, and the store is tied
    to this decoder.

    Batches come from ``document_batches``; a batch holding any document not yet stored is encoded whole.
    A resumed store is therefore byte-identical to an uninterrupted one; ``batch_size`` and ``shard_size``
    (default: 32 and 100,000, or on resume the store's own) must be those the store was started with, and so must
    ``codec_train_tokens`` (the token states a faiss codec trains on, default 20,000). A docid seen twice is an error
    (``on_duplicate="first"`` keeps the first); a stored docid whose text has changed since is an error.
    """
    check_encode_options(batch_size, shard_size, max_length, on_duplicate)
    if isinstance(model, (str, Path)):
        model = QueryLikelihoodModel.from_pretrained(str(model))
    max_length = max_length or model.config.max_length
    model.check_max_length(max_length, "max length")
    stats = EncodeStats()
    with StoreWriter(store, model.fingerprint(content), store_width(model, content), max_length, codec=codec,
                     shard_size=shard_size, batch_size=batch_size, codec_train_tokens=codec_train_tokens) as writer:
        stored, batch_size = writer.stored_text_hashes(), writer.batch_size
        bar = tqdm(desc="encode", unit="doc", disable=not progress, dynamic_ncols=True)
        try:  # the bar is closed before any error line is printed
            for batch in document_batches(model, corpus, store, stored, batch_size, max_length, on_duplicate, stats,
                                          on_chunk=bar.update):
                new = [doc.docid not in stored for doc, _ in batch.documents]
                if not any(new):
                    stats.skipped += len(new)
                    continue
                for (doc, digest), states, ids, is_new in zip(batch.documents, model.store_matrices(batch.ids, content),
                                                              batch.ids, new):
                    if is_new:
                        writer.add(doc.docid, states, digest, model.stored_token_ids(ids))
                        stats.encoded += 1
                    else:
                        stats.skipped += 1
        finally:
            bar.close()
    stats.total_in_store = writer.manifest.num_docs
    return stats
