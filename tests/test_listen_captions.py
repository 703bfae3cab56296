"""What `nova listen` shows, from a session's events: the captions state, the overlay's view of
it and the status line. Pure state: the events are made here, the clock is a number."""

from __future__ import annotations

from nova_client.listen.captions import Captions, ShownPartial
from nova_client.listen.layout import plain
from nova_client.listen.overlay import CAPTION_CHARS, CAPTION_ROWS, overlay_view
from nova_client.listen.status import StatusLine
from nova_client.live import ConnectionStatus
from nova_common.messages import (
    ErrorEvent,
    FinalEvent,
    PartialEvent,
    SessionStarted,
    TranslationEvent,
)


def started(targets: tuple[str, ...] = ("es",), sid: str = "s1") -> SessionStarted:
    return SessionStarted(session_id=sid, sample_rate=16000, channels=1, language="en",
                          task="transcribe", translate_to=targets)  # fmt: skip


def partial(seq: int, text: str, committed: str = "", revision: int = 1) -> PartialEvent:
    return PartialEvent(session_id="s1", seq=seq, revision=revision, text=text,
                        committed=committed, language="en", start=0.0, end=1.0)  # fmt: skip


def final(seq: int, text: str) -> FinalEvent:
    return FinalEvent(session_id="s1", seq=seq, text=text, language="en", start=0.0, end=1.0)


def translation(seq: int, text: str, language: str = "es") -> TranslationEvent:
    return TranslationEvent(session_id="s1", seq=seq, language=language, source_language="en",
                            text=text, start=0.0, end=1.0, backend="apertium")  # fmt: skip


def failed(seq: int, language: str = "es") -> ErrorEvent:
    return ErrorEvent(code="translation_unavailable", reason="no pair", seq=seq, language=language)


def captions_with(*events: object, now: float = 0.0, wait_s: float = 6.0) -> Captions:
    captions = Captions(wait_s=wait_s)
    for event in events:
        captions.apply(event, now)  # type: ignore[arg-type]
    return captions


# --------------------------------------------------------------------------- partials


def test_a_partial_shows_its_committed_words_and_its_tail_apart() -> None:
    captions = captions_with(started(), partial(0, "good morning every one", "good morning"))
    assert captions.partial == ShownPartial(0, 1, "good morning", "every one")
    assert captions.partial.text == "good morning every one"


def test_the_final_replaces_its_partials_and_later_partials_of_it_are_ignored() -> None:
    captions = captions_with(started(), partial(0, "good morning"), final(0, "Good morning."))
    assert captions.partial is None
    assert [f.text for f in captions.waiting] == ["Good morning."]
    captions.apply(partial(0, "good morning every", revision=5), 1.0)  # late, after its final
    assert captions.partial is None


def test_an_older_revision_does_not_replace_a_newer_one() -> None:
    captions = captions_with(started(), partial(0, "one two three", revision=3))
    captions.apply(partial(0, "one", revision=2), 0.0)
    assert captions.partial is not None and captions.partial.text == "one two three"


def test_the_next_utterances_partial_follows_a_final() -> None:
    captions = captions_with(started(), final(0, "First."), partial(1, "second"))
    assert captions.partial is not None and captions.partial.seq == 1


def test_committed_that_is_not_a_prefix_is_all_shown_as_changing() -> None:
    captions = captions_with(started(), partial(0, "hello there", committed="goodbye"))
    assert captions.partial == ShownPartial(0, 1, "", "hello there")


def test_a_failed_utterance_clears_its_partial() -> None:
    captions = captions_with(started(), partial(2, "lost words"))
    captions.apply(ErrorEvent(code="stt_failed", reason="worker died", seq=2), 0.0)
    assert captions.partial is None
    captions.apply(partial(2, "lost words again", revision=9), 0.0)
    assert captions.partial is None


def test_an_empty_final_shows_nothing_but_ends_its_partial() -> None:
    captions = captions_with(started(), partial(0, "uh"), final(0, "  "))
    assert captions.partial is None and captions.waiting == [] and captions.latest is None


