"""Topics (queries) from a Pyserini topic name, a ``qid<TAB>text`` TSV, a BEIR ``queries.jsonl`` or a
TREC topics file."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import DecrankError
from ._text import head_text, iter_tab_lines, read_lines, read_text


def _add(topics: dict[str, str], qid: str, text: str, path: Path, lineno: int, lines: dict[str, int]) -> None:
    if qid in topics:
        raise DecrankError(f"{path}:{lineno}: query {qid} appears twice (first at line {lines[qid]})")
    topics[qid] = text
    lines[qid] = lineno


def _read_tsv(path: Path) -> dict[str, str]:
    topics: dict[str, str] = {}
    lines: dict[str, int] = {}
    for lineno, qid, text in iter_tab_lines(path, "topic", "qid<TAB>text"):
        _add(topics, qid, text.strip(), path, lineno, lines)
    return topics


def _read_beir(path: Path) -> dict[str, str]:
    topics: dict[str, str] = {}
    lines: dict[str, int] = {}
    for lineno, line in read_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            qid, text = str(obj["_id"]), obj["text"]
            if not isinstance(text, str):
                raise TypeError
        except (json.JSONDecodeError, KeyError, TypeError):
            raise DecrankError(f"{path}:{lineno}: expected a JSON object with '_id' and 'text'") from None
        _add(topics, qid, text, path, lineno, lines)
    return topics


_TOP = re.compile(r"<top>(.*?)</top>", re.S | re.I)
_NUM = re.compile(r"<num>\s*(?:Number:)?\s*([^<\s]+)", re.I)
_TITLE = re.compile(r"<title>\s*(?:Topic:)?(.*?)(?=<|\Z)", re.S | re.I)


def _read_trec(path: Path) -> dict[str, str]:
    text = read_text(path)
    topics: dict[str, str] = {}
    lines: dict[str, int] = {}
    for block in _TOP.finditer(text):
        num, title = _NUM.search(block.group(1)), _TITLE.search(block.group(1))
        lineno = text.count("\n", 0, block.start()) + 1
        if not num or not title:
            raise DecrankError(f"{path}:{lineno}: TREC topic without <num> or <title>")
        _add(topics, num.group(1).strip(), " ".join(title.group(1).split()), path, lineno, lines)
    if not topics:
        raise DecrankError(f"{path}: no <top> topics found")
    return topics


def read_topics(spec: str) -> dict[str, str]:
    """qid -> query text, from a file or, failing that, a Pyserini topic name."""
    path = Path(spec)
    if path.is_file():
        name = path.name.removesuffix(".gz")
        if name.endswith(".jsonl"):
            return _read_beir(path)
        if "<top>" in head_text(path).lower():
            return _read_trec(path)
        return _read_tsv(path)
    if path.suffix or "/" in spec:
        raise DecrankError(f"{spec}: topics file not found")
    from .._pyserini import get_topics

    try:
        raw = get_topics(spec)
    except Exception as exc:  # Pyserini raises bare Exceptions for unknown or unreachable names
        raise DecrankError(f"{spec}: neither a topics file nor a Pyserini topic name ({str(exc).splitlines()[0] if str(exc) else exc!r})") from None
    return {str(qid): (t.get("title") or t.get("text") or "").strip() for qid, t in raw.items()}
