"""The fuzzing clients of tests/test_fuzz_frames.py: one Hypothesis ``RuleBasedStateMachine``
per protocol, whose rules are the kinds of frames real clients get wrong (and valid audio in
between), and the audio they send.

An example is one client: a connection, and another after each one that ended. A rule sends
its frames at once, then checks each one's answer in order (``Wire.check``, with the answer
``fuzz_model`` says is owed); after frames that are owed no answer, a probe makes sure they
were taken.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
from collections.abc import Coroutine
from typing import Any, ClassVar, TypeVar

import numpy as np
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule
from websockets.asyncio.client import connect

from tests import fuzz_strategies as fs
from tests.fuzz_model import Answer, Event, SeedModel, Silent, WsModel
from tests.fuzz_strategies import BadUtf8, Binary, Frame, Sound, Text
from tests.fuzz_wire import REPLY_TIMEOUT_S, SEED, WS, Protocol, Tally, Wire
from tests.speech import resample, silence, speak

T = TypeVar("T")

# The fuzzed gateway's max_frame_bytes: small, so oversized frames are cheap; 4x it is the hard
# limit (close 1009).
LIMIT = 64 * 1024
SENTENCE = "Please send the report to my office."
PROBE = {"type": "nova-fuzz-probe"}
OPENED = Text("(connection opened)", fs.ARBITRARY)  # what the seed's greeting answers


class Run:
    """What every machine of one test shares: the loop, the gateway's URL, the tally."""

    def __init__(self, loop: asyncio.AbstractEventLoop, url: str) -> None:
        self.loop = loop
        self.url = url
        self.tally = Tally()

    def wait(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on the gateway's loop, from Hypothesis's thread."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(REPLY_TIMEOUT_S * 20)


# --------------------------------------------------------------------------- audio


@functools.cache
def speech() -> np.ndarray:
    """A sentence of espeak speech and a pause, 16 kHz."""
    return np.concatenate([speak(SENTENCE), silence(0.5)])


@functools.lru_cache(maxsize=16)
def _speech_at(rate: int) -> np.ndarray:
    return resample(speech(), 16000, rate)


def render(sound: Sound, rate: int, channels: int) -> bytes:
    """``sound`` as interleaved PCM16 at ``rate`` and ``channels``, within the frame limit."""
    n = min(rate * sound.ms // 1000, LIMIT // (2 * channels))
    if sound.kind == "bytes":
        return fs.random_bytes(sound.seed, n * channels * 2)
    rng = np.random.default_rng(sound.seed)
    if sound.kind == "silence":
        mono = np.zeros(n)
    elif sound.kind in ("noise", "loud"):
        mono = rng.normal(0, 300 if sound.kind == "noise" else 12000, n)
    elif sound.kind == "tone":
        mono = 8000 * np.sin(2 * np.pi * rng.uniform(80, 4000) * np.arange(n) / rate)
    else:
        clip = _speech_at(rate)
        at = int(rng.integers(0, max(len(clip) - n, 1)))
        mono = np.resize(clip[at : at + n], n)  # repeats the clip when n is longer
    samples = np.repeat(mono[:, None], channels, axis=1).reshape(-1)
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


def speech_pcm(seconds: float, pause: float, at: int, rate: int, channels: int) -> bytes:
    """``seconds`` of the sentence from ``at`` on (round and round), then ``pause`` of silence."""
    clip = _speech_at(rate)
    start = at % len(clip)
    mono = np.concatenate(
        [np.roll(clip, -start)[: int(seconds * rate)], np.zeros(int(pause * rate))]
    )
    return np.repeat(mono[:, None], channels, axis=1).astype("<i2").tobytes()


def _padded(message: dict[str, Any], size: int, fill: str) -> Text:
    """``message`` with a pad field, ``size`` bytes of UTF-8 (or the nearest below)."""
    bare = len(fs.to_json({**message, "pad": ""}).encode())
    pad = fill * max((size - bare) // len(fill.encode()), 0)
    value = {**message, "pad": pad}
    return Text(fs.to_json(value), value)


# --------------------------------------------------------------------------- the machines


class FuzzMachine(RuleBasedStateMachine):
    """One client of ``protocol``: a connection (another after each one that ended)."""

    run: ClassVar[Run]
    protocol: ClassVar[Protocol]
    path: ClassVar[str]
    model: WsModel | SeedModel

    def __init__(self) -> None:
        super().__init__()
        self.wire: Wire | None = None
        self.client_id: str | None = None  # the session id events carry
        self.run.wait(self._open())

    def new_model(self) -> WsModel | SeedModel:
        raise NotImplementedError

    async def _open(self) -> None:
        ws = await connect(
            self.run.url.removesuffix("/ws") + self.path,
            max_size=None,
            open_timeout=REPLY_TIMEOUT_S,
            close_timeout=2,
            ping_interval=None,
        )
        self.wire = Wire(ws, self.protocol, self.run.tally)
        self.model = self.new_model()
        self.client_id = None
        self.run.tally.connections += 1
        await self.greeted()

    async def greeted(self) -> None:
        """What the gateway sends a new connection before any frame."""

    def send(self, *frames: Frame) -> None:
        self.run.wait(self._exchange(list(frames)))

    async def _exchange(self, frames: list[Frame]) -> None:
        assert self.wire is not None
        answers = [self.model.answer(f) for f in frames]
        for frame in frames:  # all at once: answers must come in order, whatever is in flight
            await self.wire.send(frame)
        for frame, answer in zip(frames, answers, strict=True):
            event = await self.wire.check(frame, answer)
            if event is not None:
                self.on_event(event, answer)
        if self.model.ended:
            await self._reopen()
        elif isinstance(answers[-1], Silent):
            await self._probe()  # no answer is owed, so make sure the frames were taken

    def on_event(self, event: dict[str, Any], answer: Answer) -> None:
        """Every event of one connection names the same session (until the seed renews it)."""
        key = "session_id" if self.protocol is WS else "client_id"
        if event.get(key) is None:
            return
        if self.client_id is None:
            self.client_id = event[key]
        assert event[key] == self.client_id, f"{event} names another session than {self.client_id}"

    async def _probe(self) -> None:
        assert self.wire is not None
        probe = Text(json.dumps(PROBE), PROBE)
        await self.wire.send(probe)
        await self.wire.check(probe, self.model.answer(probe))

    async def _reopen(self) -> None:
        if self.wire is not None:
            await self.wire.close()
        await self._open()

    # -- rules both protocols share -----------------------------------------------------

    @rule(
        frames=st.lists(
            st.one_of(fs.arbitrary_texts, fs.text_frames(fs.not_messages)), min_size=1, max_size=6
        )
    )
    def garbage_text(self, frames: list[Text]) -> None:
        self.send(*frames)

    @rule(
        frame=st.one_of(
            fs.arbitrary_texts,
            fs.text_frames(st.one_of(fs.not_messages, fs.update_messages, fs.get_status_messages)),
            st.binary(min_size=1, max_size=64).map(Binary),
        ),
        pieces=st.integers(2, 6),
    )
    def fragmented(self, frame: Text | Binary, pieces: int) -> None:
        """A message in several frames: the gateway must hear the whole message, once."""
        self.send(dataclasses.replace(frame, pieces=pieces))

    @rule(payload=st.binary(max_size=125), pong_first=st.booleans())
    def ping(self, payload: bytes, pong_first: bool) -> None:
        """Control frames between messages: a ping gets its pong, a stray pong nothing."""

        async def control() -> None:
            assert self.wire is not None
            if pong_first:
                await self.wire.ws.pong(payload)
            await self.wire.ping(payload)

        self.run.wait(control())

    @rule(
        size=st.one_of(
            st.sampled_from([LIMIT, LIMIT + 1, 4 * LIMIT]), st.integers(LIMIT - 8, 4 * LIMIT)
        ),
        fill=st.sampled_from(["a", "é", "€", "𝄞"]),
    )
    def oversized_text(self, size: int, fill: str) -> None:
        kind = "update" if self.protocol is WS else "get_status"
        self.send(_padded({"type": kind}, size, fill))

    @rule(sound=fs.sounds)
    def audio_as_text(self, sound: Sound) -> None:
        self.send(Text(render(sound, 16000, 1).decode("latin-1"), fs.ARBITRARY))

    # Not on a fresh connection: sessions should get somewhere before their connection ends.
    @precondition(lambda self: self.wire is not None and self.wire.sent >= 6)
    @rule(
        how=st.sampled_from(["huge text", "huge binary", "bad utf-8", "leave", "drop"]),
        extra=st.integers(1, 4096),
        bad=fs.bad_utf8,
        then=st.none() | fs.valid_starts,
    )
    def end_connection(
        self, how: str, extra: int, bad: BadUtf8, then: dict[str, Any] | None
    ) -> None:
        """Frames that end the connection, and clients that just go (and come back)."""
        if how == "huge text":
            self.send(Text("a" * (4 * LIMIT + extra), fs.ARBITRARY))
        elif how == "huge binary":
            self.send(Binary(bytes(4 * LIMIT + extra)))
        elif how == "bad utf-8":
            self.send(bad)
        else:
            self.run.wait(self._leave(abrupt=how == "drop"))
        self.resume(then)

    def resume(self, start: dict[str, Any] | None) -> None:
        """A client back on a new connection that starts a session at once."""

    async def _leave(self, *, abrupt: bool) -> None:
        assert self.wire is not None
        if abrupt:
            self.wire.ws.transport.abort()
        await self._reopen()

    def teardown(self) -> None:
        # Nothing left to check: every rule ends with its frames answered (or probed).
        if self.wire is not None:
            self.run.wait(self.wire.close())


class WsFuzz(FuzzMachine):
    protocol = WS
    path = "/ws"
    model: WsModel

    def new_model(self) -> WsModel:
        return WsModel(LIMIT)

    def _audio(self, sound: Sound) -> Binary:
        return Binary(render(sound, self.model.rate, self.model.channels))

    @rule(frames=st.lists(fs.text_frames(fs.start_messages), min_size=1, max_size=3))
    def start(self, frames: list[Text]) -> None:
        self.send(*frames)

    @rule(message=fs.valid_starts)
    def start_valid(self, message: dict[str, Any]) -> None:
        self.send(Text(json.dumps(message), message))

    @rule(frames=st.lists(fs.text_frames(fs.update_messages), min_size=1, max_size=4))
    def update(self, frames: list[Text]) -> None:
        self.send(*frames)

    @rule(sounds=st.lists(fs.sounds, min_size=1, max_size=12))
    def audio(self, sounds: list[Sound]) -> None:
        # Before a start one frame will do: the rest would only be refused alike.
        self.send(*(self._audio(s) for s in (sounds if self.model.started else sounds[:1])))

    @rule(
        seconds=st.floats(0.3, 3.0),
        pause=st.sampled_from([0.0, 0.3, 1.0]),
        at=st.integers(0, 10**6),
    )
    def speech(self, seconds: float, pause: float, at: int) -> None:
        """Speech in 100 ms frames, in the session's format: utterances begin, end, and are
        published; partial windows are asked for."""
        if not self.model.started:
            return
        pcm = speech_pcm(seconds, pause, at, self.model.rate, self.model.channels)
        step = self.model.rate // 10 * 2 * self.model.channels
        self.send(*(Binary(pcm[i : i + step]) for i in range(0, len(pcm), step)))

    @rule(frames=st.integers(0, 400), odd=st.integers(1, 15))
    def odd_audio(self, frames: int, odd: int) -> None:
        frame_bytes = 2 * self.model.channels
        self.send(Binary(bytes(frames * frame_bytes + (odd % frame_bytes or 1))))

    @rule(data=st.binary(max_size=64))
    def binary_junk(self, data: bytes) -> None:
        self.send(Binary(data))

    @rule(
        size=st.one_of(
            st.sampled_from([LIMIT, LIMIT + 1, LIMIT + 2, 4 * LIMIT]), st.integers(LIMIT, 4 * LIMIT)
        )
    )
    def oversized_audio(self, size: int) -> None:
        self.send(Binary(fs.random_bytes(size, size)))

    @rule(frame=fs.text_frames(st.one_of(fs.start_messages, fs.update_messages, fs.stop_messages)))
    def json_as_binary(self, frame: Text) -> None:
        self.send(Binary(frame.text.encode()))

    @rule(
        stop=fs.text_frames(fs.stop_messages),
        after=st.lists(
            st.one_of(fs.sounds, fs.text_frames(fs.start_messages), fs.arbitrary_texts), max_size=4
        ),
        then=st.none() | fs.valid_starts,
    )
    def stop(self, stop: Text, after: list[Sound | Text], then: dict[str, Any] | None) -> None:
        """``stop``, and frames right behind it that the gateway must never read."""
        self.send(stop, *(self._audio(f) if isinstance(f, Sound) else f for f in after))
        self.resume(then)

    def resume(self, start: dict[str, Any] | None) -> None:
        if start is not None and not self.model.started:
            self.send(Text(json.dumps(start), start))


class SeedFuzz(FuzzMachine):
    protocol = SEED
    path = "/ws/v0"
    model: SeedModel

    def new_model(self) -> SeedModel:
        return SeedModel(LIMIT)

    async def greeted(self) -> None:
        assert self.wire is not None
        greeting = self.model.status(renews=None)
        event = await self.wire.check(OPENED, greeting)
        assert event is not None
        self.on_event(event, greeting)

    def on_event(self, event: dict[str, Any], answer: Answer) -> None:
        if event["type"] != "status":
            super().on_event(event, answer)
            return
        assert isinstance(answer, Event)
        renews = answer.renews
        if renews is not None and self.client_id is not None:
            assert (event["client_id"] != self.client_id) == renews, (
                f"{event}: the client_id should {'' if renews else 'not '}change "
                f"(it was {self.client_id})"
            )
        self.client_id = event["client_id"]

    @rule(frames=st.lists(fs.seed_audio, min_size=1, max_size=12))
    def audio(self, frames: list[tuple[int, int, Sound, dict[str, Any]]]) -> None:
        self.send(*(self._frame(header, render(sound, rate, channels))
                    for rate, channels, sound, header in frames))  # fmt: skip

    @staticmethod
    def _frame(header: Any, pcm: bytes, length: int | None = None) -> Binary:
        encoded = fs.to_json(header).encode()
        prefix = len(encoded) if length is None else length
        return Binary(fs.LENGTH.pack(prefix) + encoded + pcm, header, encoded)

    @rule(
        seconds=st.floats(0.3, 3.0),
        pause=st.sampled_from([0.0, 0.3, 1.0]),
        at=st.integers(0, 10**6),
        rate=st.sampled_from([16000, 44100, 48000, 8000]),
    )
    def speech(self, seconds: float, pause: float, at: int, rate: int) -> None:
        """Speech in the seed client's 100 ms frames: a session opens, utterances end."""
        pcm = speech_pcm(seconds, pause, at, rate, 1)
        step = rate // 10 * 2
        self.send(*(self._frame({"sampleRate": rate}, pcm[i : i + step])
                    for i in range(0, len(pcm), step)))  # fmt: skip

    @rule(header=fs.seed_headers, pcm=st.integers(0, 2000), lie=fs.length_lies, sound=fs.sounds)
    def bad_audio(self, header: Any, pcm: int, lie: int | None, sound: Sound) -> None:
        encoded = fs.to_json(header).encode()
        length = None if lie is None else max(len(encoded) + lie, 0) % 2**32
        self.send(self._frame(header, render(sound, 16000, 1)[:pcm] + bytes(pcm % 3), length))

    @rule(data=st.binary(max_size=64))
    def binary_junk(self, data: bytes) -> None:
        self.send(Binary(data))

    @rule(size=st.integers(LIMIT - 64, 4 * LIMIT), rate=st.sampled_from([16000, 44100, 48000]))
    def oversized_audio(self, size: int, rate: int) -> None:
        header = {"sampleRate": rate}
        self.send(self._frame(header, bytes(max(size - 40, 0) & ~1)))

    @rule(frames=st.lists(fs.text_frames(fs.set_langs_messages), min_size=1, max_size=4))
    def set_langs(self, frames: list[Text]) -> None:
        self.send(*frames)

    @rule(frame=fs.text_frames(st.one_of(fs.get_status_messages, fs.start_over_messages)))
    def status_or_start_over(self, frame: Text) -> None:
        self.send(frame)

    @rule(frame=fs.text_frames(st.one_of(fs.set_langs_messages, fs.get_status_messages)))
    def json_as_binary(self, frame: Text) -> None:
        self.send(Binary(frame.text.encode()))
