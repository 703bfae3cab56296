"""A session that misses results on its live subscription gets them from the RESULTS stream."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from nats.aio.client import Client
from prometheus_client import CollectorRegistry

from nova_cli.stack import LocalStack
from nova_common.messages import FinalEvent, ServerEvent, StartMessage
from nova_common.metrics import GatewayMetrics
from nova_common.nats_conn import connect
from nova_common.subjects import Subjects, new_session_id
from nova_gateway.publisher import AudioPublisher
from nova_gateway.replay import replay_results
from nova_gateway.session import Session
from tests.speech import silence, speak, wer

pytestmark = pytest.mark.slow

SENTENCES = ["I would like a cup of coffee.", "The children are playing in the garden."]


@dataclass
class Unsubscribed:
    """A session with no subscription to nova.results.<sid> at all: every result it delivers
    must come from the stream."""

    session: Session
    nc: Client
    subjects: Subjects
    sent: list[ServerEvent] = field(default_factory=list)

    @property
    def finals(self) -> list[FinalEvent]:
        return [e for e in self.sent if isinstance(e, FinalEvent)]


async def unsubscribed(stack: LocalStack, start: StartMessage) -> Unsubscribed:
    settings = stack.settings
    subjects = Subjects(settings.nats.subject_prefix)
    nc = await connect(settings.nats, name="test-replay", url=stack.nats_url)
    session_id = new_session_id()
    metrics = GatewayMetrics.create(CollectorRegistry())
    sent: list[ServerEvent] = []

    async def send(event: ServerEvent) -> None:
        sent.append(event)

    session = Session(
        session_id,
        start,
        vad=settings.vad,
        publisher=AudioPublisher(nc.jetstream(), subjects, metrics),
        send=send,
        metrics=metrics,
        recover=lambda only: replay_results(
            nc.jetstream(), subjects, session_id, translations_only=only
        ),
        recover_after_s=0.5,
    )
    return Unsubscribed(session, nc, subjects, sent)


async def test_session_recovers_results_it_never_received_live(stack: LocalStack) -> None:
    # The language given: the subject is replay, and Whisper base's detection of espeak's
    # "The children are playing in the garden." sits between English and Thai (0.68 / 0.60)
    # and has gone either way from run to run (detection: tests/test_language_choice.py).
    run = await unsubscribed(stack, StartMessage(language="en"))
    pieces = [silence(0.5)]
    for sentence in SENTENCES:
        pieces += [speak(sentence), silence(1.2)]
    await run.session.feed(np.concatenate(pieces).tobytes())
    summary = await run.session.finish(timeout=120)
    await run.nc.drain()

    assert summary.finals == 2 and summary.failed == 0
    assert [f.seq for f in run.finals] == [0, 1]
    assert wer(SENTENCES, [f.text for f in run.finals]) <= 0.1


async def test_a_missed_final_is_replayed_while_translations_wait_for_an_mt_worker(
    stack: LocalStack,
) -> None:
    """No MT worker runs, so the session's translation request stays in TEXT: that must not
    hold back the replay of a final the live subscription missed."""
    run = await unsubscribed(stack, StartMessage(translate_to=("es",)))
    sid = run.session.session_id
    await run.session.feed(
        np.concatenate([silence(0.5), speak(SENTENCES[0]), silence(1.2)]).tobytes()
    )
    summary = await run.session.finish(timeout=15)
    text = await run.nc.jetstream().stream_info(
        run.subjects.text_stream, subjects_filter=run.subjects.text(sid)
    )
    await run.nc.drain()

    assert (text.state.subjects or {}).get(run.subjects.text(sid)) == 1  # still waiting
    assert [f.seq for f in run.finals] == [0] and "coffee" in run.finals[0].text.lower()
    assert (summary.finals, summary.translations, summary.translations_failed) == (1, 0, 1)
