"""One client session: its audio in (``ingest``), its results back (``delivery``).

The two halves share what a session knows about its utterances: their numbering (issued by
ingest, released in order by delivery), the translations each final owes, the partial windows
in flight and the language the session's finals were heard in. This module only wires them.
"""

from __future__ import annotations

from collections.abc import Callable

from nova_common.audio import SAMPLE_RATE
from nova_common.messages import (
    ErrorEvent,
    FinalEvent,
    ResultMessage,
    StartMessage,
    SummaryEvent,
)
from nova_common.metrics import GatewayMetrics
from nova_common.settings import VadSettings
from nova_gateway.cuts import CutPolicy
from nova_gateway.delivery import Recover, ResultDelivery, Send
from nova_gateway.ingest import AudioIngest, Route, text_only
from nova_gateway.language_memory import SessionLanguage
from nova_gateway.ordering import InOrderDelivery
from nova_gateway.partials import PartialWindows
from nova_gateway.publisher import AudioPublisher
from nova_gateway.translations import TranslationTracker

__all__ = ["Recover", "Route", "Send", "Session"]


class Session:
    def __init__(
        self,
        session_id: str,
        start: StartMessage,
        *,
        vad: VadSettings,
        publisher: AudioPublisher,
        send: Send,
        metrics: GatewayMetrics,
        recover: Recover | None = None,
        recover_after_s: float = 5.0,
        route: Route = text_only,
        partials: PartialWindows | None = None,
        caption_chars: int = 0,
        stt_alive: Callable[[], bool] = lambda: True,
        falling_behind_s: float = 0.0,
        cuts: CutPolicy | None = None,
        outbox_max_bytes: int = 16 << 20,
    ) -> None:
        """See ``AudioIngest`` and ``ResultDelivery`` for what each option steers."""
        self.session_id = session_id
        self.start = start
        numbering: InOrderDelivery[FinalEvent | ErrorEvent] = InOrderDelivery()
        self._translations = TranslationTracker()
        # With language auto: what the session's finals so far were heard as, so a short or
        # unclear utterance is decided by the session, not alone.
        self.heard = heard = SessionLanguage()
        self.delivery = ResultDelivery(
            session_id,
            start,
            send=send,
            metrics=metrics,
            numbering=numbering,
            translations=self._translations,
            heard=heard,
            partials=partials,
            recover=recover,
            recover_after_s=recover_after_s,
            caption_chars=caption_chars,
        )
        self.ingest = AudioIngest(
            session_id,
            start,
            vad=vad,
            publisher=publisher,
            metrics=metrics,
            delivery=self.delivery,
            numbering=numbering,
            translations=self._translations,
            heard=heard,
            route=route,
            partials=partials,
            stt_alive=stt_alive,
            falling_behind_s=falling_behind_s,
            cuts=cuts,
            outbox_max_bytes=outbox_max_bytes,
        )
        self.delivery.on_agreement(self.ingest.plan_cut)

    @property
    def translate_to(self) -> tuple[str, ...]:
        return self.ingest.translate_to

    @translate_to.setter
    def translate_to(self, targets: tuple[str, ...]) -> None:
        self.ingest.translate_to = targets

    @property
    def language(self) -> str | None:
        return self.ingest.language

    @property
    def frame_bytes(self) -> int:
        return self.ingest.frame_bytes

    @property
    def samples(self) -> int:
        return self.ingest.samples

    @property
    def finals(self) -> int:
        return self.delivery.finals

    @property
    def failed(self) -> int:
        return self.delivery.failed

    async def feed(self, pcm: bytes) -> None:
        """Raises ``AudioFormatError`` for a malformed frame; nothing already accepted changes."""
        await self.ingest.feed(pcm)

    async def skip(self, nbytes: int) -> None:
        await self.ingest.skip(nbytes)

    async def on_result(self, result: ResultMessage) -> None:
        await self.delivery.on_result(result)

    async def check_stall(self) -> None:
        await self.delivery.check_stall()

    async def close(self, timeout: float) -> int:
        """The session is over, its client maybe gone: what it accepted is still published
        (for at most ``timeout``); returns how many utterances could not be."""
        return await self.ingest.outbox.close(timeout)

    async def finish(self, timeout: float) -> SummaryEvent:
        """Flush the last utterance and wait until every final, and every translation asked
        for, has been delivered."""
        await self.ingest.flush()
        await self.delivery.wait_all(timeout)
        return SummaryEvent(
            session_id=self.session_id,
            finals=self.delivery.finals,
            failed=self.delivery.failed,
            audio_seconds=round(self.ingest.samples / SAMPLE_RATE, 3),
            translations=self._translations.delivered,
            translations_failed=self._translations.failed,
        )
