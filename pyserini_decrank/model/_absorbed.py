"""Cross-attention with the key and value projections absorbed into the query side.

A decoder reading stored encoder states projects every document token through each layer's key and value
matrices: at T5-base that is most of the decoder's work, and it is the same for every query. Per head,
``q . (W_k x) = (W_k^T q) . x`` and ``sum_j a_j (W_v x_j) = W_v (sum_j a_j x_j)``: fold ``W_k`` into the
query and apply ``W_v`` after the weighted sum, and the document tokens are only ever touched by two
products whose width is the number of query rows, not the attention width. A key bias adds the same
amount to every score of one query row, which softmax ignores; a value bias passes through because the
weights sum to one; the query scaling (BART, BERT) is applied to the query as the library does.

The maths is exact; in fp32 the scores agree with the library's path to rounding (tested per family).
Families are recognised by where their cross-attention lives and what its projections are called; an
unknown family keeps the library's path (``absorbed_supported`` says which).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn


@dataclass(frozen=True)
class CrossAttentionLayout:
    """Where one family keeps a cross-attention module's parts."""

    query: str
    key: str
    value: str
    output: str | None  # BERT applies its output projection outside the attention module
    heads: str
    head_dim: str
    returns_position_bias: bool  # T5's attention returns (output, position_bias, weights)


T5_LAYOUT = CrossAttentionLayout("q", "k", "v", "o", "n_heads", "key_value_proj_dim", True)
BART_LAYOUT = CrossAttentionLayout("q_proj", "k_proj", "v_proj", "out_proj", "num_heads", "head_dim", False)
BERT_LAYOUT = CrossAttentionLayout("query", "key", "value", None, "num_attention_heads", "attention_head_size", False)


def _layout_of(name: str, module: nn.Module) -> CrossAttentionLayout | None:
    if name.endswith("EncDecAttention"):  # T5, T5 v1.1, mT5, umT5, LongT5
        layout = T5_LAYOUT
    elif name.endswith("encoder_attn"):  # BART, mBART, Marian, Pegasus
        layout = BART_LAYOUT
    elif type(module).__name__.endswith("CrossAttention"):  # BERT-family decoders (EncoderDecoderModel)
        layout = BERT_LAYOUT
    else:
        return None
    parts = (layout.query, layout.key, layout.value, layout.heads, layout.head_dim, "scaling")
    if not all(hasattr(module, p) for p in parts) or (layout.output and not hasattr(module, layout.output)):
        return None
    return layout


def cross_attention_modules(model: nn.Module) -> list[tuple[nn.Module, CrossAttentionLayout]]:
    """The decoder's cross-attention modules with their layouts, in layer order."""
    return [(m, layout) for name, m in model.get_decoder().named_modules()
            if (layout := _layout_of(name, m)) is not None]


def absorbed_supported(model: nn.Module) -> bool:
    """Whether every decoder layer's cross-attention is one this module can absorb."""
    config = model.config
    # T5 and BART name their decoder's depth apart from the encoder's; an EncoderDecoderModel has a decoder config
    layers = getattr(config, "num_decoder_layers", None) or getattr(config, "decoder_layers", None)
    layers = layers or getattr(getattr(config, "decoder", None) or config, "num_hidden_layers", None)
    found = cross_attention_modules(model)
    return bool(found) and (layers is None or len(found) == layers)


