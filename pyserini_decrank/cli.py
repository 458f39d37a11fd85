"""``decrank``: a thin command line over the Python API (each command is a few calls into it)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from .bench import DECODER_PATHS
from .errors import DecrankError
from .encode import ON_DUPLICATE
from .model import ATTENTIONS, COPY_KINDS, CROSS_ATTENTIONS, DEFAULT_MODEL, HEAD_PRECISIONS, PRECISIONS
from .rerank import METHODS, MODEL_ALPHA
from .train import NEGATIVE_KINDS, OBJECTIVES, TEACHERS


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"decrank: warning: {message}", err=True)


class _Group(click.Group):
    """Turns every user-caused error into one line on stderr, with no traceback (warnings too)."""

    def invoke(self, ctx: click.Context):
        import warnings

        warnings.showwarning = _warning_line
        previous = signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM takes SIGINT's one path: see _interrupt
        try:
            return super().invoke(ctx)
        except DecrankError as exc:
            click.echo(f"decrank: error: {exc.cli_message}", err=True)
            sys.exit(2)
        except OSError as exc:  # the last resort: each known write already names what it could not write
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"decrank: error: {where}{exc.strerror or exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("decrank: interrupted; a store keeps its finished shards (run encode again to resume); "
                       "a run file is unchanged, the queries done are in RUN.partial", err=True)
            sys.exit(130)
        finally:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame) -> None:
    """SIGTERM as SIGINT: the same clean stop (a store keeps its whole shards, a run its partial file)."""
    raise KeyboardInterrupt


class AtLeast(click.ParamType):
    """A number of at least ``low`` (above it, with ``strict``); anything else is one ``decrank: error:``
    line naming the option, like every other error the user can cause."""

    def __init__(self, low: float, kind: type = int, strict: bool = False) -> None:
        self.low, self.kind, self.strict = low, kind, strict
        self.name = f"{kind.__name__} {'>' if strict else '>='} {low:g}"

    def convert(self, value, param, ctx):
        option = param.opts[0] if param is not None and param.opts else "the value"
        try:
            number = self.kind(value)
        except (TypeError, ValueError):
            raise DecrankError(f"{option} must be {'an integer' if self.kind is int else 'a number'}, not {value!r}") from None
        if number != number or (number <= self.low if self.strict else number < self.low):
            raise DecrankError(f"{option} must be {'above' if self.strict else 'at least'} {self.low:g}, not {value}")
        return number


POSITIVE = AtLeast(1)


class AlphaOrModel(AtLeast):
    """A weight in [0, 1], or ``model``: the alpha the model carries."""

    def __init__(self) -> None:
        super().__init__(0, float)
        self.name = "number in [0, 1] or 'model'"

    def convert(self, value, param, ctx):
        if value == MODEL_ALPHA:
            return value
        number = super().convert(value, param, ctx)
        if number > 1:
            option = param.opts[0] if param is not None and param.opts else "the value"
            raise DecrankError(f"{option} must lie in [0, 1], not {value}")
        return number


class CopyOption(click.ParamType):
    """A copy spec (``CopySpec.parse``): a bad one is one error line naming the option."""

    name = "none | LAMBDA | KIND:LAMBDA | KIND"

    def convert(self, value, param, ctx):
        from .model import CopySpec

        try:
            return str(CopySpec.parse(value))
        except DecrankError as exc:
            raise DecrankError(f"--copy {value}: {str(exc).split(': ', 1)[-1]}") from None


def _quiet_transformers() -> None:
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def _query_time(threads: int | None) -> None:
    """Set-up of the commands that score queries: threads, and an allocator that keeps freed memory."""
    from ._malloc import retain_freed_memory

    retain_freed_memory()
    _threads(threads)


def _threads(threads: int | None) -> None:
    """Torch's and faiss's threads both: faiss's OpenMP pool otherwise takes every core and, decoding a
    store's codes beside torch's threads, oversubscribes a many-core machine."""
    if threads:
        import faiss
        import torch

        torch.set_num_threads(threads)
        faiss.omp_set_num_threads(threads)


def _ray_options(command):
    """--ray [ADDRESS] and the size of its workers, shared by encode and rerank."""
    for option in reversed([
        click.option("--ray", "ray_address", is_flag=False, flag_value="auto", default=None, metavar="[ADDRESS]",
                     help="Run on a Ray cluster: host:port, ray://host:port, or alone for the one `ray start` "
                          "began here (or RAY_ADDRESS). Paths must be readable at the same place on every node."),
        click.option("--ray-workers", type=POSITIVE, default=None, help="Workers [default: as many as the cluster holds]."),
        click.option("--ray-cpus", type=AtLeast(0, float, strict=True), default=1.0, show_default=True,
                     help="CPUs per worker (its torch threads)."),
        click.option("--ray-gpus", type=AtLeast(0, float), default=None,
                     help="GPUs per worker [default: 1 where the cluster has GPUs, else 0]."),
    ]):
        command = option(command)
    return command


def _ray_settings(address, workers, cpus, gpus):
    from .cluster import RayOptions

    return RayOptions(address=address, workers=workers, cpus_per_worker=cpus, gpus_per_worker=gpus)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pyserini-decrank")
def main() -> None:
    """ED2LM re-ranking for Pyserini: encode a corpus once, re-rank BM25 runs with the decoder alone."""


@main.command()
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Model folder, hub id or packaged name.")
@click.option("--corpus", required=True, help="BEIR folder, JsonCollection .jsonl/folder, .tsv, TREC SGML, Lucene index (--storeRaw) or retrieve-results .json.")
@click.option("--store", required=True, type=click.Path(file_okay=False), help="Store folder (created, or resumed if it exists).")
@click.option("--max-length", type=POSITIVE, default=None, help="Document tokens kept [default: the model's].")
@click.option("--batch-size", type=POSITIVE, default=None, help="Documents per forward pass [default: 32, or the store's own on resume].")
@click.option("--shard-size", type=POSITIVE, default=None, help="Documents per shard [default: 100000, or the store's own on resume].")
@click.option("--codec", default="fp16", show_default=True,
              help="fp32, fp16, bf16, or a faiss factory string (SQ8, PQ64, OPQ32,PQ32, ...): a codec trained once on "
                   "the first token states, saved in the store.")
@click.option("--codec-train-tokens", type=POSITIVE, default=None,
              help="Token states a faiss codec trains on: all of the first shard's up to this many, else a fixed-seed "
                   "sample of them [default: 20000, or the store's own on resume].")
@click.option("--document-prefix", default=None, help="Text put before every document [default: the model's].")
@click.option("--cross-kv", is_flag=True, help="Store every decoder layer's cross-attention keys/values instead of the "
              "encoder states: faster queries, 2 x layers x the size, tied to this decoder.")
@click.option("--on-duplicate", type=click.Choice(ON_DUPLICATE), default="error", show_default=True,
              help="A docid seen twice in the corpus: an error, or keep its first document.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--precision", type=click.Choice(list(PRECISIONS)), default="fp32", show_default=True,
              help="Compute precision of the encoder's matrix products: bf16 on a GPU or a CPU with bf16 instructions "
                   "(the states then differ from fp32 ones by bf16 rounding; the store keeps them in --codec).")
@click.option("--threads", type=POSITIVE, default=None, help="Torch threads [default: torch's].")
@_ray_options
def encode(model, corpus, store, max_length, batch_size, shard_size, codec, codec_train_tokens, document_prefix, cross_kv,
           on_duplicate, device, precision, threads, ray_address, ray_workers, ray_cpus, ray_gpus) -> None:
    """Encode every document of CORPUS once into an encoder-state store."""
    _quiet_transformers()
    _threads(threads)
    from .io import read_corpus

    content = "cross-kv" if cross_kv else "encoder-states"
    options = dict(max_length=max_length, batch_size=batch_size, shard_size=shard_size, codec=codec, content=content,
                   on_duplicate=on_duplicate, codec_train_tokens=codec_train_tokens)
    if ray_address:
        from .cluster import encode_corpus_on_ray

        stats = encode_corpus_on_ray(model, read_corpus(corpus), store,
                                     _ray_settings(ray_address, ray_workers, ray_cpus, ray_gpus),
                                     document_prefix=document_prefix, precision=precision, **options)
    else:
        from .encode import encode_corpus
        from .model import QueryLikelihoodModel

        qlm = QueryLikelihoodModel.from_pretrained(model, device=device, precision=precision, document_prefix=document_prefix)
        stats = encode_corpus(qlm, read_corpus(corpus), store, **options)
    click.echo(f"encoded {stats.encoded} documents ({stats.skipped} already stored or repeated); "
               f"{stats.total_in_store} in {store}", err=True)


@main.command()
@click.option("--method", type=click.Choice(METHODS), default="decoder", show_default=True,
              help="decoder: ED2LM over stored states; cross: monoT5-style cross-attention (castorini/monot5-*); "
                   "biencoder: all-MiniLM-L6-v2 cosine, embedding on the fly.")
@click.option("--model", default=None, help=f"Model folder, hub id or packaged name [default: {DEFAULT_MODEL}; the method's own].")
@click.option("--store", default=None, help="Store written by `decrank encode` with the same encoder (decoder method).")
@click.option("--corpus", default=None, help="Candidates' text, for methods that read it (cross, biencoder).")
@click.option("--topics", required=True, help="Pyserini topic name, qid<TAB>text .tsv, BEIR queries.jsonl or TREC topics.")
@click.option("--run", "run_path", required=True, type=click.Path(dir_okay=False), help="First-stage TREC run.")
@click.option("--output", required=True, type=click.Path(dir_okay=False))
@click.option("--depth", type=POSITIVE, default=100, show_default=True, help="Candidates re-ranked per query; the rest follow in first-stage order.")
@click.option("--batch-size", type=POSITIVE, default=32, show_default=True, help="Candidates per forward pass.")
@click.option("--query-batch", type=POSITIVE, default=1, show_default=True,
              help="Pool the candidates of this many queries before cutting them into --batch-size batches, so that one "
                   "batch holds several queries' candidates (on a GPU: --batch-size of about query-batch x depth).")
@click.option("--alpha", type=AlphaOrModel(), default=None,
              help="Weight of the first-stage score, interpolated after min-max normalising both per query; "
                   "`model`: the alpha the decoder model carries (chosen on its dev split).")
@click.option("--interpolated", nargs=2, type=(AlphaOrModel(), click.Path(dir_okay=False)), multiple=True, metavar="ALPHA PATH",
              help="Also write the run at this --alpha (a number or `model`) to PATH, from the same scores (the model runs once); repeatable.")
@click.option("--tag", default="decrank", show_default=True)
@click.option("--skip-missing", is_flag=True, help="Drop candidates the store lacks instead of failing.")
@click.option("--precision", type=click.Choice(list(PRECISIONS)), default="fp32", show_default=True,
              help="Compute precision of the model's matrix products (log-softmax stays fp32).")
@click.option("--head-precision", type=click.Choice(HEAD_PRECISIONS), default="compute", show_default=True,
              help="Decoder method: fp32 keeps the vocabulary projection in fp32 under --precision bf16/fp16 (closer rankings, slower).")
@click.option("--attention", type=click.Choice(ATTENTIONS), default=None,
              help="Attention kernel [default: the library's, sdpa]; eager was faster for the decoder's short rows on a 2-core CPU.")
@click.option("--cross-attention", type=click.Choice(CROSS_ATTENTIONS), default="auto", show_default=True,
              help="Decoder method: how the decoder reads stored encoder states. absorbed folds the key/value projections "
                   "into the query (same scores, fewer FLOPs); project runs the library's; auto absorbs where the family is known.")
@click.option("--copy", type=CopyOption(), default=None,
              help="Decoder method: mix each query token's probability with copying it from the document: LAMBDA or "
                   "uniform:LAMBDA (term frequency / length, any model), attention:LAMBDA (the last cross-attention "
                   "layer), uniform or attention alone (the model's learned gate), none [default: what the model declares].")
@click.option("--document-prefix", default=None, help="As given to `encode` [default: the model's].")
@click.option("--query-prefix", default=None, help="Text put before every query [default: the model's].")
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=POSITIVE, default=None)
@_ray_options
def rerank(method, model, store, corpus, topics, run_path, output, depth, batch_size, query_batch, alpha, interpolated, tag, skip_missing,
           precision, head_precision, cross_attention, attention, copy, document_prefix, query_prefix, device, threads,
           ray_address, ray_workers, ray_cpus, ray_gpus) -> None:
    """Re-rank a first-stage run (by default with the decoder over stored encoder states)."""
    _quiet_transformers()
    _query_time(threads)
    from .io import check_tag, read_run, read_topics, refuse_overwriting_inputs
    from .rerank import load_reranker

    check_tag(tag, "--tag")
    refuse_overwriting_inputs([("--output", output), *(("--interpolated", path) for _, path in interpolated)],
                              [("--run", run_path), ("--topics", topics), ("--corpus", corpus), ("--store", store),
                               ("--model", model)])
    queries = read_topics(topics)
    run = read_run(run_path)
    if ray_address:  # every worker opens them itself, from its own working folder
        store, corpus = [str(Path(p).resolve()) if p and Path(p).exists() else p for p in (store, corpus)]
        model = str(Path(model).resolve()) if model and Path(model).exists() else model
    options = dict(method=method, model=model, store=store, corpus=corpus,
                   docids={h.docid for hits in run.values() for h in hits[:depth]}, batch_size=batch_size,
                   query_batch=query_batch, alpha=alpha, skip_missing=skip_missing, device=device, precision=precision,
                   attention=attention, document_prefix=document_prefix, query_prefix=query_prefix,
                   head_precision=head_precision, cross_attention=cross_attention, copy=copy)
    reranker = load_reranker(**options)
    resolved_interpolated = [(reranker.resolve_alpha(a, "interpolated"), path) for a, path in interpolated]
    if ray_address:
        from .cluster import write_run_on_ray

        write_run_on_ray(reranker, options, queries, run, output, depth=depth, tag=tag, topics_name=topics,
                         interpolated=resolved_interpolated,
                         ray=_ray_settings(ray_address, ray_workers, ray_cpus, ray_gpus))
    else:
        reranker.write_run(queries, run, output, depth=depth, tag=tag, topics_name=topics,
                           interpolated=resolved_interpolated)


@main.command(name="eval")
@click.option("--qrels", required=True, help="Qrels file (TREC or BEIR TSV) or Pyserini qrels name.")
@click.option("-m", "--measure", "measures", multiple=True,
              help="trec_eval measure, trec_eval's syntax: `P.5,10`, bare `ndcg_cut` for its default cut-offs; "
                   "recip_rank.N is MRR@N (trec_eval -M N). Repeatable [default: ndcg_cut.10, recip_rank.10, recall.100].")
@click.option("-l", "--relevance-level", type=int, default=1, show_default=True, help="Lowest grade counted relevant by binary measures, 0 or more (trec_eval -l).")
@click.option("-c", "--complete", is_flag=True, help="Average over every judged query; one the run lacks counts 0 (trec_eval -c).")
@click.argument("runs", nargs=-1, required=True, type=click.Path(dir_okay=False))
def evaluate(qrels, measures, relevance_level, complete, runs) -> None:
    """trec_eval measures of RUNS side by side, one table row per run."""
    from .evaluate import DEFAULT_MEASURES, evaluate_run, format_table
    from .io import read_qrels, read_run

    measures = measures or DEFAULT_MEASURES
    judged = read_qrels(qrels)
    names = [Path(r).name for r in runs]
    if len(set(names)) < len(names):  # same file name in several folders: show the folders too
        names = [str(Path(r)) for r in runs]
    rows = [evaluate_run(judged, read_run(r), measures, relevance_level, name=n, complete=complete)
            for r, n in zip(runs, names)]
    click.echo(format_table(rows, measures))


@main.command()
@click.option("--base", default="minilm", show_default=True, help="Hugging Face encoder-decoder (id or folder), or `minilm` to warm-start from all-MiniLM-L6-v2.")
@click.option("--pairs", multiple=True, required=True, help="query<TAB>passage TSV (.gz too) or BEIR folder; repeatable.")
@click.option("--split", default="train", show_default=True, help="qrels split of BEIR folders.")
@click.option("--output", required=True, type=click.Path(file_okay=False), help="Model folder; an unfinished run there resumes.")
@click.option("--objective", type=click.Choice(list(OBJECTIVES)), default="mle", show_default=True,
              help="distil: the teacher's ranking of BM25-mined lists, taught to the query log-likelihood; label-distil: taught "
                   "to the relevance token after the query (plus the log-likelihood with --label-adds-likelihood).")
@click.option("--negatives", type=click.Choice(NEGATIVE_KINDS), default="in-batch", show_default=True, help="For unlikelihood, rll, label and distil (bm25).")
@click.option("--num-negatives", type=POSITIVE, default=3, show_default=True, help="Per training query (distil: its list is the positive and these).")
@click.option("--mine-depth", type=POSITIVE, default=20, show_default=True, help="BM25 hits mined per training query.")
@click.option("--teacher", type=click.Choice(TEACHERS), default="biencoder", show_default=True,
              help="distil: the frozen encoder mean-pooled (the all-MiniLM-L6-v2 bi-encoder), or that mixed with BM25.")
@click.option("--teacher-alpha", type=AtLeast(0, float), default=0.5, show_default=True, help="distil, bm25+biencoder: BM25's weight.")
@click.option("--temperature", type=AtLeast(0, float, strict=True), default=0.05, show_default=True, help="distil: the teacher's softmax temperature.")
@click.option("--mle-weight", type=AtLeast(0, float), default=0.1, show_default=True, help="distil: weight of MLE on the positive.")
@click.option("--unlabelled-queries", multiple=True, help="distil: topics file (or Pyserini topic name) of queries without a passage; "
                   "the teacher ranks the candidates mined for them. Repeatable.")
@click.option("--steps", type=POSITIVE, default=None, help="Optimiser steps [default: from --epochs].")
@click.option("--epochs", type=AtLeast(0, float, strict=True), default=1.0, show_default=True)
@click.option("--batch-size", type=POSITIVE, default=32, show_default=True)
@click.option("--lr", type=AtLeast(0, float, strict=True), default=3e-4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--decoder-layers", type=POSITIVE, default=6, show_default=True, help="With --base minilm.")
@click.option("--freeze-encoder", is_flag=True, help="Train the decoder only; stores stay valid for every such decoder.")
@click.option("--encoder-store", default=None, help="With --freeze-encoder: read (and first write) the passages' encoder states here.")
@click.option("--max-length", type=POSITIVE, default=192, show_default=True)
@click.option("--max-query-length", type=POSITIVE, default=32, show_default=True)
@click.option("--label-adds-likelihood", is_flag=True, help="label, label-distil: score = relevance token + query log-likelihood.")
@click.option("--copy", type=click.Choice(COPY_KINDS), default="none", show_default=True,
              help="Copy-aware scoring trained with the model: a learned gate mixes each query token's probability with "
                   "copying it from the document, uniformly (term frequency / length) or by the last cross-attention layer.")
@click.option("--copy-lr", type=AtLeast(0, float, strict=True), default=None,
              help="With --copy: the gate's own learning rate [default: --lr].")
@click.option("--codec", default=None,
              help="Quantisation-aware: train the decoder on states that went through this store codec (PQ64, "
                   "OPQ64,PQ64, ... trained once on the training passages as `encode --codec` trains it); the model "
                   "declares it, and `rerank` warns when a store's codec differs. Needs --freeze-encoder.")
@click.option("--checkpoint-every", type=POSITIVE, default=200, show_default=True)
@click.option("--max-minutes", type=AtLeast(0, float), default=None, help="Stop (and save) after this much training time.")
@click.option("--threads", type=POSITIVE, default=None)
@click.option("--device", default="cpu", show_default=True, help="Where to train (cpu, cuda, cuda:1); a run may resume on another.")
@click.option("--dataset", "card_datasets", multiple=True,
              help="Hub dataset id the pairs come from, for the model card's front matter; repeatable.")
def train(**options) -> None:
    """Fine-tune an encoder-decoder as a document-to-query generator."""
    _quiet_transformers()
    from .train import TrainConfig, train as run_training

    options["pairs"] = list(options["pairs"])
    options["unlabelled_queries"] = list(options["unlabelled_queries"])
    options["card_datasets"] = list(options["card_datasets"])
    output = run_training(TrainConfig(**options))
    click.echo(f"saved model to {output}", err=True)


@main.command()
@click.option("--shape", "shapes", multiple=True, default=["t5-base"], show_default=True,
              help="t5-small, t5-base, t5-large (random weights), or a model folder, id or packaged name; repeatable.")
@click.option("--depth", "depths", multiple=True, type=POSITIVE, default=[100], show_default=True, help="Candidates per query; repeatable.")
@click.option("--doc-tokens", "doc_tokens", multiple=True, type=POSITIVE, default=[80], show_default=True, help="Repeatable.")
@click.option("--query-tokens", type=POSITIVE, default=10, show_default=True)
@click.option("--precision", "precisions", multiple=True, type=click.Choice(list(PRECISIONS)), default=["fp32"], show_default=True, help="Repeatable.")
@click.option("--queries", type=POSITIVE, default=5, show_default=True,
              help="Timed query batches per configuration (after one warm-up).")
@click.option("--query-batch", "query_batches", multiple=True, type=POSITIVE, default=[1], show_default=True,
              help="Queries whose candidates go through both paths together (as `rerank --query-batch`); repeatable.")
@click.option("--batch-size", type=POSITIVE, default=None,
              help="Rows per forward pass of either path [default: 100 on a CPU; on a GPU a whole query batch, up to 8192].")
@click.option("--device", default="cpu", show_default=True, help="Where both paths run (cpu, cuda, cuda:1).")
@click.option("--threads", type=POSITIVE, default=None, help="Torch threads [default: torch's].")
@click.option("--content", "contents", multiple=True, type=click.Choice(DECODER_PATHS),
              default=list(DECODER_PATHS), show_default=True,
              help="What the decoder path reads and how: encoder states through the key/value projections, stored "
                   "cross-attention keys/values, or encoder states with the projections absorbed; repeatable.")
@click.option("--codec", "codecs", multiple=True, default=[None],
              help="Codec of the store the decoder reads (fp16, SQ8, PQ64, ... trained on the candidates' states) "
                   "[default: numbers in the compute precision]; repeatable. Cross-kv stores take fp32/fp16/bf16 only.")
@click.option("--attention", type=click.Choice(ATTENTIONS), default=None,
              help="Attention kernel of both paths [default: the library's, sdpa].")
@click.option("--biencoder", is_flag=True, help="Also time all-MiniLM-L6-v2 embedding the candidates on the fly.")
@click.option("--copy", type=CopyOption(), default="none", show_default=True,
              help="Also time the decoder path with this copy-aware scoring (as `rerank --copy`), alternating with the plain one.")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False), help="Write the results here.")
@click.option("--plot", "plot_path", default=None, type=click.Path(dir_okay=False), help="PNG plot [default: beside --json].")
def bench(shapes, depths, doc_tokens, query_tokens, precisions, queries, query_batches, batch_size, device, threads, contents,
          codecs, attention, biencoder, copy, json_path, plot_path) -> None:
    """Time cross-attention against decoder-only re-ranking side by side, one process, same candidates."""
    _quiet_transformers()
    _query_time(threads)
    from itertools import product

    from .bench import CrossTiming, bench_one, codec_fits_content, load_bench_model, plot, save_json
    from .evaluate import format_rows
    from .model import check_device, set_attention

    check_device(device)
    results = []
    for shape in shapes:
        model, tokenizer = load_bench_model(shape)
        set_attention(model, attention)
        for depth, tokens, precision, query_batch in product(depths, doc_tokens, precisions, query_batches):
            cross = CrossTiming()  # the cross-attention baseline is timed once per configuration, beside every row
            for content, codec in product(contents, codecs):
                if not codec_fits_content(codec, content):
                    click.echo(f"decrank: skipping --content {content} with --codec {codec}: a cross-kv store keeps "
                               "numbers (fp32, fp16, bf16)", err=True)
                    continue
                result = bench_one(model, tokenizer, shape, depth, tokens, query_tokens, precision, queries=queries,
                                   batch_size=batch_size, with_biencoder=biencoder, content=content, codec=codec,
                                   cross_timing=cross, copy=copy, device=device, query_batch=query_batch)
                results.append(result)
                if json_path:  # every finished row is kept, should a time-limited run be stopped
                    save_json(results, json_path)
                click.echo(f"{shape} {content} {result.codec} depth={depth} doc={tokens} {precision} "
                           f"queries/batch={query_batch}: cross {result.cross_ms:.1f} ms, decoder {result.decoder_ms:.1f} ms "
                           f"per query, {result.ratio:.2f}x; decoder "
                           f"{result.decoder_gflops:.0f} of {result.peak_gflops:.0f} GFLOP/s"
                           + (f"; with --copy {result.copy} {result.decoder_copy_ms:.1f} ms ({result.copy_overhead:+.1%})"
                              if result.decoder_copy_ms is not None else ""), err=True)
    columns = ["shape", "content", "codec", "precision", "attention", "depth", "doc_tokens", "query_batch", "cross_ms",
               "decoder_ms", "cross_queries_per_s", "decoder_queries_per_s", "ratio", "flop_ratio", "decoder_gflops",
               "peak_gflops"]
    if biencoder:
        columns.append("biencoder_ms")
    if copy != "none":
        columns += ["decoder_copy_ms", "copy_overhead"]
    rows = [{c: f"{v:.2f}" if isinstance(v := getattr(r, c), float) else v for c in columns} for r in results]
    click.echo(format_rows(rows, columns))
    if json_path:
        save_json(results, json_path)
        plot(results, plot_path or str(Path(json_path).with_suffix(".png")))


@main.group()
def store() -> None:
    """Inspect, check and transcode an encoder-state store."""


@store.command(name="info")
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of lines.")
def store_info(path, as_json) -> None:
    """Model, codec, documents, tokens, bytes per token and size on disk of the store at PATH."""
    import json

    from .store import EncoderStateStore

    info = EncoderStateStore(path).info()
    if as_json:
        click.echo(json.dumps(info))
    else:
        for key, value in info.items():
            click.echo(f"{key}: {value:.1f}" if isinstance(value, float) else f"{key}: {value}")


@store.command(name="transcode")
@click.argument("source", type=click.Path(file_okay=False))
@click.argument("target", type=click.Path(file_okay=False))
@click.option("--codec", required=True, help="The target's codec: fp32, fp16, bf16 or a faiss factory string (PQ64, ...).")
@click.option("--codec-train-tokens", type=POSITIVE, default=None,
              help="Token states a faiss codec trains on, as in `decrank encode` [default: 20000, or the target's own on resume].")
def store_transcode(source, target, codec, codec_train_tokens) -> None:
    """Write the store at SOURCE again into TARGET in another codec, without running the encoder (from an fp32
    store: the same bytes as `decrank encode --codec`); a TARGET already started is resumed."""
    from .store import transcode_store

    written = transcode_store(source, target, codec, codec_train_tokens)
    click.echo(f"transcoded {written} documents from {source} into {target} ({codec})", err=True)


@store.command(name="verify")
@click.argument("path", type=click.Path(file_okay=False))
def store_verify(path) -> None:
    """Reads every file of the store at PATH against its sha256; exit status 1 on any mismatch."""
    from .store import EncoderStateStore

    reader = EncoderStateStore(path)
    problems = reader.problems()
    for problem in problems:
        click.echo(f"decrank: corrupted: {problem}", err=True)
    files = sum(len(shard.files) for shard in reader.manifest.shards)
    click.echo(f"{path}: {files} files in {len(reader.manifest.shards)} shards, "
               f"{'all match' if not problems else f'{len(problems)} differ from'} the manifest")
    if problems:
        sys.exit(1)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []})
@click.argument("module")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def pyserini(module, args) -> None:
    """Run `python -m pyserini.MODULE ARGS` with Java 21 set up (e.g. `decrank pyserini search.lucene ...`)."""
    from ._pyserini import run_module

    run_module(module, list(args))


def run() -> None:
    """The ``decrank`` program: ``main``, and once it is done a signal no longer interrupts the interpreter's
    exit (the work is written by then; a late SIGINT would only print a traceback from its teardown)."""
    try:
        main()
    except KeyboardInterrupt:  # between the command's own handling and the exit: its work is done
        sys.exit(130)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


if __name__ == "__main__":
    run()
