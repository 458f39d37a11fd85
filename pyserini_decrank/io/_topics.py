"""Topics (queries) from a Pyserini topic name, a ``qid<TAB>text`` TSV, a BEIR ``queries.jsonl`` or a
TREC topics file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

from ..errors import DecrankError
from ._text import iter_tab_lines, open_text


def _read_tsv(path: Path) -> dict[str, str]:
    return {qid: text.strip() for qid, text in iter_tab_lines(path, "topic", "qid<TAB>text")}


def _read_beir(path: Path) -> dict[str, str]:
    topics = {}
    with open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                topics[str(obj["_id"])] = obj["text"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise DecrankError(f"{path}:{lineno}: expected a JSON object with '_id' and 'text'") from None
    return topics


_TOP = re.compile(r"<top>(.*?)</top>", re.S | re.I)
_NUM = re.compile(r"<num>\s*(?:Number:)?\s*([^<\s]+)", re.I)
_TITLE = re.compile(r"<title>\s*(?:Topic:)?(.*?)(?=<|\Z)", re.S | re.I)


def _read_trec(path: Path) -> dict[str, str]:
    text = open_text(path).read()
    topics = {}
    for block in _TOP.finditer(text):
        num, title = _NUM.search(block.group(1)), _TITLE.search(block.group(1))
        if not num or not title:
            lineno = text.count("\n", 0, block.start()) + 1
            raise DecrankError(f"{path}:{lineno}: TREC topic without <num> or <title>")
        topics[num.group(1).strip()] = " ".join(title.group(1).split())
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
        with open_text(path) as f:
            head = f.read(4096)
        if "<top>" in head.lower():
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
