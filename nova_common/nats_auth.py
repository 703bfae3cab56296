"""Who may do what on the bus: one NATS user per role, with publish/subscribe allow-lists.

Every name derives from the subject prefix (``Subjects``) and the durable consumers' names, so
a second tenant with another prefix gets lists that do not touch the first one's streams. The
lists are data; ``render_authorization`` turns them into nats-server's ``authorization`` block.

The JetStream API subjects are those nats-py 2.16 sends (nats/js/manager.py, js/client.py)
against nats-server 2.15; tests/test_nats_permissions.py runs each role against the real
server, where a list that is too tight shows up as "Permissions Violation".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from nova_common.provision import rescuer_durable
from nova_common.settings import MtSettings, SttSettings
from nova_common.subjects import Subjects

Role = Literal["gateway", "stt", "mt", "admin"]
ROLES: tuple[Role, ...] = ("gateway", "stt", "mt", "admin")

_API = "$JS.API"
_ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def inbox_prefix(role: Role) -> str:
    """The role's own inbox prefix (nats-py's ``inbox_prefix``): replies to one role's requests
    (JetStream API answers, publish acks, fetched messages) cannot be read by another role."""
    return f"_INBOX_{role}"


@dataclass(frozen=True)
class Durables:
    """The durable consumers' names, which the permissions of their workers spell out."""

    stt: str = "stt"
    windows: str = "stt-windows"
    mt: str = "mt"

    @classmethod
    def of(cls, stt: SttSettings, mt: MtSettings) -> Durables:
        return cls(stt=stt.durable, windows=stt.windows_durable, mt=mt.durable)


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def _consume(stream: str, durable: str) -> tuple[str, ...]:
    """Pull from one durable consumer and settle what it delivers: fetch requests, acks (naks,
    in_progress, term go to the same reply subject) and consumer info. Not create or delete."""
    return (
        f"{_API}.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"{_API}.CONSUMER.INFO.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    )


def _read_stream(stream: str) -> tuple[str, ...]:
    """Read a stream through consumers of one's own (ephemeral, ordered, KV watchers) and by
    sequence, and remove one's consumers again."""
    return (
        f"{_API}.STREAM.INFO.{stream}",
        f"{_API}.STREAM.MSG.GET.{stream}",
        f"{_API}.DIRECT.GET.{stream}",
        f"{_API}.DIRECT.GET.{stream}.>",
        # Without a name (old servers), with a name, with a name and a filter subject.
        f"{_API}.CONSUMER.CREATE.{stream}",
        f"{_API}.CONSUMER.CREATE.{stream}.>",
        f"{_API}.CONSUMER.INFO.{stream}.*",
        f"{_API}.CONSUMER.DELETE.{stream}.*",
        f"{_API}.CONSUMER.MSG.NEXT.{stream}.*",
        # Flow-control answers of push consumers (ordered consumers, KV watchers).
        f"$JS.FC.{stream}.>",
    )


def _worker(
    subjects: Subjects,
    role: Literal["stt", "mt"],
    stream: str,
    consumers: Iterable[tuple[str, str]],
    publishes: Iterable[str],
) -> Permissions:
    publish = [api for s, d in consumers for api in _consume(s, d)]
    publish += [
        *publishes,
        subjects.worker_heartbeats(role),
        subjects.dlq(role, "*"),
        # Dead letters: the original copied out of the work queue by sequence, then removed.
        f"{_API}.STREAM.MSG.GET.{stream}",
        f"{_API}.STREAM.MSG.DELETE.{stream}",
    ]
    subscribe = (f"{inbox_prefix(role)}.>", subjects.max_deliveries(stream, "*"))
    return Permissions(publish=tuple(publish), subscribe=subscribe)


def gateway_permissions(subjects: Subjects, durables: Durables) -> Permissions:
    """Publishes audio and partial windows, reads results and partials. Of AUDIO it learns only
    counts (stream info with a subject filter, consumer info): it can neither create a consumer
    on AUDIO nor get a message from it, nor subscribe to its subjects."""
    streams = _all_streams(subjects)
    publish = [
        subjects.audio_all,
        subjects.windows_all,
        # Pending counts per session (replay.py) and the readiness check (provision.missing).
        *(f"{_API}.STREAM.INFO.{stream}" for stream in streams),
        *(f"{_API}.CONSUMER.INFO.{s}.{d}" for s, d in _consumers(subjects, durables)),
        # Replay and subtitles read RESULTS through consumers of their own.
        *_read_stream(subjects.results_stream),
        # Session state kept for resume, in a KV bucket (created by `nova init`).
        f"$KV.{subjects.sessions_bucket}.>",
        f"{_API}.STREAM.MSG.DELETE.{_kv_stream(subjects)}",
        f"{_API}.STREAM.PURGE.{_kv_stream(subjects)}",
        *_read_stream(_kv_stream(subjects)),
    ]
    subscribe = (
        subjects.results_all,
        subjects.partials("*"),
        subjects.worker_heartbeats("*"),
        f"$KV.{subjects.sessions_bucket}.>",
        f"{inbox_prefix('gateway')}.>",
    )
    return Permissions(publish=_unique(publish), subscribe=subscribe)


