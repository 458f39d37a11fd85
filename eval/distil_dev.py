"""Train with the `distil` objective and measure the dev split along the way: the dev curve behind the default model.

    python eval/distil_dev.py --train-dir ../shared/data/train --workdir WORK --json OUT.json \
        [--base decrank-minilm] [--steps 3000] [--eval-every 500] [--dev-queries 200] [--depth 100] \
        [--teacher biencoder] [--teacher-alpha 0.5] [--temperature 0.05] [--mle-weight 0.1] [--lr 1e-4] \
        [--batch-size 8] [--num-negatives 7] [--max-minutes M] [--threads 2] [--test-topics FILE ...] \
        [--unlabelled-queries TOPICS ...] [--dev-beir NAME=FOLDER ...] [--dev-beir-split train] \
        [--train-beir NAME [--train-beir-repeat 1]] [--package MODEL_DIR] [--device cpu] [--copy none [--copy-lr LR]] \
        [--objective distil|label-distil [--label-adds-likelihood]] [--codec SPEC] [--dev-codec SPEC]

Training queries: NQ-QED train, WikiQA, the SQuAD one-question-per-paragraph sample and the MS MARCO toy
positives. Dev split: NQ-QED dev (real Google queries), never trained on; a dev query whose text is also a
training query is dropped. Its candidates are BM25's top ``depth`` over every training and dev passage
(Pyserini), its relevant passage the one it was asked of. The first ``dev-queries`` dev queries are used.

Every ``eval-every`` steps (and at step 0, the base model) the dev split is re-ranked: nDCG@10 alone and
interpolated with BM25 at alphas 0.0-1.0, beside BM25, the bi-encoder teacher and BM25+bi-encoder at the same
alphas. Each ``--dev-beir NAME=FOLDER`` adds a dev domain from a BEIR folder's ``--dev-beir-split`` qrels (not
its test split): its first ``dev-queries`` judged queries against BM25's top ``depth`` over its corpus (title
and text), figures kept under the row's ``beir`` key; rerunning a finished run fills a domain added since into
its first and last rows. Training checkpoints in WORK/model and the curve is kept in OUT.json: run again to
resume both. A PNG beside OUT.json plots the curve. ``--test-topics`` files (one query per line after a tab, or TREC/BEIR topics
read by `read_topics`) are checked for queries shared with the training queries; the counts go into OUT.json.
``--unlabelled-queries`` topics become training queries without a passage (the teacher ranks BM25 candidates
mined for them from the training passages); those shared with a test topic or a dev query are dropped first,
and the counts go into OUT.json. ``--train-beir NAME`` adds the rest of dev domain NAME's split as training
pairs (its queries not in the dev split, their relevant documents not judged in the folder's test qrels),
``--train-beir-repeat`` times over, so that a small domain is not lost among the others.

``--codec SPEC`` trains the decoder on states through that store codec (quantisation-aware, `decrank train
--codec`); ``--dev-codec SPEC`` scores the student (the teachers keep the bf16 stores) from dev stores written
with that codec, as a user's store would be, so that a plain and a codec-trained run can be compared on them.

With ``--package``, once training is complete, the decoder package is copied into MODEL_DIR with the alpha
chosen at the last step in its decrank_config.json, and OUT.json beside it as dev_curve.json. The alpha is the
one with the best mean nDCG@10 over the dev domains among those at or above BM25 on every domain.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pyserini_decrank import EncoderStateStore, QueryLikelihoodModel, read_topics
from pyserini_decrank.encode import encode_corpus
from pyserini_decrank.evaluate import evaluate_run
from pyserini_decrank.errors import DecrankError
from pyserini_decrank.io import Document, Hit, read_corpus, read_qrels
from pyserini_decrank.model import COPY_KINDS
from pyserini_decrank.rerank import DecoderReranker, interpolate
from pyserini_decrank.train import PairSet, TrainConfig, Trainer, bm25_search, embed_stored, embed_texts, read_pairs

ALPHAS = [round(0.1 * i, 1) for i in range(11)]
DISTIL_OBJECTIVES = ("distil", "label-distil")


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


def dev_stores(base: QueryLikelihoodModel, documents: list[tuple[str, str]], folder: Path,
               dev_codec: str | None) -> tuple[EncoderStateStore, EncoderStateStore | None]:
    """FOLDER/store (bf16: what the teachers and the trainer read) and, with ``dev_codec``, FOLDER/store-CODEC,
    the same documents in that codec, which the student is scored from."""
    encode_corpus(base, (Document(d, t) for d, t in documents), str(folder / "store"), max_length=192, codec="bf16",
                  progress=True)
    coded = None
    if dev_codec:
        path = folder / f"store-{dev_codec.replace(',', '_')}"
        encode_corpus(base, (Document(d, t) for d, t in documents), str(path), max_length=192, codec=dev_codec, progress=True)
        coded = EncoderStateStore(path)
    return EncoderStateStore(folder / "store"), coded


def nq_domain(base: QueryLikelihoodModel, pool: list[str], queries: dict[str, str], qrels: dict, bm25: dict,
              work: Path, dev_codec: str | None = None) -> "DevDomain":
    """The NQ-QED dev domain over WORK/store, which holds every pool passage (the store the trainer reads:
    training adds nothing to it, its passages are all here)."""
    pool_set = PairSet([], pool)
    docid = {str(i): pool_set.passage_id(i) for i in range(len(pool))}
    store, coded = dev_stores(base, [(docid[str(i)], t) for i, t in enumerate(pool)], work, dev_codec)
    bm25_ids = {q: [(docid[str(h)], s) for h, s in hits] for q, hits in bm25.items()}
    return DevDomain(queries, {q: {docid[d]: r for d, r in rel.items()} for q, rel in qrels.items()}, bm25_ids,
                     store, coded, {docid[str(i)]: t for i, t in enumerate(pool)})


def split_qrels(folder: Path, split: str) -> dict[str, dict[str, int]]:
    """A BEIR folder's qrels of ``split`` (``qrels/SPLIT.tsv`` or ``qrels_SPLIT.tsv``)."""
    for path in (folder / "qrels" / f"{split}.tsv", folder / f"qrels_{split}.tsv"):
        if path.is_file():
            return read_qrels(str(path))
    raise DecrankError(f"{folder}: no qrels/{split}.tsv or qrels_{split}.tsv for the {split} split")


