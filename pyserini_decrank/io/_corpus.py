"""Corpus readers for ``decrank encode``: BEIR folders, Pyserini JsonCollections, TSV, TREC SGML,
Lucene indexes built with ``--storeRaw``, and retrieve-results JSON (``{query, hits:[{docid, content}]}``)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import DecrankError
from ._text import head_text, iter_tab_lines, read_lines, read_text


@dataclass
class Document:
    docid: str
    text: str


def join_title(title: str | None, text: str | None) -> str:
    """Title and text as Pyserini's BEIR "flat" indexes join them: one space between."""
    return " ".join(part.strip() for part in (title, text) if part and part.strip())


def _field(obj: dict, key: str, path: Path, lineno: int, kind: str) -> str | None:
    """A string field (or None when absent; an id may be an integer): an id or text of another type (a
    float, a list, null, true) is refused rather than stored as its Python spelling ("1.0", "None", "True")."""
    value = obj.get(key)
    if value is None and (kind == "text" or key not in obj):
        return None
    if kind == "id" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # an integer id reads one way only
    if not isinstance(value, str):
        raise DecrankError(f"{path}:{lineno}: {key!r} must be a string {'' if kind == 'id' else 'of text '}"
                           f"(quoted in JSON), not {json.dumps(value)[:40]}")
    return value


def _from_json_object(obj: dict, path: Path, lineno: int) -> Document:
    if not isinstance(obj, dict):
        raise DecrankError(f"{path}:{lineno}: expected a JSON object")
    if "_id" in obj:  # BEIR
        return Document(_field(obj, "_id", path, lineno, "id"),
                        join_title(_field(obj, "title", path, lineno, "text"), _field(obj, "text", path, lineno, "text")))
    if "id" in obj and "contents" in obj:  # Pyserini JsonCollection
        return Document(_field(obj, "id", path, lineno, "id"),
                        join_title(_field(obj, "title", path, lineno, "text"), _field(obj, "contents", path, lineno, "text")))
    if "docid" in obj and ("content" in obj or "contents" in obj):
        text = _field(obj, "content" if "content" in obj else "contents", path, lineno, "text")
        return Document(_field(obj, "docid", path, lineno, "id"), text or "")
    raise DecrankError(f"{path}:{lineno}: expected '_id'/'title'/'text' (BEIR) or 'id'/'contents' (Pyserini)")


def _read_jsonl(path: Path) -> Iterator[Document]:
    for lineno, line in read_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            raise DecrankError(f"{path}:{lineno}: not a JSON line") from None
        yield _from_json_object(obj, path, lineno)


def _read_tsv(path: Path) -> Iterator[Document]:
    for _, docid, text in iter_tab_lines(path, "corpus", "id<TAB>text"):
        if "\t" in text:  # id, title, text
            title, _, body = text.partition("\t")
            text = join_title(title, body)
        yield Document(docid, text.strip())


_DOC = re.compile(r"<DOC>(.*?)</DOC>", re.S | re.I)
_DOCNO = re.compile(r"<DOCNO>\s*(.*?)\s*</DOCNO>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")


def _read_trec(path: Path) -> Iterator[Document]:
    text = read_text(path)
    for match in _DOC.finditer(text):
        body = match.group(1)
        docno = _DOCNO.search(body)
        if not docno:
            lineno = text.count("\n", 0, match.start()) + 1
            raise DecrankError(f"{path}:{lineno}: TREC document without <DOCNO>")
        rest = body[: docno.start()] + body[docno.end():]
        yield Document(docno.group(1), " ".join(_TAG.sub(" ", rest).split()))


def _read_retrieve_results(path: Path) -> Iterator[Document]:
    try:
        data = json.loads(read_text(path))
        seen = set()
        for entry in data:
            for hit in entry["hits"]:
                document = _from_json_object(hit, path, 1)
                if document.docid not in seen:
                    seen.add(document.docid)
                    yield document
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DecrankError(f"{path}: expected a JSON list of {{query, hits:[{{docid, content}}]}} ({exc})") from None


def _read_lucene(index: Path) -> Iterator[Document]:
    from .._pyserini import lucene_index_reader, lucene_searcher

    reader = lucene_index_reader(str(index))
    searcher = lucene_searcher(str(index))
    for internal in range(reader.stats()["documents"]):
        doc = searcher.doc(internal)
        if doc is None:
            continue
        raw = doc.raw()
        if raw is None:
            raise DecrankError(f"{index}: the index stores no raw documents; rebuild it with --storeRaw")
        try:
            text = _from_json_object(json.loads(raw), index, internal).text
        except (json.JSONDecodeError, DecrankError):
            text = raw
        yield Document(doc.docid(), text)


def _is_lucene_index(folder: Path) -> bool:
    return any(folder.glob("segments_*"))


def read_corpus(spec: str | Path) -> Iterator[Document]:
    """Documents of a corpus in any of the supported forms (see the module's docstring)."""
    path = Path(spec)
    if path.is_dir():
        if _is_lucene_index(path):
            yield from _read_lucene(path)
        elif (path / "corpus.jsonl").is_file():
            yield from _read_jsonl(path / "corpus.jsonl")
        else:
            files = sorted(p for p in path.iterdir() if p.name.endswith((".jsonl", ".json", ".jsonl.gz")))
            if not files:
                raise DecrankError(f"{path}: no corpus.jsonl, *.jsonl files or Lucene index in this folder")
            for file in files:
                yield from _read_jsonl(file)
        return
    if not path.is_file():
        raise DecrankError(f"{path}: corpus not found")
    name = path.name.removesuffix(".gz")
    if name.endswith(".jsonl"):
        yield from _read_jsonl(path)
    elif name.endswith(".json"):
        yield from _read_retrieve_results(path)
    elif name.endswith(".tsv"):
        yield from _read_tsv(path)
    else:
        if "<doc>" in head_text(path).lower():
            yield from _read_trec(path)
        else:
            yield from _read_tsv(path)
