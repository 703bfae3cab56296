"""What every front end needs to run a session: the Nova protocol on ``/ws``, the seed's
``/ws/v0`` and the OpenAI-compatible HTTP endpoints all open their sessions here.

A session opened here is subscribed to its results before any audio is published, replays
results it missed on the live subscription, and is unsubscribed when the front end is done.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import msgspec
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from nova_common.messages import NoticeEvent, ResultMessage, StartMessage, result_decoder
from nova_common.metrics import GatewayMetrics
from nova_common.settings import GatewaySettings, VadSettings
from nova_common.subjects import Subjects
from nova_gateway.cuts import CutPolicy
from nova_gateway.partials import PartialWindows
from nova_gateway.publisher import AudioPublisher
from nova_gateway.replay import replay_results
from nova_gateway.session import Send, Session
from nova_gateway.translations import EnglishVia, Routing, route
from nova_gateway.workers import WorkerRegistry

log = structlog.get_logger(__name__)

NO_WORKER = (
    "no speech-to-text worker is running: audio is queued and will be transcribed "
    "when one starts (`nova stt`)"
)
NO_MT_WORKER = (
    "no translation worker is running: transcripts are queued for translation and the "
    "translations will follow when one starts (`nova mt`)"
)


async def _unsubscribe(subscriptions: list[Subscription]) -> None:
    for subscription in subscriptions:
        with contextlib.suppress(Exception):  # NATS connection already gone
            await subscription.unsubscribe()


def partial_windows(
    settings: GatewaySettings, start: StartMessage, *, ahead: bool = True
) -> PartialWindows | None:
    """A session's partial windows (None: no partials). A partial is shown the moment it is
    answered, ahead of earlier finals still owed (they come in seq order all the same), except
    in dictation: `typing` types utterances one after another, so there a partial waits for
    the finals before it (and with ``ahead`` False)."""
    if not start.partials:
        return None
    typing = start.profile == "typing"
    return PartialWindows(
        first_after_s=settings.first_partial_s,
        interval_s=settings.typing_partial_interval_s if typing else settings.partial_interval_s,
        answer_within_s=settings.partial_answer_within_s,
        ahead_of_finals=ahead and not typing,
    )


class SessionHub:
    def __init__(
        self,
        nc: Client,
        *,
        subjects: Subjects,
        settings: GatewaySettings,
        vad: VadSettings,
        publisher: AudioPublisher,
        metrics: GatewayMetrics,
        workers: WorkerRegistry,
        english_via: EnglishVia = "auto",
    ) -> None:
        self.nc = nc
        self.subjects = subjects
        self.settings = settings
        self.vad = vad
        self.publisher = publisher
        self.metrics = metrics
        self.workers = workers
        self._english_via: EnglishVia = english_via

    def route(self, targets: tuple[str, ...]) -> Routing:
        return route(targets, self._english_via, self.workers.alive("mt"))

    def notices(self, session_id: str, translate_to: tuple[str, ...]) -> list[NoticeEvent]:
        """What the user should know about missing workers: their audio waits for them."""
        out: list[NoticeEvent] = []
        if not self.workers.alive("stt"):
            out.append(NoticeEvent(code="no_stt_worker", reason=NO_WORKER, session_id=session_id))
        if self.route(translate_to).text_targets and not self.workers.alive("mt"):
            out.append(NoticeEvent(code="no_mt_worker", reason=NO_MT_WORKER, session_id=session_id))
        return out

    @contextlib.asynccontextmanager
    async def open(
        self, session_id: str, start: StartMessage, send: Send, *, partials_ahead: bool = True
    ) -> AsyncIterator[Session]:
        """A running session; ``start`` must already be checked (see ``connection.py``).
        ``partials_ahead``: False for a front end whose clients take a partial to belong to
        the utterance their next final closes (see ``partial_windows``)."""
        session: Session | None = None

        async def on_result(msg: Msg) -> None:
            try:
                result = result_decoder.decode(msg.data)
            except msgspec.DecodeError:
                log.warning("undecodable result", subject=msg.subject)
                return
            if session is not None:
                await session.on_result(result)

        async def replay(translations_only: bool) -> list[ResultMessage]:
            return await replay_results(
                self.nc.jetstream(),
                self.subjects,
                session_id,
                translations_only=translations_only,
            )

        # Subscribe before any audio is published, so no result can slip past.
        subscriptions = []
        try:
            for subject in (self.subjects.results(session_id), self.subjects.partials(session_id)):
                subscriptions.append(await self.nc.subscribe(subject, cb=on_result))
        except BaseException:
            await _unsubscribe(subscriptions)
            raise
        session = Session(
            session_id,
            start,
            vad=self._vad_for(start),
            publisher=self.publisher,
            send=send,
            metrics=self.metrics,
            recover=replay,
            recover_after_s=self.settings.recover_after_s,
            route=self.route,
            partials=partial_windows(self.settings, start, ahead=partials_ahead),
            caption_chars=self.settings.caption_chars if start.profile == "subtitles" else 0,
            stt_alive=lambda: bool(self.workers.ready("stt")),
            falling_behind_s=self.settings.falling_behind_s,
            cuts=self._cuts_for(start),
            outbox_max_bytes=self.settings.outbox_max_bytes,
        )
        watchdog = asyncio.create_task(self._watch(session))
        self.metrics.sessions_total.inc()
        try:
            yield session
        finally:
            watchdog.cancel()
            # Accepted audio is published even when its client has vanished.
            await session.close(self.settings.shutdown_grace_s)
            await _unsubscribe(subscriptions)

    def _vad_for(self, start: StartMessage) -> VadSettings:
        if start.profile != "typing":
            return self.vad
        # Dictation wants its words typed soon after the speaker pauses.
        end_silence = min(self.vad.end_silence_ms, self.settings.typing_end_silence_ms)
        return msgspec.structs.replace(self.vad, end_silence_ms=end_silence)

    def _cuts_for(self, start: StartMessage) -> CutPolicy | None:
        # Dictation: its 300 ms end silence already ends utterances at a speaker's pauses, and a
        # cut would take back words typed from the partial (the final holds only the head).
        if start.profile == "typing":
            return None
        return CutPolicy(any_end_after_s=self.vad.max_unfinal_s / 2)

    async def _watch(self, session: Session) -> None:
        """Notice a session whose results stopped flowing and replay them from the stream."""
        while True:
            await asyncio.sleep(self.settings.recover_after_s)
            try:
                await session.check_stall()
            except Exception as exc:  # NATS still down: try again next round
                log.warning("result replay failed", session_id=session.session_id,
                            error=repr(exc))  # fmt: skip
