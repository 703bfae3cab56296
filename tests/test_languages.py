"""The one table of Whisper language codes, and the check every service uses."""

from __future__ import annotations

import pytest
from faster_whisper.tokenizer import _LANGUAGE_CODES

from nova_common.fate import Fate, PermanentError, fate_of
from nova_common.languages import (
    APERTIUM,
    FLORES_200,
    WHISPER_LANGUAGE_SET,
    WHISPER_LANGUAGES,
    UnsupportedLanguage,
    apertium_code,
    check_language,
    check_target_language,
    flores_code,
    from_apertium,
)


def test_table_is_faster_whispers_list() -> None:
    # Written out so the gateway need not import faster-whisper; this catches an upgrade.
    assert WHISPER_LANGUAGES == tuple(_LANGUAGE_CODES)
    assert WHISPER_LANGUAGE_SET == frozenset(_LANGUAGE_CODES)
    assert len(WHISPER_LANGUAGE_SET) == len(WHISPER_LANGUAGES)  # no duplicates


def test_importing_the_table_does_not_load_faster_whisper() -> None:
    import subprocess
    import sys

    code = "import sys, nova_common.languages; print('faster_whisper' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("code", ["auto", "", "AUTO", " auto "])
def test_auto_means_detect(code: str) -> None:
    assert check_language(code) is None


@pytest.mark.parametrize(
    ("code", "expected"),
    [("en", "en"), ("DE", "de"), (" Fr ", "fr"), ("yue", "yue"), ("HAW", "haw")],
)
def test_known_codes_are_normalised(code: str, expected: str) -> None:
    assert check_language(code) == expected


@pytest.mark.parametrize("code", ["xx", "english", "en-US", "zz", "e"])
def test_unknown_code_is_rejected_with_a_pointer_to_the_list(code: str) -> None:
    with pytest.raises(ValueError, match="unsupported language code") as caught:
        check_language(code)
    message = str(caught.value)
    assert repr(code) in message
    assert "auto" in message
    assert "nova_common.languages.WHISPER_LANGUAGES" in message
    # In a worker the same exception is a permanent failure with its own code, never retried.
    assert isinstance(caught.value, UnsupportedLanguage)
    assert isinstance(caught.value, PermanentError)
    assert caught.value.code == "unsupported_language"
    assert fate_of(caught.value) is Fate.DEAD


# --------------------------------------------------------------------------- translation codes


def test_flores_codes_are_nllb_language_codes() -> None:
    # The tokenizer's own list (imported here only: the table must not need transformers).
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

    assert set(FLORES_200) <= WHISPER_LANGUAGE_SET
    assert set(FLORES_200.values()) <= set(FAIRSEQ_LANGUAGE_CODES)
    assert len(set(FLORES_200.values())) == len(FLORES_200)  # no two languages share a code
    # NLLB lacks only these of Whisper's languages.
    assert WHISPER_LANGUAGE_SET - set(FLORES_200) == {"br", "haw", "la"}
    assert flores_code("es") == "spa_Latn" and flores_code("zh") == "zho_Hans"
    assert flores_code("la") is None


def test_apertium_codes_are_unique_three_letter_codes() -> None:
    assert set(APERTIUM) == WHISPER_LANGUAGE_SET
    for code in APERTIUM.values():
        assert len(code) == 3 and code.isascii() and code.isalpha() and code.islower(), code
    assert len(set(APERTIUM.values())) == len(APERTIUM)
    assert apertium_code("en") == "eng" and apertium_code("es") == "spa"
    assert apertium_code("xx") is None


@pytest.mark.parametrize("code", WHISPER_LANGUAGES)
def test_from_apertium_round_trips(code: str) -> None:
    iso = APERTIUM[code]
    assert from_apertium(iso) == code
    assert from_apertium(f"{iso}_XX") == code  # a regional variant: its base language


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("eng_US", "en"),
        ("spa", "es"),
        ("por_BR", "pt"),
        ("cat_valencia", "ca"),
        ("nob", "no"),
        ("nno", "nn"),
        ("Cyrl", None),
        ("xyz", None),
        ("", None),
    ],
)
def test_from_apertium_names(name: str, expected: str | None) -> None:
    assert from_apertium(name) == expected


@pytest.mark.parametrize(("code", "expected"), [("es", "es"), (" EN ", "en"), ("yue", "yue")])
def test_translation_targets_are_whisper_codes(code: str, expected: str) -> None:
    assert check_target_language(code) == expected


@pytest.mark.parametrize("code", ["auto", "", "AUTO", "xx", "spa", "es-ES"])
def test_translation_target_must_name_a_language(code: str) -> None:
    with pytest.raises(UnsupportedLanguage) as caught:
        check_target_language(code)
    assert repr(code) in str(caught.value)
    assert fate_of(caught.value) is Fate.DEAD


def test_choose_language_picks_the_most_probable_allowed_one() -> None:
    from nova_stt.transcriber import choose_language

    probabilities = [("th", 0.5), ("en", 0.3), ("de", 0.1), ("fr", 0.1)]
    assert choose_language(probabilities, ("en", "de")) == ("en", pytest.approx(0.75))
    assert choose_language(probabilities, ("de",)) == ("de", pytest.approx(1.0))
    # Nothing of the allowed ones scored: the first allowed, with no confidence.
    assert choose_language([("th", 1.0)], ("en", "de")) == ("en", 0.0)
