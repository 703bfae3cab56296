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


# --------------------------------------------------------------------------- translation codes
#
# Translation engines name languages differently: NLLB-200 uses FLORES-200 codes (``spa_Latn``),
# Apertium ISO 639-3 (``spa``), M2M-100 ISO 639-1 like Whisper. Sessions and events always use
# Whisper's codes; backends translate them through this one table.

# fmt: off
#: Whisper code → FLORES-200 code (NLLB). Missing: languages NLLB-200 does not cover.
FLORES_200: dict[str, str] = {
    "af": "afr_Latn", "am": "amh_Ethi", "ar": "arb_Arab", "as": "asm_Beng", "az": "azj_Latn",
    "ba": "bak_Cyrl", "be": "bel_Cyrl", "bg": "bul_Cyrl", "bn": "ben_Beng", "bo": "bod_Tibt",
    "bs": "bos_Latn", "ca": "cat_Latn", "cs": "ces_Latn", "cy": "cym_Latn", "da": "dan_Latn",
    "de": "deu_Latn", "el": "ell_Grek", "en": "eng_Latn", "es": "spa_Latn", "et": "est_Latn",
    "eu": "eus_Latn", "fa": "pes_Arab", "fi": "fin_Latn", "fo": "fao_Latn", "fr": "fra_Latn",
    "gl": "glg_Latn", "gu": "guj_Gujr", "ha": "hau_Latn", "he": "heb_Hebr", "hi": "hin_Deva",
    "hr": "hrv_Latn", "ht": "hat_Latn", "hu": "hun_Latn", "hy": "hye_Armn", "id": "ind_Latn",
    "is": "isl_Latn", "it": "ita_Latn", "ja": "jpn_Jpan", "jw": "jav_Latn", "ka": "kat_Geor",
    "kk": "kaz_Cyrl", "km": "khm_Khmr", "kn": "kan_Knda", "ko": "kor_Hang", "lb": "ltz_Latn",
    "ln": "lin_Latn", "lo": "lao_Laoo", "lt": "lit_Latn", "lv": "lvs_Latn", "mg": "plt_Latn",
    "mi": "mri_Latn", "mk": "mkd_Cyrl", "ml": "mal_Mlym", "mn": "khk_Cyrl", "mr": "mar_Deva",
    "ms": "zsm_Latn", "mt": "mlt_Latn", "my": "mya_Mymr", "ne": "npi_Deva", "nl": "nld_Latn",
    "nn": "nno_Latn", "no": "nob_Latn", "oc": "oci_Latn", "pa": "pan_Guru", "pl": "pol_Latn",
    "ps": "pbt_Arab", "pt": "por_Latn", "ro": "ron_Latn", "ru": "rus_Cyrl", "sa": "san_Deva",
    "sd": "snd_Arab", "si": "sin_Sinh", "sk": "slk_Latn", "sl": "slv_Latn", "sn": "sna_Latn",
    "so": "som_Latn", "sq": "als_Latn", "sr": "srp_Cyrl", "su": "sun_Latn", "sv": "swe_Latn",
    "sw": "swh_Latn", "ta": "tam_Taml", "te": "tel_Telu", "tg": "tgk_Cyrl", "th": "tha_Thai",
    "tk": "tuk_Latn", "tl": "tgl_Latn", "tr": "tur_Latn", "tt": "tat_Cyrl", "uk": "ukr_Cyrl",
    "ur": "urd_Arab", "uz": "uzn_Latn", "vi": "vie_Latn", "yi": "ydd_Hebr", "yo": "yor_Latn",
    "zh": "zho_Hans", "yue": "yue_Hant",
}

#: Whisper code → the ISO 639-3 code Apertium names its language pairs with (``eng-spa``).
#: Mostly the FLORES-200 prefix; these are where FLORES names a variety instead of the macro-
#: language, or NLLB lacks the language.
_ISO_639_3_OVERRIDES: dict[str, str] = {
    "ar": "ara", "az": "aze", "br": "bre", "fa": "fas", "haw": "haw", "la": "lat", "lv": "lav",
    "mg": "mlg", "mn": "mon", "ms": "msa", "ne": "nep", "no": "nob", "ps": "pus", "sq": "sqi",
    "sw": "swa", "uz": "uzb", "yi": "yid",
}
# fmt: on
APERTIUM: dict[str, str] = {
    code: _ISO_639_3_OVERRIDES.get(code) or FLORES_200[code].split("_")[0]
    for code in WHISPER_LANGUAGES
    if code in FLORES_200 or code in _ISO_639_3_OVERRIDES
}
# Apertium names a few languages its own way: Serbo-Croatian by its standard variants, Malay by
# the individual language of Debian's pair (apertium-ind-zlm).
_FROM_APERTIUM: dict[str, str] = {
    **{iso: code for code, iso in APERTIUM.items()},
    "hbs_HR": "hr", "hbs_SR": "sr", "hbs_BS": "bs", "zlm": "ms",
}  # fmt: skip


def check_target_language(code: str) -> str:
    """A translation target, normalised; raises ``UnsupportedLanguage`` for anything unknown.

    Targets are Whisper codes too (one code system for the client), but "auto" makes no sense.
    """
    normalised = check_language(code)
    if normalised is None:
        raise UnsupportedLanguage(
            f"{code!r} is not a translation target: name a language, e.g. 'es'"
        )
    return normalised


def flores_code(code: str) -> str | None:
    """The FLORES-200 code NLLB uses for a Whisper code, or None where NLLB lacks it."""
    return FLORES_200.get(code)


def apertium_code(code: str) -> str | None:
    """The ISO 639-3 code Apertium uses for a Whisper code, or None."""
    return APERTIUM.get(code)


def from_apertium(iso: str) -> str | None:
    """The Whisper code for an Apertium language name (``spa`` → ``es``); variants such as
    ``eng_US`` map to their base language."""
    return _FROM_APERTIUM.get(iso) or _FROM_APERTIUM.get(iso.split("_")[0])
