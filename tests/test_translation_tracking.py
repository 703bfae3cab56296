"""Gateway side of translation: where targets go (route), what each final still owes
(TranslationTracker), and which target codes a client may ask for."""

from __future__ import annotations

import pytest

from nova_common.languages import UnsupportedLanguage, check_target_language
from nova_common.messages import ErrorEvent, TranslationEvent, WorkerHeartbeat
from nova_gateway.connection import MAX_TARGETS, check_targets
from nova_gateway.translations import Routing, TranslationTracker, route

# --------------------------------------------------------------------------- route


def mt_worker(
    *backends: str, worker_id: str = "mt-1", multilingual: bool = False
) -> WorkerHeartbeat:
    return WorkerHeartbeat(
        worker_id=worker_id,
        role="mt",
        model=",".join(backends),
        device="cpu",
        processed=0,
        in_flight=0,
        sent_at=0.0,
        backends=backends,
        multilingual_mt=multilingual,
    )


@pytest.mark.parametrize("english_via", ["auto", "whisper", "text"])
def test_targets_without_english_all_go_to_text_mt(english_via: str) -> None:
    routing = route(["es", "de"], english_via, [mt_worker("ct2:nllb")])  # type: ignore[arg-type]
    assert routing == Routing(text_targets=("es", "de"), whisper_english=False)
    assert routing.targets == ("es", "de")


def test_whisper_mode_sends_english_to_whisper_even_with_a_neural_worker() -> None:
    routing = route(["es", "en", "de"], "whisper", [mt_worker("ct2:nllb", multilingual=True)])
    assert routing == Routing(text_targets=("es", "de"), whisper_english=True)
    assert set(routing.targets) == {"es", "de", "en"}


def test_text_mode_sends_english_to_mt_even_with_no_worker() -> None:
    routing = route(["en", "es"], "text", [])
    assert routing == Routing(text_targets=("en", "es"), whisper_english=False)


def test_auto_without_any_mt_worker_uses_whisper() -> None:
    assert route(["en"], "auto", []) == Routing(text_targets=(), whisper_english=True)


def test_auto_with_only_a_rules_worker_uses_whisper() -> None:
    routing = route(["en", "es"], "auto", [mt_worker("apertium")])
    assert routing == Routing(text_targets=("es",), whisper_english=True)


def test_auto_with_a_live_multilingual_worker_uses_text_mt() -> None:
    workers = [
        mt_worker("apertium"),
        mt_worker("ct2:nllb-200-distilled-600M", "apertium", worker_id="mt-2", multilingual=True),
    ]
    routing = route(["en", "es"], "auto", workers)
    assert routing == Routing(text_targets=("en", "es"), whisper_english=False)


def test_auto_ignores_a_single_pair_model() -> None:
    # OPUS-MT en→es cannot take French speech to English; Whisper can.
    routing = route(["en"], "auto", [mt_worker("ct2:opus-mt-en-es", multilingual=False)])
    assert routing.whisper_english is True


def test_routing_targets_lists_whisper_english_once() -> None:
    routing = Routing(text_targets=("es",), whisper_english=True)
    assert routing.targets == ("es", "en")
    assert Routing(text_targets=(), whisper_english=False).targets == ()


# --------------------------------------------------------------------------- tracker


def translated(seq: int, language: str, text: str = "hola") -> TranslationEvent:
    return TranslationEvent(
        session_id="s",
        seq=seq,
        language=language,
        source_language="en",
        text=text,
        start=0.0,
        end=1.0,
        backend="apertium",
    )


def not_translated(seq: int, language: str | None) -> ErrorEvent:
    return ErrorEvent(
        code="translation_unavailable", reason="no", session_id="s", seq=seq, language=language
    )


def test_translation_after_its_final_goes_out_at_once() -> None:
    tracker = TranslationTracker()
    tracker.expect(1, ["es", "de"], 0.5, 1.5)
    assert tracker.outstanding == 2
    assert tracker.final_released(1, has_text=True) == []

    es = translated(1, "es")
    assert tracker.accept(1, es) == [es]
    assert tracker.outstanding == 1
    de = translated(1, "de")
    assert tracker.accept(1, de) == [de]
    assert tracker.outstanding == 0
    assert (tracker.delivered, tracker.failed) == (2, 0)


