"""The session's own decisions, with the model's answers scripted: where an utterance ends,
when the client hears it is behind, what language belief goes with each segment.

The session ends an utterance where its committed partial text closes a sentence, before any
pause long enough for the segmenter: the head goes out as a final of its own, the rest carries on
under the next seq, and no sample of the speech is in both or in neither.

The model's answers are scripted here (this is the session's logic); tests/test_fluent_speech.py
runs the same path with the real model and the real bus.
"""

from __future__ import annotations

import asyncio

import msgspec
import numpy as np
from prometheus_client import CollectorRegistry

from nova_common.audio import SAMPLE_RATE as RATE
from nova_common.messages import (
    AudioSegment,
    LanguageWeight,
    NoticeEvent,
    PartialEvent,
    Profile,
    SegmentEnd,
    ServerEvent,
    StartMessage,
    Transcript,
)
from nova_common.metrics import GatewayMetrics
from nova_common.settings import GatewaySettings, VadSettings
from nova_gateway.cuts import CutPolicy
from nova_gateway.hub import partial_windows
from nova_gateway.session import Session
from tests.speech import silence, speak

FIRST = "The train was late."
SECOND = "We waited on the platform for an hour."
CHUNK = RATE // 10
# Partial windows as the hub makes them per profile, quick enough for these short tests.
PARTIALS = GatewaySettings(
    first_partial_s=0.3, partial_interval_s=0.3, typing_partial_interval_s=0.3
)


class RecordingPublisher:
    """Keeps what the session would queue (no bus: the session's decisions are under test)."""

    def __init__(self) -> None:
        self.segments: list[AudioSegment] = []

    async def publish(self, segment: AudioSegment) -> None:
        self.segments.append(segment)

    def of(self, kind: str) -> list[AudioSegment]:
        return [s for s in self.segments if s.kind == kind]


def trimmed(text: str) -> np.ndarray:
    audio = speak(text)
    loud = np.flatnonzero(np.abs(audio) > 300)
    return audio[loud[0] : loud[-1] + 1]


def make_session(
    publisher: RecordingPublisher,
    sent: list[ServerEvent],
    *,
    session_id: str = "s1",
    language: str = "en",
    live: bool = True,
    falling_behind_s: float = 0.0,
    profile: Profile = "subtitles",
) -> Session:
    """``live``: partials and cuts on, and no forced cut within these short tests."""

    async def send(event: ServerEvent) -> None:
        sent.append(event)

    start = StartMessage(language=language, profile=profile)
    return Session(
        session_id,
        start,
        vad=VadSettings(max_unfinal_s=30.0) if live else VadSettings(),
        publisher=publisher,  # type: ignore[arg-type]
        send=send,
        metrics=GatewayMetrics.create(CollectorRegistry()),
        partials=partial_windows(PARTIALS, start) if live else None,
        cuts=CutPolicy() if live else None,
        falling_behind_s=falling_behind_s,
    )


def answer(window: AudioSegment, text: str, ends: tuple[SegmentEnd, ...]) -> Transcript:
    return Transcript(
        session_id=window.session_id,
        seq=window.seq,
        kind="partial",
        revision=window.revision,
        text=text,
        language="en",
        language_probability=1.0,
        start=window.start,
        end=window.end,
        worker_id="scripted",
        compute_s=0.0,
        segment_ends=ends,
    )


async def feed(session: Session, audio: np.ndarray) -> None:
    """Chunk by chunk, each chunk's publishes out of the outbox before the next comes."""
    for pos in range(0, len(audio), CHUNK):
        await session.feed(audio[pos : pos + CHUNK].tobytes())
        assert await session.ingest.outbox.drain(5)


