"""The OpenAI-compatible HTTP API: ``POST /v1/audio/transcriptions``, ``/v1/audio/translations``
and ``GET /v1/models``, on the gateway's own port.

Each request is one ordinary session (``SessionHub.open``): the upload is decoded with PyAV,
fed through the same VAD and JetStream path as a live WebSocket session, and the finals are
answered in the requested format, or streamed as server-sent events as each one arrives.
Request parsing and response shapes are in ``format.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import structlog
from aiohttp import BodyPartReader, web

from nova_common.audio import AudioFormatError
from nova_common.audio_file import AudioFileError, AudioInfo, probe
from nova_common.languages import UnsupportedLanguage
from nova_common.messages import (
    StartMessage,
    Task,
)
from nova_common.settings import GatewaySettings
from nova_gateway.connection import checked_start
from nova_gateway.hub import SessionHub
from nova_gateway.openai.format import (
    SSE_CONTENT_TYPE,
    AudioRequest,
    ModelCard,
    ModelList,
    OpenAIError,
    Result,
    StreamError,
    TextDelta,
    TextDone,
    bad_request,
    delta,
    encode,
    parse_request,
    render_result,
    sse,
)
from nova_gateway.openai.run import Decoder, SessionRun, Upload
from nova_gateway.workers import WorkerRegistry

log = structlog.get_logger(__name__)

READ_BYTES = 1 << 16
# Text fields (prompt, language …) are short; this bounds what one may hold in memory.
MAX_FIELD_BYTES = 64 * 1024
# A Content-Length above the file limit by more than this cannot be within it.
FORM_OVERHEAD_BYTES = 1 << 20
_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,10}$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error_response(error: OpenAIError) -> web.Response:
    headers = {"x-should-retry": "true" if error.retry else "false"}
    if error.status == 503:
        headers["Retry-After"] = "1"
    return web.Response(
        status=error.status,
        body=encode(error.body()),
        content_type="application/json",
        headers=headers,
    )


@web.middleware
async def _openai_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error in OpenAI's shape, 404 and 405 included, so clients show the message."""
    try:
        return await handler(request)
    except OpenAIError as exc:
        return _error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error_response(
            OpenAIError(exc.status, f"{request.method} {request.path}: {exc.reason}")
        )
    except Exception:
        log.exception("openai api: request failed", path=request.path)
        return _error_response(OpenAIError(500, "internal error; see the gateway's log"))


class OpenAIApi:
    """The ``/v1`` sub-application of the gateway's one aiohttp application."""

    def __init__(self, hub: SessionHub, workers: WorkerRegistry, settings: GatewaySettings) -> None:
        self._hub = hub
        self._workers = workers
        self._settings = settings

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_openai_errors])
        app.router.add_post(
            "/audio/transcriptions", self._transcriptions, expect_handler=self._expect
        )
        app.router.add_post("/audio/translations", self._translations, expect_handler=self._expect)
        app.router.add_get("/models", self._models)
        app.router.add_get("/models/{model:.+}", self._model)
        return app

    def _declared_too_large(self, request: web.Request) -> bool:
        length = request.content_length
        return length is not None and length > self._settings.openai_max_upload_bytes + (
            FORM_OVERHEAD_BYTES
        )

    async def _expect(self, request: web.Request) -> web.StreamResponse | None:
        """``Expect: 100-continue`` (curl sends it for large files): refuse an upload that is
        too large before it is sent, else invite it."""
        if request.headers.get("Expect", "").lower() != "100-continue":
            raise web.HTTPExpectationFailed(text=f"unknown Expect: {request.headers['Expect']}")
        if self._declared_too_large(request):
            return _error_response(_too_large(self._settings.openai_max_upload_bytes))
        if request.version >= (1, 1):
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0  # as aiohttp's own handler: the body has not begun
        return None

    # ------------------------------------------------------------------ models

    def _model_ids(self) -> list[str]:
        return sorted({beat.model for beat in self._workers.alive("stt")})

    async def _models(self, request: web.Request) -> web.Response:
        cards = [ModelCard(id=model) for model in self._model_ids()]
        return web.Response(body=encode(ModelList(data=cards)), content_type="application/json")

    async def _model(self, request: web.Request) -> web.Response:
        model = request.match_info["model"]
        if model not in self._model_ids():
            raise OpenAIError(
                404,
                f"no STT worker runs the model {model!r}",
                param="model",
                code="model_not_found",
            )
        return web.Response(body=encode(ModelCard(id=model)), content_type="application/json")

    # ------------------------------------------------------------------ audio

    async def _transcriptions(self, request: web.Request) -> web.StreamResponse:
        return await self._audio(request, "transcribe")

    async def _translations(self, request: web.Request) -> web.StreamResponse:
        return await self._audio(request, "translate")

    async def _audio(self, request: web.Request, task: Task) -> web.StreamResponse:
        async with self._upload(request) as (fields, upload):
            options = parse_request(fields, task)
            if upload is None:
                raise bad_request("a 'file' part with the audio is required", param="file")
            info = await _probe(upload)
            start = _start_message(options, info)
            decoder = Decoder(upload, info)
            try:
                first = await decoder.next()
                if first is None:
                    raise bad_request(
                        "the file holds no audio samples", param="file", code="audio_too_short"
                    )
                run = SessionRun(self._hub, start, decoder, first, self._settings.final_timeout_s)
                log.info(
                    "openai request",
                    task=task,
                    session_id=run.session_id,
                    format=options.response_format,
                    stream=options.stream,
                    model=options.model,
                    bytes=upload.size,
                )
                return await _answer(request, options, run)
            finally:
                decoder.close()

    @contextlib.asynccontextmanager
    async def _upload(
        self, request: web.Request
    ) -> AsyncIterator[tuple[dict[str, list[str]], Upload | None]]:
        """The form's text fields and its file, spooled to a temporary file removed afterwards.
        413 past ``openai_max_upload_bytes``; 400 for a body that is not a multipart form."""
        limit = self._settings.openai_max_upload_bytes
        if request.content_type != "multipart/form-data":
            raise bad_request(
                f"expected a multipart/form-data body (got {request.content_type or 'none'}), "
                "with the audio in a 'file' part"
            )
        if self._declared_too_large(request):
            raise _too_large(limit)
        fields: dict[str, list[str]] = {}
        upload: Upload | None = None
        try:
            try:
                reader = await request.multipart()
                while (part := await reader.next()) is not None:
                    if not isinstance(part, BodyPartReader):
                        raise bad_request("nested multipart bodies are not supported")
                    if part.name == "file":
                        if upload is not None:
                            raise bad_request("give one 'file' per request", param="file")
                        upload = Upload(await _temp_path(part.filename), part.filename or "file")
                        await _spool(part, upload, limit)
                    elif part.name:
                        value = await _read_field(part)
                        fields.setdefault(part.name, []).append(value)
            except (ValueError, AssertionError) as exc:  # aiohttp's complaints about the form
                if isinstance(exc, UnicodeDecodeError):
                    raise bad_request("form fields must be UTF-8 text") from exc
                raise bad_request(f"malformed multipart body: {exc}") from exc
            yield fields, upload
        finally:
            if upload is not None:
                upload.path.unlink(missing_ok=True)


