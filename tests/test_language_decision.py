"""The session's language against the utterance's own detection (pure: no model, no NATS)."""

from __future__ import annotations

import pytest

from nova_common.messages import LanguageWeight, Transcript
from nova_gateway.language_memory import SessionLanguage
from nova_stt.language_decision import decide, reported, restricted, utterance_trust

CZECH = (LanguageWeight(language="cs", weight=0.8), LanguageWeight(language="sk", weight=0.05))


def test_no_prior_is_whisper_alone() -> None:
    detection = [("sk", 0.5), ("cs", 0.3), ("pl", 0.2)]
    assert decide(detection, duration_s=1.0).language == "sk"
    assert decide(detection, duration_s=1.0).probability == pytest.approx(0.5)
    # Among the allowed languages, with their share (as choose_language did).
    assert decide(detection, allowed=("cs", "pl"), duration_s=1.0).language == "cs"
    assert decide(detection, allowed=("cs", "pl"), duration_s=1.0).probability == pytest.approx(0.6)
    assert decide([("th", 1.0)], allowed=("en", "de"), duration_s=1.0).language == "en"


def test_a_short_unclear_utterance_follows_the_session() -> None:
    # A 1.5 s Czech sentence that Whisper alone hears as Slovak, even confidently.
    assert decide([("sk", 0.5), ("cs", 0.3)], prior=CZECH, duration_s=1.5).language == "cs"
    assert decide([("sk", 0.9), ("cs", 0.05)], prior=CZECH, duration_s=1.5).language == "cs"


def test_a_long_clear_utterance_of_a_new_language_wins() -> None:
    decision = decide([("de", 0.995), ("cs", 0.001)], prior=CZECH, duration_s=6.0)
    assert decision.language == "de" and decision.probability > 0.5


def test_the_prior_never_brings_in_a_language_not_allowed() -> None:
    decision = decide([("en", 0.6), ("de", 0.4)], allowed=("en", "de"), prior=CZECH, duration_s=1)
    assert decision.language == "en"


def test_trust_grows_with_duration_and_is_bounded() -> None:
    assert utterance_trust(0.0) == 0.0
    assert utterance_trust(1.0) < utterance_trust(2.0) < utterance_trust(30.0) == 1.0


def test_scores_reported_are_few_and_sorted() -> None:
    detection = restricted([("en", 0.001), ("de", 0.3), ("fr", 0.1), ("cs", 0.6)], ())
    assert [s.language for s in reported(detection)] == ["cs", "de", "fr"]
    assert restricted([("en", 0.2), ("de", 0.2)], ("de",)) == [("de", 1.0)]


def final(language_scores: tuple[LanguageWeight, ...], seconds: float, **kw: object) -> Transcript:
    fields: dict = {
        "session_id": "s",
        "seq": 0,
        "text": "slovo",
        "language": language_scores[0].language if language_scores else "cs",
        "language_probability": 1.0,
        "start": 10.0,
        "end": 10.0 + seconds,
        "worker_id": "w",
        "compute_s": 0.1,
        "language_scores": language_scores,
    }
    fields.update(kw)
    return Transcript(**fields)


def scores(**weights: float) -> tuple[LanguageWeight, ...]:
    return tuple(LanguageWeight(language=k, weight=v) for k, v in weights.items())


def test_session_memory_accumulates_and_strengthens() -> None:
    memory = SessionLanguage()
    assert memory.prior() == ()
    memory.observe(final(scores(cs=0.6, sk=0.3), 2.0))
    first = {p.language: p.weight for p in memory.prior()}
    assert first["cs"] > first["sk"] and sum(first.values()) < 0.5  # one utterance: weak
    for _ in range(8):
        memory.observe(final(scores(cs=0.5, la=0.2), 2.0))
    strong = {p.language: p.weight for p in memory.prior()}
    assert strong["cs"] > 0.6 and sum(strong.values()) <= 1.0


def test_session_memory_ignores_what_is_no_evidence() -> None:
    memory = SessionLanguage()
    memory.observe(final(scores(de=0.9), 3.0, text=""))  # silence, noise
    memory.observe(final(scores(de=0.9), 3.0, kind="partial"))
    memory.observe(final((), 3.0))  # the language was given
    assert memory.prior() == ()


def test_a_real_switch_takes_over_the_session() -> None:
    memory = SessionLanguage()
    for _ in range(10):
        memory.observe(final(scores(cs=0.9), 2.0))
    assert memory.prior()[0].language == "cs"
    # German now, clearly: a long utterance wins at once; the memory follows in four 3 s ones
    # (after 20 s of Czech; evidence halves every 15 s of speech).
    assert (
        decide([("de", 0.99), ("cs", 0.001)], prior=memory.prior(), duration_s=5).language == "de"
    )
    for _ in range(3):
        memory.observe(final(scores(de=0.95), 3.0))
    assert memory.prior()[0].language == "cs"
    memory.observe(final(scores(de=0.95), 3.0))
    assert memory.prior()[0].language == "de"
    memory.reset()
    assert memory.prior() == ()
