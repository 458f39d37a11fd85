"""Codecs for stored encoder states, named by a short string as faiss names its index types.

A codec is a manifest field, so compressed codecs (int8, product quantisation) can be added later
without changing the store's layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DecrankError


@dataclass(frozen=True)
class Codec:
    name: str
    storage: np.dtype  # how the bytes lie on disk
    compute: torch.dtype  # what a zero-copy read hands back

    def to_storage(self, states: torch.Tensor) -> np.ndarray:
        converted = states.detach().to(self.compute).contiguous()
        if self.compute is torch.bfloat16:
            return converted.view(torch.int16).numpy().view(np.uint16)
        return converted.numpy()

    def from_storage(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        if self.compute is torch.bfloat16:
            return tensor.view(torch.bfloat16)
        return tensor


CODECS = {
    "fp32": Codec("fp32", np.dtype(np.float32), torch.float32),
    "fp16": Codec("fp16", np.dtype(np.float16), torch.float16),
    "bf16": Codec("bf16", np.dtype(np.uint16), torch.bfloat16),
}


def get_codec(name: str) -> Codec:
    try:
        return CODECS[name]
    except KeyError:
        raise DecrankError(f"unknown codec {name!r}; known: {', '.join(CODECS)}") from None
