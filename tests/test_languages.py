"""The one table of Whisper language codes, and the check every service uses."""

from __future__ import annotations

import pytest
from faster_whisper.tokenizer import _LANGUAGE_CODES

from nova_common.fate import Fate, PermanentError, fate_of
from nova_common.languages import (
    WHISPER_LANGUAGE_SET,
    WHISPER_LANGUAGES,
    UnsupportedLanguage,
    check_language,
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
