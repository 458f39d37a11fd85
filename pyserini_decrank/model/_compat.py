"""Where transformers' releases differ in how a decoder's key/value cache is passed and returned.

Kept apart so that the scoring code reads the same on every supported release, and so that the next
release's change lands in one place.
"""

from __future__ import annotations

import inspect

import torch


def returned_cache(output):
    """The cache a forward returned: ``cache`` in transformers 5.2x, ``past_key_values`` before."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def cache_argument(model: torch.nn.Module) -> str:
    """The forward's name for the cache it is given: ``cache`` in transformers 5.2x, ``past_key_values`` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def cross_attention_cache(split: torch.Tensor):
    """An encoder-decoder cache whose cross-attention layers point at ``split``'s slices
    (``layers x 2 x B x heads x L x head_dim``); filling them with ``update`` instead would copy every
    key and value once more. A cache layout this code does not know falls back to ``update``."""
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    cross = cache.cross_attention_cache
    for i in range(split.shape[0]):
        keys, values = split[i, 0], split[i, 1]
        cross.update(keys[:, :, :0], values[:, :, :0], i)  # creates the layer, empty
        layer = cross.layers[i]
        if hasattr(layer, "keys") and hasattr(layer, "values"):
            layer.keys, layer.values = keys, values
        else:
            cross.update(keys, values, i)
        cache.is_updated[i] = True
    return cache
