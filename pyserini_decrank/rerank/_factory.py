"""A re-ranker by method name, with the inputs that method needs: what ``decrank rerank --method`` picks."""

from __future__ import annotations

from typing import Iterable

from ..errors import DecrankError
from ..io import read_corpus
from ._base import Reranker
from ._biencoder import BiEncoderReranker
from ._cross import DEFAULT_CROSS_MODEL, CrossAttentionReranker
from ._decoder import DecoderReranker

METHODS = tuple(cls.method for cls in (DecoderReranker, CrossAttentionReranker, BiEncoderReranker))
# options only the decoder's model takes, with the value that means "not given"
DECODER_OPTIONS = {"copy": None, "head_precision": "compute", "cross_attention": "auto", "document_prefix": None,
                   "query_prefix": None}


def load_reranker(method: str, model: str | None = None, store: str | None = None, corpus: str | None = None,
                  docids: Iterable[str] | None = None, batch_size: int = 32, alpha: float | str | None = None,
                  skip_missing: bool = False, device: str = "cpu", precision: str = "fp32",
                  attention: str | None = None, query_batch: int = 1, **model_options) -> Reranker:
    """``decoder`` reads ``store``; ``cross`` and ``biencoder`` read the text of ``docids`` (all if None)
    from ``corpus``. ``query_batch`` queries share forward passes. ``model_options`` go to the decoder's model (prefixes, head precision). ``alpha="model"``
    (decoder only) is the alpha the model carries."""
    for name, unset in DECODER_OPTIONS.items():
        if method != "decoder" and model_options.get(name, unset) != unset:
            option = "--" + name.replace("_", "-")
            raise DecrankError(f"{name} is an option of the decoder's model; method {method!r} has none",
                               cli=f"{option} is an option of --method decoder; --method {method} has none")
    common = dict(batch_size=batch_size, alpha=alpha, skip_missing=skip_missing, query_batch=query_batch)
    if method == "decoder":
        if not store:
            raise DecrankError("method 'decoder' re-ranks a run from stored states: give store= (a folder written by "
                               "`decrank encode`)", cli="--method decoder needs --store (a folder written by `decrank encode`)")
        kwargs = {k: v for k, v in model_options.items() if v is not None}
        return DecoderReranker.from_pretrained(*([model] if model else []), store=store, device=device,
                                               precision=precision, attention=attention, **common, **kwargs)
    if method not in METHODS:
        raise DecrankError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    if not corpus:
        raise DecrankError(f"method {method!r} reads the candidates' text: give corpus=",
                           cli=f"--method {method} reads the candidates' text: give --corpus")
    wanted = None if docids is None else set(docids)
    texts = {d.docid: d.text for d in read_corpus(corpus) if wanted is None or d.docid in wanted}
    common.update(texts=texts, source=f"corpus {corpus}")
    if method == "cross":
        return CrossAttentionReranker.from_pretrained(model or DEFAULT_CROSS_MODEL, device=device, precision=precision,
                                                      attention=attention, **common)
    return BiEncoderReranker.from_pretrained(model, device=device, precision=precision, attention=attention, **common)