async def test_a_committed_sentence_end_cuts_the_utterance_in_its_pause() -> None:
    lead, first, pause, second = silence(0.5), trimmed(FIRST), silence(0.3), trimmed(SECOND)
    audio = np.concatenate([lead, first, pause, second, silence(1.5)])
    pause_start = (len(lead) + len(first)) / RATE
    publisher, sent = RecordingPublisher(), list[ServerEvent]()
    session = make_session(publisher, sent)

    # Into the second sentence: the 0.3 s pause is far under the 600 ms end silence.
    fed = len(lead) + len(first) + len(pause) + RATE // 2
    await feed(session, audio[:fed])
    assert publisher.of("final") == []
    # Two windows agree on the first sentence; Whisper's timestamp for its end is a little
    # late (inside the next word), as it often is.
    hypothesis = f"{FIRST} We waited"
    ends = (SegmentEnd(words=4, end=round(pause_start + 0.4, 2)),)
    for _ in range(2):
        window = publisher.of("partial")[-1]
        await session.on_result(answer(window, hypothesis, ends))
        # The speaker goes on (enough for the next window to be due).
        await feed(session, audio[fed : fed + 4 * CHUNK])
        fed += 4 * CHUNK
    shown = [e for e in sent if isinstance(e, PartialEvent)]
    assert shown and shown[-1].committed.startswith(FIRST)

    [head] = publisher.of("final")
    assert head.seq == 0 and head.start <= 0.5
    # In the pause, not in a word: the cut looked around the time Whisper gave.
    assert pause_start - 0.03 <= head.end <= pause_start + len(pause) / RATE + 0.03

    await feed(session, audio[fed:])
    finals = publisher.of("final")
    assert [f.seq for f in finals] == [0, 1]
    # Contiguous: the rest starts where the head ended, so no sample is lost or doubled.
    assert finals[1].start == finals[0].end
    assert finals[1].end > (len(lead) + len(first) + len(pause) + len(second)) / RATE - 0.1


async def test_a_sentence_end_the_speaker_paused_at_is_cut_on_one_hypothesis() -> None:
    lead, first, pause, second = silence(0.5), trimmed(FIRST), silence(0.3), trimmed(SECOND)
    audio = np.concatenate([lead, first, pause, second])
    pause_start = (len(lead) + len(first)) / RATE
    publisher, sent = RecordingPublisher(), list[ServerEvent]()
    session = make_session(publisher, sent)
    await feed(session, audio)
    ends = (SegmentEnd(words=4, end=round(pause_start + 0.1, 2)),)
    # Nothing committed yet: one hypothesis, but a period where the VAD hears the pause.
    await session.on_result(answer(publisher.of("partial")[-1], f"{FIRST} We", ends))
    await feed(session, silence(0.1))
    [head] = publisher.of("final")
    assert pause_start - 0.03 <= head.end <= pause_start + len(pause) / RATE + 0.03


