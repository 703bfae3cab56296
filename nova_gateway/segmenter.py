"""Cutting a 16 kHz mono stream into utterances with webrtcvad.

Pre-roll keeps the first word from being clipped; an utterance ends after a configurable run of
silence (kept, so sentence ends are not cut). In fluent speech the pauses between sentences are
shorter than that silence, so the session cuts the utterance in progress where its partials'
committed text ends a sentence (``cut_near``); one that still grows past ``max_unfinal_s`` is
split at its quietest frame in the second half. Either way the rest carries on as the next
utterance, and no sample is in two utterances or in none.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import webrtcvad

from nova_common.audio import SAMPLE_RATE as RATE
from nova_common.settings import VadSettings

FRAME_MS = 30
FRAME = RATE * FRAME_MS // 1000  # samples per VAD frame
# Speech starts when this many of the last START_WINDOW frames are voiced.
START_WINDOW = 8
START_VOICED = 5
# A cut near a time Whisper gave (a segment end) looks this far around it for the pause: its
# timestamps fall anywhere in the pause between sentences, and are 20 ms steps at best.
CUT_SEARCH_BEFORE_S = 0.3
CUT_SEARCH_AFTER_S = 0.5


@dataclass(frozen=True)
class Utterance:
    start_sample: int
    pcm: np.ndarray  # int16 mono 16 kHz
    voiced_ms: int

    @property
    def start(self) -> float:
        return self.start_sample / RATE

    @property
    def end(self) -> float:
        return (self.start_sample + len(self.pcm)) / RATE


@dataclass
class _Frame:
    index: int
    pcm: np.ndarray
    voiced: bool
    energy: float


class UtteranceSegmenter:
    def __init__(self, settings: VadSettings) -> None:
        self._vad = webrtcvad.Vad(settings.aggressiveness)
        self._preroll = max(settings.preroll_ms // FRAME_MS, 0)
        self._end_silence = max(settings.end_silence_ms // FRAME_MS, 1)
        self._min_voiced = settings.min_speech_ms // FRAME_MS
        self._max_frames = int(settings.max_unfinal_s * 1000 // FRAME_MS)
        self._pending = np.zeros(0, dtype=np.int16)
        self._index = 0
        self._ring: deque[_Frame] = deque(maxlen=self._preroll + START_WINDOW)
        self._speech: list[_Frame] | None = None
        self._silent_run = 0

    def push(self, samples: np.ndarray) -> list[Utterance]:
        """Feed int16 mono 16 kHz samples; returns the utterances completed by them."""
        buf = np.concatenate([self._pending, samples]) if self._pending.size else samples
        out: list[Utterance] = []
        n_frames = len(buf) // FRAME
        # Every frame's energy in one vectorised pass: per frame it was a fifth of the
        # gateway's CPU (bench/results/gateway_profile.txt).
        whole = buf[: n_frames * FRAME].reshape(n_frames, FRAME).astype(np.float32)
        energies = np.sqrt(np.einsum("ij,ij->i", whole, whole) / FRAME).tolist()
        data = buf[: n_frames * FRAME].tobytes()
        step = FRAME * 2
        for i in range(n_frames):
            frame = _Frame(
                index=self._index,
                pcm=buf[i * FRAME : (i + 1) * FRAME],
                voiced=self._vad.is_speech(data[i * step : (i + 1) * step], RATE),
                energy=energies[i],
            )
            self._index += 1
            done = self._step(frame)
            if done is not None:
                out.append(done)
        self._pending = buf[n_frames * FRAME :].copy()
        return [u for u in out if u.voiced_ms >= self._min_voiced * FRAME_MS]

    def flush(self) -> list[Utterance]:
        """End of stream: the utterance in progress (if any) is complete."""
        if self._speech is None:
            return []
        if self._pending.size:
            self._speech.append(_Frame(self._index, self._pending, False, 0.0))
            self._index += 1
            self._pending = np.zeros(0, dtype=np.int16)
        done = self._emit(self._speech)
        self._speech = None
        return [done] if done.voiced_ms >= self._min_voiced * FRAME_MS else []

    def in_progress(self) -> Utterance | None:
        """The utterance being spoken, so far (for partial windows); None between utterances.
        Copies its audio: ask ``in_progress_span`` first, on every frame."""
        if self._speech is None:
            return None
        return self._emit(self._speech)

    def in_progress_span(self) -> tuple[float, float] | None:
        """(start, end) in seconds of the utterance being spoken; None between utterances."""
        if self._speech is None:
            return None
        first = self._speech[0].index * FRAME
        return first / RATE, (first + len(self._speech) * FRAME) / RATE

    def pause_near(self, at: float) -> float:
        """Seconds of the longest unvoiced run in the utterance in progress where a cut near
        ``at`` would look (0.0 when none, or no utterance is in progress)."""
        window = self._search_window(at)
        if self._speech is None or window is None:
            return 0.0
        longest = _longest_unvoiced(self._speech, window)
        return 0.0 if longest is None else longest[0] * FRAME_MS / 1000

    def _search_window(self, at: float, first_at: int = 0) -> range | None:
        """The frames of the utterance in progress a cut near ``at`` looks in (from index
        ``first_at`` on), or None when there are none."""
        if self._speech is None:
            return None
        frames = self._speech
        first = frames[0].index
        lo = max(round((at - CUT_SEARCH_BEFORE_S) * RATE / FRAME) - first, first_at)
        hi = min(round((at + CUT_SEARCH_AFTER_S) * RATE / FRAME) - first, len(frames) - 1)
        return range(lo, hi + 1) if lo <= hi else None

    def cut_near(self, at: float) -> Utterance | None:
        """End the utterance in progress near ``at`` (session seconds), in the pause there:
        the most silent unvoiced frame within the search window, or the quietest one if none is
        unvoiced. Returns the complete head; the rest stays in progress. None when no
        utterance is in progress or ``at`` leaves no audio on one side."""
        # From frame 1: a cut before the first frame would leave no head.
        window = self._search_window(at, first_at=1)
        if self._speech is None or window is None:
            return None
        frames = self._speech
        cut = _pause_in(frames, window)
        done = self._emit(frames[:cut])
        self._speech = frames[cut:]
        return done

    def _step(self, frame: _Frame) -> Utterance | None:
        if self._speech is None:
            self._ring.append(frame)
            recent = list(self._ring)[-START_WINDOW:]
            if sum(f.voiced for f in recent) >= START_VOICED:
                self._speech = list(self._ring)
                self._ring.clear()
                self._silent_run = 0
            return None
        self._speech.append(frame)
        self._silent_run = 0 if frame.voiced else self._silent_run + 1
        if self._silent_run >= self._end_silence:
            done = self._emit(self._speech)
            self._speech = None
            return done
        if len(self._speech) >= self._max_frames:
            return self._split()
        return None

    def _split(self) -> Utterance:
        assert self._speech is not None
        frames = self._speech
        half = len(frames) // 2
        cut = _pause_in(frames, range(max(half, 1), len(frames)))
        done = self._emit(frames[:cut])
        self._speech = frames[cut:]
        self._silent_run = 0
        return done

    @staticmethod
    def _emit(frames: list[_Frame]) -> Utterance:
        return Utterance(
            start_sample=frames[0].index * FRAME,
            pcm=np.concatenate([f.pcm for f in frames]),
            voiced_ms=sum(f.voiced for f in frames) * FRAME_MS,
        )


def _pause_in(frames: list[_Frame], window: range) -> int:
    """Where to cut ``frames`` within ``window`` (the index of the first frame after the cut):
    the middle of the longest run of unvoiced frames there, the later one of equals, so no word
    is split; where the VAD hears no gap at all, the quietest frame."""
    longest = _longest_unvoiced(frames, window)
    if longest is not None:
        return longest[1]
    smooth = _smoothed_energy(frames)
    return window.start + int(np.argmin(smooth[window.start : window.stop]))


def _longest_unvoiced(frames: list[_Frame], window: range) -> tuple[int, int] | None:
    """(frames, middle index) of the longest unvoiced run within ``window``, the later one of
    equals; None when every frame there is voiced."""
    best: tuple[int, int] | None = None
    run = 0
    for k in window:
        run = run + 1 if not frames[k].voiced else 0
        if run and (best is None or run >= best[0]):
            best = (run, k - run // 2)
    return best


def _smoothed_energy(frames: list[_Frame]) -> np.ndarray:
    """Frame energy smoothed over five frames (150 ms), so the closure of a stop consonant
    (the silence before the "p" of "be prudently", 60 ms) does not look like a pause between
    words: cut there, Whisper heard "be" on both sides."""
    energy = np.array([f.energy for f in frames], dtype=np.float32)
    # Edge padding: zero padding would make the last frame look quiet and attract the cut.
    padded = np.pad(energy, 2, mode="edge")
    return np.convolve(padded, np.ones(5, dtype=np.float32) / 5, mode="valid")