def test_times_come_from_expect_until_the_seq_is_done() -> None:
    tracker = TranslationTracker()
    tracker.expect(3, ["es"], 0.25, 2.0)
    assert tracker.times(3) == (0.25, 2.0)
    assert tracker.times(4) is None
    tracker.final_released(3, has_text=True)
    tracker.accept(3, translated(3, "es"))
    assert tracker.times(3) is None


def test_translation_before_its_final_is_held_then_released_with_it() -> None:
    tracker = TranslationTracker()
    tracker.expect(1, ["es", "de"], 0.0, 1.0)
    de = translated(1, "de")
    es = translated(1, "es")

    assert tracker.accept(1, de) == []
    assert tracker.accept(1, es) == []
    assert tracker.outstanding == 2  # held, not yet sent

    assert tracker.final_released(1, has_text=True) == [de, es]  # arrival order
    assert tracker.outstanding == 0
    assert tracker.final_released(1, has_text=True) == []  # nothing released twice


def test_held_and_late_translations_of_one_final() -> None:
    tracker = TranslationTracker()
    tracker.expect(1, ["es", "de"], 0.0, 1.0)
    es = translated(1, "es")
    tracker.accept(1, es)

    assert tracker.final_released(1, has_text=True) == [es]
    assert tracker.outstanding == 1
    de = translated(1, "de")
    assert tracker.accept(1, de) == [de]
    assert tracker.outstanding == 0


def test_holding_is_per_seq() -> None:
    tracker = TranslationTracker()
    tracker.expect(1, ["es"], 0.0, 1.0)
    tracker.expect(2, ["es"], 1.0, 2.0)
    second = translated(2, "es", "dos")
    assert tracker.accept(2, second) == []
    assert tracker.final_released(1, has_text=True) == []  # seq 2's translation stays held
    assert tracker.final_released(2, has_text=True) == [second]


def test_repeats_and_unasked_languages_are_dropped() -> None:
    tracker = TranslationTracker()
    tracker.expect(1, ["es"], 0.0, 1.0)
    tracker.final_released(1, has_text=True)
    tracker.expect(2, ["es", "de"], 1.0, 2.0)
    tracker.final_released(2, has_text=True)

    assert tracker.accept(2, translated(2, "fr")) == []  # nobody asked for French
    first = translated(2, "es")
    assert tracker.accept(2, first) == [first]
    assert tracker.accept(2, translated(2, "es", "otra vez")) == []  # a redelivery
    assert tracker.accept(1, translated(1, "es")) == [translated(1, "es")]
    assert tracker.accept(1, translated(1, "es")) == []  # seq 1 is done and forgotten
    assert tracker.accept(9, translated(9, "es")) == []  # never expected
    assert tracker.delivered == 2
    assert tracker.outstanding == 1  # seq 2's German


def test_repeat_while_held_is_dropped() -> None:
    tracker = TranslationTracker()
    tracker.expect(1, ["es"], 0.0, 1.0)
    first = translated(1, "es")
    tracker.accept(1, first)
    assert tracker.accept(1, translated(1, "es", "otra")) == []
    assert tracker.final_released(1, has_text=True) == [first]
    assert tracker.delivered == 1


def test_failures_are_passed_on_and_counted() -> None:
    tracker = TranslationTracker()
    tracker.expect(1, ["es", "ja"], 0.0, 1.0)
    failure = not_translated(1, "ja")
    assert tracker.accept(1, failure) == []  # held like a translation
    assert tracker.final_released(1, has_text=True) == [failure]
    es = translated(1, "es")
    assert tracker.accept(1, es) == [es]
    assert (tracker.delivered, tracker.failed) == (1, 1)
    assert tracker.outstanding == 0


