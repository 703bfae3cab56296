"""Pairing finals with their translations on the client: what is held, what is released, when."""

from __future__ import annotations

from nova_client.formats import PairedFinal, TranslationPairing
from nova_common.messages import FinalEvent, TranslationEvent


def final(seq: int, text: str = "text") -> FinalEvent:
    return FinalEvent(session_id="s", seq=seq, text=f"{text} {seq}" if text else "",
                      language="en", start=seq, end=seq + 1)  # fmt: skip


def translation(seq: int, language: str) -> TranslationEvent:
    return TranslationEvent(
        session_id="s", seq=seq, language=language, source_language="en",
        text=f"{language} {seq}", start=seq, end=seq + 1, backend="apertium",
    )  # fmt: skip


def seqs(paired: list[PairedFinal]) -> list[int]:
    return [p.final.seq for p in paired]


def test_without_targets_each_final_is_released_at_once() -> None:
    pairing = TranslationPairing(())
    assert pairing.final(final(0)) == [PairedFinal(final(0), {})]
    assert pairing.translation(translation(0, "es")) == []  # nobody asked for it
    assert pairing.flush() == []


def test_a_final_waits_for_every_target() -> None:
    pairing = TranslationPairing(("es", "de"))
    assert pairing.final(final(0)) == []
    assert pairing.translation(translation(0, "es")) == []
    assert pairing.translation(translation(0, "de")) == [
        PairedFinal(final(0), {"es": "es 0", "de": "de 0"})
    ]
    assert pairing.flush() == []


def test_translations_are_listed_in_the_order_asked_whatever_order_they_come_in() -> None:
    pairing = TranslationPairing(("es", "de", "fr"))
    pairing.final(final(0))
    pairing.translation(translation(0, "fr"))
    pairing.translation(translation(0, "de"))
    [released] = pairing.translation(translation(0, "es"))
    assert list(released.translations) == ["es", "de", "fr"]


def test_later_finals_wait_behind_an_earlier_one() -> None:
    pairing = TranslationPairing(("es",))
    assert pairing.final(final(0)) == []
    assert pairing.final(final(1)) == []
    assert pairing.translation(translation(1, "es")) == []  # 0 still owes its Spanish
    released = pairing.translation(translation(0, "es"))
    assert seqs(released) == [0, 1]
    assert [p.translations for p in released] == [{"es": "es 0"}, {"es": "es 1"}]


def test_a_failed_translation_settles_its_target_without_text() -> None:
    pairing = TranslationPairing(("es", "de"))
    pairing.final(final(0))
    assert pairing.failed(0, "de") == []
    assert pairing.translation(translation(0, "es")) == [PairedFinal(final(0), {"es": "es 0"})]


def test_a_final_whose_translations_all_failed_is_still_released() -> None:
    pairing = TranslationPairing(("es",))
    pairing.final(final(0))
    assert pairing.failed(0, "es") == [PairedFinal(final(0), {})]


def test_an_empty_final_owes_nothing_but_keeps_its_place() -> None:
    pairing = TranslationPairing(("es",))
    assert pairing.final(final(0, text="")) == [PairedFinal(final(0, text=""), {})]
    assert pairing.final(final(1)) == []
    assert pairing.final(final(2, text="")) == []  # behind 1, which owes its Spanish
    assert seqs(pairing.translation(translation(1, "es"))) == [1, 2]


def test_a_translation_that_overtakes_its_final_is_kept_for_it() -> None:
    pairing = TranslationPairing(("es",))
    assert pairing.translation(translation(0, "es")) == []
    assert pairing.final(final(0)) == [PairedFinal(final(0), {"es": "es 0"})]


def test_a_failure_that_overtakes_its_final_is_kept_for_it() -> None:
    pairing = TranslationPairing(("es", "de"))
    pairing.failed(1, "de")
    pairing.translation(translation(1, "es"))
    assert pairing.final(final(0)) == []
    assert pairing.final(final(1)) == []
    assert pairing.translation(translation(0, "es")) == []
    assert pairing.translation(translation(0, "de")) == [
        PairedFinal(final(0), {"es": "es 0", "de": "de 0"}),
        PairedFinal(final(1), {"es": "es 1"}),  # was settled before it came
    ]
    assert pairing.flush() == []


def test_repeats_and_unasked_targets_are_ignored() -> None:
    pairing = TranslationPairing(("es", "de"))
    pairing.final(final(0))
    pairing.translation(translation(0, "es"))
    assert pairing.translation(translation(0, "es")) == []  # a repeat does not settle "de"
    assert pairing.translation(translation(0, "fr")) == []
    released = pairing.translation(translation(0, "de"))
    assert released == [PairedFinal(final(0), {"es": "es 0", "de": "de 0"})]
    # A repeat for a final already released settles nothing for the next one.
    assert pairing.translation(translation(0, "es")) == []
    assert pairing.final(final(1)) == []
    assert pairing.flush() == [PairedFinal(final(1), {})]


def test_flush_releases_what_is_held_in_order_with_what_arrived() -> None:
    pairing = TranslationPairing(("es", "de"))
    pairing.final(final(0))
    pairing.final(final(1, text=""))
    pairing.final(final(2))
    pairing.translation(translation(0, "de"))
    pairing.translation(translation(3, "es"))  # early, for a final that never came
    assert pairing.flush() == [
        PairedFinal(final(0), {"de": "de 0"}),
        PairedFinal(final(1, text=""), {}),
        PairedFinal(final(2), {}),
    ]
    assert pairing.flush() == []
    # Nothing from before the flush lingers: a new final 3 waits for its own translations.
    assert pairing.final(final(3)) == []
