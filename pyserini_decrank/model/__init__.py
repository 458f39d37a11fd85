"""The encoder-decoder wrapper: encoder and decoder used separately (ED2LM), and models by name."""

from ._batching import pad_ids, pad_labels, pad_states
from ._card import ModelCard
from ._config import SCORES, ScoringConfig
from ._copy import COPY_HEAD_FILE, COPY_KINDS, CopyHead, CopySpec, INITIAL_GATE, copyable_tokens, fixed_log_gates, mix_log_probs
from ._fast import ATTENTIONS, HEAD_PRECISIONS, PRECISIONS, ComputePrecision, ComputeWeights, set_attention, vocab_log_probs
from ._fingerprint import tokenizer_sha256, weights_sha256
from ._loading import load_pretrained, load_seq2seq, model_file, resolve_model
from ._packaged import (BASE_PACKAGE, DECODER_WEIGHTS, DEFAULT_MODEL, MINILM_HUB_ID, MINILM_WEIGHTS_SHA256, SHARED_KEYS,
                        build_minilm_encoder_decoder, check_minilm_weights, has_minilm_encoder, minilm_path,
                        save_decoder_delta)
from ._scores import interpolate, mean_pool, minmax
from ._seq2seq import CONTENTS, CROSS_ATTENTIONS, QueryLikelihoodModel, check_device, word_token_id

__all__ = [
    "ATTENTIONS", "BASE_PACKAGE", "CROSS_ATTENTIONS", "MINILM_HUB_ID", "MINILM_WEIGHTS_SHA256", "ModelCard", "check_minilm_weights", "interpolate", "mean_pool", "minmax", "CONTENTS", "COPY_HEAD_FILE", "COPY_KINDS", "CopyHead", "CopySpec", "INITIAL_GATE", "copyable_tokens",
    "fixed_log_gates", "mix_log_probs", "DECODER_WEIGHTS", "DEFAULT_MODEL", "HEAD_PRECISIONS", "SCORES",
    "PRECISIONS", "SHARED_KEYS", "ComputePrecision", "ComputeWeights", "QueryLikelihoodModel", "ScoringConfig",
    "build_minilm_encoder_decoder", "check_device", "has_minilm_encoder", "load_pretrained", "load_seq2seq", "model_file", "minilm_path", "pad_ids",
    "pad_labels", "pad_states", "resolve_model", "save_decoder_delta", "set_attention", "tokenizer_sha256",
    "vocab_log_probs", "weights_sha256", "word_token_id",
]