def _too_large(limit: int) -> OpenAIError:
    return OpenAIError(
        413,
        f"the upload exceeds the gateway's limit of {limit} bytes "
        "(gateway.openai_max_upload_bytes)",
        param="file",
        code="file_too_large",
    )


async def _temp_path(filename: str | None) -> Path:
    # The extension helps FFmpeg guess formats that have no header to probe.
    suffix = Path(filename or "").suffix
    fd, name = await asyncio.to_thread(
        tempfile.mkstemp, prefix="nova-upload-", suffix=suffix if _SAFE_SUFFIX.match(suffix) else ""
    )
    os.close(fd)
    return Path(name)


async def _spool(part: BodyPartReader, upload: Upload, limit: int) -> None:
    with await asyncio.to_thread(upload.path.open, "wb") as out:
        while chunk := await part.read_chunk(READ_BYTES):
            upload.size += len(chunk)
            if upload.size > limit:
                raise _too_large(limit)
            await asyncio.to_thread(out.write, chunk)


async def _read_field(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(READ_BYTES):
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise bad_request(
                f"field {part.name!r} is longer than {MAX_FIELD_BYTES} bytes", param=part.name
            )
    return data.decode("utf-8")


async def _probe(upload: Upload) -> AudioInfo:
    try:
        return await asyncio.to_thread(probe, upload.path)
    except AudioFileError as exc:
        raise upload.undecodable(exc) from exc


def _start_message(options: AudioRequest, info: AudioInfo) -> StartMessage:
    try:
        return checked_start(
            StartMessage(
                language=options.language,
                task=options.task,
                sample_rate=info.sample_rate,
                channels=info.channels,
                partials=False,  # nobody would see them
                word_timestamps=options.words,
                prompt=options.prompt,
            )
        )
    except UnsupportedLanguage as exc:
        raise bad_request(str(exc), param="language", code=exc.code) from exc
    except AudioFormatError as exc:
        raise bad_request(str(exc), param="file", code=exc.code) from exc


async def _answer(
    request: web.Request, options: AudioRequest, run: SessionRun
) -> web.StreamResponse:
    try:
        if options.stream:
            return await _stream(request, run)
        async with contextlib.aclosing(run.finals()) as events:
            finals = [final async for final in events]
    except asyncio.CancelledError:
        log.info(
            "openai request cancelled: the client left, or the gateway stopped",
            session_id=run.session_id,
        )
        raise
    body, content_type = render_result(Result(options, finals, run.duration))
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


async def _stream(request: web.Request, run: SessionRun) -> web.StreamResponse:
    """``stream=true``: a ``transcript.text.delta`` event per final as it arrives, then
    ``transcript.text.done``; a failure after the first byte is an ``error`` event."""
    response = web.StreamResponse(
        headers={"Content-Type": SSE_CONTENT_TYPE, "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    texts: list[str] = []
    try:
        # Closed at once, even when a write fails: that ends the session.
        async with contextlib.aclosing(run.finals()) as finals:
            async for final in finals:
                piece = delta(len(texts), final.text)
                texts.append(piece)
                await response.write(sse(TextDelta(delta=piece)))
        await response.write(sse(TextDone(text="".join(texts))))
    except OpenAIError as exc:
        await response.write(sse(StreamError(error=exc.body().error)))
    except Exception:  # past the headers the middleware cannot answer: an error event must
        log.exception("openai api: stream failed", session_id=run.session_id)
        failure = OpenAIError(500, "internal error; see the gateway's log")
        await response.write(sse(StreamError(error=failure.body().error)))
    await response.write_eof()
    return response