def test_the_next_utterances_partial_keeps_the_earlier_words_until_their_final() -> None:
    """Partials may run ahead of earlier finals: the live line shows the newest, and the words
    it showed of an utterance whose final is owed stay (pending) until that final comes."""
    captions = captions_with(
        started(), partial(0, "good morning every", "good morning"), partial(1, "please send")
    )
    assert captions.pending == [ShownPartial(0, 1, "good morning", "every")]
    assert captions.partial == ShownPartial(1, 1, "", "please send")
    captions.apply(partial(0, "an earlier utterance", revision=2), 0.0)  # never back to it
    assert captions.partial is not None and captions.partial.seq == 1
    captions.apply(partial(2, "the report"), 0.0)
    assert [p.seq for p in captions.pending] == [0, 1]
    # In the overlay too, in speech order: the words of 0 and 1, then the live line.
    assert " ".join(rows(overlay_view(captions).caption)) == (
        "good morning every please send the report"
    )
    captions.apply(final(0, "Good morning, everyone."), 0.0)
    assert [p.seq for p in captions.pending] == [1]  # its final took its place
    assert [f.text for f in captions.waiting] == ["Good morning, everyone."]
    captions.apply(ErrorEvent(code="stt_failed", reason="worker died", seq=1), 0.0)
    assert captions.pending == [] and captions.partial is not None
    assert captions.partial.seq == 2


def test_a_lost_sessions_pending_words_stay_as_unfinished_lines_in_order() -> None:
    captions = captions_with(started(sid="old"), partial(3, "three"), partial(4, "four"))
    captions.apply(started(sid="new"), 1.0)
    assert [(f.text, f.unfinished) for f in captions.release(1.0)] == [
        ("three", True), ("four", True),
    ]  # fmt: skip
    assert captions.pending == [] and captions.partial is None


# --------------------------------------------------------------------------- translations


def test_a_final_waits_for_its_translation_then_moves_on_with_it() -> None:
    captions = captions_with(started(), final(0, "Good morning."))
    assert captions.release(1.0) == []
    captions.apply(translation(0, "Buenos días."), 1.0)
    [done] = captions.release(1.0)
    assert done.text == "Good morning." and done.ordered_translations() == [("es", "Buenos días.")]
    assert captions.waiting == []


def test_without_targets_a_final_moves_on_at_once() -> None:
    captions = captions_with(started(targets=()), final(0, "Hello."))
    assert [f.text for f in captions.release(0.0)] == ["Hello."]


def test_a_later_final_never_overtakes_an_earlier_one() -> None:
    captions = captions_with(started(), final(0, "One."), final(1, "Two."))
    captions.apply(translation(1, "Dos."), 0.5)
    assert captions.release(0.5) == []
    captions.apply(translation(0, "Uno."), 0.6)
    assert [f.text for f in captions.release(0.6)] == ["One.", "Two."]


def test_translations_are_listed_in_the_order_asked() -> None:
    captions = captions_with(
        started(targets=("es", "de")),
        final(0, "Hello."),
        translation(0, "Hallo.", "de"),
        translation(0, "Hola.", "es"),
    )
    [done] = captions.release(0.0)
    assert done.ordered_translations() == [("es", "Hola."), ("de", "Hallo.")]


def test_a_failed_translation_settles_its_target() -> None:
    captions = captions_with(started(targets=("es", "de")), final(0, "Hello."))
    captions.apply(translation(0, "Hola."), 0.0)
    captions.apply(failed(0, "de"), 0.0)
    [done] = captions.release(0.0)
    assert done.ordered_translations() == [("es", "Hola.")] and done.failed == {"de"}


def test_a_final_stops_waiting_after_wait_s_and_its_translation_comes_late() -> None:
    captions = captions_with(started(), final(0, "Good morning, everyone."), wait_s=4.0)
    assert captions.release(3.9) == []
    [done] = captions.release(4.0)
    assert done.translations == {}
    captions.apply(translation(0, "Buenos días."), 5.0)
    [late] = captions.take_late()
    assert late.final is done and late.language == "es" and late.text == "Buenos días."
    assert captions.take_late() == []


def test_repeats_and_targets_not_asked_for_are_ignored() -> None:
    captions = captions_with(started(), final(0, "Hello."), translation(0, "Hallo.", "de"))
    assert captions.release(0.0) == []
    captions.apply(translation(0, "Hola."), 0.0)
    captions.apply(translation(0, "Hola otra vez."), 0.0)
    [done] = captions.release(0.0)
    assert done.translations == {"es": "Hola."}
    assert captions.take_late() == []


def test_flush_lets_every_waiting_final_go() -> None:
    captions = captions_with(started(), final(0, "One."), final(1, "Two."))
    assert [f.text for f in captions.flush()] == ["One.", "Two."]
    assert captions.waiting == []


# --------------------------------------------------------------------------- reconnection


