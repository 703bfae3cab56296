"""A tiny NLLB-style (or M2M-100-style) CTranslate2 translator with random weights, built locally
in well under a second.

No real translation weights can be downloaded where the tests run, yet the CTranslate2 backend's
loading, tokenisation, language tokens, batching and decoding deserve a real model. This builds
one the way a converted NLLB model looks on disk: a sentencepiece vocabulary (trained on a few
lines) behind Hugging Face's ``NllbTokenizer`` with FLORES-200 language codes as special tokens,
and a pre-norm Transformer written with CTranslate2's spec API (no torch); or, for the M2M-100
family, ``M2M100Tokenizer`` with ``__xx__`` language tokens. Its output is
gibberish made of real vocabulary pieces: good for plumbing, useless for quality.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nova_common.languages import flores_code
from nova_mt.ct2 import m2m100_code
from nova_mt.models import METADATA_FILE, MtModelInfo, write_metadata

D_MODEL = 32
FFN = 64
HEADS = 2
LAYERS = (2, 2)

# A few lines per language, so the vocabulary has pieces of each (and the tests' sentences
# tokenise into more than <unk>).
_LINES = (
    "Good morning everyone.", "The weather is nice today.", "I would like a cup of coffee.",
    "Where is the train station?", "Thank you very much for your help.",
    "Buenos días a todos.", "Hace buen tiempo hoy.", "Me gustaría una taza de café.",
    "¿Dónde está la estación de tren?", "Muchas gracias por tu ayuda.",
    "Guten Morgen zusammen.", "Das Wetter ist heute schön.", "Wo ist der Bahnhof?",
    "Bonjour à tous.", "Il fait beau aujourd'hui.", "Où est la gare ?",
)  # fmt: skip


def build_tiny_model(
    out_dir: Path,
    *,
    sentences: Sequence[str] | None = None,
    languages: Sequence[str] = ("en", "es", "de", "fr"),
    seed: int = 0,
    family: Literal["nllb", "m2m100"] = "nllb",
) -> Path:
    """Write a tiny random model (tokenizer, model.bin, nova-mt.json) to ``out_dir``.

    ``languages`` are Whisper codes; the model's vocabulary holds their language tokens only
    (FLORES-200 codes for NLLB, ``__xx__`` for M2M-100), so a backend loading it supports exactly
    the pairs among them.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    pieces = _train_sentencepiece([*_LINES, *(sentences or ())])
    if family == "nllb":
        codes = [_flores(language) for language in languages]
        tokenizer = _nllb_tokenizer(out_dir, pieces, codes)
        tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    else:
        tokenizer = _m2m100_tokenizer(out_dir, pieces)
        codes = [_m2m100_token(tokenizer, language) for language in languages]
        # transformers keeps M2M-100's language tokens outside its vocabulary; CTranslate2 works
        # on token strings, so the model's vocabulary simply lists the chosen ones after it.
        tokens = [*tokenizer.convert_ids_to_tokens(list(range(len(tokenizer)))), *codes]
    specials = {*tokenizer.all_special_tokens, *codes}
    spec = _build_spec(tokens, tokenizer, specials, seed)
    spec.optimize(quantization="int8")
    spec.save(str(out_dir))
    info = MtModelInfo(name=out_dir.name, family=family, hub_id=None, quantization="int8")
    write_metadata(out_dir / METADATA_FILE, info)
    return out_dir


def _flores(language: str) -> str:
    code = flores_code(language)
    if code is None:
        raise ValueError(f"NLLB has no FLORES-200 code for {language!r}")
    return code


def _m2m100_token(tokenizer: Any, language: str) -> str:
    token = f"__{m2m100_code(language)}__"
    if token not in tokenizer.lang_token_to_id:
        raise ValueError(f"M2M-100 has no language token for {language!r}")
    return token


def _train_sentencepiece(lines: Sequence[str]) -> bytes:
    import sentencepiece as spm

    model = io.BytesIO()
    # The special ids of NLLB and M2M-100: <s> 0, <pad> 1, </s> 2, <unk> 3. The vocabulary size
    # is a soft limit because a few lines cannot always fill it.
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(lines) * 10),
        model_writer=model,
        vocab_size=96,
        model_type="unigram",
        character_coverage=1.0,
        bos_id=0,
        pad_id=1,
        eos_id=2,
        unk_id=3,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return model.getvalue()


