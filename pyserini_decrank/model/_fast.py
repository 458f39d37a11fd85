"""The decoder path's speed levers that leave the model's own forward in charge of the maths.

* ``ComputePrecision``: the context every scoring call runs in: autocast to the compute precision with
  the weights cast once (``ComputeWeights``), nothing at fp32.
* ``ComputeWeights``: low-precision copies of the linear layers' weights, made once and swapped in for
  a call. Under plain autocast every weight is cast again on every call; on a 2-core CPU those copies
  cost T5-base as much time as its decoder's matrix products. Scores are the same as autocast's (the
  same weights, rounded the same way); the residual stream and the normalisations stay fp32.
* ``head_input``: catches what goes into the vocabulary projection and hands the model a zero-cost
  stand-in for its logits, so that ``vocab_log_probs`` can do the projection in row blocks, fp32
  log-softmax included, without ever holding ``batch x tokens x vocabulary`` fp32 logits.
* ``set_attention``: the attention kernel, a user's choice (``--attention``).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from ..errors import DecrankError

# compute precision of the matrix products; every log-softmax is fp32 whatever this is
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# families whose feed-forward output overflows fp16 (transformers keeps their ``wo`` in fp32 for that)
FP16_UNSAFE_FAMILIES = ("t5", "mt5", "umt5", "longt5")
# precisions of the vocabulary projection: the compute precision's, or fp32 whatever it is
HEAD_PRECISIONS = ("compute", "fp32")
# attention kernels a user may pick; None keeps the library's default (sdpa)
ATTENTIONS = ("sdpa", "eager")
# rows of (batch x tokens) projected onto the vocabulary at a time: their fp32 logits stay in cache
HEAD_BLOCK_ROWS = 256


class ComputeWeights:
    """Each ``nn.Linear`` weight of ``model`` cast to ``dtype`` once, swapped in by ``applied()``.

    The model itself is left as it was outside the ``with`` block, so fingerprints, training and
    other precisions see the original weights. The copies are taken when this object is made: make a
    new one after changing the weights.
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype, keep: tuple[nn.Module, ...] = ()) -> None:
        self.dtype = dtype
        self.copies = [(m, nn.Parameter(m.weight.detach().to(dtype), requires_grad=False))
                       for m in model.modules()
                       if isinstance(m, nn.Linear) and m.weight.dtype != dtype and all(m is not k for k in keep)]

    @contextmanager
    def applied(self) -> Iterator[None]:
        originals = [(m, m._parameters["weight"]) for m, _ in self.copies]
        try:
            for module, copy in self.copies:
                module._parameters["weight"] = copy
            yield
        finally:
            for module, original in originals:
                module._parameters["weight"] = original


def _families(config) -> set[str]:
    kinds = {getattr(config, "model_type", None)}
    for part in ("encoder", "decoder"):
        sub = getattr(config, part, None)
        if sub is not None and hasattr(sub, "model_type"):
            kinds.add(sub.model_type)
    return kinds


class ComputePrecision:
    """Runs a model's matrix products in ``precision``: under autocast, with each linear weight cast
    once (on first use) rather than on every call; at ``fp32`` it does nothing.

    fp16 is refused for T5-family models: their feed-forward output overflows fp16 (a known
    transformers issue), which under autocast has no fp32 fallback and would give infinite scores.
    """

    def __init__(self, model: nn.Module, precision: str, keep: tuple[nn.Module, ...] = ()) -> None:
        if precision not in PRECISIONS:
            raise DecrankError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
        unsafe = _families(model.config) & set(FP16_UNSAFE_FAMILIES)
        if precision == "fp16" and unsafe:
            raise DecrankError(f"fp16 compute overflows in the feed-forward layers of {sorted(unsafe)[0]} models; "
                               "use bf16 or fp32")
        self.model, self.precision, self.dtype, self.keep = model, precision, PRECISIONS[precision], keep
        self._weights: ComputeWeights | None = None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        if self.dtype is None:
            yield
            return
        if self._weights is None:
            self._weights = ComputeWeights(self.model, self.dtype, keep=self.keep)
        device = next(self.model.parameters()).device.type
        with self._weights.applied(), torch.autocast(device, dtype=self.dtype):
            yield


@contextmanager
def head_input(model: nn.Module) -> Iterator[dict]:
    """Within the block, the model's output projection records its input under ``"hidden"`` and returns
    an all-zero stand-in of the logits' shape that takes no memory (a stride-0 view).

    Whatever a family does before the projection (T5's ``d_model**-0.5`` scaling, BERT's transform)
    has happened to the recorded input; what it adds after it (BART's ``final_logits_bias``) is
    returned by ``output_bias``.
    """
    head = model.get_output_embeddings()
    record: dict = {"head": head}

    def forward(hidden: torch.Tensor) -> torch.Tensor:
        record["hidden"] = hidden
        return hidden.new_zeros(()).expand(*hidden.shape[:-1], head.weight.shape[0])

    head.forward = forward
    try:
        yield record
    finally:
        del head.forward


def output_bias(model: nn.Module, head: nn.Module) -> torch.Tensor | None:
    """The head's own bias plus any bias the family adds to the logits after it."""
    bias = head.bias
    extra = getattr(model, "final_logits_bias", None)
    if extra is not None:
        extra = extra.reshape(-1)
        bias = extra if bias is None else bias + extra
    return bias


def vocab_log_probs(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                    columns: torch.Tensor, block_rows: int = HEAD_BLOCK_ROWS) -> torch.Tensor:
    """``log_softmax(hidden @ weight.T + bias)`` in fp32, read at ``columns`` (``... x k`` token ids per
    row), one block of rows at a time; the product runs in ``weight``'s dtype."""
    lead = hidden.shape[:-1]
    rows = hidden.reshape(-1, hidden.shape[-1]).to(weight.dtype)
    cols = columns.reshape(rows.shape[0], -1)
    b = None if bias is None else bias.to(weight.dtype)
    out = []
    for start in range(0, rows.shape[0], block_rows):
        logits = nn.functional.linear(rows[start : start + block_rows], weight, b).float()
        picked = logits.gather(1, cols[start : start + block_rows])
        out.append(picked - logits.logsumexp(-1, keepdim=True))
    return torch.cat(out).reshape(*lead, cols.shape[1])


def set_attention(model: nn.Module, implementation: str | None) -> None:
    """Switch the model's attention kernel. On this project's 2-core CPU the plain (``eager``) kernel
    was about 7% faster than ``sdpa`` for the decoder's 11-row queries (T5-base, 100 candidates)."""
    if implementation is None:
        return
    if implementation not in ATTENTIONS:
        raise DecrankError(f"unknown attention {implementation!r}; known: {', '.join(ATTENTIONS)}")
    model.set_attn_implementation(implementation)
