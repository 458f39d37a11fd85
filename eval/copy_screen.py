"""Fixed copy gates screened on the dev split, with no training: each lambda's nDCG@10 alone and with BM25.

    python -m eval.copy_screen --train-dir ../shared/data/train --workdir WORK --json OUT.json \
        [--model decrank-minilm] [--dev-beir scifact-train=../shared/data/scifact] [--dev-queries 200] [--depth 100]

The dev split is ``eval/distil_dev.py``'s (NQ-QED dev against BM25 over the training passages, plus each
``--dev-beir`` domain's train-split queries). One decoder pass per query gives, for every candidate and query
token, the vocabulary's log p and the probability of copying the token under each copy kind
(``QueryLikelihoodModel.copy_terms``); every lambda is then put together from them exactly as scoring does
(``mix_log_probs``), so the grid costs one pass per kind instead of one per lambda. Lambda 0 is the model
without copying.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from pyserini_decrank import QueryLikelihoodModel
from pyserini_decrank.model import copyable_tokens, fixed_log_gates, mix_log_probs, pad_labels, pad_states
from pyserini_decrank.train import read_pairs

from .distil_dev import DevDomain, beir_domain, choose_alpha, dev_split, figures, norm, nq_domain, training_files

LAMBDAS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7)
KINDS = ("uniform", "attention")


def domain_terms(qlm: QueryLikelihoodModel, domain: DevDomain) -> dict[str, dict[str, list]]:
    """{qid: {kind: (vocab log p, copy p)}}, each ``candidates x T`` (query tokens only)."""
    out = {}
    for qid, text in domain.queries.items():
        docids = [d for d, _ in domain.bm25[qid]]
        states, tokens = domain.store.get_many_with_tokens(docids)
        padded, mask = pad_states([s.float() for s in states])
        labels = pad_labels([qlm.query_labels(text)] * len(docids))
        copyable = copyable_tokens(tokens, mask.shape[1])
        out[qid] = {kind: qlm.copy_terms(labels, padded, mask, copyable, kind) for kind in KINDS}
    return out


def screen(terms: dict, domain: DevDomain) -> dict:
    """{kind: {lambda: figures}}: nDCG@10 alone and at each BM25 alpha."""
    result = {}
    for kind in KINDS:
        result[kind] = {}
        for lam in LAMBDAS:
            gates = fixed_log_gates(lam, torch.device("cpu"))
            scores = {q: mix_log_probs(*terms[q][kind], *gates).sum(-1).numpy() for q in terms}
            result[kind][str(lam)] = figures(domain.qrels, scores, domain.bm25)
    return result


def plot(record: dict, path: Path) -> None:
    """One panel per dev domain: nDCG@10 alone (solid) and at its best alpha (dashed) against lambda, per kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(record["domains"])
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        for kind, colour in zip(KINDS, ("tab:blue", "tab:orange")):
            rows = record["domains"][name][kind]
            lams = [float(lam) for lam in rows]
            ax.plot(lams, [rows[lam]["alone"] for lam in rows], "o-", color=colour, label=f"{kind} alone")
            ax.plot(lams, [max(rows[lam]["alpha"].values()) for lam in rows], "s--", color=colour,
                    label=f"{kind}, best alpha")
        ax.set_xscale("symlog", linthresh=0.01)
        ax.set_xlabel("copy gate lambda (0: no copying)")
        ax.set_ylabel("nDCG@10")
        ax.set_title(f"{name}, {record['model']}, untrained gate")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-dir", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--model", default="decrank-minilm")
    ap.add_argument("--dev-queries", type=int, default=200)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--dev-beir", nargs="*", default=[], metavar="NAME=FOLDER")
    ap.add_argument("--dev-beir-split", default="train")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    train = read_pairs(training_files(Path(args.train_dir)))
    dev = read_pairs([str(Path(args.train_dir) / "nq_qed/qed_nq_dev.tsv")])
    qlm = QueryLikelihoodModel.from_pretrained(args.model)
    domains = {"nq-qed-dev": nq_domain(qlm, *dev_split(train, dev, args.dev_queries, work, args.depth), work)}
    training_queries = {norm(p.query) for p in train.pairs}
    for spec in args.dev_beir:
        name, _, folder = spec.partition("=")
        domains[name] = beir_domain(Path(folder), args.dev_beir_split, args.dev_queries, work / f"dev-{name}",
                                    args.depth, qlm, training_queries)
    record = {"model": args.model, "lambdas": LAMBDAS, "domains": {}}
    for name, domain in domains.items():
        start = time.time()
        record["domains"][name] = screen(domain_terms(qlm, domain), domain)
        record["domains"][name]["seconds"] = round(time.time() - start, 1)
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
    # the two-domain choice, as distil_dev chooses alpha: per (kind, lambda), the best safe alpha's mean
    names = list(domains)
    record["choice"] = {}
    for kind in KINDS:
        for lam in map(str, LAMBDAS):
            row = dict(record["domains"][names[0]][kind][lam])
            row["beir"] = {n: record["domains"][n][kind][lam] for n in names[1:]}
            alpha, mean = choose_alpha(row)
            alone = round(float(np.mean([record["domains"][n][kind][lam]["alone"] for n in names])), 4)
            record["choice"][f"{kind}:{lam}"] = {"alone_mean": alone, "alpha": alpha, "alpha_mean": mean}
    Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
    plot(record, Path(args.json).with_suffix(".png"))
    for key, row in record["choice"].items():
        per = " / ".join(f"{record['domains'][n][key.split(':')[0]][key.split(':')[1]]['alone']:.4f}" for n in names)
        print(f"{key:16s} alone {per}  mean {row['alone_mean']:.4f}   best alpha {row['alpha']}: {row['alpha_mean']:.4f}")


if __name__ == "__main__":
    main()
