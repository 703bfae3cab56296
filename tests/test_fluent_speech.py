"""Fluent speech through the real pipeline: the five LibriVox recordings back to back, with only
their own short pauses between sentences (under the 600 ms end silence), streamed in real time.

Finals must come while the speaker is still talking, not only at the end (cuts at committed
sentence ends, or the max_unfinal_s bound); wherever the cuts fall, no word may be lost or
doubled at one, and each final gets its translation.
"""

from __future__ import annotations

import time
from itertools import pairwise

import numpy as np
import pytest

from nova_cli.stack import LocalStack
from nova_client.streaming import stream_audio
from nova_common.messages import FinalEvent, PartialEvent, StartMessage, TranslationEvent
from nova_common.settings import Settings
from nova_mt.apertium import ApertiumBackend
from nova_stt.transcriber import SpeechToText
from tests.client import chunks
from tests.speech import librivox, normalise, read_wav, resample, wer

pytestmark = pytest.mark.slow


def fluent_session() -> tuple[np.ndarray, str]:
    audio = np.concatenate([resample(*read_wav(path)[:2], 16000) for path, _ in librivox()])
    return audio, " ".join(reference for _, reference in librivox())


async def test_fluent_speech_is_final_while_it_is_spoken_with_no_word_lost_or_doubled(
    settings: Settings, whisper: SpeechToText
) -> None:
    apertium = ApertiumBackend.discover("apertium")
    assert apertium is not None and ("en", "es") in apertium.pairs, (
        "apertium-eng-spa is missing (make test installs it)"
    )
    audio, reference = fluent_session()
    speech_s = len(audio) / 16000
    arrived: dict[int, float] = {}
    events: list[FinalEvent | PartialEvent] = []
    translations: list[TranslationEvent] = []

    def on_final(event: FinalEvent) -> None:
        arrived[event.seq] = time.monotonic()
        events.append(event)

    async with LocalStack(settings, model=whisper, mt_workers=1, backends=[apertium]) as stack:
        started = time.monotonic()
        result = await stream_audio(
            stack.ws_url,
            StartMessage(language="en", translate_to=("es",)),
            chunks(audio, 16000),
            realtime=True,
            on_final=on_final,
            on_partial=events.append,
            on_translation=translations.append,
        )
    assert result.summary is not None and result.summary.failed == 0
    finals = sorted((e for e in events if isinstance(e, FinalEvent)), key=lambda e: e.seq)
    assert [f.seq for f in finals] == list(range(len(finals)))

    # A silence-only segmenter hears one 25 s utterance here; finals follow the speech.
    assert len(finals) >= 3, [f.text for f in finals]
    during = [seq for seq, at in arrived.items() if at - started < speech_s]
    assert len(during) >= 2, (during, speech_s)
    # Contiguous utterances: each starts where the previous one ended (no audio in two, or in
    # none), so a word at a cut is in exactly one final...
    for previous, following in pairwise(finals):
        assert following.start >= previous.end - 1e-3, (previous, following)
    streamed = " ".join(f.text for f in finals)
    # ... and the session reads as the recording does: the raw model on the whole recording
    # is the bound, with two points for the cuts (a doubled or lost word is 1.4 points).
    offline = whisper.transcribe(audio.tobytes(), language="en", task="transcribe").text
    assert wer([reference], [streamed]) <= wer([reference], [offline]) + 0.02, (streamed, offline)
    assert abs(len(normalise(streamed).split()) - len(normalise(reference).split())) <= 1

    # Translations follow each final.
    assert {t.seq for t in translations} == {f.seq for f in finals if f.text}
    assert all(t.language == "es" and t.text for t in translations)