@dataclass
class DevDomain:
    """One dev domain: queries, qrels, BM25's candidates with scores, the store holding their states, and
    (``--dev-codec``) the store in that codec the student is scored from."""

    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    bm25: dict[str, list[tuple[str, float]]]
    store: EncoderStateStore
    coded: EncoderStateStore | None = None
    texts: dict[str, str] | None = None  # docid -> text, for writing the domain out as a collection

    @property
    def student_store(self) -> EncoderStateStore:
        return self.coded or self.store


def beir_domain(folder: Path, split: str, limit: int, workdir: Path, depth: int, base: QueryLikelihoodModel,
                training_queries: set[str], dev_codec: str | None = None) -> DevDomain:
    """A BEIR folder's ``split`` queries (the first ``limit`` judged ones not shared with a training query)
    against BM25's top ``depth`` over its whole corpus; the corpus is encoded into WORK's store for it."""
    corpus = [(d.docid, d.text) for d in read_corpus(folder)]
    topics = read_topics(str(folder / "queries.jsonl"))
    judged = split_qrels(folder, split)
    queries = {}
    for qid in judged:
        if qid in topics and norm(topics[qid]) not in training_queries and any(r > 0 for r in judged[qid].values()):
            queries[qid] = topics[qid]
        if len(queries) == limit:
            break
    hits = bm25_search([t for _, t in corpus], list(queries.values()), workdir / "bm25", depth)
    bm25 = {q: [(corpus[h][0], s) for h, s in ranked] for q, ranked in zip(queries, hits)}
    store, coded = dev_stores(base, corpus, workdir, dev_codec)
    return DevDomain(queries, {q: judged[q] for q in queries}, bm25, store, coded, dict(corpus))


