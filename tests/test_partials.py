"""The logic of partial results, without a model or NATS: the LocalAgreement-2 contract, when a
partial window is due, which segments of a batch a worker runs first, caption layout."""

from __future__ import annotations

import pytest

from nova_common.lifecycle import message_id
from nova_common.messages import AudioSegment, Transcript
from nova_common.subtitles import caption_lines
from nova_gateway.partials import RETRY_AFTER_EMPTY_S, LocalAgreement, PartialWindows
from nova_stt.priority import plan_batch
from nova_stt.transcriber import window_seconds

# ----------------------------------------------------------------------------- LocalAgreement


def shown(hypotheses: list[str]) -> list[tuple[str, str]]:
    agreement = LocalAgreement()
    out = []
    for hypothesis in hypotheses:
        agreement.update(hypothesis)
        out.append((agreement.committed_text, agreement.text))
    return out


def test_words_two_hypotheses_agree_on_are_committed() -> None:
    assert shown(["And Mr. John De...", "And Mr. John Dashwood had then...", "x"])[:2] == [
        ("", "And Mr. John De..."),
        ("And Mr. John", "And Mr. John Dashwood had then..."),
    ]


def test_agreement_ignores_case_and_punctuation() -> None:
    # Committed as the newer hypothesis writes it.
    assert shown(["he was not.", "He was not an"])[-1][0] == "He was not"


def test_committed_words_never_change_whatever_later_hypotheses_say() -> None:
    hypotheses = [
        "And Mr. John",
        "And Mr. John Dashwood had",
        "Mr. John Dashwood had then leisure",  # drops a committed word
        "And Mister John Dash wood had then leisure to consider",  # respells committed words
        "completely different words now",
        "completely different words now and more",
    ]
    previous = ""
    for committed, text in shown(hypotheses):
        assert committed.startswith(previous), (previous, committed)
        assert text.startswith(committed), (committed, text)
        previous = committed
    assert previous.startswith("And Mr. John Dashwood had")


def test_a_hypothesis_that_drops_a_committed_word_continues_after_it() -> None:
    agreement = LocalAgreement()
    for hypothesis in ["And Mr. John Dashwood", "And Mr. John Dashwood had then"]:
        agreement.update(hypothesis)
    agreement.update("Mr. John Dashwood had then leisure")  # "And" missing at the start
    assert agreement.committed_text == "And Mr. John Dashwood had then"
    assert agreement.text == "And Mr. John Dashwood had then leisure"


def test_an_empty_hypothesis_keeps_what_was_committed() -> None:
    assert shown(["He was", "He was not", ""])[-1] == ("He was", "He was")


# ----------------------------------------------------------------------------- PartialWindows


def windows(*, ahead_of_finals: bool = False) -> PartialWindows:
    return PartialWindows(
        first_after_s=0.8, interval_s=1.0, answer_within_s=2.0, ahead_of_finals=ahead_of_finals
    )


def test_first_window_after_first_after_s_then_one_per_interval() -> None:
    w = windows()
    assert w.due(0, 0.5, now=0.0) is None
    assert w.due(0, 0.8, now=0.0) == 1
    w.answer(0, 1, "He was")
    assert w.due(0, 1.7, now=1.0) is None  # less than an interval more
    assert w.due(0, 1.8, now=1.0) == 2


def test_at_most_one_window_in_flight_until_answered_or_overdue() -> None:
    w = windows()
    assert w.due(0, 1.0, now=0.0) == 1
    assert w.due(0, 5.0, now=1.0) is None  # revision 1 not answered yet
    assert w.due(0, 5.0, now=2.5) == 2  # overdue: no longer blocks
    w.answer(0, 2, "text")
    assert w.due(0, 6.0, now=2.6) == 3


def test_a_late_answer_is_not_shown_after_a_newer_one() -> None:
    w = windows()
    w.due(0, 1.0, now=0.0)
    w.due(0, 3.0, now=2.5)
    assert w.answer(0, 2, "newer") is not None
    assert w.answer(0, 1, "older") is None


def test_partials_of_an_utterance_whose_final_is_queued_are_dropped() -> None:
    w = windows()
    assert w.due(0, 1.0, now=0.0) == 1
    w.final(0)
    assert w.answer(0, 1, "too late") is None
    assert w.due(0, 9.0, now=0.1) is None
    assert w.due(1, 1.0, now=0.1) == 1  # the next utterance: the budget is free again


def test_after_an_empty_answer_the_next_window_comes_sooner() -> None:
    w = windows()
    assert w.due(0, 0.8, now=0.0) == 1
    w.answer(0, 1, "")
    assert w.due(0, 0.8 + RETRY_AFTER_EMPTY_S, now=0.2) == 2


def test_an_empty_answer_is_not_shown_and_keeps_the_words_shown() -> None:
    w = windows()
    w.due(0, 0.8, now=0.0)
    assert w.answer(0, 1, "He was not an") is not None
    w.due(0, 1.8, now=0.5)
    assert w.answer(0, 2, "He was not an ill") is not None
    w.due(0, 2.8, now=1.0)
    assert w.answer(0, 3, "") is None  # dropped unrun, or too little speech
    w.due(0, 3.8, now=1.5)
    agreement = w.answer(0, 4, "He was not an ill disposed")
    assert agreement is not None and agreement.committed_text == "He was not an ill"


