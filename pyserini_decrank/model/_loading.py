"""Models by name: local folders, hub ids and packaged names, and the one way they are loaded (a model that
cannot be loaded is one error line naming it)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DecrankError


def load_pretrained(loader, name_or_path: str, revision: str | None = None, **kwargs):
    """``loader.from_pretrained(name_or_path, ...)`` (a transformers class: ``AutoModel``, ``AutoTokenizer``,
    ...); what it cannot load (no such folder, id or file, offline and not cached) is one error line."""
    try:
        return loader.from_pretrained(name_or_path, revision=revision, **kwargs)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DecrankError(f"cannot load model {name_or_path!r}: {first}") from None


def resolve_model(name_or_path: str) -> str:
    """A local folder, a model packaged with pyserini-decrank (``decrank-minilm``), or a hub id. A folder that
    holds a package (a decoder delta, as ``decrank train`` writes to ``OUTPUT/package``) is assembled like one."""
    from ._packaged import BUILD_FILE, PACKAGED_MODELS_DIR, materialize_packaged_model  # the packaged model loads through here

    if os.path.isdir(name_or_path):
        folder = Path(name_or_path)
        if (folder / BUILD_FILE).is_file() and not (folder / "config.json").is_file():
            return str(materialize_packaged_model(folder))
        return name_or_path
    packaged = PACKAGED_MODELS_DIR / name_or_path
    if packaged.is_dir():
        return str(materialize_packaged_model(packaged))
    return name_or_path


def model_file(name_or_path: str, filename: str, revision: str | None = None) -> Path | None:
    """``filename`` beside a model's weights: in its folder, or fetched from the hub (or its cache, offline) the
    way transformers fetches ``config.json``; None where the model has none."""
    if os.path.isdir(name_or_path):
        path = Path(name_or_path) / filename
        return path if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(hf_hub_download(name_or_path, filename, revision=revision))
    except (EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError):
        return None


def load_seq2seq(name_or_path: str, revision: str | None = None):
    """(model, tokenizer) of any Hugging Face encoder-decoder, ``EncoderDecoderModel`` included; a model
    that cannot be loaded is one line naming it."""
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, EncoderDecoderModel

    config = load_pretrained(AutoConfig, name_or_path, revision)
    loader = EncoderDecoderModel if config.model_type == "encoder-decoder" else AutoModelForSeq2SeqLM
    return load_pretrained(loader, name_or_path, revision), load_pretrained(AutoTokenizer, name_or_path, revision)