def beir_training_pairs(folder: Path, split: str, dev: DevDomain, out: Path) -> tuple[Path, dict]:
    """``split``'s judged pairs of a BEIR folder whose query is not in ``dev`` and whose document is not judged in
    the folder's test qrels, written as query<TAB>passage to ``out``; with the counts."""
    test = {d for f in folder.glob("*test*.tsv") for docs in read_qrels(str(f)).values() for d in docs}
    topics = read_topics(str(folder / "queries.jsonl"))
    judged = split_qrels(folder, split)
    wanted = {(q, d) for q, docs in judged.items() for d, r in docs.items() if r > 0 and q not in dev.queries and q in topics}
    documents = {d for _, d in wanted}
    texts = {doc.docid: doc.text for doc in read_corpus(folder) if doc.docid in documents}
    kept = sorted((q, d) for q, d in wanted if d in texts and d not in test)
    out.write_text("".join(f"{' '.join(topics[q].split())}\t{' '.join(texts[d].split())}\n" for q, d in kept))
    return out, {"pairs": len(kept), "queries": len({q for q, _ in kept}),
                 "left_out_judged_in_test": sum(d in test for _, d in wanted)}


def student_scores(qlm: QueryLikelihoodModel, domain: DevDomain) -> dict[str, np.ndarray]:
    """The model's score of each dev query's BM25 candidates, read from the store the student is scored from."""
    reranker = DecoderReranker(qlm, domain.student_store, batch_size=100)
    return {q: reranker.score(domain.queries[q], [d for d, _ in domain.bm25[q]], qid=q) for q in domain.queries}


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


def choose_alpha(row: dict) -> tuple[str, float]:
    """(alpha, mean dev nDCG@10 over the row's domains): the best mean among alphas at or above BM25 (alpha 1,
    which always qualifies) on every domain, ties to the smaller alpha."""
    domains = [row] + list(row.get("beir", {}).values())
    mean = {a: sum(d["alpha"][a] for d in domains) / len(domains) for a in row["alpha"]}
    safe = [a for a in mean if all(d["alpha"][a] >= d["alpha"]["1.0"] for d in domains)]
    best = max(safe, key=lambda a: (mean[a], -float(a)))
    return best, round(mean[best], 4)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
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
    ap.add_argument("--unlabelled-queries", nargs="*", default=[])
    ap.add_argument("--dev-beir", nargs="*", default=[], metavar="NAME=FOLDER")
    ap.add_argument("--dev-beir-split", default="train")
    ap.add_argument("--train-beir", default=None, metavar="NAME")
    ap.add_argument("--train-beir-repeat", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="where the student trains and the dev split is scored")
    ap.add_argument("--copy", default="none", choices=COPY_KINDS,
                    help="train copy-aware scoring with a learned gate (the dev split's stores then need token ids)")
    ap.add_argument("--copy-lr", type=float, default=None, help="the gate's own learning rate [default: --lr]")
    ap.add_argument("--objective", default="distil", choices=DISTIL_OBJECTIVES,
                    help="what the teacher's ranking is taught to: the query log-likelihood or the relevance label")
    ap.add_argument("--label-adds-likelihood", action="store_true",
                    help="label-distil: the score is the relevance token plus the query log-likelihood")
    ap.add_argument("--codec", default=None, help="train on states through this store codec (quantisation-aware)")
    ap.add_argument("--dev-codec", default=None, help="score the student from dev stores written with this codec")
    return ap.parse_args(argv)


@dataclass
class Split:
    """What a run trains on and is measured on: the dev domains and the training configuration."""

    nq: DevDomain
    domains: dict[str, DevDomain]
    config: TrainConfig