def test_a_new_session_resets_the_seq_bookkeeping_but_keeps_what_is_shown() -> None:
    captions = captions_with(
        started(sid="old"), final(0, "One."), final(3, "Four."), partial(4, "five six")
    )
    assert captions.release(0.0) == []  # both wait for Spanish
    captions.apply(started(sid="new"), 1.0)
    # The lost session's translations will never come: its finals stop waiting for them; the
    # words of its utterance in progress (their audio went with it) stay, as unfinished.
    released = captions.release(1.0)
    assert [(f.text, f.unfinished) for f in released] == [
        ("One.", False), ("Four.", False), ("five six", True),
    ]  # fmt: skip
    assert captions.partial is None
    # The new session's seq 0 is not the old session's seq 0, whose final came.
    captions.apply(partial(0, "seven"), 1.5)
    assert captions.partial == ShownPartial(0, 1, "", "seven")
    captions.apply(final(0, "Seven."), 2.0)
    captions.apply(translation(0, "Siete."), 2.0)
    [done] = captions.release(2.0)
    assert done.text == "Seven." and done.translations == {"es": "Siete."}
    assert captions.take_late() == []  # the old seq 0 ("One.") got nothing


def test_a_lost_sessions_unfinished_words_owe_nothing_and_show_dim_in_the_overlay() -> None:
    captions = captions_with(started(sid="old"), partial(7, "left hanging"), started(sid="new"))
    [unfinished] = captions.release(0.0)
    assert unfinished.unfinished and unfinished.targets == () and unfinished.settled
    view = overlay_view(captions)
    assert rows(view.caption) == ["left hanging"]
    assert {span.style for line in view.caption for span in line} == {"tail"}


def test_finals_are_numbered_across_sessions() -> None:
    captions = captions_with(
        started(targets=()), final(0, "A."), started(targets=()), final(0, "B.")
    )
    assert [(f.seq, f.number) for f in captions.release(0.0)] == [(0, 1), (0, 2)]


# --------------------------------------------------------------------------- the overlay's view


def rows(lines: tuple[tuple[object, ...], ...]) -> list[str]:
    return [plain(line) for line in lines]  # type: ignore[arg-type]


def test_the_overlay_rolls_the_newest_final_into_the_utterance_in_progress() -> None:
    captions = captions_with(
        started(),
        final(0, "Good morning, everyone, and welcome to the meeting."),
        translation(0, "Buenos días, todo el mundo, y bienvenido a la reunión."),
        partial(1, "please send the report", committed="please send"),
    )
    view = overlay_view(captions)
    assert len(view.caption) == CAPTION_ROWS
    assert all(len(row) <= CAPTION_CHARS for row in rows(view.caption))
    assert rows(view.caption)[-1].endswith("please send the report")
    styles = [span.style for line in view.caption for span in line if span.text.strip()]
    assert styles[-1] == "tail" and "committed" in styles and "final" in styles
    assert (
        " ".join(rows(view.translation)) == "Buenos días, todo el mundo, y bienvenido a la reunión."
    )


def test_the_overlay_keeps_the_last_translation_until_a_newer_one_comes() -> None:
    captions = captions_with(started(), final(0, "One."), translation(0, "Uno."), final(1, "Two."))
    assert rows(overlay_view(captions).caption) == ["Two."]  # the newest final and what follows
    assert rows(overlay_view(captions).translation) == ["Uno."]
    captions.apply(translation(1, "Dos."), 0.0)
    assert rows(overlay_view(captions).translation) == ["Dos."]


def test_the_overlay_names_each_language_when_there_are_several() -> None:
    captions = captions_with(
        started(targets=("es", "de")),
        final(0, "Hello."),
        translation(0, "Hallo.", "de"),
        translation(0, "Hola.", "es"),
    )
    assert rows(overlay_view(captions).translation) == ["[es] Hola.", "[de] Hallo."]


def test_the_overlay_is_empty_before_anything_is_said() -> None:
    view = overlay_view(captions_with(started()))
    assert view.caption == () and view.translation == ()


# --------------------------------------------------------------------------- the status line


def test_the_status_line_counts_down_to_the_next_attempt() -> None:
    line = StatusLine("file talk.wav")
    line.update(ConnectionStatus("connecting", "ws://h/ws"), 0.0)
    assert line.text(0.0) == "connecting to ws://h/ws…"
    line.update(ConnectionStatus("live", session_id="a"), 1.0)
    line.sent(12.4)
    assert line.text(1.0) == "● live · file talk.wav · 12 s of audio sent"
    line.update(ConnectionStatus("reconnecting", "code 1001", retry_in=4.0), 2.0)
    assert line.text(2.0) == "reconnecting in 4 s · gateway lost: code 1001"
    assert line.text(4.5) == "reconnecting in 2 s · gateway lost: code 1001"
    line.update(ConnectionStatus("connecting", "ws://h/ws"), 6.0)
    assert line.text(6.0) == "reconnecting to ws://h/ws…"
    line.update(ConnectionStatus("live", session_id="b"), 7.0)
    assert line.text(7.0) == "● live · file talk.wav · 0 s of audio sent"  # a new session
