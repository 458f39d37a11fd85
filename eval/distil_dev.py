"""Train with the `distil` objective and measure the dev split along the way: the dev curve behind the default model.

    python eval/distil_dev.py --train-dir ../shared/data/train --workdir WORK --json OUT.json \
        [--base decrank-minilm] [--steps 3000] [--eval-every 500] [--dev-queries 200] [--depth 100] \
        [--teacher biencoder] [--teacher-alpha 0.5] [--temperature 0.05] [--mle-weight 0.1] [--lr 1e-4] \
        [--batch-size 8] [--num-negatives 7] [--max-minutes M] [--threads 2] [--test-topics FILE ...] \
        [--package MODEL_DIR]

Training queries: NQ-QED train, WikiQA, the SQuAD one-question-per-paragraph sample and the MS MARCO toy
positives. Dev split: NQ-QED dev (real Google queries), never trained on; a dev query whose text is also a
training query is dropped. Its candidates are BM25's top ``depth`` over every training and dev passage
(Pyserini), its relevant passage the one it was asked of. The first ``dev-queries`` dev queries are used.

Every ``eval-every`` steps (and at step 0, the base model) the dev split is re-ranked: nDCG@10 alone and
interpolated with BM25 at alphas 0.0-1.0, beside BM25, the bi-encoder teacher and BM25+bi-encoder at the same
alphas. Training checkpoints in WORK/model and the curve is kept in OUT.json: run again to resume both. A PNG
beside OUT.json plots the curve. ``--test-topics`` files (one query per line after a tab, or TREC/BEIR topics
read by `read_topics`) are checked for queries shared with the training queries; the counts go into OUT.json.

With ``--package``, once training is complete, the decoder package is copied into MODEL_DIR with the alpha that
gave the best dev nDCG@10 at the last step in its decrank_config.json, and OUT.json beside it as dev_curve.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from pyserini_decrank import EncoderStateStore, QueryLikelihoodModel, read_topics
from pyserini_decrank.encode import encode_corpus
from pyserini_decrank.evaluate import evaluate_run
from pyserini_decrank.io import Document, Hit
from pyserini_decrank.rerank import DecoderReranker, interpolate
from pyserini_decrank.train import PairSet, TrainConfig, Trainer, bm25_search, embed_stored, embed_texts, read_pairs

ALPHAS = [round(0.1 * i, 1) for i in range(11)]


def training_files(train_dir: Path) -> list[str]:
    return [str(train_dir / f) for f in (
        "nq_qed/qed_nq_train.part1.tsv", "nq_qed/qed_nq_train.part2.tsv", "wikiqa/wikiqa_train_question_summary.tsv",
        "squad_v11/sample_1q_per_para.tsv", "msmarco_toy/splade_toy_triples_pos.tsv")]


def norm(query: str) -> str:
    return " ".join(query.lower().split())


def dev_split(train: PairSet, dev: PairSet, limit: int, workdir: Path, depth: int):
    """(passage pool, dev queries {qid: text}, qrels, BM25 run {qid: [(pool index, score)]})."""
    pool = list(train.passages)
    index = {text: i for i, text in enumerate(pool)}
    for text in dev.passages:
        if text not in index:
            index[text] = len(pool)
            pool.append(text)
    seen = {norm(p.query) for p in train.pairs}
    queries, qrels = {}, {}
    for pair in dev.pairs:
        if norm(pair.query) in seen or any(q == pair.query for q in queries.values()):
            continue
        qid = f"dev{len(queries)}"
        queries[qid] = pair.query
        qrels[qid] = {str(index[dev.passages[pair.passage]]): 1}
        if len(queries) == limit:
            break
    hits = bm25_search(pool, list(queries.values()), workdir / "dev-bm25", depth)
    return pool, queries, qrels, dict(zip(queries, hits))


def run_of(scores: dict[str, np.ndarray], bm25: dict, alpha: float | None) -> dict[str, list[Hit]]:
    run = {}
    for qid, hits in bm25.items():
        first = np.array([s for _, s in hits])
        mixed = interpolate(first, scores[qid], alpha)
        order = np.argsort(-mixed, kind="stable")
        run[qid] = [Hit(str(hits[k][0]), float(mixed[k]), r + 1) for r, k in enumerate(order)]
    return run


def ndcg(qrels, run) -> float:
    return round(evaluate_run(qrels, run, ["ndcg_cut.10"]).means["ndcg_cut.10"], 4)


def figures(qrels, scores, bm25) -> dict:
    """nDCG@10 alone and at each alpha, from one set of scores."""
    return {"alone": ndcg(qrels, run_of(scores, bm25, None)),
            "alpha": {str(a): ndcg(qrels, run_of(scores, bm25, a)) for a in ALPHAS}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-dir", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--base", default="decrank-minilm")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--dev-queries", type=int, default=200)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--teacher", default="biencoder")
    ap.add_argument("--teacher-alpha", type=float, default=0.5)
    ap.add_argument("--temperature", type=float, default=0.05)
    ap.add_argument("--mle-weight", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--num-negatives", type=int, default=7)
    ap.add_argument("--warmup-steps", type=int, default=100)
    ap.add_argument("--max-minutes", type=float, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--test-topics", nargs="*", default=[])
    ap.add_argument("--package", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work, out = Path(args.workdir), Path(args.json)
    work.mkdir(parents=True, exist_ok=True)
    record = json.loads(out.read_text()) if out.is_file() else {"curve": []}

    train = read_pairs(training_files(Path(args.train_dir)))
    dev = read_pairs([str(Path(args.train_dir) / "nq_qed/qed_nq_dev.tsv")])
    pool, queries, qrels, bm25 = dev_split(train, dev, args.dev_queries, work, args.depth)
    pool_set = PairSet([], pool)
    docid = {str(i): pool_set.passage_id(i) for i in range(len(pool))}
    training_queries = {norm(p.query) for p in train.pairs}
    record["split"] = {"training_pairs": len(train.pairs), "training_passages": len(train.passages),
                       "dev_queries": len(queries), "pool": len(pool), "depth": args.depth,
                       "dev_queries_with_positive_in_depth": sum(any(str(h) in qrels[q] for h, _ in hits) for q, hits in bm25.items()),
                       "test_topics_shared_with_training": {
                           t: sum(norm(q) in training_queries for q in read_topics(t).values()) for t in args.test_topics}}

    cfg = TrainConfig(pairs=training_files(Path(args.train_dir)), output=str(work / "model"), base=args.base,
                      objective="distil", negatives="bm25", num_negatives=args.num_negatives, steps=args.steps,
                      batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup_steps, freeze_encoder=True,
                      encoder_store=str(work / "store"), max_length=192, max_query_length=32, bf16=False,
                      teacher=args.teacher, teacher_alpha=args.teacher_alpha, temperature=args.temperature,
                      mle_weight=args.mle_weight, checkpoint_every=100, max_minutes=args.max_minutes, threads=args.threads)
    base = QueryLikelihoodModel.from_pretrained(args.base)
    # every pool passage in the store the trainer reads (it adds nothing: its passages are all here)
    encode_corpus(base, (Document(docid[str(i)], t) for i, t in enumerate(pool)), str(work / "store"), max_length=192,
                  codec="bf16", progress=True)
    store = EncoderStateStore(work / "store")
    bm25_ids = {q: [(docid[str(h)], s) for h, s in hits] for q, hits in bm25.items()}

    if "teachers" not in record:
        passage_emb = dict(zip(docid.values(), embed_stored(store, list(docid.values()))))
        query_emb = embed_texts(base, list(queries.values()), 192)
        cosine = {q: np.array([float(passage_emb[d] @ e) for d, _ in bm25_ids[q]]) for q, e in zip(queries, query_emb)}
        bm25_alone = {q: np.array([s for _, s in hits]) for q, hits in bm25.items()}
        record["teachers"] = {"bm25": ndcg(qrels, run_of(bm25_alone, bm25, None)), "biencoder": figures(qrels, cosine, bm25)}
        out.write_text(json.dumps(record, indent=1) + "\n")

    def evaluate(qlm: QueryLikelihoodModel, step: int, minutes: float) -> None:
        reranker = DecoderReranker(qlm, store, batch_size=100)
        start = time.time()
        scores = {q: reranker.score(queries[q], [d for d, _ in bm25_ids[q]], qid=q) for q in queries}
        row = {"step": step, "train_minutes": round(minutes, 1), "eval_s": round(time.time() - start, 1),
               **figures(qrels, scores, bm25)}
        record["curve"] = [r for r in record["curve"] if r["step"] != step] + [row]
        out.write_text(json.dumps(record, indent=1) + "\n")
        print(json.dumps(row), flush=True)
        plot(record, out.with_suffix(".png"))

    if not any(r["step"] == 0 for r in record["curve"]):
        evaluate(base, 0, 0.0)
    trainer = Trainer.from_config(cfg)
    record["config"] = {k: v for k, v in vars(args).items() if k not in ("json", "workdir", "train_dir", "test_topics")}
    record["training_queries_after_filter"] = len(trainer.data.pairs)
    trainer.resume()
    while trainer.step < trainer.total_steps:
        stop = (trainer.step // args.eval_every + 1) * args.eval_every
        trainer.run(stop_at=stop)
        if trainer.step < stop and trainer.step < trainer.total_steps:  # out of --max-minutes: resume later
            break
        evaluate(trainer.qlm, trainer.step, trainer.elapsed / 60)
    if args.package and trainer.step == trainer.total_steps:
        package(work / "model" / "package", Path(args.package), record, out)


def package(built: Path, target: Path, record: dict, curve_path: Path) -> None:
    """The decoder package with the dev split's best alpha at the last step (ties: the smaller alpha)."""
    import shutil

    from pyserini_decrank.model import ScoringConfig

    last = max(record["curve"], key=lambda r: r["step"])
    alpha = max(last["alpha"], key=lambda a: (last["alpha"][a], -float(a)))
    target.mkdir(parents=True, exist_ok=True)
    for item in built.iterdir():
        shutil.copy2(item, target / item.name)
    config = ScoringConfig.load(target)
    config.alpha = float(alpha)
    config.save(target)
    record["chosen_alpha"] = float(alpha)
    curve_path.write_text(json.dumps(record, indent=1) + "\n")
    shutil.copy2(curve_path, target / "dev_curve.json")
    print(f"packaged into {target} with alpha {alpha} (dev nDCG@10 {last['alpha'][alpha]})", flush=True)


def plot(record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = sorted(record["curve"], key=lambda r: r["step"])
    steps = [r["step"] for r in curve]
    best_alpha = [max(r["alpha"].values()) for r in curve]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, [r["alone"] for r in curve], "o-", label="student alone")
    ax.plot(steps, [r["alpha"]["0.5"] for r in curve], "s-", label="student + BM25, alpha 0.5")
    ax.plot(steps, best_alpha, "^:", label="student + BM25, best alpha")
    teachers = record.get("teachers", {})
    if teachers:
        ax.axhline(teachers["bm25"], color="grey", ls="--", label="BM25")
        ax.axhline(teachers["biencoder"]["alone"], color="green", ls="--", label="bi-encoder (teacher)")
        ax.axhline(max(teachers["biencoder"]["alpha"].values()), color="green", ls=":", label="BM25 + bi-encoder, best alpha")
    ax.set_xlabel("distil steps")
    ax.set_ylabel("dev nDCG@10 (NQ-QED dev)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
