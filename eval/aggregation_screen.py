"""Training-free ways to add up a model's per-token query log-probabilities, screened on the dev split.

    python eval/aggregation_screen.py --train-dir ../shared/data/train --workdir WORK --beir scifact=../shared/data/scifact \
        [--model decrank-minilm] [--json OUT.json]

WORK is an `eval/distil_dev.py` workdir (its BM25 runs and stores are reused, or made). The score of a
document is today's sum of the query tokens' log p; the screen recomputes each candidate's per-token log p,
and the same for an empty document (the query's prior under the model), and ranks by:

- ``prior^g``: each token's log p weighted by its prior surprise (-log p with no document) to the power g,
  weights rescaled to sum to the query's length: tokens the model can guess without the document count less;
- ``pmi>0`` / ``pmi<0``: only the tokens the document makes likelier / less likely than the prior, by how much;
- ``floor-c``: each token's log p floored at c, so that one unlikely token cannot sink a document;
- ``min``: the least likely token alone.

A per-query constant (the prior's sum, the length) cannot change a ranking, so these are the variants that
can. Each is measured alone and interpolated with BM25 (alphas 0-1), as in `eval/distil_dev.py`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import distil_dev as dd  # noqa: E402  (the dev split and its measures)

from pyserini_decrank import EncoderStateStore, QueryLikelihoodModel  # noqa: E402
from pyserini_decrank.model import pad_ids, pad_labels, pad_states  # noqa: E402
from pyserini_decrank.train import PairSet, read_pairs  # noqa: E402


def variants(log_p: np.ndarray) -> dict[str, np.ndarray]:
    """Scores of each candidate from ``log_p`` (candidates + 1) x tokens, the last row the empty document's."""
    docs, prior = log_p[:-1], log_p[-1]
    valid = prior != 0
    pmi = docs - prior
    out = {"sum": docs.sum(1)}
    for g in (0.5, 1.0, 2.0):
        w = (-prior) ** g * valid
        w = w / max(w.sum(), 1e-9) * valid.sum()
        out[f"prior^{g}"] = (docs * w).sum(1)
    out["pmi>0"] = np.maximum(pmi, 0).sum(1)
    out["pmi<0"] = np.minimum(pmi, 0).sum(1)
    for c in (-4, -8, -12):
        out[f"floor{c}"] = np.maximum(docs, c).sum(1)
    out["min"] = np.where(valid, docs, 0).min(1)
    return out


def token_log_probs(qlm: QueryLikelihoodModel, domain: dd.DevDomain, empty: torch.Tensor) -> dict[str, np.ndarray]:
    out = {}
    for qid, text in domain.queries.items():
        states = [s.float() for s in domain.store.get_many([d for d, _ in domain.bm25[qid]])] + [empty]
        padded, mask = pad_states(states)
        with torch.inference_mode(), qlm.compute():
            log_p, _ = qlm.token_log_probs(pad_labels([qlm.query_ids(text)] * len(states)), padded, mask, absorbed=False)
        out[qid] = log_p.float().cpu().numpy()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-dir", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--model", default="decrank-minilm")
    ap.add_argument("--beir", nargs="*", default=[], metavar="NAME=FOLDER", help="BEIR dev domains (their train split)")
    ap.add_argument("--dev-queries", type=int, default=200)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    work, train_dir = Path(args.workdir), Path(args.train_dir)
    train = read_pairs(dd.training_files(train_dir))
    dev = read_pairs([str(train_dir / "nq_qed/qed_nq_dev.tsv")])
    pool, queries, qrels, bm25 = dd.dev_split(train, dev, args.dev_queries, work, 100)
    ids = PairSet([], pool)
    docid = {str(i): ids.passage_id(i) for i in range(len(pool))}
    qlm = QueryLikelihoodModel.from_pretrained(args.model)
    dd.encode_corpus(qlm, (dd.Document(docid[str(i)], t) for i, t in enumerate(pool)), str(work / "store"),
                     max_length=192, codec="bf16", progress=True)
    domains = {"nq-qed-dev": dd.DevDomain(queries, {q: {docid[d]: r for d, r in rel.items()} for q, rel in qrels.items()},
                                          {q: [(docid[str(h)], s) for h, s in hits] for q, hits in bm25.items()},
                                          EncoderStateStore(work / "store"))}
    training_queries = {dd.norm(p.query) for p in train.pairs}
    for spec in args.beir:
        name, _, folder = spec.partition("=")
        domains[name] = dd.beir_domain(Path(folder), "train", args.dev_queries, work / f"dev-{name}", 100, qlm, training_queries)
    input_ids, mask = pad_ids(qlm.tokenize_documents([""], 192), qlm.pad_token_id)
    with torch.inference_mode():
        empty = qlm.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state[0].float()
    result = {}
    for name, domain in domains.items():
        per_query = token_log_probs(qlm, domain, empty)
        scores: dict[str, dict[str, np.ndarray]] = {}
        for qid, log_p in per_query.items():
            for variant, values in variants(log_p).items():
                scores.setdefault(variant, {})[qid] = values
        result[name] = {variant: dd.figures(domain.qrels, s, domain.bm25) for variant, s in scores.items()}
        for variant, figs in result[name].items():
            best = max(figs["alpha"].items(), key=lambda kv: kv[1])
            print(f"{name:14s} {variant:10s} alone {figs['alone']:.4f}  alpha 0.5 {figs['alpha']['0.5']:.4f}  "
                  f"best alpha {best[0]}: {best[1]:.4f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "domains": result}, indent=1) + "\n")


if __name__ == "__main__":
    main()
