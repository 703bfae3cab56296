"""Whisper's language codes in one table, so any service can validate a code without Whisper.

The gateway checks a client's language when the session starts; the STT worker checks it again
(a segment may come from elsewhere) and turns an unknown code into a permanent failure, because
faster-whisper would reject it on every retry.

The table is ``faster_whisper.tokenizer._LANGUAGE_CODES`` written out (faster-whisper 1.2.1,
100 codes), so importing this module never loads faster-whisper; ``tests/test_languages.py``
fails when the installed faster-whisper disagrees.
"""

from __future__ import annotations

from nova_common.fate import PermanentError

# fmt: off
#: Every language code Whisper accepts, in faster-whisper's order.
WHISPER_LANGUAGES: tuple[str, ...] = (
    "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy",
    "da", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "haw",
    "he", "hi", "hr", "ht", "hu", "hy", "id", "is", "it", "ja", "jw", "ka", "kk", "km", "kn",
    "ko", "la", "lb", "ln", "lo", "lt", "lv", "mg", "mi", "mk", "ml", "mn", "mr", "ms", "mt",
    "my", "ne", "nl", "nn", "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si",
    "sk", "sl", "sn", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl",
    "tr", "tt", "uk", "ur", "uz", "vi", "yi", "yo", "zh", "yue",
)
# fmt: on
WHISPER_LANGUAGE_SET: frozenset[str] = frozenset(WHISPER_LANGUAGES)

#: Spellings that mean "detect the language".
AUTO = frozenset({"", "auto"})


class UnsupportedLanguage(PermanentError, ValueError):
    """A language code Whisper does not know: no retry can help.

    A ``ValueError`` for callers that validate input, a ``PermanentError`` (dead letter, the session
    is told) inside a worker.
    """

    code = "unsupported_language"


def check_language(code: str) -> str | None:
    """None for automatic detection ("auto" or empty), else the normalised (lower-case) code.

    Raises ``UnsupportedLanguage`` (a ``ValueError``) for a code Whisper does not accept.
    """
    normalised = code.strip().lower()
    if normalised in AUTO:
        return None
    if normalised not in WHISPER_LANGUAGE_SET:
        raise UnsupportedLanguage(
            f"unsupported language code {code!r}: use 'auto' or one of Whisper's "
            f"{len(WHISPER_LANGUAGES)} ISO 639-1 style codes, e.g. 'en', 'de', 'zh', 'yue' (the full "
            "list is nova_common.languages.WHISPER_LANGUAGES, or faster_whisper.tokenizer."
            "_LANGUAGE_CODES)"
        )
    return normalised
