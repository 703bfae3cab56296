"""Finals through Nova's decode loop (nova_stt.decode): one encoder pass, windows sized to the
audio, Whisper's temperature fallback, word times inside the audio, nothing past its end."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from nova_common.messages import LanguageWeight
from nova_stt.decode import inside_audio
from nova_stt.filters import FilterSettings
from nova_stt.transcriber import SpeechToText
from nova_stt.windows import final_window_seconds
from tests.speech import librivox, read_wav, resample, silence, speak, wer


@pytest.fixture(scope="module")
def clips() -> list[tuple[np.ndarray, str]]:
    return [(resample(*read_wav(path)[:2], 16000), text) for path, text in librivox()]


def test_window_sizes() -> None:
    durations = (0.5, 8.9, 9.5, 14, 18.9, 19.5, 29, 45)
    assert [final_window_seconds(d) for d in durations] == [
        10, 10, 15, 15, 20, 30, 30, 30,
    ]  # fmt: skip
    # stt.final_windows_s [30]: Whisper's own window for every final.
    assert {final_window_seconds(d, (30,)) for d in durations} == {30}


def test_text_past_the_audio_end_is_dropped() -> None:
    segments = [
        {"start": 0.0, "end": 2.4, "tokens": [1]},
        {"start": 2.4, "end": 4.6, "tokens": [2]},  # runs past the 4.5 s of audio: clipped
        {"start": 4.45, "end": 6.0, "tokens": [3]},  # starts in the padding: dropped
    ]
    kept = inside_audio(segments, 4.5)
    assert [s["tokens"] for s in kept] == [[1], [2]] and kept[-1]["end"] == 4.5


@pytest.mark.slow
def test_one_encoder_pass_with_the_language_detected(
    whisper: SpeechToText, clips: list[tuple[np.ndarray, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, ...]] = []
    encode = whisper._model.encode

    def counted(features: np.ndarray) -> object:
        calls.append(features.shape)
        return encode(features)

    monkeypatch.setattr(whisper._model, "encode", counted)
    audio, text = clips[0]  # 7 s
    result = whisper.transcribe(audio.tobytes(), language=None, task="transcribe")
    assert wer([text], [result.text]) < 0.1 and result.language == "en"
    assert result.language_scores[0].language == "en"
    assert [shape[-1] for shape in calls] == [1000]  # once, in a 10 s window
    assert not result.rechecked  # Whisper is sure of LibriVox: no second pass


@pytest.mark.slow
def test_an_unsure_final_is_decoded_again_in_30_s(whisper: SpeechToText) -> None:
    """espeak's German "Ich möchte gern einen Kaffee." is "Ich muss zugeben einen Kaffee." in a
    10 s window; Whisper's low confidence sends it to the 30 s window, whose text is kept
    unless the sized one is clearly more probable."""
    sentence = "Ich möchte gern einen Kaffee."
    pcm = np.concatenate([silence(0.3), speak(sentence, "de", wpm=150), silence(0.3)]).tobytes()
    result = whisper.transcribe(pcm, language="de", task="transcribe")
    assert result.rechecked, result
    recheck_below, final_window = whisper.recheck_below, whisper.final_window
    try:
        whisper.recheck_below = float("-inf")
        sized_only = whisper.transcribe(pcm, language="de", task="transcribe")
        whisper.final_window = lambda _: 30
        whole = whisper.transcribe(pcm, language="de", task="transcribe")
    finally:
        whisper.recheck_below, whisper.final_window = recheck_below, final_window
    assert not sized_only.rechecked and result.text == whole.text
    assert wer([sentence], [whole.text]) < wer([sentence], [sized_only.text]), (whole, sized_only)


@pytest.mark.slow
def test_librivox_wer_as_with_30_s_windows(
    whisper: SpeechToText, clips: list[tuple[np.ndarray, str]]
) -> None:
    references = [text for _, text in clips]
    sized = [whisper.transcribe(a.tobytes(), language=None, task="transcribe") for a, _ in clips]
    # faster-whisper's own transcribe (30 s windows, as Nova's finals were made before).
    before = []
    for audio, _ in clips:
        segments, _ = whisper._model.transcribe(
            audio.astype(np.float32) / 32768.0, beam_size=whisper.beam_size,
            condition_on_previous_text=False, vad_filter=False,
        )  # fmt: skip
        before.append(" ".join(s.text.strip() for s in segments))
    assert wer(references, [r.text for r in sized]) <= wer(references, before) <= 0.03
    assert all(r.suppressed == () for r in sized)


@pytest.mark.slow
def test_word_times_are_ordered_and_inside_the_audio(
    whisper: SpeechToText, clips: list[tuple[np.ndarray, str]]
) -> None:
    # Two clips with a pause: more than one Whisper segment.
    audio = np.concatenate([clips[1][0], silence(0.8), clips[4][0]])
    result = whisper.transcribe(
        audio.tobytes(), language="en", task="transcribe", word_timestamps=True
    )
    duration = audio.size / 16000
    words = result.words
    # Every word of the text has its time ("ill-disposed" may come as "ill" + "-disposed").
    assert "".join(w.word for w in words) == result.text.replace(" ", "")
    assert all(0 <= w.start <= w.end <= duration for w in words)
    assert all(a.end <= b.start + 1e-6 for a, b in itertools.pairwise(words))
    # The second clip starts after the first and the pause.
    might = next(w for w in words if w.word.lower() == "might")
    assert might.start >= clips[1][0].size / 16000


@pytest.mark.slow
def test_temperature_fallback_when_the_text_is_too_improbable(whisper: SpeechToText) -> None:
    """Thresholds that greedy/beam text cannot meet make the loop sample at the next
    temperature, as Whisper does; the result records the temperature it settled on."""
    from faster_whisper.tokenizer import Tokenizer

    from nova_stt.decode import DecodeSettings, decode

    audio = np.concatenate([speak("I would like a cup of coffee."), silence(0.5)])
    features = whisper._model.feature_extractor(audio.astype(np.float32) / 32768.0)
    tokenizer = Tokenizer(whisper._model.hf_tokenizer, True, task="transcribe", language="en")
    settings = DecodeSettings(beam_size=2, filters=FilterSettings(), temperatures=(0.0, 0.4))
    plain = decode(whisper._model, features, tokenizer, settings, window_for=final_window_seconds)
    assert [s.evidence.temperature for s in plain.segments] == [0.0]
    assert "coffee" in plain.segments[0].text.lower()
    strict = dataclasses.replace(
        settings, filters=dataclasses.replace(FilterSettings(), log_prob_threshold=-0.0001)
    )
    fell_back = decode(whisper._model, features, tokenizer, strict, window_for=lambda d: 10)
    assert [s.evidence.temperature for s in fell_back.segments] == [0.4]


@pytest.mark.slow
def test_a_loop_falls_back_and_is_cut(whisper: SpeechToText) -> None:
    """Speech that really repeats: the beam's text compresses too well, so Whisper's fallback
    samples at rising temperatures, and what comes back is cut by the repetition filters."""
    audio = np.concatenate([speak(" ".join(["yes"] * 40), wpm=260), silence(0.5)])
    result = whisper.transcribe(audio.tobytes(), language="en", task="transcribe")
    assert len(result.text.split()) <= 12 and result.suppressed, result


@pytest.mark.slow
def test_prior_decides_a_short_utterance(whisper: SpeechToText) -> None:
    audio = np.concatenate([silence(0.3), speak("Dobré ráno, jak se máš?", "cs"), silence(0.6)])
    alone = whisper.transcribe(audio.tobytes(), language=None, task="transcribe")
    prior = (LanguageWeight(language="cs", weight=0.8),)
    helped = whisper.transcribe(audio.tobytes(), language=None, task="transcribe", prior=prior)
    assert helped.language == "cs"
    # What the utterance alone sounded like is reported either way, for the session's memory.
    assert helped.language_scores == alone.language_scores
