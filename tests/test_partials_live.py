"""Partial results through the real pipeline: the gateway's windows, the STT worker's quick pass
on the real base model, LocalAgreement at the gateway, on a real nats-server.

The stability contract is asserted over the whole LibriVox session streamed at real-time pace;
first-partial latency and flicker are reported by ``bench/partials.py``, not asserted as times.
"""

from __future__ import annotations

import asyncio
import time

import nats
import numpy as np
import pytest
from nats.aio.client import Client

from nova_cli.stack import LocalStack
from nova_client.streaming import stream_audio
from nova_common.messages import FinalEvent, PartialEvent, StartMessage
from nova_common.settings import Settings
from nova_common.subjects import new_session_id
from nova_gateway.replay import read_results
from nova_stt.service import load_model
from nova_stt.transcriber import SpeechToText
from tests.client import chunks
from tests.speech import librivox, normalise, read_wav, resample, silence, speak, wer
from tests.worker_helpers import (
    eventually,
    next_transcript,
    publish,
    segment,
    stream_messages,
    subjects_of,
)

pytestmark = pytest.mark.slow


def joined_wer(references: list[str], hypotheses: list[str]) -> float:
    """WER of the whole session: utterances need not line up with the references'."""
    return wer([" ".join(references)], [" ".join(hypotheses)])


def librivox_session() -> tuple[np.ndarray, list[str]]:
    pieces, references = [], []
    for path, reference in librivox():
        audio, rate, _ = read_wav(path)
        pieces += [resample(audio, rate, 16000), silence(1.5)]
        references.append(reference)
    return np.concatenate(pieces), references


async def test_committed_words_never_change_over_a_whole_librivox_session(
    stack: LocalStack, whisper: SpeechToText
) -> None:
    audio, references = librivox_session()
    events: list[PartialEvent | FinalEvent] = []
    result = await stream_audio(
        stack.ws_url,
        # The language given, as a user who knows it would: detection costs Whisper a second
        # encoder pass, and on a slow 2-core machine (base at ~0.6 s per second of speech) the
        # windows of a short utterance then wait behind the previous final until they are stale.
        StartMessage(language="en"),
        chunks(audio, 16000),
        realtime=True,  # partials follow speech as a microphone delivers it
        on_partial=events.append,
        on_final=events.append,
    )
    assert result.summary is not None and result.summary.failed == 0
    finals = {e.seq: e for e in events if isinstance(e, FinalEvent)}
    # One utterance per recording, or more where committed text closed a sentence before the
    # pause did (nova_gateway/cuts.py).
    assert len(finals) >= len(references)

    by_seq: dict[int, list[PartialEvent]] = {}
    for event in events:
        if isinstance(event, PartialEvent):
            assert event.seq not in finals or events.index(finals[event.seq]) > events.index(
                event
            ), f"partial after its final: {event}"
            by_seq.setdefault(event.seq, []).append(event)
    # Every recording lasts more than three seconds, so each utterance has words to show before
    # its final. Partials are best effort and run only on the model's spare time: on a busy
    # machine an utterance's windows wait while the previous final runs, and may go stale.
    assert len(by_seq) >= len(finals) // 2, (sorted(by_seq), sorted(finals))
    for seq, partials in by_seq.items():
        revisions = [p.revision for p in partials]
        assert revisions == sorted(set(revisions)), revisions
        committed = ""
        for p in partials:
            assert p.text.startswith(p.committed), p
            assert p.committed.startswith(committed), (committed, p.committed)
            committed = p.committed
            # Session seconds, the utterance's start, like its final (whose end may come
            # before the partial's: a cut leaves the rest to the next utterance).
            assert p.start == finals[seq].start and p.start < p.end
            assert 1 <= len(p.lines) <= 2 and all(len(line) <= 42 for line in p.lines)
    assert any(p.committed for partials in by_seq.values() for p in partials)

    # Partial work does not cost the finals accuracy. The raw model on the same utterances as
    # the gateway cut them (the same audio, so only the pipeline differs) ...
    streamed = [finals[seq].text for seq in sorted(finals)]
    same_cuts = [
        whisper.transcribe(
            audio[round(f.start * 16000) : round(f.end * 16000)].tobytes(),
            language="en",
            task="transcribe",
        ).text
        for f in (finals[seq] for seq in sorted(finals))
    ]
    assert joined_wer(references, streamed) <= joined_wer(references, same_cuts) + 0.01, (
        streamed,
        same_cuts,
    )
    # ... and on each whole recording: the gateway's cut (pre-roll, end silence) costs Whisper
    # base one word of these 71 ("ill-sposed"), with partials on or off (bench/partials.py).
    whole = [
        whisper.transcribe(
            resample(*read_wav(path)[:2], 16000).tobytes(), language="en", task="transcribe"
        ).text
        for path, _ in librivox()
    ]
    one_word = 1 / sum(len(r.split()) for r in references)
    assert joined_wer(references, streamed) <= wer(references, whole) + one_word + 1e-9, (
        streamed,
        whole,
    )


def trimmed(audio: np.ndarray) -> np.ndarray:
    """Without espeak's own leading and trailing silence, so the pause is the one we set."""
    loud = np.flatnonzero(np.abs(audio) > 300)
    return audio[loud[0] : loud[-1] + 1]


