"""One OpenAI request as a Nova session: the uploaded file decoded a second at a time into a
session opened through ``SessionHub`` (the same JetStream path as live sessions), its finals
handed out as they arrive."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from nova_common.audio_file import AudioFileError, AudioInfo, pcm_chunks
from nova_common.messages import ErrorEvent, FinalEvent, ServerEvent, StartMessage, SummaryEvent
from nova_common.subjects import new_session_id
from nova_gateway.hub import SessionHub
from nova_gateway.openai.format import OpenAIError, bad_request

log = structlog.get_logger(__name__)

# The session is fed a second of audio at a time: small enough for the event loop, large enough
# that decoding is not dominated by thread hand-offs.
CHUNK_SECONDS = 1.0
# Utterance failures the client may retry: the queue was full or NATS unreachable.
RETRYABLE_CODES = {"backpressure", "queue_unavailable"}


@dataclass
class Upload:
    """The uploaded file, spooled to disk: PyAV reads a path, and a long recording need not sit
    in memory."""

    path: Path
    filename: str
    size: int = 0

    def undecodable(self, exc: AudioFileError) -> OpenAIError:
        # Decoding errors name the temporary file, which means nothing to the client.
        reason = str(exc).replace(str(self.path), self.filename)
        return bad_request(
            f"the file could not be decoded as audio: {reason}", param="file", code="invalid_audio"
        )


class Decoder:
    """``pcm_chunks`` one chunk at a time in a worker thread, so decoding never blocks the
    event loop."""

    def __init__(self, upload: Upload, info: AudioInfo) -> None:
        self._upload = upload
        self._chunks: Iterator[bytes] = pcm_chunks(upload.path, info, CHUNK_SECONDS)

    async def next(self) -> bytes | None:
        try:
            return await asyncio.to_thread(next, self._chunks, None)
        except AudioFileError as exc:
            raise self._upload.undecodable(exc) from exc

    def close(self) -> None:
        # Still running in its thread when the request was cancelled: it closes its container
        # when it is collected instead.
        with contextlib.suppress(ValueError):
            self._chunks.close()  # type: ignore[attr-defined]


class SessionRun:
    """One session: the decoder feeds it in a task of its own while ``finals`` hands out each
    final as it arrives, in seq order."""

    def __init__(
        self, hub: SessionHub, start: StartMessage, decoder: Decoder, first: bytes, timeout: float
    ) -> None:
        self.session_id = new_session_id()
        self._hub = hub
        self._start = start
        self._decoder = decoder
        self._first = first
        self._timeout = timeout
        self._events: asyncio.Queue[ServerEvent | BaseException] = asyncio.Queue()
        self.duration = 0.0

    async def _send(self, event: ServerEvent) -> None:
        self._events.put_nowait(event)

    async def _drive(self) -> None:
        try:
            async with self._hub.open(self.session_id, self._start, self._send) as session:
                for notice in self._hub.notices(self.session_id, ()):
                    log.warning(
                        "openai request waits", session_id=self.session_id, reason=notice.reason
                    )
                chunk: bytes | None = self._first
                while chunk is not None:
                    await session.feed(chunk)
                    chunk = await self._decoder.next()
                self._events.put_nowait(await session.finish(self._timeout))
        except Exception as exc:  # handed to the request, which answers with it
            self._events.put_nowait(exc)

    async def finals(self) -> AsyncGenerator[FinalEvent, None]:
        """Finals with text; ``OpenAIError`` when an utterance failed or never came."""
        driver = asyncio.create_task(self._drive())
        try:
            while True:
                event = await self._events.get()
                if isinstance(event, BaseException):
                    raise event
                if isinstance(event, SummaryEvent):
                    self.duration = event.audio_seconds
                    return
                if isinstance(event, FinalEvent) and event.text.strip():
                    yield event
                elif isinstance(event, ErrorEvent) and event.language is None:
                    raise self._failure(event)
        finally:
            if not driver.done():
                # The client left, or an utterance failed: nothing more is worth waiting for.
                driver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await driver

    def _failure(self, event: ErrorEvent) -> OpenAIError:
        log.warning(
            "openai request failed",
            session_id=self.session_id,
            code=event.code,
            reason=event.reason,
        )
        if event.code == "finals_timeout":
            return OpenAIError(504, f"transcription timed out: {event.reason}", code=event.code)
        if event.code in RETRYABLE_CODES:
            return OpenAIError(
                503, f"transcription failed: {event.reason}", code=event.code, retry=True
            )
        return OpenAIError(500, f"transcription failed: {event.reason}", code=event.code)
