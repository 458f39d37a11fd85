"""Training pairs: ``query<TAB>passage`` TSV files (``.gz`` too), or a BEIR folder's qrels split."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import DecrankError
from ..io import read_lines


@dataclass
class Pair:
    query: str
    passage: int | None  # index into ``PairSet.passages``; None: a query without a known passage (distil only)


@dataclass
class PairSet:
    pairs: list[Pair]
    passages: list[str]

    @property
    def labelled(self) -> list[Pair]:
        return [pair for pair in self.pairs if pair.passage is not None]

    def passage_id(self, index: int) -> str:
        """Stable id of a passage for an encoder-state store: a hash of its text."""
        return hashlib.sha1(self.passages[index].encode("utf-8")).hexdigest()[:20]


def _tsv_pairs(path: Path) -> list[tuple[str, str]]:
    out = []
    for lineno, line in read_lines(path):
        if not line.strip() or (lineno == 1 and line.lower().startswith("query\t")):
            continue
        query, sep, passage = line.partition("\t")
        if not sep or not query.strip() or not passage.strip():
            raise DecrankError(f"{path}:{lineno}: expected 'query<TAB>passage': {line[:80]!r}")
        out.append((query.strip(), passage.strip()))
    return out


def _beir_pairs(folder: Path, split: str) -> list[tuple[str, str]]:
    qrels = next((p for p in (folder / "qrels" / f"{split}.tsv", folder / f"qrels_{split}.tsv") if p.is_file()), None)
    if qrels is None:
        raise DecrankError(f"{folder}: no qrels/{split}.tsv or qrels_{split}.tsv for the {split} split")
    from ..io import read_corpus, read_qrels, read_topics

    queries = read_topics(str(folder / "queries.jsonl"))
    judged = read_qrels(str(qrels))
    wanted = {d for docs in judged.values() for d, rel in docs.items() if rel > 0}
    corpus = {}
    for doc in read_corpus(folder / "corpus.jsonl"):
        if doc.docid in wanted:
            corpus[doc.docid] = doc.text
    return [(queries[q], corpus[d]) for q, docs in judged.items() for d, rel in docs.items()
            if rel > 0 and q in queries and d in corpus]


def read_pairs(specs: Sequence[str], split: str = "train") -> PairSet:
    raw: list[tuple[str, str]] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            raw += _beir_pairs(path, split)
        elif path.is_file():
            raw += _tsv_pairs(path)
        else:
            raise DecrankError(f"{spec}: training pairs not found")
    if not raw:
        raise DecrankError("no training pairs read")
    index: dict[str, int] = {}
    passages: list[str] = []
    pairs = []
    for query, passage in raw:
        if passage not in index:
            index[passage] = len(passages)
            passages.append(passage)
        pairs.append(Pair(query, index[passage]))
    return PairSet(pairs, passages)


def add_unlabelled_queries(data: PairSet, specs: Sequence[str]) -> PairSet:
    """``data`` with the queries of topic files ``specs`` appended as pairs without a passage: a teacher can
    still rank the candidates mined for them. A query already in ``data`` (same text, case and spacing aside)
    is not added twice."""
    from ..io import read_topics

    seen = {" ".join(pair.query.lower().split()) for pair in data.pairs}
    extra = []
    for spec in specs:
        for query in read_topics(spec).values():
            key = " ".join(query.lower().split())
            if key and key not in seen:
                seen.add(key)
                extra.append(Pair(query.strip(), None))
    return PairSet(data.pairs + extra, data.passages)
