"""``QueryLikelihoodModel``: any Hugging Face encoder-decoder, its encoder and decoder used apart.

The encoder sees only the document, so its output can be computed once and stored; the decoder then
scores a query against stored states. Scores go through the model's own forward with
``encoder_outputs`` given, so every family's quirks (T5 v1.0's ``d_model**-0.5`` output scaling,
BART's ``final_logits_bias``, ``EncoderDecoderModel``'s ``enc_to_dec_proj``) stay the library's.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from ..errors import DecrankError
from ._absorbed import absorbed_cross_attention, absorbed_supported, cross_attention_modules, cross_attention_weights
from ._batching import pad_ids, pad_labels, pad_states
from ._compat import cache_argument, cross_attention_cache
from ._card import CARD_FILE, ModelCard
from ._config import CONFIG_NAME, ScoringConfig
from ._cross_kv import compute_cross_kv, probe_layout, split_documents, split_for_attention
from ._copy import (COPY_HEAD_FILE, CopyHead, CopySpec, copy_probabilities, copyable_tokens, fixed_log_gates,
                    mark_special, mix_log_probs)
from ._fast import HEAD_PRECISIONS, ComputePrecision, head_input, output_bias, set_attention, vocab_log_probs
from ._fingerprint import tokenizer_sha256, weights_sha256
from ._loading import load_seq2seq, model_file, resolve_model

# what a store holds: encoder states (any decoder on that encoder), or one decoder's cross-attention keys/values
CONTENTS = ("encoder-states", "cross-kv")
# how the decoder reads encoder states: through the library's key/value projections, or with them absorbed
# into the query (``_absorbed``); ``auto`` absorbs wherever the family is supported
CROSS_ATTENTIONS = ("auto", "project", "absorbed")


def check_device(name: str) -> torch.device:
    """The torch device ``name``; a name torch does not know, or CUDA where torch has none, is one error line
    (raised before any weights are loaded)."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DecrankError(f"unknown device {name!r}", cli=f"--device {name}: not a torch device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DecrankError(f"device {name!r}: torch sees no CUDA device here",
                           cli=f"--device {name}: torch sees no CUDA device here")
    return device


