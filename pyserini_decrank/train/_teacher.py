"""Teachers for the ``distil`` objective: scores over each training query's candidate list, computed once.

The bi-encoder teacher is the model's own frozen encoder, mean-pooled and compared by cosine: for a model
built on all-MiniLM-L6-v2 that is the all-MiniLM-L6-v2 bi-encoder itself (its documents truncated at the
model's ``max_length``), so its passage embeddings come from the same encoder states the student reads.
``bm25+biencoder`` mixes it with the BM25 score of the mining run, both min-max normalised over the list.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import DecrankError
from ..model import QueryLikelihoodModel, interpolate, mean_pool, pad_ids
from ..store import EncoderStateStore
from ._data import PairSet
from ._negatives import MinedList

TEACHERS = ("biencoder", "bm25+biencoder")
LISTS_FILE = "teacher-lists.json"


@dataclass
class TeacherList:
    """One training query's candidates (passage indices, its positive first if it has one) and the teacher's
    score of each."""

    passages: list[int]
    scores: list[float]


@torch.inference_mode()
def embed_texts(qlm: QueryLikelihoodModel, texts: Sequence[str], max_length: int, batch_size: int = 32,
                progress: bool = False, desc: str = "embed") -> torch.Tensor:
    """Mean-pooled, unit-length encoder states of ``texts`` (the bi-encoder's embedding)."""
    out = []
    for start in tqdm(range(0, len(texts), batch_size), desc=desc, unit="batch", disable=not progress, dynamic_ncols=True):
        ids = qlm.tokenize_documents(list(texts[start : start + batch_size]), max_length)
        input_ids, mask = pad_ids(ids, qlm.pad_token_id)
        input_ids, mask = input_ids.to(qlm.device), mask.to(qlm.device)
        states = qlm.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
        out.append(mean_pool(states, mask).cpu())
    return torch.cat(out) if out else torch.empty(0)


def embed_stored(store: EncoderStateStore, docids: Sequence[str], batch_size: int = 256, progress: bool = False) -> torch.Tensor:
    """The same embedding read off stored encoder states (no encoder run)."""
    out = []
    for start in tqdm(range(0, len(docids), batch_size), desc="embed passages", unit="batch", disable=not progress,
                      dynamic_ncols=True):
        states = [s.float() for s in store.get_many(list(docids[start : start + batch_size]))]
        lengths = torch.tensor([len(s) for s in states])
        padded = torch.nn.utils.rnn.pad_sequence(states, batch_first=True)
        mask = torch.arange(padded.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
        out.append(mean_pool(padded, mask))
    return torch.cat(out) if out else torch.empty(0)


def _fingerprint(data: PairSet, mined: list[MinedList], teacher: str, teacher_alpha: float, max_length: int) -> str:
    h = hashlib.sha256(json.dumps([teacher, teacher_alpha, max_length, len(data.passages)]).encode())
    for pair, lst in zip(data.pairs, mined):
        h.update(f"{pair.query}\t{pair.passage}\t{lst.positive_score}\t{lst.negatives}\n".encode())
    return h.hexdigest()


def teacher_lists(qlm: QueryLikelihoodModel, data: PairSet, mined: list[MinedList], teacher: str,
                  teacher_alpha: float, max_length: int, cache: Path, store: EncoderStateStore | None = None,
                  progress: bool = True) -> list[TeacherList]:
    """Each pair's list (its positive, then the mined candidates) with the teacher's scores, read from
    ``cache`` when it was written for the same pairs, lists and teacher, else computed and written there."""
    if teacher not in TEACHERS:
        raise DecrankError(f"unknown teacher {teacher!r}; known: {', '.join(TEACHERS)}")
    fingerprint = _fingerprint(data, mined, teacher, teacher_alpha, max_length)
    if cache.is_file():
        saved = json.loads(cache.read_text())
        if saved.get("fingerprint") == fingerprint:
            return [TeacherList(**item) for item in saved["lists"]]

    def candidates(pair, lst: MinedList) -> list[int]:  # the positive first, if the query has one
        return ([pair.passage] if pair.passage is not None else []) + [h for h, _ in lst.negatives]

    needed = sorted({p for pair, lst in zip(data.pairs, mined) for p in candidates(pair, lst)})
    if store is not None:
        passage_emb = embed_stored(store, [data.passage_id(i) for i in needed], progress=progress)
    else:
        passage_emb = embed_texts(qlm, [data.passages[i] for i in needed], max_length, progress=progress, desc="embed passages")
    row_of = {p: r for r, p in enumerate(needed)}
    queries = sorted({pair.query for pair in data.pairs})
    query_emb = embed_texts(qlm, queries, max_length, progress=progress, desc="embed queries")
    query_row = {q: r for r, q in enumerate(queries)}
    lists = []
    for pair, lst in zip(data.pairs, mined):
        passages = candidates(pair, lst)
        cosine = passage_emb[[row_of[p] for p in passages]] @ query_emb[query_row[pair.query]]
        if teacher == "biencoder":
            scores = cosine
        else:  # a positive BM25 did not retrieve gets the list's lowest BM25 score
            bm25 = [s for _, s in lst.negatives]
            own = lst.positive_score if lst.positive_score is not None else min(bm25, default=0.0)
            bm25_scores = np.array([own, *bm25] if pair.passage is not None else bm25, dtype=np.float64)
            scores = interpolate(bm25_scores, cosine.double().numpy(), teacher_alpha)  # as --alpha mixes at query time
        lists.append(TeacherList(passages, [round(float(s), 6) for s in scores]))
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "teacher": teacher, "teacher_alpha": teacher_alpha,
                               "lists": [asdict(item) for item in lists]}))
    tmp.replace(cache)
    return lists
