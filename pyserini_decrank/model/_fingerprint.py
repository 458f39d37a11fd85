"""What identifies a model's encoder and tokenizer, so that a store is read only by the model that made it."""

from __future__ import annotations

import hashlib
import json

import torch


def weights_sha256(module: torch.nn.Module) -> str:
    """The sha256 of a module's weights as bytes: every tensor's name, dtype, shape and raw contents
    (little-endian on every platform torch ships for), in name order. No arithmetic touches the values,
    so the identity is the same on any thread count, machine and OS (a float sum's rounding depends on
    how the threads split it)."""
    h = hashlib.sha256(type(module).__name__.encode())
    for name, tensor in sorted(module.state_dict().items()):
        if name.startswith("pooler."):  # not part of the states; re-initialised at random on load
            continue
        data = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{data.dtype}|{tuple(data.shape)}|".encode())
        h.update(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return h.hexdigest()


def tokenizer_sha256(tokenizer) -> str:
    """The vocabulary and the tokenizer's kind (fast and slow versions of one tokenizer agree)."""
    h = hashlib.sha256(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    h.update(type(tokenizer).__name__.removesuffix("Fast").encode())
    return h.hexdigest()