def prepare(args: argparse.Namespace, work: Path, record: dict, base: QueryLikelihoodModel) -> Split:
    """The dev split (NQ-QED dev, and each ``--dev-beir`` domain), the training pairs kept apart from it, and the
    training configuration; what was kept and dropped goes into ``record``."""
    train = read_pairs(training_files(Path(args.train_dir)))
    dev = read_pairs([str(Path(args.train_dir) / "nq_qed/qed_nq_dev.tsv")])
    pool, queries, qrels, bm25 = dev_split(train, dev, args.dev_queries, work, args.depth)
    training_queries = {norm(p.query) for p in train.pairs}
    base = QueryLikelihoodModel.from_pretrained(args.base, device=args.device)
    domains = {}
    for spec in args.dev_beir:
        name, _, folder = spec.partition("=")
        domains[name] = beir_domain(Path(folder), args.dev_beir_split, args.dev_queries, work / f"dev-{name}", args.depth,
                                    base, training_queries, args.dev_codec)
    test_topics = {t: {norm(q) for q in read_topics(t).values()} for t in args.test_topics}
    extra_pairs = []
    if args.train_beir:
        folder = Path(dict(spec.split("=", 1) for spec in args.dev_beir)[args.train_beir])
        extra, record["train_beir"] = beir_training_pairs(folder, args.dev_beir_split, domains[args.train_beir],
                                                          work / f"train-{args.train_beir}.tsv")
        extra_pairs = [str(extra)] * args.train_beir_repeat
        training_queries |= {norm(pair.query) for pair in read_pairs([str(extra)]).pairs}
    unlabelled_file = None
    if args.unlabelled_queries:
        dev_texts = {norm(q) for q in queries.values()} | {norm(q) for d in domains.values() for q in d.queries.values()}
        given = {norm(q): q for t in args.unlabelled_queries for q in read_topics(t).values()}
        kept = [q for key, q in given.items() if key not in dev_texts and not any(key in t for t in test_topics.values())]
        unlabelled_file = work / "unlabelled-queries.tsv"
        unlabelled_file.write_text("".join(f"u{i}\t{q}\n" for i, q in enumerate(kept)))
        record["unlabelled_queries"] = {"given": len(given), "kept": len(kept),
                                        "shared_with_dev": sum(k in dev_texts for k in given),
                                        "shared_with_test_topics": {t: len(given.keys() & texts) for t, texts in test_topics.items()}}
        training_queries |= {norm(q) for q in kept}
    record["split"] = {"training_pairs": len(train.pairs), "training_passages": len(train.passages),
                       "dev_queries": len(queries), "pool": len(pool), "depth": args.depth,
                       "dev_queries_with_positive_in_depth": sum(any(str(h) in qrels[q] for h, _ in hits) for q, hits in bm25.items()),
                       "beir_dev": {n: {"split": args.dev_beir_split, "queries": len(d.queries),
                                        "with_relevant_in_depth": sum(any(doc in d.qrels[q] for doc, _ in d.bm25[q]) for q in d.queries),
                                        "shared_with_test_topics": {t: len({norm(q) for q in d.queries.values()} & texts)
                                                                    for t, texts in test_topics.items()}}
                                    for n, d in domains.items()},
                       "test_topics_shared_with_training": {t: len(texts & training_queries) for t, texts in test_topics.items()}}

    cfg = TrainConfig(pairs=training_files(Path(args.train_dir)) + extra_pairs, output=str(work / "model"), base=args.base,
                      objective=args.objective, label_adds_likelihood=args.label_adds_likelihood, negatives="bm25", num_negatives=args.num_negatives, steps=args.steps,
                      batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup_steps, freeze_encoder=True,
                      encoder_store=str(work / "store"), max_length=192, max_query_length=32, bf16=False,
                      teacher=args.teacher, teacher_alpha=args.teacher_alpha, temperature=args.temperature,
                      mle_weight=args.mle_weight, checkpoint_every=100, max_minutes=args.max_minutes, threads=args.threads,
                      device=args.device, copy=args.copy, copy_lr=args.copy_lr, codec=args.codec,
                      unlabelled_queries=[str(unlabelled_file)] if unlabelled_file else [])
    return Split(nq_domain(base, pool, queries, qrels, bm25, work, args.dev_codec), domains, cfg)


