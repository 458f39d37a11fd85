"""The encoder-state store: sharded, memory-mapped, looked up by docid."""

from ._codecs import CODECS, Codec, get_codec
from ._docids import DocidTable, build_docid_arrays
from ._store import EncoderStateStore, Manifest, MissingDocidsError, ShardInfo, StoreWriter

__all__ = ["CODECS", "Codec", "DocidTable", "EncoderStateStore", "Manifest", "MissingDocidsError", "ShardInfo",
           "StoreWriter", "build_docid_arrays", "get_codec"]
