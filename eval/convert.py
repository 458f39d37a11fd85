"""Inputs Pyserini's indexer and searcher read, made from the collections' own formats.

    python eval/convert.py corpus  CORPUS  OUT_DIR/docs.jsonl      any corpus decrank reads -> JsonCollection
    python eval/convert.py topics  TOPICS  OUT.tsv [--qrels QRELS] any topics decrank reads -> qid<TAB>text,
                                                                   only the judged ones with --qrels
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pyserini_decrank.io import read_corpus, read_qrels, read_topics


def main(argv: list[str]) -> None:
    kind, source, target = argv[:3]
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    if kind == "corpus":
        with open(target, "w", encoding="utf-8") as f:
            for doc in read_corpus(source):
                f.write(json.dumps({"id": doc.docid, "contents": doc.text}) + "\n")
    elif kind == "topics":
        topics = read_topics(source)
        if "--qrels" in argv:
            judged = read_qrels(argv[argv.index("--qrels") + 1])
            topics = {q: t for q, t in topics.items() if q in judged}
        with open(target, "w", encoding="utf-8") as f:
            f.writelines(f"{q}\t{' '.join(t.split())}\n" for q, t in topics.items())
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