def _nllb_tokenizer(out_dir: Path, pieces: bytes, codes: Sequence[str]) -> Any:
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="nova-tiny-spm-") as tmp:
        (Path(tmp) / "sentencepiece.bpe.model").write_bytes(pieces)
        config = {"tokenizer_class": "NllbTokenizer"}
        (Path(tmp) / "tokenizer_config.json").write_text(json.dumps(config))
        tokenizer = AutoTokenizer.from_pretrained(tmp, local_files_only=True)
    tokenizer.add_special_tokens({"additional_special_tokens": list(codes)})
    tokenizer.save_pretrained(str(out_dir))
    return tokenizer


def _m2m100_tokenizer(out_dir: Path, pieces: bytes) -> Any:
    import sentencepiece as spm
    from transformers import M2M100Tokenizer

    processor = spm.SentencePieceProcessor(model_proto=pieces)
    vocab = {processor.id_to_piece(i): i for i in range(processor.get_piece_size())}
    with tempfile.TemporaryDirectory(prefix="nova-tiny-spm-") as tmp:
        (Path(tmp) / "sentencepiece.bpe.model").write_bytes(pieces)
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab))
        tokenizer = M2M100Tokenizer(
            vocab_file=str(Path(tmp) / "vocab.json"),
            spm_file=str(Path(tmp) / "sentencepiece.bpe.model"),
        )
        tokenizer.save_pretrained(str(out_dir))
    return tokenizer


def _build_spec(tokens: list[str], tokenizer: Any, specials: set[str], seed: int) -> Any:
    from ctranslate2.specs import Activation, model_spec
    from ctranslate2.specs.transformer_spec import TransformerSpec

    vocab = len(tokens)
    rng = np.random.default_rng(seed)

    def normal(*shape: int) -> np.ndarray:
        return rng.normal(0.0, 0.1, shape).astype(np.float32)

    def fill(layer: Any) -> None:
        for value in vars(layer).values():
            children = value if isinstance(value, list) else [value]
            for child in children:
                if isinstance(child, model_spec.LayerSpec):
                    fill(child)
        kind = type(layer).__name__
        if kind == "EmbeddingsSpec":
            layer.weight = normal(vocab, D_MODEL)
        elif kind == "LayerNormSpec":
            layer.gamma = np.ones(D_MODEL, np.float32)
            layer.beta = np.zeros(D_MODEL, np.float32)
        elif kind == "MultiHeadAttentionSpec":
            # Self-attention fuses Q, K, V; cross-attention has Q, then K and V fused.
            self_attention = len(layer.linear) == 2
            shapes = (
                [(3 * D_MODEL, D_MODEL), (D_MODEL, D_MODEL)]
                if self_attention
                else [(D_MODEL, D_MODEL), (2 * D_MODEL, D_MODEL), (D_MODEL, D_MODEL)]
            )
            for linear, shape in zip(layer.linear, shapes, strict=True):
                linear.weight = normal(*shape)
        elif kind == "FeedForwardSpec":
            layer.linear_0.weight = normal(FFN, D_MODEL)
            layer.linear_1.weight = normal(D_MODEL, FFN)
        elif kind == "TransformerDecoderSpec":
            layer.projection.weight = normal(vocab, D_MODEL)
            layer.projection.bias = _projection_bias(tokens, specials, tokenizer.eos_token)

    spec = TransformerSpec.from_config(
        LAYERS, HEADS, pre_norm=True, activation=Activation.RELU, layernorm_embedding=False
    )
    fill(spec)
    spec.register_source_vocabulary(tokens)
    spec.register_target_vocabulary(tokens)
    spec.config.bos_token = tokenizer.bos_token
    spec.config.eos_token = tokenizer.eos_token
    spec.config.unk_token = tokenizer.unk_token
    # As CTranslate2's converter does for NLLB/M2M-100: the decoder starts from </s>, then the
    # target language token comes as a prefix.
    spec.config.decoder_start_token = tokenizer.eos_token
    spec.validate()
    return spec


def _projection_bias(tokens: list[str], specials: set[str], eos: str) -> np.ndarray:
    """Random logits would pick specials and language codes as often as text, and a hypothesis of
    specials decodes to "": make them very unlikely. </s> stays reachable, just rare, so
    decoding usually runs to the length bound (which the backend keeps small)."""
    bias = np.array([-20.0 if token in specials else 0.0 for token in tokens], np.float32)
    bias[tokens.index(eos)] = -6.0
    return bias
