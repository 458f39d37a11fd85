"""A store written again in another codec from the states it keeps, without running the encoder: a codec
ladder, or a user trading fp32 for disk, encodes a corpus once."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from ..errors import DecrankError
from ._reader import EncoderStateStore
from ._writer import StoreWriter

READ_BATCH = 256  # documents read from the source per call


def transcode_store(source: str | Path, target: str | Path, codec: str, codec_train_tokens: int | None = None,
                    progress: bool = True) -> int:
    """Writes every document of the finished store at ``source`` into ``target`` in ``codec``, in the source's
    order, shard size and batch size, with its model, token ids and text hashes. From an fp32 store the result
    is byte-identical to `decrank encode --codec` of the same corpus; from fp16 or bf16 the codec is trained on,
    and encodes, the rounded states. A ``target`` already started is resumed (its documents are skipped).
    Returns the documents written."""
    reader = EncoderStateStore(source)
    manifest = reader.manifest
    if Path(source).resolve() == Path(target).resolve():
        raise DecrankError(f"{target}: the target of a transcode must be another folder than its source")
    if not manifest.complete:
        raise DecrankError(f"store {source} is unfinished: complete it with `decrank encode` before transcoding it")
    if reader.codec.needs_training:
        raise DecrankError(f"store {source} holds {manifest.codec} codes, not the states: transcode from an fp32, fp16 "
                           "or bf16 store (decoded codes would be quantised twice)")
    reader.check_token_ids()
    written = 0
    with StoreWriter(target, manifest.model, manifest.hidden_size, manifest.max_length, codec=codec,
                     shard_size=manifest.build.get("shard_size"), batch_size=manifest.build.get("batch_size"),
                     codec_train_tokens=codec_train_tokens) as writer:
        hashes = reader.text_hashes()  # docid -> text hash, in the source's order
        done = writer.stored_text_hashes()
        foreign = next((d for d, h in done.items() if hashes.get(d) != h), None)
        if foreign is not None:
            raise DecrankError(f"{target}: document {foreign} there is not {source}'s (another text, or absent from it): "
                               "transcode into a new folder")
        todo = [d for d in hashes if d not in done]
        bar = tqdm(total=len(todo), desc=f"transcode to {codec}", unit="doc", disable=not progress, dynamic_ncols=True)
        try:
            for start in range(0, len(todo), READ_BATCH):
                batch = todo[start:start + READ_BATCH]
                states, token_ids = reader.get_many_with_tokens(batch)
                for docid, matrix, ids in zip(batch, states, token_ids):
                    writer.add(docid, matrix.float(), hashes[docid], ids)
                written += len(batch)
                bar.update(len(batch))
        finally:
            bar.close()
    return written
