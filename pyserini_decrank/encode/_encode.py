"""Encode a corpus once into an encoder-state store: the offline half of ED2LM."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

from tqdm.auto import tqdm

from ..io import Document
from ..model import QueryLikelihoodModel, pad_states
from ..store import StoreWriter


@dataclass
class EncodeStats:
    encoded: int
    skipped: int  # already in the store (resumed) or repeated in the corpus
    total_in_store: int


def _chunks(docs: Iterable[Document], size: int) -> Iterator[list[Document]]:
    it = iter(docs)
    while chunk := list(islice(it, size)):
        yield chunk


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
) -> EncodeStats:
    """Writes the encoder states of every document not yet in ``store``; rerunning resumes.

    With ``content="cross-kv"`` it writes each decoder layer's cross-attention keys and values instead
    (``layers * 2`` times the width): query time then skips those projections, and the store is tied
    to this decoder. Documents are read in chunks, each sorted by token length so that batches carry
    little padding.
    """
    max_length = max_length or model.config.max_length
    encoded = skipped = 0
    cross_kv = content == "cross-kv"
    fingerprint = model.fingerprint(content)
    width = model.hidden_size
    if cross_kv:
        layers, heads, head_dim = model.cross_kv_layout()
        width = layers * 2 * heads * head_dim
    with StoreWriter(store, fingerprint, width, max_length, codec=codec, shard_size=shard_size) as writer:
        done = writer.existing_docids()
        bar = tqdm(desc="encode", unit="doc", disable=not progress, initial=0, dynamic_ncols=True)
        for chunk in _chunks(corpus, batch_size * 32):
            todo = []
            for doc in chunk:
                if doc.docid in done:
                    skipped += 1
                else:
                    done.add(doc.docid)
                    todo.append(doc)
            if not todo:
                bar.update(len(chunk))
                continue
            ids = model.tokenize_documents([d.text for d in todo], max_length)
            order = sorted(range(len(todo)), key=lambda i: len(ids[i]), reverse=True)
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                states = model.encode_ids([ids[i] for i in batch])
                if cross_kv:
                    padded, mask = pad_states(states)
                    kv = model.cross_keys_values(padded, mask)
                    states = [kv[j, : s.shape[0]] for j, s in enumerate(states)]
                for i, s in zip(batch, states):
                    writer.add(todo[i].docid, s)
                encoded += len(batch)
                bar.update(len(batch))
            bar.update(len(chunk) - len(todo))
        bar.close()
    return EncodeStats(encoded=encoded, skipped=skipped, total_in_store=writer.manifest.num_docs)