def test_an_error_without_a_language_is_not_a_translation_outcome() -> None:
    tracker = TranslationTracker()
    tracker.expect(1, ["es"], 0.0, 1.0)
    tracker.final_released(1, has_text=True)
    assert tracker.accept(1, not_translated(1, None)) == []
    assert tracker.outstanding == 1
    assert tracker.failed == 0


def test_a_final_with_no_text_owes_nothing() -> None:
    tracker = TranslationTracker()
    tracker.expect(1, ["es", "de"], 0.0, 1.0)
    assert tracker.final_released(1, has_text=False) == []
    assert tracker.outstanding == 0
    assert tracker.times(1) is None
    assert tracker.accept(1, translated(1, "es")) == []  # too late to matter
    assert tracker.delivered == 0


def test_expecting_no_languages_owes_nothing() -> None:
    tracker = TranslationTracker()
    tracker.expect(1, [], 0.0, 1.0)
    assert tracker.outstanding == 0
    assert tracker.times(1) is None
    assert tracker.final_released(1, has_text=True) == []


def test_final_released_for_an_unknown_seq_is_harmless() -> None:
    tracker = TranslationTracker()
    assert tracker.final_released(7, has_text=True) == []
    assert tracker.outstanding == 0


def test_give_up_reports_how_many_were_still_owed_and_forgets_them() -> None:
    tracker = TranslationTracker()
    tracker.expect(1, ["es", "de"], 0.0, 1.0)
    tracker.expect(2, ["es"], 1.0, 2.0)
    tracker.final_released(1, has_text=True)
    tracker.accept(1, translated(1, "es"))

    assert tracker.give_up() == 2  # seq 1's German, seq 2's Spanish
    assert tracker.outstanding == 0
    assert tracker.accept(2, translated(2, "es")) == []
    assert tracker.give_up() == 0


def test_every_expected_translation_is_counted_once_as_sent_failed_or_missing() -> None:
    tracker = TranslationTracker()
    tracker.expect(1, ["es"], 0.0, 1.0)
    tracker.expect(2, ["es"], 1.0, 2.0)
    # seq 2's translation overtakes its final, which is stuck behind seq 1 at the timeout.
    sent = tracker.accept(2, translated(2, "es"))

    missing = tracker.give_up()

    assert sent == []
    assert tracker.delivered == 0  # the client never received it
    assert missing == 2


# --------------------------------------------------------------------------- target codes


@pytest.mark.parametrize(
    ("code", "expected"), [("es", "es"), ("DE", "de"), (" fr ", "fr"), ("yue", "yue")]
)
def test_check_target_language_normalises(code: str, expected: str) -> None:
    assert check_target_language(code) == expected


@pytest.mark.parametrize("code", ["auto", "AUTO", "", "  ", "xx", "english", "es-ES"])
def test_check_target_language_rejects_detection_and_unknown_codes(code: str) -> None:
    with pytest.raises(UnsupportedLanguage) as info:
        check_target_language(code)
    assert info.value.code == "unsupported_language"
    assert str(info.value)


def test_check_target_language_says_auto_is_not_a_target() -> None:
    with pytest.raises(UnsupportedLanguage, match="not a translation target"):
        check_target_language("auto")


def test_check_targets_normalises_and_deduplicates_in_client_order() -> None:
    assert check_targets(("ES", " de", "es", "DE ", "fr")) == ("es", "de", "fr")
    assert check_targets(()) == ()


@pytest.mark.parametrize("bad", ["auto", "", "xx"])
def test_check_targets_rejects_a_bad_code_among_good_ones(bad: str) -> None:
    with pytest.raises(UnsupportedLanguage):
        check_targets(("es", bad))


def test_check_targets_allows_max_targets_and_no_more() -> None:
    languages = ("es", "de", "fr", "it", "pt", "nl", "pl", "ru", "ja", "ko")
    assert MAX_TARGETS < len(languages)
    allowed = languages[:MAX_TARGETS]
    assert check_targets(allowed) == allowed
    with pytest.raises(UnsupportedLanguage, match=str(MAX_TARGETS)):
        check_targets(languages[: MAX_TARGETS + 1])
