"""Codecs for stored encoder states, named by a short string as faiss names its index types.

``fp32``, ``fp16`` and ``bf16`` keep the numbers (reads are zero-copy views). Any other name is a faiss
index-factory string whose index is a standalone codec (``sa_encode``/``sa_decode``): ``SQ8``,
``SQfp16``, ``PQ64``, ``PQ32x8``, ``OPQ32,PQ32``, ``RQ16x8``, ... Such a codec is trained once, on a
sample of the corpus's token states, saved in the store (``codec.faiss``, its sha256 in the manifest),
and decodes one query's candidates in one vectorised call.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import DecrankError

CODEC_FILE = "codec.faiss"
# token states a trainable codec is trained on: the first ones a store receives, subsampled to this many
CODEC_TRAIN_TOKENS = 20_000


def codec_training_sample(states: Sequence[np.ndarray], max_tokens: int = CODEC_TRAIN_TOKENS) -> np.ndarray:
    """The token states a codec is trained on: all of ``states`` (documents' matrices, in order) up to
    ``max_tokens``, beyond that a fixed-seed subsample of that many in their order; fp32."""
    sample = np.concatenate([np.asarray(s, dtype=np.float32) for s in states])
    if len(sample) > max_tokens:
        chosen = np.random.default_rng(0).choice(len(sample), max_tokens, replace=False)
        sample = sample[np.sort(chosen)]
    return sample


@dataclass(frozen=True)
class Codec:
    """A codec that keeps the numbers: stored as ``storage``, read back zero-copy as ``compute``."""

    name: str
    storage: np.dtype  # how the bytes lie on disk
    compute: torch.dtype  # what a zero-copy read hands back
    needs_training = False
    is_trained = True

    def width(self, hidden_size: int) -> int:
        """Stored values per token."""
        return hidden_size

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

    def decode_many(self, arrays: Sequence[np.ndarray]) -> list[torch.Tensor]:
        return [self.from_storage(a) for a in arrays]

    def round_trip(self, states: torch.Tensor) -> torch.Tensor:
        """``states`` (tokens x hidden) as a store of this codec hands them back, fp32."""
        return self.from_storage(self.to_storage(states)).float()


CODECS = {
    "fp32": Codec("fp32", np.dtype(np.float32), torch.float32),
    "fp16": Codec("fp16", np.dtype(np.float16), torch.float16),
    "bf16": Codec("bf16", np.dtype(np.uint16), torch.bfloat16),
}


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        if "Error" in line or "error" in line or "should" in line:
            return line.strip()
    return text.splitlines()[-1].strip() if text else type(exc).__name__


class FaissCodec:
    """A faiss standalone codec over ``dim``-wide token states: codes of ``code_size`` bytes per token."""

    storage = np.dtype(np.uint8)
    needs_training = True

    def __init__(self, name: str, dim: int, index=None) -> None:
        import faiss

        self.name, self.dim = name, dim
        try:
            self.index = index if index is not None else faiss.index_factory(dim, name)
            self.code_size = int(self.index.sa_code_size())
        except RuntimeError as exc:
            raise DecrankError(f"codec {name!r}: not a faiss codec for {dim}-wide states "
                               f"({_first_line(exc)}); known names: {', '.join(CODECS)} or a faiss factory string "
                               "such as SQ8, PQ64, OPQ32,PQ32") from None
        if self.index.d != dim:
            raise DecrankError(f"codec {name!r} is for {self.index.d}-wide states, the store's are {dim}-wide")

    @property
    def is_trained(self) -> bool:
        return bool(self.index.is_trained)

    def width(self, hidden_size: int) -> int:
        return self.code_size

    def train(self, sample: np.ndarray) -> None:
        try:
            self.index.train(np.ascontiguousarray(sample, dtype=np.float32))
        except RuntimeError as exc:
            raise DecrankError(f"codec {self.name!r} cannot be trained on {len(sample)} token states: "
                               f"{_first_line(exc)}; encode more documents, or choose a smaller codec") from None

    def to_storage(self, states: torch.Tensor) -> np.ndarray:
        return self.index.sa_encode(np.ascontiguousarray(states.detach().float().numpy()))

    def decode_many(self, arrays: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """Every document's states from its codes, in one ``sa_decode`` call."""
        if not arrays:
            return []
        lengths = [len(a) for a in arrays]
        decoded = torch.from_numpy(self.index.sa_decode(np.ascontiguousarray(np.concatenate(arrays))))
        return list(decoded.split(lengths))

    def device_decoder(self) -> "PQDecoder | None":
        """A torch decoder of this codec's codes (``PQDecoder``), so that codes can be decoded where the model
        runs (a GPU reads 64 bytes per token instead of the decoded states); None where the codec is not a
        product quantiser of 8-bit codes, optionally behind an OPQ rotation (those decode through faiss)."""
        if not hasattr(self, "_device_decoder"):
            self._device_decoder = PQDecoder.of(self.index)
        return self._device_decoder

    def round_trip(self, states: torch.Tensor) -> torch.Tensor:
        """``states`` (tokens x hidden) as a store of this codec hands them back: encoded, then decoded; fp32."""
        return torch.from_numpy(self.index.sa_decode(self.to_storage(states)))

    @classmethod
    def from_bytes(cls, name: str, dim: int, data: bytes) -> "FaissCodec":
        """A trained codec as ``to_bytes`` wrote it."""
        import faiss

        return cls(name, dim, faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8)))

    def to_bytes(self) -> bytes:
        import faiss

        return faiss.serialize_index(self.index).tobytes()

    @classmethod
    def from_file(cls, name: str, dim: int, path: Path, sha256: str) -> "FaissCodec":
        import faiss

        if not path.is_file():
            raise DecrankError(f"{path}: the store's trained codec is missing")
        data = path.read_bytes()
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError:
            index = None  # unreadable: reported as the checksum failure it is
        if index is not None and hashlib.sha256(data).hexdigest() != sha256:
            expected = cls(name, dim)
            if type(index) is not type(expected.index) or index.d != dim or index.sa_code_size() != expected.code_size:
                raise DecrankError(f"{path}: holds a {type(index).__name__} codec of {index.sa_code_size()} bytes per "
                                   f"{index.d}-wide token, not the store's {name!r} ({expected.code_size} bytes per "
                                   f"{dim}-wide token): a codec file from another store")
        if hashlib.sha256(data).hexdigest() != sha256:
            raise DecrankError(f"{path}: the trained codec differs from the manifest's sha256 (altered or corrupted)")
        if index is None:
            raise DecrankError(f"{path}: faiss cannot read the store's trained codec")
        return cls(name, dim, index)


