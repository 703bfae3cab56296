"""Where a live client's audio comes from: a file paced like a microphone, the microphone, or
what the machine is playing. Each yields PCM16 LE chunks at its own rate; the gateway resamples.

Capture goes through `soundcard`, one library for microphones and system audio alike
(PulseAudio and PipeWire's monitor sources on Linux, WASAPI loopback on Windows, CoreAudio on
macOS). It is imported only when a device is opened: it connects to the sound server on import.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from nova_common.audio import SAMPLE_RATE
from nova_common.audio_file import pcm_chunks, probe

CHUNK_SECONDS = 0.1


class AudioDeviceError(RuntimeError):
    """No such device, or no sound server to open it on: the message says what to do."""


class AudioSource(Protocol):
    sample_rate: int
    channels: int
    # What the status line calls it: "file x.wav", "microphone …", "system audio (…)".
    description: str

    def chunks(self) -> AsyncIterator[bytes]: ...


@dataclass
class FileSource:
    """A file decoded and sent at real time (for demos and tests), or as fast as it decodes."""

    path: Path
    realtime: bool = True

    def __post_init__(self) -> None:
        info = probe(self.path)
        self._info = info
        self.sample_rate = info.sample_rate
        self.channels = info.channels
        self.description = f"file {self.path.name}"

    async def chunks(self) -> AsyncIterator[bytes]:
        frames = pcm_chunks(self.path, self._info, CHUNK_SECONDS)
        bytes_per_second = self.sample_rate * self.channels * 2
        began = time.monotonic()
        sent = 0.0
        while (chunk := await asyncio.to_thread(next, frames, None)) is not None:
            yield chunk
            sent += len(chunk) / bytes_per_second
            if self.realtime and (ahead := sent - (time.monotonic() - began)) > 0:
                await asyncio.sleep(ahead)


def _soundcard() -> ModuleType:
    try:
        import soundcard
    except Exception as exc:  # it asserts, or fails to find libpulse, at import time
        # soundcard reports a refused connection as a bare AssertionError: say what it means.
        detail = f" ({exc})" if str(exc) else ""
        raise AudioDeviceError(
            "cannot reach a sound server: is PulseAudio, or PipeWire with pipewire-pulse, "
            f"running for this user?{detail}"
        ) from exc
    return soundcard


def list_devices() -> list[str]:
    """One line per microphone, numbered as ``--device`` takes them; monitors of outputs last."""
    sc = _soundcard()
    lines = [f"{i}: {mic.name}" for i, mic in enumerate(sc.all_microphones())]
    lines += [f"   system audio: {spk.name}" for spk in sc.all_speakers()]
    return lines


@dataclass
class CaptureSource:
    """The microphone (``device``: an index from ``list_devices`` or part of a name; None for
    the default), or with ``system_audio`` what the default output is playing."""

    device: str | None = None
    system_audio: bool = False

    def __post_init__(self) -> None:
        self._microphone = self._open()
        self.sample_rate = SAMPLE_RATE  # the sound server resamples for us
        self.channels = 1
        kind = "system audio" if self.system_audio else "microphone"
        self.description = f"{kind} ({self._microphone.name})"

    def _open(self) -> Any:
        sc = _soundcard()
        if self.system_audio:
            speaker = sc.default_speaker()
            if speaker is None:
                raise AudioDeviceError("no audio output to capture: the sound server has no sink")
            return sc.get_microphone(str(speaker.name), include_loopback=True)
        if self.device is None:
            microphone = sc.default_microphone()
            if microphone is None:
                raise AudioDeviceError("no microphone: the sound server has no input source")
            return microphone
        microphones = sc.all_microphones()
        if self.device.isdigit():
            index = int(self.device)
            if index < len(microphones):
                return microphones[index]
        else:
            named = [m for m in microphones if self.device.lower() in m.name.lower()]
            if len(named) == 1:
                return named[0]
        known = "; ".join(f"{i}: {m.name}" for i, m in enumerate(microphones)) or "none"
        raise AudioDeviceError(f"no single microphone matches --device {self.device} ({known})")

    def _record(self, deliver: Any, stop: threading.Event) -> None:
        frames = int(self.sample_rate * CHUNK_SECONDS)
        # A block size asks the sound server for fragments of that size; without one PulseAudio
        # picks its own (seconds long), and the first ~2 s played into a monitor were lost.
        with self._microphone.recorder(
            samplerate=self.sample_rate, channels=1, blocksize=frames
        ) as recorder:
            while not stop.is_set():
                samples = recorder.record(numframes=frames)
                pcm = (np.clip(samples[:, 0], -1.0, 1.0) * 32767).astype("<i2").tobytes()
                deliver(pcm)

    async def chunks(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | BaseException] = asyncio.Queue()
        stop = threading.Event()

        def deliver(item: bytes | BaseException) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def record() -> None:
            try:
                self._record(deliver, stop)
            except BaseException as exc:  # a device that went away ends the stream, loudly
                deliver(exc)

        # Recording blocks in the sound library, so it gets a thread of its own.
        thread = threading.Thread(target=record, name="nova-capture", daemon=True)
        thread.start()
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise AudioDeviceError(f"{self.description} stopped: {item}") from item
                yield item
        finally:
            stop.set()
            with contextlib.suppress(RuntimeError):
                await asyncio.to_thread(thread.join, 1.0)


def open_source(*, input_file: Path | None, device: str | None, system_audio: bool) -> AudioSource:
    """The source the ``nova listen`` / ``nova type`` flags name."""
    if input_file is not None:
        return FileSource(input_file)
    return CaptureSource(device=device, system_audio=system_audio)
