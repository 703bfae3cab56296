"""How long an encoder window an utterance gets.

Whisper was trained on 30 s windows and faster-whisper pads every utterance to one, but the
encoder's cost follows the window and CTranslate2 accepts shorter mel features. A window a
little longer than the audio, rounded up to a few fixed sizes (so that the padding Whisper sees
stays like the padding it was trained on, and batches of similar utterances share a shape),
costs a fraction and transcribes the same.
"""

from __future__ import annotations

import math

FRAMES_PER_SECOND = 100  # Whisper's mel hop is 10 ms
MAX_WINDOW_S = 30

# Partial windows: over the five LibriVox clips (greedy, base int8): 30 s windows WER 1.4 % in
# 2.8 s; 10 s steps 1.4 % in 1.2 s; 5 s steps 2.8 % in 1.1 s, and a 1 s partial costs 0.08 s
# instead of ~0.5 s.
WINDOW_MARGIN_S = 1.0
WINDOW_STEP_S = 5

# Finals (beam search, temperature fallback): the window sizes, seconds. Measured by
# bench/final_windows.py (LibriVox + espeak-ng in 7 languages, base int8, beam 5); see
# FINAL_MARGIN_S and the README's table for the figures.
FINAL_WINDOWS_S = (10, 15, 20, 30)
FINAL_MARGIN_S = 1.0


def window_seconds(duration: float) -> int:
    """The encoder window for a partial of ``duration`` seconds."""
    wanted = math.ceil((duration + WINDOW_MARGIN_S) / WINDOW_STEP_S) * WINDOW_STEP_S
    return min(max(wanted, WINDOW_STEP_S), MAX_WINDOW_S)


def final_window_seconds(
    duration: float,
    sizes: tuple[int, ...] = FINAL_WINDOWS_S,
    margin: float = FINAL_MARGIN_S,
) -> int:
    """The encoder window for a final of ``duration`` seconds: the smallest size that holds it
    with ``margin`` to spare; audio longer than the largest is decoded window by window."""
    for size in sizes:
        if duration + margin <= size:
            return size
    return sizes[-1]
