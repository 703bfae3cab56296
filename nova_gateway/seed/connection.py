"""The seed's protocol on ``/ws/v0``, so the original Nova Voice desktop client works unchanged.

Binary frames are ``[u32 LE length][JSON {"sampleRate": N}][PCM16]``; text frames ``set_langs``,
``get_status`` and ``start_over``. Replies: ``status``, ``realtime`` (partials, then the final
with its translation), ``utterance_end`` and ``error``. Only frames and events are translated
here: the session is the one every front end runs (nova_gateway/hub.py).

A session opens with the first audio frame. Audio is brought to 16 kHz here, frame by frame, so
a client whose sample rate changes mid-stream (another microphone) keeps its session. A new
source language ends the session (its finals still go out) and the next audio opens another,
with a new ``client_id``; a new target applies to the running session.
"""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import structlog

from nova_common.audio import SAMPLE_RATE, AudioFormatError, check_format
from nova_common.languages import UnsupportedLanguage
from nova_common.messages import (
    SeedAudioHeader,
    SeedError,
    SeedEvent,
    SeedGetStatus,
    SeedSetLangs,
    SeedStatus,
    StartMessage,
    json_encoder,
)
from nova_common.subjects import new_session_id
from nova_gateway.audio import AudioConverter
from nova_gateway.auth.limits import LimitExceeded, SessionLimits
from nova_gateway.connection import checked_start
from nova_gateway.frames import FrameReader
from nova_gateway.hub import SessionHub
from nova_gateway.protocol import ProtocolError
from nova_gateway.seed.outbox import SeedOutbox
from nova_gateway.seed.protocol import Languages, parse_audio_frame, parse_seed_message
from nova_gateway.session import Session
from nova_gateway.transport import Transport, TransportClosed

log = structlog.get_logger(__name__)

_NO_SAMPLES = np.zeros(0, dtype=np.int16)


