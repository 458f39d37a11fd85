"""The dev split's domains written out as ordinary collections, so that tools made for a test collection
(`eval/codec_ladder.py`, `decrank rerank`, trec_eval) can screen on the dev split instead.

    python -m eval.dev_collections --out DIR  DISTIL_DEV_ARGUMENTS...

DISTIL_DEV_ARGUMENTS are those of the `eval/distil_dev.py` run whose dev split is wanted (its ``--workdir``
holds the BM25 runs and stores, which are reused; ``--json`` is not written). For each domain (``nq-qed-dev``
and each ``--dev-beir`` NAME) DIR/NAME gets ``corpus.jsonl`` (every BM25 candidate of its queries, in the order
first met), ``topics.tsv``, ``bm25.run`` (TREC, BM25's top ``--depth``) and ``qrels.txt``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pyserini_decrank.errors import DecrankError
from pyserini_decrank.io import Hit, format_run_lines

from .distil_dev import DevDomain, parse_args, prepare


def write_collection(domain: DevDomain, folder: Path) -> dict:
    """``domain`` as corpus, topics, BM25 run and qrels files in ``folder``; its counts."""
    if domain.texts is None:
        raise DecrankError(f"{folder.name}: the dev domain has no document texts to write")
    folder.mkdir(parents=True, exist_ok=True)
    candidates = list(dict.fromkeys(d for hits in domain.bm25.values() for d, _ in hits))
    with open(folder / "corpus.jsonl", "w") as f:
        f.writelines(json.dumps({"id": d, "contents": domain.texts[d]}) + "\n" for d in candidates)
    with open(folder / "topics.tsv", "w") as f:
        f.writelines(f"{q}\t{' '.join(text.split())}\n" for q, text in domain.queries.items())
    with open(folder / "bm25.run", "w") as f:
        for qid, hits in domain.bm25.items():
            f.write(format_run_lines(qid, (Hit(d, s, r + 1) for r, (d, s) in enumerate(hits)), "bm25"))
    with open(folder / "qrels.txt", "w") as f:
        f.writelines(f"{q} 0 {d} {r}\n" for q, rel in domain.qrels.items() for d, r in rel.items())
    return {"documents": len(candidates), "queries": len(domain.queries)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=False)
    ap.add_argument("--out", required=True, help="folder to write one collection folder per dev domain into")
    known, rest = ap.parse_known_args(argv)
    out, args = Path(known.out), parse_args(rest)
    try:
        split = prepare(args, Path(args.workdir), {}, None)
        for name, domain in {"nq-qed-dev": split.nq, **split.domains}.items():
            counts = write_collection(domain, out / name)
            print(f"{out / name}: {counts['queries']} queries, {counts['documents']} documents", flush=True)
    except DecrankError as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
