"""``decrank encode --ray``: the corpus cut into the shards a single process would write, each encoded by
one of a pool of workers and listed in the manifest in order, so the store is the single-process one."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import chain
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from ..encode import EncodeBatch, EncodeStats, check_encode_options, document_batches, store_width
from ..errors import DecrankError
from ..io import Document
from ..model import QueryLikelihoodModel
from ..store import ShardInfo, StoreWriter, shard_name, store_codec, write_shard
from ._ray import RayOptions, call, connect, fitting_workers, node_name, ray_module, set_worker_threads, start_workers

Kept = tuple[str, int]  # a document the shard stores: its docid and text hash


@dataclass
class ShardPlan:
    """One shard's work: the batches holding its documents, each encoded whole (so every document's states
    equal the single-process ones) and each document kept or not (stored already, or another shard's)."""

    index: int
    batches: list[tuple[list[list[int]], list[Kept | None]]] = field(default_factory=list)
    documents: int = 0


def shard_plans(batches: Iterable[EncodeBatch], stored: dict[str, int], shard_size: int, first_index: int,
                stats: EncodeStats) -> Iterator[ShardPlan]:
    """The documents not yet stored, in encoding order, cut every ``shard_size``; a batch across a cut
    goes to both shards."""
    plan = ShardPlan(first_index)
    for batch in batches:
        new = [j for j, (doc, _) in enumerate(batch.documents) if doc.docid not in stored]
        stats.skipped += len(batch.documents) - len(new)
        while new:
            take, new = new[: shard_size - plan.documents], new[shard_size - plan.documents :]
            keep: list[Kept | None] = [None] * len(batch.documents)
            for j in take:
                keep[j] = (batch.documents[j][0].docid, batch.documents[j][1])
            plan.batches.append((batch.ids, keep))
            plan.documents += len(take)
            stats.encoded += len(take)
            if plan.documents == shard_size:
                yield plan
                plan = ShardPlan(plan.index + 1)
    if plan.documents:
        yield plan


def encode_plan(model: QueryLikelihoodModel, plan: ShardPlan, content: str
                ) -> tuple[list[str], list, list[int], list[np.ndarray]]:
    """The shard's docids, states (fp32, as the encoder gave them), text hashes and stored token ids, in
    encoding order."""
    ids, states, hashes, tokens = [], [], [], []
    for batch_ids, keep in plan.batches:
        for kept, doc_states, doc_ids in zip(keep, model.store_matrices(batch_ids, content), batch_ids):
            if kept is not None:
                ids.append(kept[0])
                states.append(doc_states)
                hashes.append(kept[1])
                tokens.append(model.stored_token_ids(doc_ids))
    return ids, states, hashes, tokens


def _train_codec_first(model: QueryLikelihoodModel, writer: StoreWriter, plans: Iterator[ShardPlan],
                       content: str) -> Iterator[ShardPlan]:
    """Trains the store's codec here, in the driver, on the states a single process would train it on (the first
    documents, as ``StoreWriter`` decides), before any shard is handed out; then hands out the plans."""
    held: list[ShardPlan] = []
    counts: list[int] = []
    needed = None
    for plan in plans:
        held.append(plan)
        counts += [len(ids) for batch_ids, keep in plan.batches for ids, k in zip(batch_ids, keep) if k is not None]
        needed = writer.codec_training_documents(counts)
        if needed is not None:
            break
    states: list = []
    for plan in held:
        if needed is not None and len(states) >= needed:
            break
        states += [s.detach().float().numpy() for s in encode_plan(model, plan, content)[1]]
    if states:
        writer.train_codec(states[:needed] if needed is not None else states)
    return chain(held, plans)


class ShardEncoder:
    """A Ray worker: the model loaded once, shards encoded and written into the store in place."""

    def __init__(self, model: str, model_options: dict, store: str, content: str, threads: int = 1,
                 device: str | None = None) -> None:
        set_worker_threads(threads)
        self.store, self.content, self._problem = Path(store), content, None
        try:
            self.codec = store_codec(self.store)
        except Exception as exc:  # noqa: BLE001 - reported by problem(), one line
            self._problem = (f"store {store} is not readable from Ray node {node_name()} ({exc}): put it on storage "
                             "that every node mounts at the same path")
            return
        options = dict(model_options)
        if device:
            options["device"] = device
        try:
            self.model = QueryLikelihoodModel.from_pretrained(model, **options)
        except DecrankError as exc:
            self._problem = f"Ray node {node_name()} cannot load model {model}: {exc}"

    def problem(self) -> str | None:
        return self._problem

    def encode_shard(self, plan: ShardPlan) -> dict:
        ids, states, hashes, tokens = encode_plan(self.model, plan, self.content)
        stored = [self.codec.to_storage(s.cpu()) for s in states]
        return asdict(write_shard(self.store, shard_name(plan.index), ids, stored, hashes, tokens))


def encode_corpus_on_ray(
    model: str,
    corpus: Iterable[Document],
    store: str | Path,
    ray: RayOptions | None = None,
    max_length: int | None = None,
    batch_size: int | None = None,
    shard_size: int | None = None,
    codec: str = "fp16",
    content: str = "encoder-states",
    on_duplicate: str = "error",
    progress: bool = True,
    codec_train_tokens: int | None = None,
    **model_options,
) -> EncodeStats:
    """``encode_corpus`` on a Ray cluster: the same store (every shard byte for byte), written by a pool of
    workers. The driver reads and tokenises the corpus, trains a trainable codec, and lists finished shards
    in order; rerunning after a crash keeps the listed shards and redoes the rest. ``store`` must be on
    storage that every node mounts at the same path."""
    check_encode_options(batch_size, shard_size, max_length, on_duplicate)
    ray = ray or RayOptions()
    connect(ray.address)
    fitting_workers(ray)  # before any work: a cluster too small is an error now, not after the codec's training
    rt = ray_module()
    driver_model = QueryLikelihoodModel.from_pretrained(model, **model_options)
    worker_model = str(Path(model).resolve()) if Path(model).exists() else model  # workers start in folders of their own
    max_length = max_length or driver_model.config.max_length
    driver_model.check_max_length(max_length, "max length")
    store = Path(store).resolve()
    stats = EncodeStats()
    with StoreWriter(store, driver_model.fingerprint(content), store_width(driver_model, content), max_length,
                     codec=codec, shard_size=shard_size, batch_size=batch_size,
                     codec_train_tokens=codec_train_tokens) as writer:
        stored = writer.stored_text_hashes()
        batches = document_batches(driver_model, corpus, store, stored, writer.batch_size, max_length, on_duplicate, stats)
        plans = shard_plans(batches, stored, writer.shard_size, len(writer.manifest.shards), stats)
        if not writer.codec.is_trained:  # at the workers' threads, so its sample is the states they compute
            before = torch.get_num_threads()
            torch.set_num_threads(max(1, int(ray.cpus_per_worker)))
            try:
                plans = _train_codec_first(driver_model, writer, plans, content)
            finally:
                torch.set_num_threads(before)
        first = next(plans, None)
        if first is None:  # every document is stored already: no worker to start
            stats.total_in_store = writer.manifest.num_docs
            return stats
        plans = chain([first], plans)
        options = {k: v for k, v in model_options.items() if k != "device"}
        actors = start_workers(ShardEncoder, ray, worker_model, options, str(store), content)
        load = {i: 0 for i in range(len(actors))}
        inflight: dict = {}  # future -> (plan, actor)
        finished: dict[int, ShardInfo] = {}
        bar = tqdm(desc="encode", unit="doc", disable=not progress, dynamic_ncols=True)

        def collect(block: bool) -> None:
            ready, _ = rt.wait(list(inflight), num_returns=1, timeout=None if block else 0)
            for future in ready:
                plan, actor = inflight.pop(future)
                load[actor] -= 1
                finished[plan.index] = ShardInfo(**call(rt.get, future))
                while len(writer.manifest.shards) in finished:
                    shard = finished.pop(len(writer.manifest.shards))
                    writer.list_shard(shard)
                    bar.update(shard.num_docs)

        try:
            for plan in plans:
                while min(load.values()) >= 2:  # each worker holds the shard it encodes and the next
                    collect(block=True)
                actor = min(load, key=load.get)
                inflight[actors[actor].encode_shard.remote(plan)] = (plan, actor)
                load[actor] += 1
                collect(block=False)
            while inflight:
                collect(block=True)
            writer.remove_unlisted_shards()  # what a worker killed mid-shard left; every worker is idle now
        finally:
            bar.close()
    stats.total_in_store = writer.manifest.num_docs
    return stats
