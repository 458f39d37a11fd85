"""What identifies a model's encoder and tokenizer, so that a store is read only by the model that made it."""

from __future__ import annotations

import hashlib
import json
import struct

import torch


def weights_sha256(module: torch.nn.Module) -> str:
    """A cheap, exact-enough identity of a module's weights: names, shapes, first values and sums."""
    h = hashlib.sha256(type(module).__name__.encode())
    for name, tensor in sorted(module.state_dict().items()):
        if name.startswith("pooler."):  # not part of the states; re-initialised at random on load
            continue
        flat = tensor.detach().reshape(-1).to(torch.float64)
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(flat[:64].numpy().tobytes())
        h.update(struct.pack("<d", float(flat.sum())))
    return h.hexdigest()


def tokenizer_sha256(tokenizer) -> str:
    """The vocabulary and the tokenizer's kind (fast and slow versions of one tokenizer agree)."""
    h = hashlib.sha256(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    h.update(type(tokenizer).__name__.removesuffix("Fast").encode())
    return h.hexdigest()