async def test_word_times_and_the_typing_profile(stack: LocalStack) -> None:
    first, second = "Open the editor.", "Save the file now."
    audio = np.concatenate(
        [silence(0.5), trimmed(speak(first)), silence(0.45), trimmed(speak(second)), silence(1)]
    )

    typing = await stream_audio(
        stack.ws_url,
        StartMessage(profile="typing", word_timestamps=True, partials=False),
        chunks(audio, 16000),
    )
    # 0.45 s of silence ends an utterance when typing (300 ms), not for subtitles (600 ms).
    assert [normalise(f.text) for f in typing.finals] == [normalise(first), normalise(second)]
    for final in typing.finals:
        assert final.words and final.lines == ()
        assert normalise(" ".join(w.word for w in final.words)) == normalise(final.text)
        times = [t for w in final.words for t in (w.start, w.end)]
        assert times == sorted(times), times
        assert final.start - 0.05 <= times[0] and times[-1] <= final.end + 0.05
    # In session seconds: the second sentence's words start after the first's end.
    assert typing.finals[1].words[0].start >= typing.finals[0].words[-1].end

    subtitles = await stream_audio(stack.ws_url, StartMessage(partials=False), chunks(audio, 16000))
    assert len(subtitles.finals) == 1 and subtitles.finals[0].words == ()
    assert subtitles.finals[0].lines


async def test_worker_drops_stale_partials_and_keeps_partials_out_of_results(
    stack: LocalStack, settings: Settings, nc: Client
) -> None:
    js = nc.jetstream()
    subjects = subjects_of(settings)
    sid = new_session_id()
    results = await nc.subscribe(subjects.results(sid))
    partials = await nc.subscribe(subjects.partials(sid))
    speech = speak("He was not an ill disposed young man.").tobytes()

    # A partial that waited a minute in the queue, then the final of another utterance.
    await publish(
        js, subjects, segment(sid, 0, speech, kind="partial", revision=1, sent_at=time.time() - 60)
    )
    await publish(js, subjects, segment(sid, 1, speech))
    final = await next_transcript(results)
    assert (final.seq, final.kind) == (1, "final")

    # The stale partial was dropped unrun, and its session told so (its window is free again).
    dropped = await next_transcript(partials)
    assert (dropped.seq, dropped.text, dropped.suppressed) == (0, "", ("partial_stale",))
    fresh = segment(sid, 2, speech, kind="partial", revision=3, sent_at=time.time())
    await publish(js, subjects, fresh)
    partial = await next_transcript(partials)
    assert (partial.seq, partial.kind, partial.revision) == (2, "partial", 3)
    assert wer(["he was not an ill disposed young man"], [partial.text]) <= 0.3

    async def drained() -> bool:
        return await stream_messages(js, subjects.audio_stream) == 0

    await eventually(drained, "the AUDIO stream to be empty")
    # Partials are never replayed: only the final is stored in RESULTS.
    stored = await read_results(js, subjects, sid, complete=True)
    assert [(r.seq, r.kind) for r in stored] == [(1, "final")]


def test_a_partial_with_a_long_prompt_still_has_room_for_its_words(
    whisper: SpeechToText,
) -> None:
    speech = speak("He was not an ill disposed young man.").tobytes()
    prompt = (
        "Sense and Sensibility by Jane Austen: John Dashwood, Fanny, Elinor, Marianne, "
        "Norland Park, Barton Cottage, Colonel Brandon and Willoughby."
    )
    plain = whisper.partial(speech, language="en", task="transcribe")
    prompted = whisper.partial(speech, language="en", task="transcribe", prompt=prompt)
    assert wer(["he was not an ill disposed young man"], [plain.text]) <= 0.3, plain
    assert wer(["he was not an ill disposed young man"], [prompted.text]) <= 0.3, prompted


async def test_a_window_goes_to_a_free_worker_while_another_runs_a_final(
    settings: Settings, whisper: SpeechToText
) -> None:
    """A worker running a final fetches no partial windows (they would wait for it): the
    session's window is answered by the other worker before that final is done."""
    async with LocalStack(settings, stt_workers=1, model=whisper) as stack:
        # A model of its own, as each of `nova up`'s workers has (one model serves one call at
        # a time).
        await stack.add_worker(await asyncio.to_thread(load_model, settings))
        nc = await nats.connect(settings.nats.url)
        js = nc.jetstream()
        subjects = subjects_of(settings)
        sid = new_session_id()
        results = await nc.subscribe(subjects.results(sid))
        partials = await nc.subscribe(subjects.partials(sid))
        long_final = librivox_session()[0].tobytes()  # 32 s: two windows, seconds of model time
        await publish(js, subjects, segment(sid, 0, long_final, word_timestamps=True))
        # Past the other loop's fetch of windows that was pending when the final came.
        await asyncio.sleep(0.6)
        window = speak("He was not an ill disposed young man.").tobytes()
        answered = []
        for revision in range(1, 4):  # one in flight at a time, as a session sends them
            await publish(js, subjects, segment(sid, 1, window, kind="partial",
                                                revision=revision, sent_at=time.time()))  # fmt: skip
            answered.append(await next_transcript(partials))
        assert results.pending_msgs == 0  # every window answered while the final still runs
        final = await next_transcript(results)
        assert final.seq == 0
        for partial in answered:
            assert partial.text and partial.compute_s > 0, partial  # run, not yielded
            assert partial.worker_id != final.worker_id
        await nc.drain()
