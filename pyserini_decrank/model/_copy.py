"""Copy-aware query likelihood: each query token's probability mixed with the probability of copying it
from the document, as smoothed query likelihood mixes in the document's term distribution and a
pointer-generator (See et al., 2017) mixes in its attention::

    p(q_t | d) = (1 - g_t) p_vocab(q_t) + g_t sum_j a_tj [x_j = q_t]

* the copy distribution ``a`` over the document's stored tokens (special tokens never copied): ``uniform``
  (each token 1/|d|, so the copy term is tf(q_t, d) / |d|) or ``attention`` (the decoder's last
  cross-attention layer at position t, averaged over heads, renormalised over the copyable tokens);
* the gate ``g``: a fixed lambda, or learned (``CopyHead``: one linear unit on the decoder's last hidden
  state, saved beside the model as ``copy_head.safetensors``).

The mixture is taken in log space, fp32, with ``logaddexp``: a token the document lacks keeps
``log(1 - g) + log p_vocab`` exactly, with no ``log 0`` anywhere in the gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import DecrankError

COPY_KINDS = ("none", "uniform", "attention")
COPY_HEAD_FILE = "copy_head.safetensors"
# the learned gate's starting value: the fixed attention-copy gate that measured best untrained on the dev split
# (eval/copy_screen.py, decrank-minilm: best mean nDCG@10 with its alpha over NQ-QED dev and SciFact train)
INITIAL_GATE = 0.2


@dataclass(frozen=True)
class CopySpec:
    """What ``--copy`` names: a copy distribution and a gate (``None``: the model's learned one)."""

    kind: str = "none"
    gate: float | None = None

    @property
    def active(self) -> bool:
        return self.kind != "none"

    @property
    def learned(self) -> bool:
        return self.active and self.gate is None

    @classmethod
    def parse(cls, spec: str) -> "CopySpec":
        """``none``, ``LAMBDA`` (uniform copy), ``KIND:LAMBDA``, or ``KIND`` alone (the model's learned gate)."""
        text = str(spec).strip()
        kind, _, number = text.rpartition(":") if ":" in text else ("", "", text)
        if not kind and number in COPY_KINDS:
            kind, number = number, ""
        kind = kind or "uniform"
        if kind not in COPY_KINDS:
            raise DecrankError(f"copy {spec!r}: unknown copy kind {kind!r}; known: {', '.join(COPY_KINDS)}")
        if kind == "none":
            if number:
                raise DecrankError(f"copy {spec!r}: 'none' takes no lambda")
            return cls()
        if not number:
            return cls(kind)
        try:
            gate = float(number)
        except ValueError:
            raise DecrankError(f"copy {spec!r}: not a lambda, a copy kind ({', '.join(COPY_KINDS)}) or KIND:LAMBDA") from None
        if not 0.0 <= gate < 1.0:
            raise DecrankError(f"copy {spec!r}: lambda must be in [0, 1), not {gate}")
        return cls(kind, gate)

    def __str__(self) -> str:
        if not self.active:
            return "none"
        return self.kind if self.gate is None else f"{self.kind}:{self.gate:g}"


class CopyHead(nn.Module):
    """The learned gate: ``g = sigmoid(w . h + b)`` from the hidden state that feeds the vocabulary
    projection. It starts at ``INITIAL_GATE`` whatever ``h`` is (``w = 0``)."""

    def __init__(self, hidden_size: int, initial_gate: float = INITIAL_GATE) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.constant_(self.linear.bias, math.log(initial_gate / (1 - initial_gate)))

    def log_gates(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log g, log(1 - g)), fp32, one per row of ``hidden`` (``... x d``)."""
        with torch.autocast(hidden.device.type, enabled=False):
            logit = self.linear(hidden.float()).squeeze(-1)
        return nn.functional.logsigmoid(logit), nn.functional.logsigmoid(-logit)

    def save(self, folder: str | Path) -> None:
        from safetensors.torch import save_file

        save_file({k: v.detach().cpu().float().contiguous() for k, v in self.state_dict().items()},
                  str(Path(folder) / COPY_HEAD_FILE))

    @classmethod
    def load(cls, path: str | Path, hidden_size: int) -> "CopyHead":
        from safetensors.torch import load_file

        head = cls(hidden_size)
        try:
            head.load_state_dict(load_file(str(path)))
        except (RuntimeError, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DecrankError(f"{path}: not a copy head of width {hidden_size} ({first})") from None
        return head


def fixed_log_gates(gate: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(log g, log(1 - g)) of a fixed lambda, fp32 scalars (``log 0`` is -inf: no copying)."""
    log_gate = math.log(gate) if gate > 0 else float("-inf")
    return (torch.tensor(log_gate, dtype=torch.float32, device=device),
            torch.tensor(math.log1p(-gate), dtype=torch.float32, device=device))


def mark_special(token_ids: Sequence[int], special_ids: frozenset[int]) -> np.ndarray:
    """A document's token ids as a store keeps them: int32, each special token (CLS, SEP, EOS...) as ``~id``
    (negative), so that a copy scorer can skip them without the tokenizer."""
    ids = np.asarray(token_ids, dtype=np.int32)
    special = np.isin(ids, np.fromiter(special_ids, dtype=np.int32, count=len(special_ids)))
    return np.where(special, ~ids, ids).astype(np.int32)


def copyable_tokens(token_ids: list, length: int) -> torch.Tensor:
    """Stored token ids (special tokens as ``~id``) padded to ``B x length``, with -1 for every token that is
    never copied: special tokens and padding."""
    out = torch.full((len(token_ids), length), -1, dtype=torch.long)
    for b, ids in enumerate(token_ids):
        ids = torch.from_numpy(np.asarray(ids, dtype=np.int64))
        out[b, : len(ids)] = ids.clamp_min(-1)  # ~id of a special token is negative
    return out


def copy_probabilities(targets: torch.Tensor, tokens: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """``sum_j a_tj [x_j = target_t]`` (``B x T``, fp32): ``targets`` B x T ids, ``tokens`` B x L ids (-1: never
    copied), ``weights`` B x T x L attention (``None``: uniform over the copyable tokens). Attention is
    renormalised over the copyable tokens; a document with none copies nothing."""
    copyable = tokens.ge(0)
    match = tokens.unsqueeze(1).eq(targets.unsqueeze(-1))  # B x T x L
    if weights is None:
        counts = match.sum(-1).float()
        return counts / copyable.sum(-1, keepdim=True).clamp_min(1).float()
    weights = weights.float() * copyable.unsqueeze(1)
    total = weights.sum(-1)
    picked = (weights * match).sum(-1)
    return picked / total.clamp_min(torch.finfo(torch.float32).tiny)


def mix_log_probs(vocab_log_probs: torch.Tensor, copy_probs: torch.Tensor, log_gate: torch.Tensor,
                  log_keep: torch.Tensor) -> torch.Tensor:
    """``log((1 - g) p_vocab + g p_copy)`` in fp32 through ``logaddexp`` (see the module's docstring)."""
    positive = copy_probs > 0
    tiny = torch.finfo(torch.float32).tiny
    log_copy = torch.where(positive, copy_probs.clamp_min(tiny).log(), torch.full_like(copy_probs, float("-inf")))
    return torch.logaddexp(log_keep + vocab_log_probs.float(), log_gate + log_copy)
