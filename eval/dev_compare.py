"""Two models on the dev split of ``eval/distil_dev.py``, query by query: whether a dev gain is one the split can tell.

    python -m eval.dev_compare --train-dir ../shared/data/train --workdir WORK --json OUT.json \
        --model A --model B [--dev-beir NAME=FOLDER ...] [--dev-beir-split train] [--dev-queries 200] [--depth 100] \
        [--dev-codec SPEC]

Each model re-ranks each dev domain's BM25 candidates once; from those scores, nDCG@10 alone and interpolated
with BM25 at the model's own alpha (its ``decrank_config.json``; 0.5 if it carries none), per query. B - A comes
with a paired bootstrap 95% interval over the domain's queries (10,000 resamples, fixed seed), per domain and
over the domains' queries pooled. WORK is a ``distil_dev.py`` work folder: its dev stores and BM25 runs are
reused, or made as that script makes them (with the same --dev-queries, --depth and --dev-beir, the split is the
same one). ``--dev-codec SPEC`` scores both models from the dev stores in that codec, as `distil_dev.py` does.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from pyserini_decrank import QueryLikelihoodModel
from pyserini_decrank.errors import DecrankError
from pyserini_decrank.evaluate import evaluate_run, paired_bootstrap

from .distil_dev import DevDomain, parse_args as distil_args, prepare, run_of, student_scores

DEFAULT_ALPHA = 0.5


def per_query(domain: DevDomain, scores: dict[str, np.ndarray], alpha: float | None) -> dict[str, float]:
    run = run_of(scores, domain.bm25, alpha)
    return {q: v["ndcg_cut.10"] for q, v in evaluate_run(domain.qrels, run, ["ndcg_cut.10"]).per_query.items()}


def difference(a: dict[str, float], b: dict[str, float]) -> dict:
    diff = paired_bootstrap(a, b)
    return {"a": round(float(np.mean(list(a.values()))), 4), "b": round(float(np.mean(list(b.values()))), 4),
            "b_minus_a": round(diff.mean, 4), "ci95": [round(diff.low, 4), round(diff.high, 4)], "queries": diff.queries}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-dir", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--model", action="append", required=True, help="twice: A, then B")
    ap.add_argument("--dev-beir", nargs="*", default=[], metavar="NAME=FOLDER")
    ap.add_argument("--dev-beir-split", default="train")
    ap.add_argument("--dev-queries", type=int, default=200)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--dev-codec", default=None, help="score both models from the dev stores written in this codec")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if len(args.model) != 2:
        ap.error("--model is given twice: A, then B")
    torch.set_num_threads(args.threads)
    split_args = distil_args(["--train-dir", args.train_dir, "--workdir", args.workdir, "--json", args.json,
                              "--base", args.model[0], "--dev-queries", str(args.dev_queries), "--depth", str(args.depth),
                              "--dev-beir", *args.dev_beir, "--dev-beir-split", args.dev_beir_split]
                             + (["--dev-codec", args.dev_codec] if args.dev_codec else []))
    split = prepare(split_args, Path(args.workdir), {}, None)
    domains = {"nq-qed-dev": split.nq, **split.domains}
    alone, mixed, alphas = {}, {}, []
    for name in args.model:
        qlm = QueryLikelihoodModel.from_pretrained(name)
        alpha = qlm.config.alpha if qlm.config.alpha is not None else DEFAULT_ALPHA
        alphas.append(alpha)
        for domain_name, domain in domains.items():
            scores = student_scores(qlm, domain)
            alone.setdefault(domain_name, []).append(per_query(domain, scores, None))
            mixed.setdefault(domain_name, []).append(per_query(domain, scores, alpha))
            print(f"{name} on {domain_name}: scored", flush=True)
    pooled = lambda per: [{f"{d}/{q}": v for d in per for q, v in per[d][i].items()} for i in (0, 1)]
    out = {"a": args.model[0], "b": args.model[1], "alpha_a": alphas[0], "alpha_b": alphas[1], "dev_codec": args.dev_codec,
           "alone": {d: difference(*per) for d, per in alone.items()} | {"pooled": difference(*pooled(alone))},
           "with_alpha": {d: difference(*per) for d, per in mixed.items()} | {"pooled": difference(*pooled(mixed))}}
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    for kind in ("alone", "with_alpha"):
        for d, row in out[kind].items():
            print(f"{kind:10} {d:16} A {row['a']:.4f}  B {row['b']:.4f}  B-A {row['b_minus_a']:+.4f} "
                  f"[{row['ci95'][0]:+.4f}, {row['ci95'][1]:+.4f}]  ({row['queries']} queries)")


if __name__ == "__main__":
    try:
        main()
    except DecrankError as exc:  # a missing file or model: one line, as from the decrank CLI
        raise SystemExit(f"error: {exc}") from None
