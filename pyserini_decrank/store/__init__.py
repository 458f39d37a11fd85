"""The encoder-state store: sharded, memory-mapped, looked up by docid."""

from ._codecs import CODECS, Codec, get_codec
from ._store import EncoderStateStore, Manifest, MissingDocidsError, ShardInfo, StoreWriter

__all__ = ["EncoderStateStore", "StoreWriter", "Manifest", "ShardInfo", "MissingDocidsError", "Codec", "CODECS", "get_codec"]