class SeedConnection:
    """One seed client: its frames in, the session's events out as the seed's messages.

    Ends when the client leaves (what it sent is flushed and transcribed within
    ``shutdown_grace_s``, and kept in RESULTS: the seed has no ``stop``, leaving is how its
    client ends) or when the gateway shuts down (finals within the grace period, then 1001).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        hub: SessionHub,
        shutting_down: asyncio.Event,
        limits: SessionLimits | None = None,
    ) -> None:
        self._transport = transport
        self._hub = hub
        self._limits = limits or SessionLimits.none()
        self._settings = hub.settings
        self._metrics = hub.metrics
        self._frames = FrameReader(transport, shutting_down)
        self._languages = Languages()
        # The id of the running session, or of the next one: the seed's client_id.
        self._client_id = new_session_id()
        self._session: Session | None = None
        self._outbox: SeedOutbox | None = None
        self._open = contextlib.AsyncExitStack()
        self._converter: AudioConverter | None = None

    async def run(self) -> None:
        self._metrics.sessions_active.inc()
        try:
            await self._status()  # the seed greets each client with its status
            while (frame := await self._frames.next()) is not None:
                try:
                    self._limits.check_frame(frame)
                    await self._on_frame(frame)
                except LimitExceeded as exc:  # refused; what came before it is transcribed
                    await self._error(exc.code, str(exc))
                    await self._end_session(self._settings.shutdown_grace_s)
                    await self._transport.close(exc.close_code, exc.close_reason)
                    return
            await self._end_session(self._settings.shutdown_grace_s)
            await self._transport.close(1001, "server shutting down")
        except TransportClosed:
            await self._end_session(self._settings.shutdown_grace_s)
        finally:
            self._metrics.sessions_active.dec()
            self._frames.close()
            await self._open.aclose()

    # ------------------------------------------------------------------ sending

    async def _emit(self, message: SeedEvent) -> None:
        with contextlib.suppress(TransportClosed):  # the client left; RESULTS keeps its results
            await self._transport.send_text(json_encoder.encode(message).decode())

    async def _error(self, code: str, message: str) -> None:
        self._metrics.client_errors.labels(code).inc()
        await self._emit(SeedError(message=message, code=code, client_id=self._client_id))

    async def _status(self) -> None:
        languages = self._languages
        await self._emit(
            SeedStatus(
                client_id=self._client_id,
                source_language=languages.source_code,
                target_language=languages.target_code,
                translation_enabled=bool(languages.targets),
            )
        )

    async def _notices(self) -> None:
        if self._session is not None and self._outbox is not None:
            for notice in self._hub.notices(self._client_id, self._session.translate_to):
                await self._outbox.send(notice)

    # ------------------------------------------------------------------ receiving

    async def _on_frame(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            await self._on_audio(frame)
            return
        limit = self._settings.max_frame_bytes
        if len(frame) * 4 > limit and (size := len(frame.encode())) > limit:
            await self._error("frame_too_large", f"text frame of {size} bytes exceeds {limit}")
            return
        try:
            message = parse_seed_message(frame)
        except ProtocolError as exc:
            await self._error(exc.code, str(exc))
            return
        if isinstance(message, SeedGetStatus):
            await self._status()
        elif isinstance(message, SeedSetLangs):
            await self._set_langs(message)
        else:
            await self._start_over()

    async def _set_langs(self, message: SeedSetLangs) -> None:
        try:
            languages = self._languages.updated(message)
        except UnsupportedLanguage as exc:
            await self._error(exc.code, f"{exc} (languages unchanged)")
            return
        previous, self._languages = self._languages, languages
        if self._session is not None:
            if languages.source != previous.source:
                # A session's language is fixed: this one ends (its finals still go out, before
                # the status), the next audio opens one with the new language.
                await self._end_session(self._settings.shutdown_grace_s)
            elif languages.targets != self._session.translate_to:
                self._session.translate_to = languages.targets  # from the next utterance on
                await self._notices()
        await self._status()

    async def _start_over(self) -> None:
        """As the seed does: the utterance in progress is dropped, never transcribed. Utterances
        already published are still transcribed and kept in RESULTS under the old client_id."""
        if self._session is not None:
            log.info("seed session dropped by start_over", session_id=self._client_id)
            await self._close_session()
        await self._status()

    async def _on_audio(self, frame: bytes) -> None:
        try:
            header, pcm = parse_audio_frame(frame)
            check_format(header.sample_rate, header.channels)
            if header.bits_per_sample != 16:
                raise AudioFormatError(
                    "unsupported_encoding",
                    f"bitsPerSample {header.bits_per_sample} is not supported (send PCM16)",
                )
        except AudioFormatError as exc:
            await self._error(exc.code, f"{exc} (frame refused)")
            return
        if not pcm:
            return
        self._limits.take_audio(len(pcm), header.sample_rate * header.channels * 2)
        session = self._session or await self._open_session()
        converter, tail = self._converter_for(header)
        try:
            if len(frame) > self._settings.max_frame_bytes:
                raise AudioFormatError(
                    "frame_too_large",
                    f"frame of {len(frame)} bytes exceeds the limit of "
                    f"{self._settings.max_frame_bytes} bytes; send audio in smaller chunks",
                )
            if len(pcm) % converter.frame_bytes:
                raise AudioFormatError(
                    "bad_frame",
                    f"the {len(pcm)} bytes of audio after the header are not a whole number of "
                    f"{header.channels}-channel PCM16 samples",
                )
            audio = converter.convert(pcm)
        except AudioFormatError as exc:
            # The refused audio took time in the client's recording: later results keep its
            # clock by counting it as silence.
            await session.feed(tail.tobytes())
            seconds = len(pcm) // converter.frame_bytes / header.sample_rate
            await session.skip(round(seconds * SAMPLE_RATE) * 2)
            await self._error(exc.code, f"{exc} (refused; its duration counts as silence)")
            return
        await session.feed(
            np.concatenate([tail, audio]).tobytes() if tail.size else audio.tobytes()
        )

    def _converter_for(self, header: SeedAudioHeader) -> tuple[AudioConverter, np.ndarray]:
        """The converter for this frame's format, and what the previous one still held."""
        fmt = (header.sample_rate, header.channels)
        converter = self._converter
        if converter is not None and (converter.sample_rate, converter.channels) == fmt:
            return converter, _NO_SAMPLES
        tail = converter.flush() if converter is not None else _NO_SAMPLES
        self._converter = AudioConverter(*fmt)
        return self._converter, tail

    # ------------------------------------------------------------------ sessions

    async def _open_session(self) -> Session:
        client_id = self._client_id
        # 16 kHz mono: audio arrives here converted, whatever rate each frame has.
        start = checked_start(
            StartMessage(
                language=self._languages.source_code,
                sample_rate=SAMPLE_RATE,
                translate_to=self._languages.targets,
            )
        )
        session: Session | None = None

        def translating() -> bool:
            return session is not None and bool(session.translate_to)

        self._outbox = SeedOutbox(self._emit, client_id, translating)
        # The seed's client shows a partial as the text of the utterance its next final closes:
        # partials must not come ahead of earlier finals here.
        session = await self._open.enter_async_context(
            self._hub.open(client_id, start, self._outbox.send, partials_ahead=False)
        )
        self._session = session
        log.info("seed session started", session_id=client_id, language=start.language,
                 translate_to=start.translate_to)  # fmt: skip
        await self._notices()
        return session

    async def _end_session(self, timeout: float) -> None:
        """Flush the session and deliver its finals (within ``timeout``), then close it."""
        session = self._session
        if session is None:
            return
        if self._converter is not None and (tail := self._converter.flush()).size:
            await session.feed(tail.tobytes())
        summary = await session.finish(timeout)
        log.info("seed session finished", session_id=session.session_id, finals=summary.finals,
                 failed=summary.failed)  # fmt: skip
        await self._close_session()

    async def _close_session(self) -> None:
        """Close the session as it stands; the next audio opens a new one under a new id."""
        if self._outbox is not None:
            await self._outbox.close()
        await self._open.aclose()
        self._open = contextlib.AsyncExitStack()
        self._session = None
        self._outbox = None
        self._converter = None
        self._client_id = new_session_id()
