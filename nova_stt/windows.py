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

# Finals (beam search, temperature fallback): the window sizes, seconds. bench/final_windows.py
# (36 utterances of 2–28 s: LibriVox, espeak-ng in en/de/es/fr/it/cs/pl; base int8, beam 5,
# language detected; one run, policies interleaved): WER 28.9 % against 29.8 % in 30 s windows
# (LibriVox alone 1.46 % both), in 0.42 of the time (median ratio; 30 s windows in Nova's loop
# already take 1/1.5 of faster-whisper's two encoder passes). By duration: 0–5 s 63.0 vs
# 67.9 %, 5–10 s 24.1 vs 25.5 %, 10–20 s and 20–30 s equal: no duration band lost, and the
# languages that did (it 55.8 vs 51.9 %, en 2.6 vs 1.9 %) lost
# on one utterance each (two words) while others gained as much (de 38.0 vs 43.0 %).
# 5 s steps (as partials) lost on LibriVox (1.95 %) for no time saved, so finals start at 10 s.
# Language detection on the sized window: 28 of 36 right against 29 (one short English
# sentence heard as Thai; others changed between wrong languages) — the session's memory
# (nova_stt.language_decision) is what decides short utterances.
# But averages hide single utterances: espeak's German "Ich möchte gern einen Kaffee." (2.3 s,
# language given) is "Ich muss zugeben einen Kaffee." in 10, 15 and 20 s windows and right in
# 30 s, and through the gateway a wrong word broke tests/test_type_desktop.py. Whisper's own
# average log-probability flags such audio: no LibriVox utterance scored below -0.53, and the
# German one -0.70 to -0.77 in a 10 s window. So a final whose sized window scored below
# RECHECK_BELOW_LOGPROB gets one more beam in 30 s (nova_stt.transcriber: not where the
# temperature fallback was needed, which is hard audio in any window), and the 30 s text is
# kept unless the sized one is more probable by SIZED_WINS_BY_LOGPROB. bench/final_windows.py
# with that (38 utterances, the two German test sentences added): WER 28.3 % against 29.6 % in
# 30 s windows and 29.0 % for sized windows alone; 6 of 38 decoded again, the German one now
# right (not with nova type's German prompt: there the wrong text scores -0.56 in 10 s and the
# right one -0.61 in 30 s, which no confidence threshold separates); English utterances in
# 0.51 of the 30 s window's time (none decoded again), all utterances 1.01 (espeak's other
# languages pay for their second pass and for the 30 s detection check below).
FINAL_WINDOWS_S: tuple[int, ...] = (10, 15, 20, 30)
RECHECK_BELOW_LOGPROB = -0.6
SIZED_WINS_BY_LOGPROB = 0.05
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
