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
# 67.9 %, 5–10 s 24.1 vs 25.5 %, 10–20 s and 20–30 s equal. So no fall-back to 30 s: no
# duration band loses, and the languages that did (it 55.8 vs 51.9 %, en 2.6 vs 1.9 %) lost
# on one utterance each (two words) while others gained as much (de 38.0 vs 43.0 %).
# 5 s steps (as partials) lost on LibriVox (1.95 %) for no time saved, so finals start at 10 s.
# Language detection on the sized window: 28 of 36 right against 29 (one short English
# sentence heard as Thai; others changed between wrong languages) — the session's memory
# (nova_stt.language_decision) is what decides short utterances.
# But averages hide single utterances: espeak's German "Ich möchte gern einen Kaffee." (2.3 s,
# language given) is "Ich muss zugeben einen Kaffee." in 10 s and "Ich muss sogar meinen
# Kaffee" in 15 s, and "Die Tür ist offen." is "Bitte ist offen." in 15 s; both are right in 20
# and 30 s, and through the gateway (its cut, pre-roll and end silence) the first stays wrong in
# 20 s too (tests/test_type_desktop.py types them). So finals keep Whisper's 30 s by default,
# one encoder pass for detection and decoding (1/1.5 of faster-whisper's time with `auto`);
# sized windows are a setting (stt.final_windows_s, e.g. [10, 15, 20, 30]) for those who
# measure their own audio.
FINAL_WINDOWS_S: tuple[int, ...] = (30,)
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
