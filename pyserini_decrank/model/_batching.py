"""Padding ragged token ids, labels and per-document matrices into batches, the one way every stage does it."""

from __future__ import annotations

from typing import Sequence

import torch


def pad_ids(batch: Sequence[Sequence[int]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded token ids and their attention mask."""
    length = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), length), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(batch), length), dtype=torch.long)
    for i, ids in enumerate(batch):
        input_ids[i, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
        mask[i, : len(ids)] = 1
    return input_ids, mask


def pad_labels(label_ids: Sequence[Sequence[int]]) -> torch.Tensor:
    """Decoder targets padded with -100, the value losses and scores skip."""
    return pad_ids(label_ids, -100)[0]


def pad_states(
    states: Sequence[torch.Tensor], dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pads per-document state matrices into a batch and its attention mask, in ``dtype`` or else the
    widest dtype among them (stored fp16 states beside fp32 ones just encoded lose nothing)."""
    length = max(s.shape[0] for s in states)
    hidden = states[0].shape[1]
    if dtype is None:
        dtype = states[0].dtype
        for s in states[1:]:
            dtype = torch.promote_types(dtype, s.dtype)
    batch = torch.zeros((len(states), length, hidden), dtype=dtype)
    mask = torch.zeros((len(states), length), dtype=torch.long)
    for i, s in enumerate(states):
        batch[i, : s.shape[0]] = s
        mask[i, : s.shape[0]] = 1
    return batch, mask
