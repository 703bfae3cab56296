"""The order the seed adapter sends a session's events in (nova_gateway/seed/outbox.py), on its
own: partials never overtake a final held for its translation, which waits only briefly."""

from __future__ import annotations

import asyncio

from nova_common.messages import (
    ErrorEvent,
    FinalEvent,
    PartialEvent,
    SeedEvent,
    SeedRealtime,
    TranslationEvent,
)
from nova_gateway.seed.outbox import SeedOutbox


def final(seq: int, text: str) -> FinalEvent:
    return FinalEvent(session_id="s", seq=seq, text=text, language="en", start=0.0, end=1.0)


def translation(seq: int, text: str) -> TranslationEvent:
    return TranslationEvent(
        session_id="s", seq=seq, language="es", source_language="en", text=text, start=0.0,
        end=1.0, backend="apertium",
    )  # fmt: skip


def partial(seq: int, text: str) -> PartialEvent:
    return PartialEvent(
        session_id="s", seq=seq, revision=0, text=text, committed="", language="en", start=0.0,
        end=1.0,
    )  # fmt: skip


async def test_finals_wait_briefly_for_their_translation_and_partials_never_overtake_them() -> None:
    sent: list[SeedEvent] = []

    async def emit(message: SeedEvent) -> None:
        sent.append(message)

    def shown() -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = []
        for m in sent:
            if isinstance(m, SeedRealtime):
                out.append(("final" if m.is_final else "partial", m.text, m.translation))
            else:
                out.append((type(m).__name__,))
        sent.clear()
        return out

    translating = True
    outbox = SeedOutbox(emit, "c", lambda: translating, wait_s=0.3)

    await outbox.send(final(0, "Hello."))
    await outbox.send(partial(1, "Next"))  # would overtake the held final: dropped
    assert shown() == []
    await outbox.send(translation(0, "Hola."))
    assert shown() == [("final", "Hello.", "Hola."), ("SeedUtteranceEnd",)]

    # No translation in time: the final goes without it, the translation follows as a final.
    await outbox.send(final(1, "Good night."))
    await asyncio.sleep(0.5)
    assert shown() == [("final", "Good night.", ""), ("SeedUtteranceEnd",)]
    await outbox.send(partial(2, "And"))
    await outbox.send(translation(1, "Buenas noches."))
    assert shown() == [
        ("partial", "And", ""),
        ("final", "Good night.", "Buenas noches."),
        ("SeedUtteranceEnd",),
    ]

    # A failed translation releases its final at once; a failed utterance ends on the client.
    await outbox.send(final(2, "Thanks."))
    await outbox.send(
        ErrorEvent(
            code="translation_unavailable", reason="no", session_id="s", seq=2, language="es"
        )
    )
    await outbox.send(ErrorEvent(code="stt_failed", reason="broken", session_id="s", seq=3))
    assert shown() == [
        ("SeedError",),
        ("final", "Thanks.", ""),
        ("SeedUtteranceEnd",),
        ("SeedError",),
        ("SeedUtteranceEnd",),
    ]

    # Finals are in order even when a later one needs no wait; close releases what is held.
    await outbox.send(final(4, "One."))
    translating = False
    await outbox.send(final(5, "Two."))
    assert shown() == []
    await outbox.close()
    assert shown() == [
        ("final", "One.", ""),
        ("SeedUtteranceEnd",),
        ("final", "Two.", ""),
        ("SeedUtteranceEnd",),
    ]