class DevCurve:
    """The run's JSON record: the teachers' figures and the student's row at each evaluated step, written (and
    plotted) as each row is measured, so that a resumed run fills in only what is missing."""

    def __init__(self, record: dict, out: Path, base: QueryLikelihoodModel, nq: DevDomain, domains: dict[str, DevDomain]):
        self.record, self.out, self.base, self.nq, self.domains = record, out, base, nq, domains

    def save(self) -> None:
        self.out.write_text(json.dumps(self.record, indent=1) + "\n")

    def teacher_figures(self, domain: DevDomain) -> dict:
        ids = sorted({d for hits in domain.bm25.values() for d, _ in hits})
        passage_emb = dict(zip(ids, embed_stored(domain.store, ids)))
        query_emb = embed_texts(self.base, list(domain.queries.values()), 192)
        cosine = {q: np.array([float(passage_emb[d] @ e) for d, _ in domain.bm25[q]]) for q, e in zip(domain.queries, query_emb)}
        bm25_alone = {q: np.array([s for _, s in hits]) for q, hits in domain.bm25.items()}
        return {"bm25": ndcg(domain.qrels, run_of(bm25_alone, domain.bm25, None)),
                "biencoder": figures(domain.qrels, cosine, domain.bm25)}

    def add_teachers(self) -> None:
        if "teachers" not in self.record:
            self.record["teachers"] = self.teacher_figures(self.nq)
        for name, domain in self.domains.items():
            if name not in self.record["teachers"].setdefault("beir", {}):
                self.record["teachers"]["beir"][name] = self.teacher_figures(domain)
        self.save()

    @staticmethod
    def student_figures(qlm: QueryLikelihoodModel, domain: DevDomain) -> dict:
        return figures(domain.qrels, student_scores(qlm, domain), domain.bm25)

    def missing(self, step: int) -> bool:
        row = next((r for r in self.record["curve"] if r["step"] == step), None)
        return row is None or "alone" not in row or any(n not in row.get("beir", {}) for n in self.domains)

    def evaluate(self, qlm: QueryLikelihoodModel, step: int, minutes: float) -> None:
        """The row of ``step``: what it lacks (every domain for a new row) is measured and added."""
        qlm.model.eval()
        start = time.time()
        row = next((r for r in self.record["curve"] if r["step"] == step), None) or {"step": step}
        row.setdefault("train_minutes", round(minutes, 1))
        if "alone" not in row:
            row.update(self.student_figures(qlm, self.nq))
        for name, domain in self.domains.items():
            if name not in row.setdefault("beir", {}):
                row["beir"][name] = self.student_figures(qlm, domain)
        row["eval_s"] = round(row.get("eval_s", 0) + time.time() - start, 1)
        if self.domains:
            row["chosen_alpha"], row["chosen_alpha_mean"] = choose_alpha(row)
        self.record["curve"] = sorted([r for r in self.record["curve"] if r["step"] != step] + [row], key=lambda r: r["step"])
        self.save()
        print(json.dumps(row), flush=True)
        plot(self.record, self.out.with_suffix(".png"))


