"""Offline stage: corpus -> encoder-state store (``decrank encode``)."""

from ._encode import (ON_DUPLICATE, EncodeBatch, EncodeStats, check_encode_options, document_batches, encode_corpus,
                      store_width)

__all__ = ["ON_DUPLICATE", "EncodeBatch", "EncodeStats", "check_encode_options", "document_batches", "encode_corpus",
           "store_width"]
