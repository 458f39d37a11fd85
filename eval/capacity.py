"""What a store of MS MARCO costs on disk: passages x tokens per passage x bytes per token, plus the store's
own bytes per document, for each codec and encoder width.

    python eval/capacity.py --corpus ../shared/data/dl19/retrieve_results_dl19_top100.json \
        [--tokenizer NAME=PATH ...] [--store STORE] --json OUT.json

Tokens per passage are measured on the given corpus (the DL19 passages are MS MARCO passages) with each
tokenizer (default: decrank-minilm's WordPiece), special tokens included and truncated at ``--max-length``,
as `decrank encode` stores them. ``--store`` measures the per-document overhead (docids, offsets,
checksums, text hashes) of a real store; without it the overhead is left out. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from pyserini_decrank import EncoderStateStore, read_corpus
from pyserini_decrank.model import DEFAULT_MODEL, resolve_model

COLLECTIONS = {"MS MARCO v1 passage": 8_841_823, "MS MARCO v2 passage": 138_364_198}
# encoder width and decoder layers of each model shape (a cross-kv store holds every decoder layer's K and V)
WIDTHS = {"MiniLM (decrank-minilm)": (384, 6), "T5-base": (768, 12), "T5-large": (1024, 24)}
PQ_BYTES = {"PQ96": 96, "PQ64": 64, "PQ48": 48, "PQ32": 32, "PQ16": 16}


def bytes_per_token(codec: str, width: int, decoder_layers: int) -> int:
    if codec == "fp16":
        return 2 * width
    if codec == "SQ8":
        return width
    if codec == "cross-kv fp16":
        return decoder_layers * 2 * width * 2
    return PQ_BYTES[codec]


def tokens_per_passage(texts: list[str], tokenizer_path: str, max_length: int) -> float:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    return statistics.fmean(len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"])


def overhead_per_document(store_path: str) -> float:
    """Bytes a store spends per document besides its tokens' codes (and the trained codec)."""
    store = EncoderStateStore(store_path)
    info = store.info()
    codec_file = Path(store_path) / "codec.faiss"
    extra = codec_file.stat().st_size if codec_file.is_file() else 0
    return (info["bytes_on_disk"] - info["tokens"] * info["bytes_per_token"] - extra) / info["documents"]


def human(n: float) -> str:
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.1f} {unit}" if n / size < 100 else f"{n / size:.0f} {unit}"
    return f"{n:.0f} B"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True, help="Passages to measure tokens per passage on (any `read_corpus` form).")
    ap.add_argument("--tokenizer", action="append", default=[], metavar="NAME=PATH",
                    help="A tokenizer to measure (repeatable) [default: decrank-minilm's].")
    ap.add_argument("--max-length", type=int, default=192, help="Truncation, as the model's max_length [192].")
    ap.add_argument("--store", default=None, help="A store whose per-document overhead to count.")
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    seen: dict[str, str] = {}
    for doc in read_corpus(args.corpus):
        seen.setdefault(doc.docid, doc.text)
    texts = list(seen.values())
    tokenizers = dict(t.split("=", 1) for t in args.tokenizer) or {"decrank-minilm": resolve_model(DEFAULT_MODEL)}
    counts = {name: tokens_per_passage(texts, path, args.max_length) for name, path in tokenizers.items()}
    overhead = overhead_per_document(args.store) if args.store else 0.0
    codecs = ["fp16", "SQ8", *PQ_BYTES, "cross-kv fp16"]
    rows = []
    for tokenizer, tokens in counts.items():
        for shape, (width, layers) in WIDTHS.items():
            for codec in codecs:
                per_token = bytes_per_token(codec, width, layers)
                rows.append({"tokenizer": tokenizer, "tokens_per_passage": round(tokens, 2), "shape": shape,
                             "width": width, "codec": codec, "bytes_per_token": per_token,
                             **{name: round(n * (tokens * per_token + overhead)) for name, n in COLLECTIONS.items()}})
    report = {"corpus": args.corpus, "passages_measured": len(texts), "max_length": args.max_length,
              "overhead_bytes_per_document": round(overhead, 1), "tokens_per_passage": counts, "rows": rows}
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    for tokenizer, tokens in counts.items():
        print(f"\n{tokenizer}: {tokens:.1f} tokens per passage over {len(texts)} DL19 passages; "
              f"{overhead:.0f} bytes per document of store overhead\n")
        print("| codec | bytes/token at 384 / 768 / 1024 | " + " | ".join(
            f"{c.split(' passage')[0]} {s.split(' (')[0]}" for c in COLLECTIONS for s in WIDTHS) + " |")
        print("|---|---|" + "---:|" * (len(COLLECTIONS) * len(WIDTHS)))
        for codec in codecs:
            mine = [r for r in rows if r["tokenizer"] == tokenizer and r["codec"] == codec]
            sizes = [human(r[c]) for c in COLLECTIONS for r in mine]
            print(f"| {codec} | {' / '.join(str(r['bytes_per_token']) for r in mine)} | " + " | ".join(sizes) + " |")


if __name__ == "__main__":
    main()