def train_along(curve: DevCurve, cfg: TrainConfig, args: argparse.Namespace) -> Trainer:
    """Trains (resuming), measuring the dev split every ``--eval-every`` steps; stops early at ``--max-minutes``."""
    if curve.missing(0):
        curve.evaluate(curve.base, 0, 0.0)
    trainer = Trainer.from_config(cfg)
    curve.record["config"] = {k: v for k, v in vars(args).items() if k not in ("json", "workdir", "train_dir", "test_topics")}
    curve.record["training_queries_after_filter"] = len(trainer.data.pairs)
    trainer.resume()
    at_evaluation = trainer.step % args.eval_every == 0 or trainer.step == trainer.total_steps
    if trainer.step > 0 and at_evaluation and curve.missing(trainer.step):  # its row lacks a domain (added since, or cut short)
        curve.evaluate(trainer.qlm, trainer.step, trainer.elapsed / 60)
    while trainer.step < trainer.total_steps:
        stop = (trainer.step // args.eval_every + 1) * args.eval_every
        trainer.run(stop_at=stop)
        if trainer.step < stop and trainer.step < trainer.total_steps:  # out of --max-minutes: resume later
            break
        curve.evaluate(trainer.qlm, trainer.step, trainer.elapsed / 60)
    return trainer


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    work, out = Path(args.workdir), Path(args.json)
    work.mkdir(parents=True, exist_ok=True)
    record = json.loads(out.read_text()) if out.is_file() else {"curve": []}
    base = QueryLikelihoodModel.from_pretrained(args.base, device=args.device)
    split = prepare(args, work, record, base)
    curve = DevCurve(record, out, base, split.nq, split.domains)
    curve.add_teachers()
    trainer = train_along(curve, split.config, args)
    if args.package and trainer.step == trainer.total_steps:
        package(work / "model" / "package", Path(args.package), record, out)


def package(built: Path, target: Path, record: dict, curve_path: Path) -> None:
    """The decoder package with the alpha ``choose_alpha`` picks at the last step."""
    import shutil

    from pyserini_decrank.model import ScoringConfig

    last = max(record["curve"], key=lambda r: r["step"])
    alpha, mean = choose_alpha(last)
    target.mkdir(parents=True, exist_ok=True)
    for item in built.iterdir():
        shutil.copy2(item, target / item.name)
    config = ScoringConfig.load(target)
    config.alpha = float(alpha)
    config.save(target)
    record["chosen_alpha"] = float(alpha)
    curve_path.write_text(json.dumps(record, indent=1) + "\n")
    shutil.copy2(curve_path, target / "dev_curve.json")
    print(f"packaged into {target} with alpha {alpha} (mean dev nDCG@10 over the domains {mean})", flush=True)


def plot(record: dict, path: Path) -> None:
    """One panel per dev domain: the student alone and with BM25 along the steps, its teachers as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = sorted(record["curve"], key=lambda r: r["step"])
    teachers = record.get("teachers", {})
    panels = [("NQ-QED dev", lambda r: r, teachers)]
    for name, figs in teachers.get("beir", {}).items():
        panels.append((f"{name} ({record.get('config', {}).get('dev_beir_split', 'train')} queries)",
                       lambda r, n=name: r.get("beir", {}).get(n), figs))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (title, pick, teacher) in zip(axes[0], panels):
        rows = [(r["step"], pick(r)) for r in curve if pick(r)]
        steps = [s for s, _ in rows]
        ax.plot(steps, [f["alone"] for _, f in rows], "o-", label="student alone")
        ax.plot(steps, [f["alpha"]["0.5"] for _, f in rows], "s-", label="student + BM25, alpha 0.5")
        ax.plot(steps, [max(f["alpha"].values()) for _, f in rows], "^:", label="student + BM25, best alpha")
        if teacher:
            ax.axhline(teacher["bm25"], color="grey", ls="--", label="BM25")
            ax.axhline(teacher["biencoder"]["alone"], color="green", ls="--", label="bi-encoder (teacher)")
            ax.axhline(max(teacher["biencoder"]["alpha"].values()), color="green", ls=":", label="BM25 + bi-encoder, best alpha")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("distil steps")
        ax.set_ylabel("dev nDCG@10")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    try:
        main()
    except DecrankError as exc:  # a missing file or split: one line, as from the decrank CLI
        raise SystemExit(f"error: {exc}") from None
