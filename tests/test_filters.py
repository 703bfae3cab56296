"""The hallucination filters as pure functions (no model): each rule keeps real speech and
drops what Whisper invents."""

from __future__ import annotations

import pytest

from nova_stt.filters import (
    FilterSettings,
    SegmentEvidence,
    break_repetitions,
    has_words,
    is_credit,
    is_sign_off,
    segment_verdict,
)

SETTINGS = FilterSettings()


def evidence(text: str, *, nsp: float = 0.02, lp: float = -0.3, cr: float = 1.0,
             temperature: float = 0.0) -> SegmentEvidence:  # fmt: skip
    return SegmentEvidence(text, nsp, lp, cr, temperature)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no no no no no way", "no no way"),
        ("2. 4. 5. 6. 6. 6. 6. 6. 10.", "2. 4. 5. 6. 6. 10."),
        ("I said hello world hello world hello world hello world to you",
         "I said hello world hello world to you"),
        ("a b a b", "a b a b"),
        ("Good morning, everyone.", "Good morning, everyone."),
        ("yes yes", "yes yes"),
        ("", ""),
    ],
)  # fmt: skip
def test_break_repetitions_cuts_loops_only(text: str, expected: str) -> None:
    assert break_repetitions(text, max_repeats=2) == expected


def test_break_repetitions_respects_max_repeats() -> None:
    assert break_repetitions("la la la la", max_repeats=3) == "la la la"
    assert break_repetitions("la la la", max_repeats=3) == "la la la"


def test_by_default_speech_that_repeats_a_little_is_left_alone() -> None:
    for text in ("go go go", "Tora! Tora! Tora!", "very very very good", "ha ha ha ha",
                 "It's 1 1 1 2.", "spaced  out   text"):  # fmt: skip
        assert break_repetitions(text) == text
    assert break_repetitions("no " * 20 + "way") == "no no no no way"


@pytest.mark.parametrize(("text", "words"), [("... ... ...", False), ("♪ ♪", False), ("", False),
                                             ("Hello.", True), ("42", True), ("日本語", True)])  # fmt: skip
def test_has_words(text: str, words: bool) -> None:
    assert has_words(text) is words


@pytest.mark.parametrize(
    "text",
    [
        "Subtitles by the Amara.org community",
        "Sous-titres réalisés para la communauté d'Amara.org",
        "Subtítulos realizados por la comunidad de Amara.org",
    ],
)
def test_credits_naming_a_subtitler_are_always_dropped(text: str) -> None:
    assert is_credit(text)
    assert segment_verdict(evidence(text), "en", SETTINGS) == "known_phrase"


def test_credit_openings_need_weak_evidence_and_a_short_segment() -> None:
    credit = "Untertitel im Auftrag des ZDF, 2017"
    assert not is_credit(credit)
    assert segment_verdict(evidence(credit), "de", SETTINGS) is None
    assert segment_verdict(evidence(credit, nsp=0.6), "de", SETTINGS) == "known_phrase"
    real = "You can turn on subtitles by clicking the button."
    assert not is_credit(real) and not is_sign_off(real, "en")
    assert segment_verdict(evidence(real, nsp=0.6), "en", SETTINGS) is None


def test_a_clear_thank_you_is_kept_and_a_doubtful_one_dropped() -> None:
    # Figures from Whisper base on espeak-ng "Thank you." (kept) and on silence (dropped).
    assert is_sign_off("Thank you.", "en") and is_sign_off("Thanks for watching!", "en")
    assert segment_verdict(evidence("Thank you.", nsp=0.07, lp=-0.66), "en", SETTINGS) is None
    # A quiet real one scored 0.21: still kept.
    assert segment_verdict(evidence("Thank you.", nsp=0.21), "en", SETTINGS) is None
    assert segment_verdict(evidence("Thank you.", nsp=0.55), "en", SETTINGS) == "known_phrase"
    assert segment_verdict(evidence("Thank you.", temperature=0.4), "en", SETTINGS) == (
        "known_phrase"
    )
    # The list is per language: "Danke" is a German sign-off, not an English one.
    assert segment_verdict(evidence("Danke.", nsp=0.5), "de", SETTINGS) == "known_phrase"
    assert segment_verdict(evidence("Danke.", nsp=0.5), "en", SETTINGS) is None


def test_whispers_own_failure_signals() -> None:
    assert segment_verdict(evidence("... ..."), "en", SETTINGS) == "no_words"
    assert segment_verdict(evidence("Hmm.", nsp=0.8, lp=-1.3), "en", SETTINGS) == "no_speech"
    assert segment_verdict(evidence("6. 6. 6. 6.", cr=3.1), "en", SETTINGS) == "repetitive"
    assert segment_verdict(evidence("Mumble words.", lp=-1.4), "en", SETTINGS) == "low_confidence"
    # Likely silence but confidently decoded: kept (Whisper's own rule needs both).
    assert segment_verdict(evidence("Yes.", nsp=0.8, lp=-0.2), "en", SETTINGS) is None


def test_ordinary_speech_is_kept() -> None:
    for text in ("He was not an ill-disposed young man.", "Please send the report to my office."):
        assert segment_verdict(evidence(text), "en", SETTINGS) is None