class PQDecoder:
    """faiss's ``sa_decode`` of an 8-bit product quantiser (``PQ64``), optionally behind an OPQ rotation
    (``OPQ64,PQ64``), in torch: each code byte picks its sub-vector's centroid, and the rotation is undone
    with its transpose (OPQ's matrix is orthonormal). Equal to faiss's decoding within fp32 rounding
    (1e-5 of the states' scale, tested)."""

    def __init__(self, centroids: torch.Tensor, rotation: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> None:
        self.centroids = centroids  # M x 256 x dsub
        self.rotation, self.bias = rotation, bias  # d x d (y = A x + b), or None
        self._on: dict[torch.device, tuple] = {}

    @classmethod
    def of(cls, index) -> "PQDecoder | None":
        import faiss

        index = faiss.downcast_index(index)
        rotation = bias = None
        if isinstance(index, faiss.IndexPreTransform):
            if index.chain.size() != 1:
                return None
            transform = faiss.downcast_VectorTransform(index.chain.at(0))
            if not isinstance(transform, faiss.LinearTransform) or not transform.is_orthonormal:
                return None
            d_out, d_in = transform.d_out, transform.d_in
            rotation = torch.from_numpy(faiss.vector_to_array(transform.A).reshape(d_out, d_in).copy())
            if transform.have_bias:
                bias = torch.from_numpy(faiss.vector_to_array(transform.b).copy())
            index = faiss.downcast_index(index.index)
        if not isinstance(index, faiss.IndexPQ) or index.pq.nbits != 8:
            return None
        pq = index.pq
        centroids = torch.from_numpy(faiss.vector_to_array(pq.centroids).reshape(pq.M, pq.ksub, pq.dsub).copy())
        return cls(centroids, rotation, bias)

    def _tensors(self, device: torch.device) -> tuple:
        if device not in self._on:
            self._on[device] = tuple(None if t is None else t.to(device) for t in (self.centroids, self.rotation, self.bias))
        return self._on[device]

    def __call__(self, codes: torch.Tensor) -> torch.Tensor:
        """States (``... x d``, fp32) of codes (``... x M``, uint8), on the codes' device."""
        centroids, rotation, bias = self._tensors(codes.device)
        m = centroids.shape[0]
        flat = codes.reshape(-1, m).long()
        picked = centroids[torch.arange(m, device=codes.device), flat]  # tokens x M x dsub
        states = picked.reshape(flat.shape[0], -1)
        if rotation is not None:
            states = (states - bias if bias is not None else states) @ rotation
        return states.reshape(*codes.shape[:-1], states.shape[-1])


def get_codec(name: str, dim: int | None = None):
    """A codec by name: ``fp32``/``fp16``/``bf16``, or (with ``dim``) an untrained faiss codec."""
    if name in CODECS:
        return CODECS[name]
    if dim is None:
        raise DecrankError(f"unknown codec {name!r}; known: {', '.join(CODECS)} or a faiss factory string")
    return FaissCodec(name, dim)
