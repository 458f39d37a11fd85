"""Offline stage: corpus -> encoder-state store (``decrank encode``)."""

from ._encode import EncodeStats, encode_corpus

__all__ = ["EncodeStats", "encode_corpus"]
