"""Neural translation with a CTranslate2 model and its Hugging Face tokenizer.

Three model families, told apart by ``nova-mt.json`` (or the tokenizer's class):

- ``nllb``: NLLB-200, FLORES-200 codes (``spa_Latn``); the source starts with its language token,
  the decoder is given the target's as a prefix.
- ``m2m100``: M2M-100, the same scheme with ``__es__`` tokens.
- ``marian``: OPUS-MT, one fixed pair and no language tokens.

A language counts as supported only when the model's vocabulary has its token, so a model trained
on fewer languages (the tests' tiny one) answers ``supports()`` truthfully. That is the vocabulary
CTranslate2 loads, not the tokenizer's: transformers' M2M-100 tokenizer leaves its language tokens
out of ``get_vocab()``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nova_common.languages import flores_code
from nova_mt.backend import TranslationUnavailable
from nova_mt.models import MtModelNotAvailable, is_model_dir, model_info

# Longer inputs are cut: positions past the model's limit would fail the batch on every retry.
MAX_SOURCE_TOKENS = 512


class Ct2Backend:
    """One CTranslate2 translator; blocking, call from a worker thread."""

    neural = True

    def __init__(
        self,
        model_dir: Path,
        *,
        name: str | None = None,
        device: str = "cpu",
        compute_type: str = "default",
        cpu_threads: int = 0,
        beam_size: int = 4,
        max_decoding_length: int = 256,
    ) -> None:
        import ctranslate2
        from transformers import AutoTokenizer

        model_dir = Path(model_dir)
        if not is_model_dir(model_dir):
            raise MtModelNotAvailable(f"{model_dir} is not a CTranslate2 model (no model.bin)")
        self.info = model_info(model_dir)
        self.family = self.info.family
        self.multilingual = self.family in ("nllb", "m2m100")  # Marian: one pair only
        self.name = f"ct2:{name or self.info.name}"
        self.model_dir = model_dir
        self.beam_size = beam_size
        self.max_decoding_length = max_decoding_length
        if compute_type == "default":
            compute_type = "int8" if device == "cpu" else "float16"
        try:
            # A local directory: transformers reads it and never asks the hub.
            self._tokenizer: Any = AutoTokenizer.from_pretrained(
                str(model_dir), local_files_only=True
            )
            self._translator = ctranslate2.Translator(
                str(model_dir), device=device, compute_type=compute_type, intra_threads=cpu_threads
            )
        except Exception as exc:
            raise MtModelNotAvailable(
                f"cannot load translation model from {model_dir}: {exc}"
            ) from exc
        self._vocabulary = _model_vocabulary(model_dir) or frozenset(self._tokenizer.get_vocab())
        # The tokenizer's source language is state on a shared object.
        self._tokenizer_lock = threading.Lock()

    def language_token(self, code: str) -> str | None:
        """The model's token for a Whisper language code (None for Marian, or no such code)."""
        if self.family == "nllb":
            return flores_code(code)
        if self.family == "m2m100":
            return f"__{m2m100_code(code)}__"
        return None

    def supports(self, source: str, target: str) -> bool:
        if self.family == "marian":
            return (source, target) == (self.info.source, self.info.target)
        tokens = (self.language_token(source), self.language_token(target))
        return all(t is not None and t in self._vocabulary for t in tokens)

    def translate_batch(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        if not self.supports(source, target):
            raise TranslationUnavailable(
                f"translation model {self.name} does not translate {source!r} → {target!r}"
            )
        results = [""] * len(texts)
        todo = [(i, text.strip()) for i, text in enumerate(texts) if text.strip()]
        if not todo:
            return results
        sources = self.tokenize([text for _, text in todo], source)
        target_token = self.language_token(target)
        prefix = [[target_token] for _ in sources] if target_token is not None else None
        # A model can loop without ever emitting </s>: bound the output by the input's length.
        limit = min(self.max_decoding_length, 2 * max(len(s) for s in sources) + 16)
        outputs = self._translator.translate_batch(
            sources,
            target_prefix=prefix,
            beam_size=self.beam_size,
            max_decoding_length=limit,
        )
        for (index, _), output in zip(todo, outputs, strict=True):
            tokens = list(output.hypotheses[0])
            if target_token is not None and tokens[:1] == [target_token]:
                tokens = tokens[1:]
            ids = self._tokenizer.convert_tokens_to_ids(tokens)
            results[index] = self._tokenizer.decode(ids, skip_special_tokens=True).strip()
        return results

    def tokenize(self, texts: Sequence[str], source: str) -> list[list[str]]:
        """The source tokens the translator gets, language token and </s> included."""
        with self._tokenizer_lock:
            if self.family == "nllb":
                self._tokenizer.src_lang = flores_code(source)
            elif self.family == "m2m100":
                self._tokenizer.src_lang = m2m100_code(source)
            encoded = self._tokenizer(
                list(texts), truncation=True, max_length=MAX_SOURCE_TOKENS
            ).input_ids
        return [self._tokenizer.convert_ids_to_tokens(ids) for ids in encoded]


def m2m100_code(code: str) -> str:
    # M2M-100 uses ISO 639-1 like Whisper, except Javanese.
    return "jv" if code == "jw" else code


def _model_vocabulary(model_dir: Path) -> frozenset[str]:
    """Every token of the CTranslate2 model (shared, or source and target, vocabularies)."""
    tokens: set[str] = set()
    for stem in ("shared_vocabulary", "source_vocabulary", "target_vocabulary"):
        as_json, as_text = model_dir / f"{stem}.json", model_dir / f"{stem}.txt"
        if as_json.is_file():
            tokens.update(json.loads(as_json.read_text(encoding="utf-8")))
        elif as_text.is_file():  # older converters wrote one token a line
            tokens.update(as_text.read_text(encoding="utf-8").splitlines())
    return frozenset(tokens)
