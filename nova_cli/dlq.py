"""`nova dlq ls | show ID | replay ID… | --all`: the dead letters, for the operator.

The stream is an ordinary JetStream stream (``<PREFIX>_DLQ``), so `nats stream view` and
`nats stream get` show the same messages; ids here are its sequence numbers.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import msgspec
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from nova_common import dead_letters
from nova_common.dead_letters import DeadLetter, DeadLetterNotFound
from nova_common.nats_conn import connect
from nova_common.settings import Settings
from nova_common.subjects import Subjects

_json = msgspec.json.Encoder()


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) if seconds else "?"


def _row(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "stage": letter.stage,
        "session_id": letter.session_id,
        "seq": letter.seq,
        "deliveries": letter.deliveries,
        "failed_at": letter.failed_at,
        "subject": letter.original_subject,
        "reason": letter.reason,
        "bytes": len(letter.data),
    }


def _payload(data: bytes) -> Any:
    """The message as its stage wrote it (msgpack), with audio shown by its size only."""
    try:
        decoded = msgspec.msgpack.decode(data)
    except msgspec.DecodeError:
        return {"undecodable": True, "bytes": len(data)}
    if isinstance(decoded, dict):
        return {
            key: f"<{len(value)} bytes>" if isinstance(value, bytes) else value
            for key, value in decoded.items()
        }
    return decoded


def _print_table(letters: list[DeadLetter]) -> None:
    if not letters:
        print("no dead letters")
        return
    print(
        f"{'ID':>6}  {'STAGE':5}  {'FAILED AT':19}  {'SESSION':22}  {'SEQ':>5}  {'TRIES':>5}  REASON"
    )
    for letter in letters:
        seq = "-" if letter.seq is None else str(letter.seq)
        print(
            f"{letter.id:>6}  {letter.stage:5}  {_when(letter.failed_at):19}  "
            f"{letter.session_id:22}  {seq:>5}  {letter.deliveries:>5}  {letter.reason}"
        )


async def _collect(js: JetStreamContext, subjects: Subjects) -> list[DeadLetter]:
    return [letter async for letter in dead_letters.all_of(js, subjects)]


async def run_dlq(
    settings: Settings, action: str, ids: Sequence[int], *, every: bool, as_json: bool
) -> int:
    subjects = Subjects(settings.nats.subject_prefix)
    nc = await connect(settings.nats, name="nova-dlq")
    try:
        js = nc.jetstream()
        try:
            await js.stream_info(subjects.dlq_stream)
        except NotFoundError:
            print(
                f"nova dlq: there is no stream {subjects.dlq_stream} (prefix "
                f"{settings.nats.subject_prefix!r}); run `nova init` or start a service first",
                file=sys.stderr,
            )
            return 1
        if action == "ls":
            letters = await _collect(js, subjects)
            if as_json:
                print(_json.encode([_row(letter) for letter in letters]).decode())
            else:
                _print_table(letters)
            return 0
        if action == "show":
            if len(ids) != 1:
                print("nova dlq show: give one dead letter id", file=sys.stderr)
                return 2
            letter = await dead_letters.get(js, subjects, ids[0])
            shown = {
                **_row(letter),
                "headers": dict(letter.headers),
                "payload": _payload(letter.data),
            }
            print(_json.encode(shown).decode())
            return 0
        # replay
        if every == bool(ids):
            print("nova dlq replay: give dead letter ids or --all", file=sys.stderr)
            return 2
        letters = (
            await _collect(js, subjects)
            if every
            else [await dead_letters.get(js, subjects, i) for i in ids]
        )
        for letter in letters:
            await dead_letters.replay(js, subjects, letter)
            print(f"replayed {letter.id} to {letter.original_subject}")
        if not letters:
            print("no dead letters")
        return 0
    except (DeadLetterNotFound, NatsError) as exc:
        print(f"nova dlq {action}: {exc}", file=sys.stderr)
        return 1
    finally:
        await nc.drain()