def test_an_abandoned_utterance_leaves_nothing_to_the_next_under_its_seq() -> None:
    w = windows()
    assert w.abandon(0) is False  # nothing in progress: nothing to withdraw
    w.due(0, 0.8, now=0.0)
    w.answer(0, 1, "Thank you.")
    w.due(0, 1.8, now=0.5)
    w.answer(0, 2, "Thank you.")
    assert w.abandon(0) is True  # the client saw "Thank you.": it must be withdrawn
    assert w.due(0, 0.5, now=1.0) is None  # the next utterance starts afresh
    assert w.due(0, 0.8, now=1.0) == 3  # revisions go on counting
    assert w.answer(0, 2, "Thank you. late") is None  # the dropped one's answers do not count
    agreement = w.answer(0, 3, "Hello world again")
    assert agreement is not None and agreement.text == "Hello world again"
    assert agreement.committed_text == ""


def transcript(seq: int, text: str) -> Transcript:
    return Transcript(session_id="s", seq=seq, kind="partial", revision=1, text=text,
                      language="en", language_probability=1.0, start=0.0, end=1.0,
                      worker_id="w", compute_s=0.0)  # fmt: skip


def test_a_partial_behind_an_owed_final_is_held_unless_ahead_of_finals() -> None:
    """Final 0 is owed (queued, not out) when utterance 1's partial is answered."""
    for ahead in (True, False):
        w = windows(ahead_of_finals=ahead)
        w.final(0)
        w.due(1, 1.0, now=0.0)
        agreement = w.answer(1, 1, "We waited")
        assert agreement is not None
        assert w.show_now(transcript(1, "We waited"), agreement, first_owed=0) is ahead
        assert w.unheld(first_owed=0) is None
        held = w.unheld(first_owed=1)  # final 0 is out
        assert (held is None) if ahead else (held is not None and held[0].seq == 1)
        assert w.unheld(first_owed=1) is None  # given back once


def test_a_held_partial_goes_stale_at_its_own_final_and_is_not_withdrawn_if_abandoned() -> None:
    w = windows()
    w.final(0)
    w.due(1, 1.0, now=0.0)
    agreement = w.answer(1, 1, "We waited")
    assert agreement is not None
    assert not w.show_now(transcript(1, "We waited"), agreement, first_owed=0)
    w.final(1)  # its own final is queued before final 0 came out
    assert w.unheld(first_owed=1) is None
    # Abandoned while held: the client never saw it, so there is nothing to take back.
    w.due(2, 1.0, now=0.1)
    agreement = w.answer(2, 1, "uh")
    assert agreement is not None
    assert not w.show_now(transcript(2, "uh"), agreement, first_owed=0)
    assert w.abandon(2) is False
    assert w.unheld(first_owed=2) is None


def test_a_window_that_could_not_be_queued_frees_the_budget() -> None:
    w = windows()
    assert w.due(0, 1.0, now=0.0) == 1
    w.not_sent()
    assert w.due(0, 2.0, now=0.1) == 2


# ----------------------------------------------------------------------------- worker batches


def seg(
    sid: str, seq: int, kind: str = "final", revision: int = 0, sent_at: float = 100.0
) -> AudioSegment:
    return AudioSegment(
        session_id=sid,
        seq=seq,
        kind=kind,
        revision=revision,
        start=0.0,
        end=1.0,
        pcm=b"",
        sent_at=sent_at,
    )  # type: ignore[arg-type]


def test_finals_run_before_partials() -> None:
    batch = [seg("a", 0, "partial", 1), seg("b", 3), None, seg("c", 1, "partial", 2)]
    plan = plan_batch(batch, now=100.5, partial_max_age_s=2.0)
    assert plan.run == [1, 2, 0, 3]
    assert plan.stale == plan.superseded == []


def test_superseded_and_stale_partials_are_not_run() -> None:
    batch = [
        seg("a", 0, "partial", 1),  # a newer revision of a:0 is in the batch
        seg("a", 0, "partial", 2),
        seg("b", 2, "partial", 1),  # b's final for seq 2 is in the batch
        seg("b", 2),
        seg("c", 0, "partial", 1, sent_at=90.0),  # waited 10 s
    ]
    plan = plan_batch(batch, now=100.0, partial_max_age_s=2.0)
    assert plan.run == [3, 1]
    assert plan.superseded == [0, 2]
    assert plan.stale == [4]


def test_every_partial_revision_has_its_own_message_id() -> None:
    assert message_id(seg("s", 4, "partial", 2)) == "s:4:partial:2"
    assert message_id(seg("s", 4)) == "s:4:final"


# ----------------------------------------------------------------------------- layout, windows


def test_caption_lines_keep_the_latest_two_lines_of_at_most_42_characters() -> None:
    text = (
        "And Mr. John Dashwood had then leisure to consider how much there might be "
        "prudently in his power to do for them."
    )
    lines = caption_lines(text)
    assert len(lines) == 2 and all(len(line) <= 42 for line in lines)
    assert text.endswith(" ".join(lines))
    assert caption_lines("Hello.") == ("Hello.",)
    assert caption_lines("") == ()


@pytest.mark.parametrize(
    ("duration", "window"), [(0.3, 5), (3.9, 5), (4.1, 10), (12.0, 15), (29.5, 30), (40.0, 30)]
)
def test_partial_encoder_window_follows_the_audio(duration: float, window: int) -> None:
    assert window_seconds(duration) == window