def absorbed_attention(module: nn.Module, layout: CrossAttentionLayout, hidden: torch.Tensor,
                       states: torch.Tensor, mask_bias: torch.Tensor | None) -> torch.Tensor:
    """One cross-attention module's output for ``hidden`` (B x T x d) over ``states`` (B x L x e).

    ``mask_bias`` (B x 1 x L, fp32) holds 0 for a document token and -inf for padding. Layout: the folded
    query is built head by head straight into ``(B*T) x heads x e``, so that each candidate's rows of every
    head are one matrix for the two products that touch its states (a ``bmm`` over candidates), and the
    mixed states come out already split by head for ``W_v``. Per-head weights are views, never copied per
    candidate; on a 2-core CPU a loop of per-head ``mm`` ran about 3x faster than one ``bmm`` over heads,
    and this layout needs no transposing copies.
    """
    batch, rows, _ = hidden.shape
    heads, head_dim = getattr(module, layout.heads), getattr(module, layout.head_dim)
    key, value = getattr(module, layout.key), getattr(module, layout.value)
    width = key.weight.shape[1]
    query = getattr(module, layout.query)(hidden) * module.scaling  # B x T x (heads * head_dim)
    per_head = query.reshape(batch * rows, heads, head_dim)
    key_heads, value_heads = key.weight.view(heads, head_dim, width), value.weight.view(heads, head_dim, width)
    folded = None
    for h in range(heads):  # the query in document space: (B*T) x head_dim  @  head_dim x e
        part = per_head[:, h] @ key_heads[h].to(per_head.dtype)
        if folded is None:
            folded = part.new_empty(batch * rows, heads, width)
        folded[:, h] = part
    states = states.to(folded.dtype)
    scores = torch.bmm(folded.view(batch, rows * heads, width), states.transpose(1, 2)).float()  # rows (t, head)
    if mask_bias is not None:
        scores = scores + mask_bias
    weights = scores.softmax(-1).to(folded.dtype)
    mixed = torch.bmm(weights, states).view(batch * rows, heads, width)
    out = None
    for h in range(heads):  # W_v after the weighted sum: (B*T) x e  @  e x head_dim
        part = mixed[:, h] @ value_heads[h].to(mixed.dtype).T
        if out is None:
            out = part.new_empty(batch * rows, heads, head_dim)
        out[:, h] = part
    if value.bias is not None:
        out = out + value.bias.view(heads, head_dim).to(out.dtype)
    out = out.view(batch, rows, heads * head_dim)
    return getattr(module, layout.output)(out) if layout.output else out


@contextmanager
def absorbed_cross_attention(model: nn.Module, states_mask: torch.Tensor) -> Iterator[None]:
    """Within the block, every cross-attention module of ``model`` attends absorbed, with ``states_mask``
    (B x L, 1 = token) as the documents' mask. The library's mask argument is not read: its form differs
    between families and attention kernels, and the caller knows the mask already."""
    mask = states_mask.bool()
    mask_bias = None
    if not bool(mask.all()):
        mask_bias = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
        mask_bias = mask_bias.masked_fill(~mask, float("-inf")).unsqueeze(1)
    patched = cross_attention_modules(model)

    def forward_of(module: nn.Module, layout: CrossAttentionLayout):
        def forward(hidden_states, *args, **kwargs):
            states = kwargs.get("key_value_states", kwargs.get("encoder_hidden_states"))
            if states is None:
                raise RuntimeError(f"{type(module).__name__} was called without encoder states")
            out = absorbed_attention(module, layout, hidden_states, states, mask_bias)
            return (out, None, None) if layout.returns_position_bias else (out, None)

        return forward

    try:
        for module, layout in patched:
            module.forward = forward_of(module, layout)
        yield
    finally:
        for module, _ in patched:
            module.__dict__.pop("forward", None)


def cross_attention_weights(module: nn.Module, layout: CrossAttentionLayout, hidden: torch.Tensor,
                            states_mask: torch.Tensor, states: torch.Tensor | None = None,
                            keys: torch.Tensor | None = None) -> torch.Tensor:
    """One cross-attention module's weights for ``hidden`` (B x T x d), averaged over heads: B x T x L, fp32.

    From encoder ``states`` (B x L x e) the key projection is folded into the query as the absorbed path
    does (the key bias shifts a whole row, which softmax ignores), so the document tokens are never
    projected; from stored ``keys`` (B x heads x L x head_dim, a ``cross-kv`` store) they are read as they are.
    """
    batch, rows, _ = hidden.shape
    heads, head_dim = getattr(module, layout.heads), getattr(module, layout.head_dim)
    query = (getattr(module, layout.query)(hidden) * module.scaling).view(batch, rows, heads, head_dim)
    if keys is not None:
        scores = torch.einsum("bthd,bhld->bhtl", query, keys.to(query.dtype))
    else:
        key = getattr(module, layout.key)
        folded = torch.einsum("bthd,hde->bhte", query, key.weight.view(heads, head_dim, -1).to(query.dtype))
        scores = torch.einsum("bhte,ble->bhtl", folded, states.to(folded.dtype))
    scores = scores.float().masked_fill(~states_mask.bool()[:, None, None, :], float("-inf"))
    return scores.softmax(-1).mean(1)