class QueryLikelihoodModel:
    """Scores ``log p(query | document)`` from precomputed encoder states."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        config: ScoringConfig | None = None,
        name_or_path: str = "",
        revision: str | None = None,
        device: str = "cpu",
        precision: str = "fp32",
        attention: str | None = None,
        head_precision: str = "compute",
        cross_attention: str = "auto",
        copy_head: CopyHead | None = None,
    ) -> None:
        if cross_attention not in CROSS_ATTENTIONS:
            raise DecrankError(f"unknown cross-attention {cross_attention!r}; known: {', '.join(CROSS_ATTENTIONS)}")
        supported = absorbed_supported(model)
        if cross_attention == "absorbed" and not supported:
            raise DecrankError(f"absorbed cross-attention does not know the decoder of {name_or_path or 'this model'!r} "
                               f"({type(model).__name__}); use cross_attention='project'",
                               cli="--cross-attention absorbed does not know this model's decoder; use project")
        self.absorbed = supported and cross_attention != "project"
        if head_precision not in HEAD_PRECISIONS:
            raise DecrankError(f"unknown head precision {head_precision!r}; known: {', '.join(HEAD_PRECISIONS)}")
        # fp32 for the vocabulary projection under bf16: its logits rounded to bf16 are what moves rankings most
        self.head_precision = head_precision
        self.device = check_device(device)
        self.model = model.eval().to(self.device)
        set_attention(self.model, attention)
        self.precision = precision
        self.tokenizer = tokenizer
        self.config = config or ScoringConfig()
        self.name_or_path = name_or_path
        self.revision = revision
        mc = model.config
        start = mc.decoder_start_token_id
        if start is None and getattr(mc, "decoder", None) is not None:
            start = mc.decoder.decoder_start_token_id or mc.decoder.bos_token_id
        if start is None:
            start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        if start is None:
            raise DecrankError(f"model {name_or_path!r} has no decoder_start_token_id in its config")
        self.decoder_start_token_id = int(start)
        pad = mc.pad_token_id if mc.pad_token_id is not None else tokenizer.pad_token_id
        self.pad_token_id = int(pad if pad is not None else 0)
        self._fingerprint: dict | None = None
        keep = (self.model.get_output_embeddings(),) if head_precision == "fp32" else ()
        self.compute = ComputePrecision(self.model, precision, keep=keep)
        self._cross_kv_layout: tuple[int, int, int] | None = None  # read off the model on first use
        self._label_ids: tuple[tuple[str, str], tuple[int, int]] | None = None
        self.copy_head = None if copy_head is None else copy_head.to(self.device)
        self.copy = CopySpec()
        self.set_copy(self.config.copy)

    # ------------------------------------------------------------------ copying from the document
    def set_copy(self, spec: "str | CopySpec") -> None:
        """How query tokens mix in copying from the document (``CopySpec.parse``'s forms); recorded in the
        config, so that ``save_pretrained`` keeps it. A learned gate needs the model's copy head."""
        copy = spec if isinstance(spec, CopySpec) else CopySpec.parse(spec)
        name = self.name_or_path or "this model"
        if copy.learned and self.copy_head is None:
            raise DecrankError(f"copy {copy}: model {name!r} has no learned copy gate ({COPY_HEAD_FILE}); give a "
                               f"lambda, e.g. {copy.kind}:0.1",
                               cli=f"--copy {copy}: model {name} has no learned copy gate; give a lambda, e.g. {copy.kind}:0.1")
        if copy.kind == "attention" and not absorbed_supported(self.model):
            raise DecrankError(f"copy {copy}: the cross-attention of {name!r} ({type(self.model).__name__}) is not one "
                               "this package reads; use uniform copying",
                               cli=f"--copy {copy}: this model's cross-attention is not one pyserini-decrank reads; use uniform")
        self.copy = copy
        self.config.copy = str(copy)

    def add_copy_head(self) -> CopyHead:
        """A new learned gate (for training); the model then scores with it."""
        self.copy_head = CopyHead(self.head_width).to(self.device)
        return self.copy_head

    @property
    def head_width(self) -> int:
        """Width of the hidden state that feeds the vocabulary projection (what the copy gate reads)."""
        return int(self.model.get_output_embeddings().weight.shape[1])

    def stored_token_ids(self, ids: Sequence[int]) -> np.ndarray:
        """One document's token ids (as ``tokenize_documents`` gives them) as a store keeps them: int32, each
        special token as ``~id``."""
        return mark_special(ids, self.special_token_ids)

    def copyable_tokens(self, ids: Sequence[Sequence[int]], length: int) -> torch.Tensor:
        """Documents' token ids (as ``tokenize_documents`` gives them) as the copy scorer reads them: ``B x
        length``, -1 for special tokens and padding (a store's ``tokens.npy`` gives the same)."""
        return copyable_tokens([self.stored_token_ids(doc) for doc in ids], length)

    @cached_property
    def special_token_ids(self) -> frozenset[int]:
        """Token ids a document never copies (CLS, SEP, EOS, padding...), read off the tokenizer once."""
        return frozenset(int(i) for i in self.tokenizer.all_special_ids)

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        revision: str | None = None,
        device: str = "cpu",
        precision: str = "fp32",
        attention: str | None = None,
        head_precision: str = "compute",
        cross_attention: str = "auto",
        **config_overrides,
    ) -> "QueryLikelihoodModel":
        check_device(device)
        path = resolve_model(name_or_path)
        model, tokenizer = load_seq2seq(path, revision)
        config_file = model_file(path, CONFIG_NAME, revision)  # a folder's or a hub model's, alike
        config = (ScoringConfig.load(config_file.parent) if config_file else None) or ScoringConfig()
        for key, value in config_overrides.items():
            if value is not None:
                setattr(config, key, value)
        head_file = model_file(path, COPY_HEAD_FILE, revision)
        copy_head = None
        if head_file is not None:
            copy_head = CopyHead.load(head_file, int(model.get_output_embeddings().weight.shape[1]))
        return cls(model, tokenizer, config, name_or_path=name_or_path, revision=revision, device=device,
                   precision=precision, attention=attention, head_precision=head_precision,
                   cross_attention=cross_attention, copy_head=copy_head)

    def save_pretrained(self, folder: str | Path, card: ModelCard | None = None) -> None:
        """A complete folder: the weights and tokenizer as ``transformers`` saves them (it loads them back
        alone), ``decrank_config.json``, the copy head where there is one, and a model card (``card``, or a
        plain one where the folder has no ``README.md`` yet) ready for ``huggingface-cli upload``."""
        folder = Path(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.model.save_pretrained(folder)
            self.tokenizer.save_pretrained(folder)
            self.config.save(folder)
            if self.copy_head is not None:
                self.copy_head.save(folder)
            if card is not None or not (folder / CARD_FILE).exists():
                card = card or ModelCard(name=folder.name)
                (folder / CARD_FILE).write_text(card.render(self.config), encoding="utf-8")
        except OSError as exc:
            raise DecrankError(f"cannot save the model to {folder}: {exc.strerror or exc}") from None

    # ------------------------------------------------------------------ identity
    @property
    def encoder(self) -> torch.nn.Module:
        return self.model.get_encoder()

    @property
    def hidden_size(self) -> int:
        enc_config = getattr(self.model.config, "encoder", None) or self.model.config
        for key in ("hidden_size", "d_model"):
            value = getattr(enc_config, key, None)
            if value:
                return int(value)
        raise DecrankError(f"cannot tell the encoder width of {self.name_or_path!r}")

    def fingerprint(self, content: str = "encoder-states") -> dict:
        """What a store must match: the encoder's weights, the tokenizer and the document template; for a
        ``cross-kv`` store also the decoder's weights, whose cross-attention projections made it.

        Weights, not the config, identify the encoder, so every decoder trained on one frozen encoder
        shares its encoder-state stores.
        """
        if content not in CONTENTS:
            raise DecrankError(f"unknown store content {content!r}; known: {', '.join(CONTENTS)}")
        if self._fingerprint is None:
            self._fingerprint = {
                "model": self.name_or_path,
                "revision": self.revision,
                "encoder_sha256": weights_sha256(self.encoder),
                "tokenizer_sha256": tokenizer_sha256(self.tokenizer),
                "document_prefix": self.config.document_prefix,
            }
        fingerprint = dict(self._fingerprint, content=content)
        if content == "cross-kv":
            fingerprint["decoder_sha256"] = weights_sha256(self.model.get_decoder())
        return fingerprint

    # ------------------------------------------------------------------ documents
    def check_max_length(self, max_length: int, option: str = "max_length") -> None:
        """A document length the tokenizer can cut to (its special tokens and one more) and the encoder can
        read (its learned positions, where it has them; T5's relative positions have no limit)."""
        low = self.tokenizer.num_special_tokens_to_add(pair=False) + 1
        encoder_config = getattr(self.model.config, "encoder", self.model.config)
        high = getattr(encoder_config, "max_position_embeddings", None)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < low:
            raise DecrankError(f"{option} {max_length}: the tokenizer adds {low - 1} special token(s), so documents "
                               f"need at least {low} tokens")
        if high is not None and max_length > high:
            raise DecrankError(f"{option} {max_length}: the model reads at most {high} tokens (its positions)")

    def tokenize_documents(self, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
        max_length = max_length or self.config.max_length
        prefixed = [self.config.document_prefix + t for t in texts]
        return self.tokenizer(list(prefixed), truncation=True, max_length=max_length)["input_ids"]

    @torch.inference_mode()
    def encode_ids(self, batch: Sequence[Sequence[int]]) -> list[torch.Tensor]:
        """Encoder states of each document, unpadded (``len_i x hidden``), fp32 on the CPU; the encoder's
        products run in the model's compute precision."""
        input_ids, mask = pad_ids(batch, self.pad_token_id)
        with self.compute():
            out = self.encoder(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device))
        states = out.last_hidden_state.float().cpu()
        return [states[i, : len(ids)] for i, ids in enumerate(batch)]

    def encode(self, texts: Sequence[str]) -> list[torch.Tensor]:
        return self.encode_ids(self.tokenize_documents(texts))

    def store_matrices(self, batch: Sequence[Sequence[int]], content: str = "encoder-states") -> list[torch.Tensor]:
        """What a store keeps for each document of a batch of token ids: its encoder states or, for a
        ``cross-kv`` store, its cross-attention keys/values (fp32, unpadded)."""
        states = self.encode_ids(batch)
        if content != "cross-kv":
            return states
        padded, mask = pad_states(states)
        kv = self.cross_keys_values(padded, mask)
        return [kv[j, : s.shape[0]] for j, s in enumerate(states)]

    # ------------------------------------------------------------------ queries
    def query_ids(self, query: str) -> list[int]:
        """Token ids of a query, end-of-sequence included, decoder-start token excluded."""
        cfg = self.config
        ids = self.tokenizer(cfg.query_prefix + query, truncation=True, max_length=cfg.max_query_length)["input_ids"]
        if ids and ids[0] == self.decoder_start_token_id:
            ids = ids[1:]
        return ids

    def query_labels(self, query: str) -> list[int]:
        """The decoder's targets when scoring: the query, then for a model scored by its label the relevance token."""
        ids = self.query_ids(query)
        if self.config.reads_label:
            ids = ids + [self.label_token_ids()[0]]
        return ids

    def label_token_ids(self) -> tuple[int, int]:
        """Ids of the relevance token and its opposite; tokenised once per pair of words, not per batch."""
        words = (self.config.relevance_token, self.config.irrelevance_token)
        if self._label_ids is None or self._label_ids[0] != words:
            self._label_ids = (words, (word_token_id(self.tokenizer, words[0]), word_token_id(self.tokenizer, words[1])))
        return self._label_ids[1]

    # ------------------------------------------------------------------ cross-attention keys/values
    def cross_keys_values(self, states: torch.Tensor, states_mask: torch.Tensor) -> torch.Tensor:
        """Every decoder layer's cross-attention keys and values of a padded batch of encoder states
        (``_cross_kv.compute_cross_kv``): what a ``cross-kv`` store holds."""
        return compute_cross_kv(self.model, states, states_mask, self.decoder_start_token_id, self.device)

    def cross_kv_layout(self) -> tuple[int, int, int]:
        """(decoder layers, heads, head dim) of the cross-attention, probed once."""
        if self._cross_kv_layout is None:
            self._cross_kv_layout = probe_layout(self.model, self.hidden_size, self.decoder_start_token_id, self.device)
        return self._cross_kv_layout

    # ------------------------------------------------------------------ scoring
    def _compute_dtype(self) -> torch.dtype:
        return self.compute.dtype or next(self.model.parameters()).dtype

    def token_log_probs(
        self,
        labels: torch.Tensor,
        states: torch.Tensor,
        states_mask: torch.Tensor,
        cross_kv: bool = False,
        extra_token_ids: Sequence[int] = (),
        absorbed: bool | None = None,
        document_tokens: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token ``log p`` of ``labels`` (B x T, -100 = padding), and at every position the ``log p`` of
        each of ``extra_token_ids`` (B x T x k), from encoder states or (``cross_kv``) from stored
        cross-attention keys/values, padded (``B x L x features``) or already split by layer
        (``split_for_attention``, 6-d). Encoder states are read with cross-attention absorbed when ``absorbed``
        (default: the model's ``cross_attention`` setting). The vocabulary projection and its log-softmax (fp32 whatever the compute
        precision) run in row blocks, so the full logits are never held. With copying on (``self.copy``),
        each label's ``log p`` mixes in copying it from ``document_tokens`` (``B x L`` stored ids, -1 where
        never copied: ``copyable_tokens``); the ``extra_token_ids`` stay the vocabulary's."""
        copy = self.copy
        if copy.active and document_tokens is None:
            raise DecrankError(f"copy {copy} needs the documents' token ids")
        label_lp, extra_lp, copied, hidden = self._decode(labels, states, states_mask, cross_kv, extra_token_ids,
                                                          absorbed, document_tokens, copy.kind)
        if copy.active:
            if copy.learned:
                log_gate, log_keep = self.copy_head.log_gates(hidden)
            else:
                log_gate, log_keep = fixed_log_gates(copy.gate, self.device)
            label_lp = mix_log_probs(label_lp, copied, log_gate, log_keep)
        return label_lp * labels.ne(-100).to(self.device), extra_lp

    @torch.inference_mode()
    def copy_terms(self, labels: torch.Tensor, states: torch.Tensor, states_mask: torch.Tensor,
                   document_tokens: torch.Tensor, kind: str, cross_kv: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The copy mixture's two halves at each label (B x T, fp32): the vocabulary's ``log p`` and the
        probability of copying the label under ``kind``'s distribution, so that fixed gates can be screened
        from one decoder pass (``mix_log_probs`` puts them together as scoring does)."""
        with self.compute():
            label_lp, _, copied, _ = self._decode(labels, states, states_mask, cross_kv, (), None, document_tokens, kind)
        return label_lp.float(), copied

    def _decode(self, labels: torch.Tensor, states: torch.Tensor, states_mask: torch.Tensor, cross_kv: bool,
                extra_token_ids: Sequence[int], absorbed: bool | None, document_tokens: torch.Tensor | None,
                copy_kind: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """One decoder pass: the labels' vocabulary ``log p``, the extra tokens', the labels' copy
        probabilities under ``copy_kind`` (None for ``none``) and the hidden state that feeds the head."""
        label_mask = labels.ne(-100)
        targets = labels.masked_fill(~label_mask, self.pad_token_id)
        decoder_input = torch.full_like(targets, self.pad_token_id)
        decoder_input[:, 0] = self.decoder_start_token_id
        decoder_input[:, 1:] = targets[:, :-1]
        from transformers.modeling_outputs import BaseModelOutput

        dtype = next(self.model.parameters()).dtype
        extra = {"use_cache": False}
        absorb = (self.absorbed if absorbed is None else absorbed) and not cross_kv
        if absorb:
            dtype = self._compute_dtype()  # the states enter products only: cast them once, not per layer
        if cross_kv:
            split = states if states.dim() == 6 else split_for_attention(states, self.cross_kv_layout(), self.device,
                                                                         self._compute_dtype())
            extra = {"use_cache": True, cache_argument(self.model): cross_attention_cache(split)}
            # the encoder output only tells the decoder the batch and length: keys/values come from the cache
            states = torch.zeros((1, 1, 1), dtype=dtype).expand(split.shape[2], split.shape[4], self.hidden_size)
        absorbing = absorbed_cross_attention(self.model, states_mask.to(self.device)) if absorb else nullcontext()
        recording = _last_cross_attention_input(self.model) if copy_kind == "attention" else nullcontext({})
        with head_input(self.model) as head, absorbing, recording as cross_input:
            self.model(
                encoder_outputs=BaseModelOutput(last_hidden_state=states.to(self.device, dtype)),
                attention_mask=states_mask.to(self.device),
                decoder_input_ids=decoder_input.to(self.device),
                **extra,
            )
        targets = targets.to(self.device)
        columns = targets.unsqueeze(-1)
        if extra_token_ids:
            wanted = torch.as_tensor(list(extra_token_ids), device=self.device)
            columns = torch.cat([columns, wanted.expand(*targets.shape, len(wanted))], -1)
        head_module, hidden = head["head"], head["hidden"]
        bias = output_bias(self.model, head_module)
        if self.head_precision == "fp32":
            with torch.autocast(self.device.type, enabled=False):
                log_probs = vocab_log_probs(hidden.float(), head_module.weight.float(),
                                            None if bias is None else bias.float(), columns)
        else:
            log_probs = vocab_log_probs(hidden, head_module.weight, bias, columns)
        copied = None
        if copy_kind != "none":
            weights = None
            if copy_kind == "attention":
                module, layout = cross_input["module"]
                weights = cross_attention_weights(module, layout, cross_input["hidden"], states_mask.to(self.device),
                                                  states=None if cross_kv else cross_input["states"],
                                                  keys=split[-1, 0] if cross_kv else None)
            copied = copy_probabilities(targets, document_tokens.to(self.device), weights)
        return log_probs[..., 0], log_probs[..., 1:], copied, hidden

    @torch.inference_mode()
    def score_documents(self, label_ids: Sequence[int] | Sequence[Sequence[int]], documents: Sequence[torch.Tensor],
                        cross_kv: bool = False, token_ids: Sequence | None = None,
                        decode: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """``score_states`` of one query (``label_ids``), or of one query per document (a list of label id
        lists: queries batched together), against documents as a store hands them back, one matrix each
        (encoder states, or cross-attention keys/values for ``cross_kv``), with each document's stored
        token ids when the model copies; batching is the caller's. With ``decode``, ``documents`` are a
        store's codes: they are padded, moved to the model's device and decoded there."""
        per_row = len(label_ids) > 0 and not isinstance(label_ids[0], (int, np.integer))
        if per_row and len(label_ids) != len(documents):
            raise DecrankError(f"{len(label_ids)} queries' labels for {len(documents)} documents: give one per document")
        labels = pad_labels(list(label_ids) if per_row else [label_ids] * len(documents))
        if cross_kv:
            split, mask = split_documents(documents, self.cross_kv_layout(), self.device, self._compute_dtype())
        else:
            split, mask = pad_states(documents)
            if decode is not None:
                split = decode(split.to(self.device))
        tokens = None if token_ids is None else copyable_tokens(list(token_ids), mask.shape[1])
        return self.score_states(labels, split, mask, cross_kv=cross_kv, document_tokens=tokens)

    @torch.inference_mode()
    def score_states(
        self,
        labels: torch.Tensor,
        states: torch.Tensor,
        states_mask: torch.Tensor,
        cross_kv: bool = False,
        document_tokens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The model's relevance score of each row: summed query log-likelihood (eos included), or
        for a model scored by its label the relevance token's log-probability against its opposite."""
        is_label = self.config.reads_label
        with self.compute():
            token_lp, pair_lp = self.token_log_probs(labels, states, states_mask, cross_kv=cross_kv,
                                                     extra_token_ids=self.label_token_ids() if is_label else (),
                                                     document_tokens=document_tokens)
        if not is_label:
            return token_lp.sum(-1).float().cpu()
        lengths = labels.ne(-100).sum(-1).to(self.device)
        last = (lengths - 1).clamp_min(0)
        rows = torch.arange(labels.size(0), device=self.device)
        pair = pair_lp[rows, last].log_softmax(-1)[:, 0]
        if self.config.label_adds_likelihood:
            pair = pair + token_lp.sum(-1) - token_lp[rows, last]
        return pair.float().cpu()


@contextmanager
def _last_cross_attention_input(model: torch.nn.Module) -> Iterator[dict]:
    """Within the block, records what the decoder's last cross-attention module is called with (its query
    side's hidden states and the encoder states), whichever path (library or absorbed) runs it."""
    module, layout = cross_attention_modules(model)[-1]
    record: dict = {"module": (module, layout)}

    def hook(_module, args, kwargs):
        record["hidden"] = args[0] if args else kwargs["hidden_states"]
        # the states as the module sees them (after EncoderDecoderModel's enc_to_dec_proj, where it has one)
        record["states"] = kwargs.get("key_value_states", kwargs.get("encoder_hidden_states"))

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield record
    finally:
        handle.remove()


def word_token_id(tokenizer, word: str) -> int:
    """The id that stands for ``word`` (its first piece that is not a bare word-start marker)."""
    pieces = [i for i in tokenizer(word, add_special_tokens=False)["input_ids"] if tokenizer.decode([i]).strip()]
    if not pieces:
        raise DecrankError(f"the tokenizer has no token for {word!r}")
    return pieces[0]
