"""The encoder-state store: sharded, memory-mapped, looked up by docid, every read checked."""

from ._codecs import CODEC_FILE, CODECS, Codec, FaissCodec, get_codec
from ._docids import DocidTable, build_docid_arrays
from ._store import (FORMAT_VERSION, EncoderStateStore, Manifest, MissingDocidsError, ShardInfo, StoreWriter,
                     UnfinishedStoreWarning, document_crc, shard_name, store_codec, text_hash,
                     write_shard)

__all__ = ["CODECS", "CODEC_FILE", "FaissCodec", "FORMAT_VERSION", "Codec", "DocidTable", "EncoderStateStore", "Manifest", "MissingDocidsError",
           "ShardInfo", "StoreWriter", "UnfinishedStoreWarning", "build_docid_arrays", "document_crc", "get_codec",
           "shard_name", "store_codec", "text_hash", "write_shard"]