async def test_no_cut_while_the_sentence_is_not_committed_and_no_pause_is_heard() -> None:
    lead, first, pause, second = silence(0.5), trimmed(FIRST), silence(0.3), trimmed(SECOND)
    audio = np.concatenate([lead, first, pause, second])
    publisher, sent = RecordingPublisher(), list[ServerEvent]()
    session = make_session(publisher, sent)
    await feed(session, audio)
    # Whisper's period inside the first sentence's words (it misheard where it ends).
    ends = (SegmentEnd(words=4, end=(len(lead) + len(first) // 2) / RATE),)
    # Two hypotheses that disagree from the first word: nothing is committed.
    for text in (f"{FIRST} We", "A rain was late. We waited"):
        await session.on_result(answer(publisher.of("partial")[-1], text, ends))
        await feed(session, silence(0.35))
    assert publisher.of("final") == []


async def test_a_final_owed_too_long_is_said_once() -> None:
    publisher, sent = RecordingPublisher(), list[ServerEvent]()
    session = make_session(publisher, sent, session_id="s2", live=False, falling_behind_s=0.05)
    await feed(session, np.concatenate([silence(0.5), trimmed(FIRST), silence(1.0)]))
    assert len(publisher.of("final")) == 1
    await asyncio.sleep(0.1)
    await feed(session, silence(0.5))
    await feed(session, silence(0.5))
    notices = [e for e in sent if isinstance(e, NoticeEvent)]
    assert [n.code for n in notices] == ["falling_behind"]


async def test_finals_heard_so_far_go_with_the_next_utterance_as_its_language_prior() -> None:
    """With language auto the session's belief travels in every segment; a repeated final's
    evidence counts once."""
    publisher, sent = RecordingPublisher(), list[ServerEvent]()
    session = make_session(publisher, sent, session_id="s3", language="auto", live=False)
    sentence = np.concatenate([silence(0.5), trimmed(FIRST), silence(1.0)])
    await feed(session, sentence)
    [first] = publisher.of("final")
    assert first.language is None and first.language_prior == ()
    heard = Transcript(
        session_id="s3",
        seq=0,
        text="Pociąg się spóźnił.",
        language="pl",
        language_probability=0.6,
        start=first.start,
        end=first.end,
        worker_id="scripted",
        compute_s=0.0,
        language_scores=(
            LanguageWeight(language="pl", weight=0.6),
            LanguageWeight(language="cs", weight=0.3),
        ),
    )
    await session.on_result(heard)
    await session.on_result(heard)  # redelivered
    await feed(session, sentence)
    second = publisher.of("final")[1]
    prior = {w.language: w.weight for w in second.language_prior}
    assert list(prior)[:2] == ["pl", "cs"] and 0 < prior["pl"] < 1

    # Counted once: the same belief as a session that heard it once.
    once = make_session(RecordingPublisher(), [], session_id="s4", language="auto", live=False)
    await once.on_result(msgspec.structs.replace(heard, session_id="s4"))
    assert once.heard.prior() == second.language_prior


async def test_a_given_language_sends_no_prior() -> None:
    publisher, sent = RecordingPublisher(), list[ServerEvent]()
    session = make_session(publisher, sent)
    await feed(session, np.concatenate([silence(0.5), trimmed(FIRST), silence(1.0)]))
    assert all(s.language == "en" and s.language_prior == () for s in publisher.segments)


def final_of(segment: AudioSegment, text: str) -> Transcript:
    return Transcript(
        session_id=segment.session_id, seq=segment.seq, text=text, language="en",
        language_probability=1.0, start=segment.start, end=segment.end, worker_id="scripted",
        compute_s=0.0,
    )  # fmt: skip


def shown(sent: list[ServerEvent]) -> list[tuple[str, int | None]]:
    return [(type(e).__name__, getattr(e, "seq", None)) for e in sent]


async def a_partial_while_final_0_is_owed(
    profile: Profile,
) -> tuple[Session, RecordingPublisher, list[ServerEvent]]:
    """The first sentence is final (its final not in yet), the second's first window answered."""
    publisher, sent = RecordingPublisher(), list[ServerEvent]()
    session = make_session(publisher, sent, profile=profile)
    one, two = trimmed(FIRST), trimmed(SECOND)
    await feed(session, np.concatenate([silence(0.5), one, silence(1.0), two[:RATE]]))
    assert [f.seq for f in publisher.of("final")] == [0]
    window = publisher.of("partial")[-1]
    assert window.seq == 1
    await session.on_result(answer(window, "We waited", ()))
    return session, publisher, sent


async def test_a_partial_is_shown_while_an_earlier_final_is_owed() -> None:
    """Outside dictation the next utterance's words need not wait for the model's time on the
    previous final: the partial goes at once, and the final still comes in seq order."""
    session, publisher, sent = await a_partial_while_final_0_is_owed("subtitles")
    assert shown(sent) == [("PartialEvent", 1)]
    [partial] = sent
    assert isinstance(partial, PartialEvent) and partial.text == "We waited"

    await session.on_result(final_of(publisher.of("final")[0], FIRST))
    assert shown(sent) == [("PartialEvent", 1), ("FinalEvent", 0)]  # nothing shown twice
    # A late answer for an utterance whose final is out is stale: dropped.
    late = publisher.of("partial")[0]
    assert late.seq == 0
    await session.on_result(answer(late, "The train", ()))
    assert shown(sent) == [("PartialEvent", 1), ("FinalEvent", 0)]


async def test_in_the_typing_profile_a_partial_waits_for_the_earlier_final() -> None:
    """Dictation types utterances one after another: a partial of the next one is held, and
    shown the moment the final before it is."""
    session, publisher, sent = await a_partial_while_final_0_is_owed("typing")
    assert not [e for e in sent if isinstance(e, PartialEvent)]  # held
    await session.on_result(final_of(publisher.of("final")[0], FIRST))
    assert shown(sent)[-2:] == [("FinalEvent", 0), ("PartialEvent", 1)]