def stt_permissions(subjects: Subjects, durables: Durables) -> Permissions:
    consumers = (
        (subjects.audio_stream, durables.stt),
        (subjects.windows_stream, durables.windows),
        (subjects.advisories_stream, rescuer_durable(durables.stt)),
    )
    publishes = (
        subjects.text_all,
        subjects.results_all,
        subjects.partials("*"),
    )
    return _worker(subjects, "stt", subjects.audio_stream, consumers, publishes)


def mt_permissions(subjects: Subjects, durables: Durables) -> Permissions:
    consumers = (
        (subjects.text_stream, durables.mt),
        (subjects.advisories_stream, rescuer_durable(durables.mt)),
    )
    return _worker(subjects, "mt", subjects.text_stream, consumers, (subjects.results_all,))


def admin_permissions(subjects: Subjects) -> Permissions:
    """Provisioning (`nova init`), `nova dlq` (which replays into the work queues) and
    inspection: the whole JetStream API, and Nova's own subjects."""
    own = (f"{subjects.prefix}.>", f"$KV.{subjects.sessions_bucket}.>")
    return Permissions(
        publish=(f"{_API}.>", "$JS.ACK.>", "$JS.FC.>", *own),
        subscribe=(f"{inbox_prefix('admin')}.>", *own, "$JS.EVENT.>"),
    )


def role_permissions(subjects: Subjects, durables: Durables) -> dict[Role, Permissions]:
    return {
        "gateway": gateway_permissions(subjects, durables),
        "stt": stt_permissions(subjects, durables),
        "mt": mt_permissions(subjects, durables),
        "admin": admin_permissions(subjects),
    }


def _kv_stream(subjects: Subjects) -> str:
    return f"KV_{subjects.sessions_bucket}"


def _all_streams(subjects: Subjects) -> tuple[str, ...]:
    return (
        subjects.audio_stream,
        subjects.text_stream,
        subjects.results_stream,
        subjects.windows_stream,
        subjects.dlq_stream,
        subjects.advisories_stream,
    )


def _consumers(subjects: Subjects, durables: Durables) -> tuple[tuple[str, str], ...]:
    return (
        (subjects.audio_stream, durables.stt),
        (subjects.text_stream, durables.mt),
        (subjects.windows_stream, durables.windows),
        (subjects.advisories_stream, rescuer_durable(durables.stt)),
        (subjects.advisories_stream, rescuer_durable(durables.mt)),
    )


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


# -- nats-server configuration ---------------------------------------------------------------


@dataclass(frozen=True)
class NKey:
    """A user known by its public nkey (``U…``); the seed stays with the service. ``env``: the
    name of an environment variable holding the key instead (``nkey: $VAR`` in the config)."""

    public_key: str = ""
    env: str = ""


@dataclass(frozen=True)
class Password:
    """A user and password, either literal or, with ``env``, from an environment variable."""

    user: str
    password: str = ""
    env: str = ""


Identity = NKey | Password


def _value(literal: str, env: str) -> str:
    if env:
        if _ENV_VAR.fullmatch(env) is None:
            raise ValueError(f"{env!r} is not an environment variable name")
        return f"${env}"  # unquoted: nats-server substitutes it from the environment
    if not literal:
        raise ValueError("a credential needs a value or an environment variable")
    return json.dumps(literal)


def _identity_lines(identity: Identity) -> list[str]:
    if isinstance(identity, NKey):
        return [f"nkey: {_value(identity.public_key, identity.env)}"]
    return [
        f"user: {json.dumps(identity.user)}",
        f"password: {_value(identity.password, identity.env)}",
    ]


def _allow(kind: str, subjects: Iterable[str]) -> list[str]:
    # Quoted: in nats-server's config an unquoted "$JS..." would read as a variable.
    return [f"{kind}: {{", "  allow: [", *(f"    {json.dumps(s)}" for s in subjects), "  ]", "}"]


def render_authorization(
    users: Mapping[Role, Identity], permissions: Mapping[Role, Permissions]
) -> str:
    """nats-server's ``authorization { users = [...] }`` block, one entry per role in ``users``."""
    lines = ["authorization {", "  users = ["]
    for role, identity in users.items():
        perms = permissions[role]
        lines.append(f"    # {role}")
        lines.append("    {")
        lines.extend(f"      {line}" for line in _identity_lines(identity))
        lines.append("      permissions: {")
        lines.extend(f"        {line}" for line in _allow("publish", perms.publish))
        lines.extend(f"        {line}" for line in _allow("subscribe", perms.subscribe))
        lines.append("      }")
        lines.append("    }")
    lines.extend(["  ]", "}"])
    return "\n".join(lines) + "\n"
