"""The encoder-state store: sharded, memory-mapped, looked up by docid, every read checked. ``_format`` is the
on-disk layout, ``_reader`` opens a store, ``_writer`` builds one, ``_transcode`` writes one again in another
codec, ``_codecs`` and ``_docids`` its parts."""

from ._codecs import CODEC_FILE, CODEC_TRAIN_TOKENS, CODECS, Codec, FaissCodec, PQDecoder, codec_training_sample, get_codec
from ._docids import DocidTable, build_docid_arrays
from ..errors import MissingDocidsError
from ._format import FORMAT_VERSION, Manifest, ShardInfo, document_crc, shard_name, text_hash, write_shard
from ._reader import EncoderStateStore, UnfinishedStoreWarning, store_codec
from ._transcode import transcode_store
from ._writer import StoreWriter

__all__ = ["CODECS", "CODEC_FILE", "CODEC_TRAIN_TOKENS", "FaissCodec", "PQDecoder", "codec_training_sample", "FORMAT_VERSION", "Codec", "DocidTable", "EncoderStateStore", "Manifest", "MissingDocidsError",
           "ShardInfo", "StoreWriter", "UnfinishedStoreWarning", "build_docid_arrays", "document_crc", "get_codec",
           "shard_name", "store_codec", "text_hash", "transcode_store", "write_shard"]
