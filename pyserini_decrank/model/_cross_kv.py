"""Cross-attention keys/values as a ``cross-kv`` store keeps them (one ``L x layers*2*heads*head_dim`` matrix per
document) and the layout the decoder's attention reads them in (``layers x 2 x B x heads x L x head_dim``)."""

from __future__ import annotations

from typing import Sequence

import torch

from ._compat import returned_cache


@torch.inference_mode()
def compute_cross_kv(model: torch.nn.Module, states: torch.Tensor, states_mask: torch.Tensor, start_token_id: int,
                     device: torch.device) -> torch.Tensor:
    """Every decoder layer's cross-attention keys and values of a padded batch of encoder states, as one
    ``(B, L, layers * 2 * heads * head_dim)`` matrix per document (fp32, on the CPU), read off the library's
    own cache after one decoder step, so every family's projections are its own."""
    from transformers.modeling_outputs import BaseModelOutput

    dtype = next(model.parameters()).dtype
    start = torch.full((states.shape[0], 1), start_token_id, dtype=torch.long, device=device)
    out = model(encoder_outputs=BaseModelOutput(last_hidden_state=states.to(device, dtype)),
                attention_mask=states_mask.to(device), decoder_input_ids=start, use_cache=True)
    layers = returned_cache(out).cross_attention_cache.layers
    # each (B, heads, L, head_dim) -> (B, L, layers, 2, heads, head_dim)
    kv = torch.stack([torch.stack([layer.keys, layer.values], 2) for layer in layers], 2)
    return kv.permute(0, 4, 2, 3, 1, 5).reshape(states.shape[0], states.shape[1], -1).float().cpu()


@torch.inference_mode()
def probe_layout(model: torch.nn.Module, hidden_size: int, start_token_id: int,
                 device: torch.device) -> tuple[int, int, int]:
    """(decoder layers, heads, head dim) of the cross-attention, read off one probe run."""
    from transformers.modeling_outputs import BaseModelOutput

    probe = torch.zeros((1, 2, hidden_size), dtype=next(model.parameters()).dtype)
    start = torch.full((1, 1), start_token_id, dtype=torch.long, device=device)
    out = model(encoder_outputs=BaseModelOutput(last_hidden_state=probe.to(device)),
                attention_mask=torch.ones((1, 2), dtype=torch.long, device=device), decoder_input_ids=start, use_cache=True)
    layers = returned_cache(out).cross_attention_cache.layers
    _, heads, _, head_dim = layers[0].keys.shape
    return len(layers), heads, head_dim


def split_for_attention(kv: torch.Tensor, layout: tuple[int, int, int], device: torch.device,
                        dtype: torch.dtype) -> torch.Tensor:
    """A padded batch of stored keys/values (``B x L x features``) in the layout attention reads:
    ``layers x 2 x B x heads x L x head_dim``, contiguous, in ``dtype`` (one copy)."""
    layers, heads, head_dim = layout
    batch, length = kv.shape[:2]
    return (kv.to(device, dtype).view(batch, length, layers, 2, heads, head_dim).permute(2, 3, 0, 4, 1, 5).contiguous())


def split_documents(documents: Sequence[torch.Tensor], layout: tuple[int, int, int], device: torch.device,
                    dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``split_for_attention`` of per-document matrices as a store hands them back, without padding them
    first: each document is copied once, straight into place. Returns the split and its mask."""
    layers, heads, head_dim = layout
    length = max(d.shape[0] for d in documents)
    split = torch.zeros((layers, 2, len(documents), heads, length, head_dim), dtype=dtype)
    mask = torch.zeros((len(documents), length), dtype=torch.long)
    for b, doc in enumerate(documents):
        n = doc.shape[0]
        split[:, :, b, :, :n] = doc.view(n, layers, 2, heads, head_dim).permute(1, 2, 3, 0, 4)
        mask[b, :n] = 1
    return split.to(device), mask
