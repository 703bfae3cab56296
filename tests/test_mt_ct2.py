"""The CTranslate2 backend on a real (tiny, random) NLLB-style model built locally.

The model's output is gibberish from its vocabulary, so these tests check the plumbing: language
tokens, batching and alignment, determinism, supported pairs, empty input.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nova_mt.backend import TranslationUnavailable
from nova_mt.ct2 import Ct2Backend
from nova_mt.models import MtModelNotAvailable
from tests.tiny_mt_model import build_tiny_model

SENTENCES = [
    "Good morning everyone.",
    "Where is the train station?",
    "I would like a cup of coffee and some bread, please.",
    "Thank you.",
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("mt") / "tiny-nllb")


@pytest.fixture(scope="module")
def backend(tiny_dir: Path) -> Ct2Backend:
    return Ct2Backend(tiny_dir, beam_size=2)


def test_backend_identifies_itself(backend: Ct2Backend) -> None:
    assert backend.name == "ct2:tiny-nllb"
    assert backend.neural is True and backend.multilingual is True
    assert backend.family == "nllb"
    assert backend._translator.compute_type.startswith("int8")  # the CPU default


def test_a_batch_gives_one_non_empty_translation_per_sentence(backend: Ct2Backend) -> None:
    out = backend.translate_batch(SENTENCES, "en", "es")
    assert len(out) == len(SENTENCES)
    assert all(isinstance(t, str) and t.strip() == t and t for t in out), out
    # Special tokens are not text: the language codes and </s> never leak into the output.
    assert not any(code in t for t in out for code in ("spa_Latn", "eng_Latn", "</s>", "<s>"))


def test_translation_is_deterministic(backend: Ct2Backend) -> None:
    assert backend.translate_batch(SENTENCES, "en", "es") == backend.translate_batch(
        SENTENCES, "en", "es"
    )


def test_batch_results_align_with_one_at_a_time(tiny_dir: Path) -> None:
    # A random model never stops early, so every output runs to the length bound; a bound below
    # the input-based one keeps it the same for a sentence alone and in the batch.
    backend = Ct2Backend(tiny_dir, beam_size=2, max_decoding_length=24)
    batch = backend.translate_batch(SENTENCES, "en", "es")
    alone = [backend.translate_batch([s], "en", "es")[0] for s in SENTENCES]
    assert batch == alone
    assert len(set(batch)) == len(batch)  # different inputs, different outputs: order matters


def test_source_is_tokenised_with_its_language_token_first(backend: Ct2Backend) -> None:
    english, spanish = backend.tokenize(["Good morning", "Buenos días"], "en")
    assert english[0] == "eng_Latn" and english[-1] == "</s>"
    assert spanish[0] == "eng_Latn"
    assert backend.tokenize(["Buenos días"], "es")[0][0] == "spa_Latn"
    assert len(english) > 3  # real pieces, not one <unk>
    assert "<unk>" not in english


def test_language_tokens_reach_the_model(backend: Ct2Backend) -> None:
    # Same text, other source or target token: a different output, so both are really used.
    base = backend.translate_batch(SENTENCES[:1], "en", "es")
    assert backend.translate_batch(SENTENCES[:1], "de", "es") != base
    assert backend.translate_batch(SENTENCES[:1], "en", "fr") != base


def test_supports_only_the_languages_in_its_vocabulary(backend: Ct2Backend) -> None:
    assert backend.supports("en", "es")
    assert backend.supports("fr", "de")
    assert not backend.supports("en", "ja")  # NLLB has jpn_Jpan, this tiny vocabulary does not
    assert not backend.supports("ja", "en")
    assert not backend.supports("en", "xx")  # no FLORES-200 code at all
    with pytest.raises(TranslationUnavailable, match="'en' → 'ja'"):
        backend.translate_batch(["Hello"], "en", "ja")


def test_empty_strings_come_back_empty_without_the_model(
    backend: Ct2Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    mixed = backend.translate_batch(["", "Thank you.", "   "], "en", "es")
    assert mixed[0] == "" and mixed[2] == "" and mixed[1]
    assert mixed[1] == backend.translate_batch(["Thank you."], "en", "es")[0]

    class NoModel:
        def translate_batch(self, *args: object, **kwargs: object) -> object:
            raise AssertionError("the model was called for empty input")

    monkeypatch.setattr(backend, "_translator", NoModel())
    assert backend.translate_batch(["", " "], "en", "es") == ["", ""]
    assert backend.translate_batch([], "en", "es") == []


def test_a_directory_without_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MtModelNotAvailable, match=r"no model\.bin"):
        Ct2Backend(tmp_path)


def test_a_model_without_its_tokenizer_is_refused(tiny_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("model.bin", "config.json", "shared_vocabulary.json", "nova-mt.json"):
        (broken / name).write_bytes((tiny_dir / name).read_bytes())
    with pytest.raises(MtModelNotAvailable, match="cannot load"):
        Ct2Backend(broken)


def test_tiny_model_languages_are_the_ones_asked_for(tmp_path: Path) -> None:
    out = build_tiny_model(tmp_path / "other", languages=("en", "ja"), seed=1)
    backend = Ct2Backend(out)
    assert backend.supports("en", "ja") and not backend.supports("en", "es")
    assert backend.translate_batch(["Good morning"], "en", "ja")[0]


@pytest.fixture(scope="module")
def m2m100(tmp_path_factory: pytest.TempPathFactory) -> Ct2Backend:
    out = build_tiny_model(
        tmp_path_factory.mktemp("mt") / "tiny-m2m100", languages=("en", "es", "jw"), family="m2m100"
    )
    return Ct2Backend(out, beam_size=2)


def test_m2m100_uses_its_double_underscore_language_tokens(m2m100: Ct2Backend) -> None:
    assert m2m100.family == "m2m100" and m2m100.name == "ct2:tiny-m2m100"
    [tokens] = m2m100.tokenize(["Good morning"], "en")
    assert tokens[0] == "__en__" and tokens[-1] == "</s>"
    # Whisper calls Javanese "jw", M2M-100 "jv".
    assert m2m100.tokenize(["Good morning"], "jw")[0][0] == "__jv__"
    assert m2m100.supports("en", "es") and m2m100.supports("jw", "en")
    assert not m2m100.supports("en", "de")  # M2M-100 has __de__, this tiny model does not
    out = m2m100.translate_batch(SENTENCES, "en", "es")
    assert len(out) == len(SENTENCES) and all(out)
    assert not any("__" in t for t in out)  # the target token is not text
    assert m2m100.translate_batch(SENTENCES[:1], "en", "jw") != out[:1]
    with pytest.raises(TranslationUnavailable):
        m2m100.translate_batch(["Hello"], "en", "de")
