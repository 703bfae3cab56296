"""Test audio from real sources: espeak-ng speech, pocketsphinx-testdata's LibriVox recordings."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path

import jiwer
import numpy as np
import soxr

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        # A missing tool is a broken test environment, not a reason to skip: `make test` installs it.
        raise RuntimeError(f"{name} is not installed; run `make test` (it apt-get installs it)")
    return path


def speak(text: str, voice: str = "en", *, rate: int = 16000, wpm: int = 160) -> np.ndarray:
    """espeak-ng speech as int16 mono at ``rate`` Hz."""
    with tempfile.TemporaryDirectory() as tmp:
        wav_path = Path(tmp) / "speech.wav"
        subprocess.run(
            [require_tool("espeak-ng"), "-v", voice, "-s", str(wpm), "-w", str(wav_path), text],
            check=True,
            capture_output=True,
        )
        audio, native, _ = read_wav(wav_path)
    return resample(audio, native, rate)


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    if from_rate == to_rate:
        return audio.astype(np.int16)
    out = soxr.resample(audio.astype(np.float32), from_rate, to_rate)
    return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


def silence(seconds: float, rate: int = 16000) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.int16)


def read_wav(path: Path) -> tuple[np.ndarray, int, int]:
    with wave.open(str(path)) as wav:
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        return data, wav.getframerate(), wav.getnchannels()


def write_wav(path: Path, audio: np.ndarray, rate: int, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(audio.astype("<i2").tobytes())
    return path


def librivox() -> list[tuple[Path, str]]:
    """The five recordings with their reference transcripts."""
    refs: dict[str, str] = {}
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        m = re.match(r"<s>(.*)</s>\s*\((.+)\)", line.strip())
        if m:
            refs[m.group(2)] = m.group(1).strip()
    files = sorted(LIBRIVOX.glob("*.wav"))
    if len(files) != 5:
        raise RuntimeError(f"expected 5 LibriVox recordings in {LIBRIVOX}; run `make test`")
    return [(f, refs[f.stem]) for f in files]


# Whisper writes either spelling; neither is an error.
_EQUIVALENT = {
    "mr": "mister", "mrs": "missus", "dr": "doctor",
    "favourite": "favorite", "colour": "color", "centre": "center",
}  # fmt: skip


def normalise(text: str) -> str:
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^\w\s']", " ", text)
    words = [_EQUIVALENT.get(w, w) for w in text.split()]
    return " ".join(words)


def wer(references: list[str], hypotheses: list[str]) -> float:
    return float(jiwer.wer([normalise(r) for r in references], [normalise(h) for h in hypotheses]))


def with_pauses(parts: Sequence[np.ndarray], pause: float = 1.2) -> np.ndarray:
    """Utterances as a speaker says them: half a second of silence first, a pause after each."""
    pieces: list[np.ndarray] = [silence(0.5)]
    for part in parts:
        pieces += [part, silence(pause)]
    return np.concatenate(pieces)
