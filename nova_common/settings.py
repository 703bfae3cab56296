"""One settings object, built once at start-up and passed down.

Sources, later ones winning: built-in defaults, a TOML file (``--config`` or ``NOVA_CONFIG``),
environment variables ``NOVA_<SECTION>_<FIELD>`` (``NOVA_STT_MODEL``, ``NOVA_NATS_URL``,
``NOVA_DATA_DIR``), then command-line flags. Each service receives only the section it needs.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec
import platformdirs

from nova_common.subjects import is_valid_token

# The user-info part of a URL: "//user:password@" or "//token@".
_USERINFO = re.compile(r"//(?:([^/@:]*):)?[^/@]*@")


class ConfigError(ValueError):
    """Settings could not be built; the message says which source and key are at fault."""


class NatsSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # None means "start an embedded nats-server" for `nova up`, and the local default elsewhere.
    url: str | None = None
    subject_prefix: str = "nova"
    user: str | None = None
    password: str | None = None
    connect_timeout_s: float = 5.0
    # How long a starting service waits for NATS before giving up with an error.
    connect_wait_s: float = 10.0
    # Services create/update streams and consumers at start-up; turn off where they run without
    # JetStream admin rights and an operator runs `nova init` instead. Off, workers also leave
    # a vanished consumer to the operator rather than re-creating it.
    provision: bool = True
    # A role's credentials (see nova_common/nats_auth.py): a .creds file (JWT and seed), or an
    # nkey seed file; and the role's inbox prefix (its user may read only its own replies).
    creds: str | None = None
    nkey_seed: str | None = None
    inbox_prefix: str = "_INBOX"
    # `nova up`'s embedded nats-server admits only one generated user per role (nkeys under
    # <data_dir>/nats/users), each service connecting as its own.
    embedded_auth: bool = True

    def __post_init__(self) -> None:
        if not all(is_valid_token(part) for part in self.inbox_prefix.split(".")):
            raise ValueError(f"nats.inbox_prefix {self.inbox_prefix!r} is not a subject prefix")
        if sum(x is not None for x in (self.creds, self.nkey_seed, self.password)) > 1:
            raise ValueError("give one of nats.creds, nats.nkey_seed, nats.password, not several")

    def __repr__(self) -> str:
        # Settings end up in logs and tracebacks: no password, and no password inside the URL.
        shown = {
            name: "***" if name == "password" and value is not None else value
            for name, value in msgspec.structs.asdict(self).items()
        }
        shown["url"] = redact_url(self.url)
        return "NatsSettings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


def redact_url(url: str | None) -> str | None:
    """``url`` without the password or token it may carry (``nats://user:secret@host``)."""
    if url is None:
        return None
    return _USERINFO.sub(lambda m: f"//{m[1] + ':' if m[1] is not None else ''}***@", url)


class StreamSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    audio_max_age_s: float = 3600.0
    audio_max_bytes: int = 1 << 30
    results_max_age_s: float = 900.0
    results_max_per_subject: int = 100_000
    duplicate_window_s: float = 120.0
    replicas: int = 1
    ack_wait_s: float = 30.0
    max_deliver: int = 5
    # A delivery that times out (its worker died or hung) comes back after ack_wait, then after
    # twice as long each time up to this bound, so a segment that kills its worker does not
    # crash-loop the fleet before it reaches the dead letters.
    redelivery_backoff_max_s: float = 120.0
    # Dead letters are kept for the operator to inspect and replay (`nova dlq`); a full DLQ
    # refuses new ones, and the message then stays in its work queue rather than being lost.
    dlq_max_age_s: float = 14 * 24 * 3600.0
    dlq_max_bytes: int = 1 << 30

    def __post_init__(self) -> None:
        if self.max_deliver < 1:
            raise ValueError("streams.max_deliver must be at least 1")
        if self.ack_wait_s <= 0:
            raise ValueError("streams.ack_wait_s must be positive")

    def redelivery_backoff_s(self) -> tuple[float, ...]:
        """The consumer's ``backoff``: how long each delivery may go unanswered before it comes
        back (the server wants fewer entries than max_deliver; the last one repeats)."""
        cap = max(self.ack_wait_s, self.redelivery_backoff_max_s)
        return tuple(min(self.ack_wait_s * 2**i, cap) for i in range(self.max_deliver - 1))


class VadSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    aggressiveness: int = 2
    preroll_ms: int = 300
    end_silence_ms: int = 600
    min_speech_ms: int = 150
    # The longest any word may wait to be final. Fluent speakers pause less than end_silence_ms
    # between sentences, so the utterance is normally cut sooner, where the partials' committed
    # text ends a sentence; past this bound it is cut at its quietest point.
    max_unfinal_s: float = 8.0

    def __post_init__(self) -> None:
        # Whisper sees 30 s at a time, and a longer segment would exceed NATS's 1 MB payload.
        if not 1.0 <= self.max_unfinal_s <= 30.0:
            raise ValueError("vad.max_unfinal_s must be between 1 and 30 seconds")
        if not 0 <= self.aggressiveness <= 3:
            raise ValueError("vad.aggressiveness must be 0, 1, 2 or 3")


class GatewaySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 8765
    max_frame_bytes: int = 1 << 20
    # How long `stop` waits for outstanding finals before giving up with an error event.
    final_timeout_s: float = 600.0
    # A worker that has not sent a heartbeat for this long no longer counts as ready.
    worker_stale_s: float = 6.0
    # A session whose results stall this long is replayed from the RESULTS stream.
    recover_after_s: float = 5.0
    # On shutdown, open sessions get this long to flush and receive their finals.
    shutdown_grace_s: float = 30.0
    # Per session: utterances accepted while NATS is away or slow wait in an outbox of at most
    # this many bytes of audio (16 MiB: ~9 minutes of speech); past it the client is told it is
    # overloaded. The WebSocket read loop never waits on a publish.
    outbox_max_bytes: int = 16 << 20
    # Partial results (profile `subtitles`): a window per this much new speech, at most one in
    # flight per session (workers answer even a window they drop; one unanswered this long —
    # an answer lost on the way — no longer blocks the next).
    # A word is committed once two windows agree on it, so the cadence sets how soon it is
    # settled; windows run only on the model's spare time, so under load it slows by itself.
    partial_interval_s: float = 0.5
    # The first window of an utterance, once it holds this much audio (with the VAD's pre-roll):
    # the first words should appear within a second of the speaker starting.
    first_partial_s: float = 0.8
    partial_answer_within_s: float = 10.0
    # A session whose oldest final has been owed this long gets a `falling_behind` notice
    # (0: never): the workers cannot keep up with the speech.
    falling_behind_s: float = 15.0
    # Profile `typing`: quicker partials, and an utterance ends after a shorter silence.
    typing_partial_interval_s: float = 0.3
    typing_end_silence_ms: int = 300
    # Profile `subtitles`: caption lines of at most this many characters, two at a time.
    caption_chars: int = 42
    # Keepalive: a ping to every WebSocket client this often; one that does not answer within
    # half of it is disconnected (0: no pings).
    ping_interval_s: float = 20.0
    # The OpenAI-compatible HTTP API (POST /v1/audio/transcriptions, /v1/audio/translations,
    # GET /v1/models) under /v1 on the gateway's port; `openai_api = false` does not serve it.
    openai_api: bool = True
    # Uploads larger than this are refused with 413 (OpenAI's own limit is 25 MB).
    openai_max_upload_bytes: int = 200 * 1024 * 1024


def check_breaker(section: str, failures: int, open_s: float) -> None:
    if failures < 1:
        raise ValueError(f"{section}.breaker_failures must be at least 1")
    if open_s <= 0:
        raise ValueError(f"{section}.breaker_open_s must be positive")


class SttSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    model: str = "base"
    device: str = "cpu"
    compute_type: str = "default"
    cpu_threads: int = 0
    # STT workers `nova up` runs in its process, each with a model of its own; 0: by the cores
    # (``nova_cli.services.stt_layout``). A `nova stt` process is always one worker.
    workers: int = 0
    beam_size: int = 5
    # Encoder windows finals may use, seconds (the smallest that holds the utterance; a final
    # Whisper is unsure of in a smaller one is decoded again in 30 s: nova_stt/windows.py).
    # [30] is Whisper's own window for every final, at about three times the cost.
    final_windows_s: tuple[int, ...] = (10, 15, 20, 30)
    batch_size: int = 4
    fetch_timeout_s: float = 1.0
    nak_delay_s: float = 2.0
    heartbeat_interval_s: float = 2.0
    durable: str = "stt"
    # No text that nobody said (nova_stt/filters.py): Silero VAD must find this much speech in
    # an utterance before Whisper sees it; Whisper's own failure signals drop segments.
    speech_gate: bool = True
    min_speech_s: float = 0.2
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    # A partial window that waited longer than this in the queue is dropped unrun: by then a
    # newer one is on its way, and finals must not wait behind old partials.
    partial_max_age_s: float = 2.0
    # Partial windows come from a consumer of their own (stream WINDOWS), fetched only while no
    # final is waiting for the model.
    windows_durable: str = "stt-windows"
    windows_batch_size: int = 8
    # A pull subscription can go quiet after a server restart (DESIGN §7): after this many empty
    # fetches in a row, or failed ones, the worker checks its consumer and binds afresh.
    rebind_after_idle: int = 30
    rebind_after_errors: int = 5
    # Circuit breaker (nova_common/breaker.py): after this many model failures in a row the
    # worker takes no work for breaker_open_s, then tries one batch. Below streams.max_deliver,
    # so that one segment's retries on a lone worker trip it with deliveries left for trials.
    breaker_failures: int = 3
    breaker_open_s: float = 30.0

    def __post_init__(self) -> None:
        check_breaker("stt", self.breaker_failures, self.breaker_open_s)
        if not self.final_windows_s or not all(1 <= w <= 30 for w in self.final_windows_s):
            raise ValueError("stt.final_windows_s must name window sizes between 1 and 30 s")


class MtSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # CTranslate2 translation models: names under <data_dir>/models/mt or directories; empty
    # means every installed one.
    models: tuple[str, ...] = ()
    # Use Debian's Apertium (rule-based) for the pairs it has installed.
    apertium: bool = True
    apertium_command: str = "apertium"
    device: str = "cpu"
    compute_type: str = "default"
    cpu_threads: int = 0
    beam_size: int = 4
    # Bounds a translation's length (tokens): a runaway decode must not hold the worker.
    max_decoding_length: int = 256
    # Repeated sentences ("Thank you.", "Yes.") are translated once per worker.
    cache_size: int = 2048
    # Speech → English: "whisper" (the STT worker's translate task), "text" (an MT backend), or
    # "auto": text when an MT worker runs a neural (ct2) model, else Whisper.
    english_via: Literal["auto", "whisper", "text"] = "auto"
    batch_size: int = 32
    fetch_timeout_s: float = 1.0
    nak_delay_s: float = 2.0
    heartbeat_interval_s: float = 2.0
    durable: str = "mt"
    rebind_after_idle: int = 30
    rebind_after_errors: int = 5
    # Circuit breaker, as for stt: failures are backend calls that raised.
    breaker_failures: int = 3
    breaker_open_s: float = 30.0

    def __post_init__(self) -> None:
        check_breaker("mt", self.breaker_failures, self.breaker_open_s)


class AccessSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Who may use the gateway, and how much (nova_gateway/auth/; the README's Access section)."""

    # API keys, stored hashed (`nova keys add|ls|rm`); None: <data_dir>/access/keys.json.
    # With no key in it the gateway is open, which it allows only on a loopback address.
    keys_file: str | None = None
    # Signs session tokens (and resume tokens): gateways that accept each other's tokens share
    # it. None: <data_dir>/access/token_secret, made on first start.
    token_secret: str | None = None
    # Lifetime of a session token from POST /auth/token: it only has to last until the client
    # connects (a token is checked at connect time, not during the session).
    token_ttl_s: float = 300.0
    # Browser origins allowed besides the page's own (same origin is always allowed); "*": any.
    allowed_origins: tuple[str, ...] = ()
    # HTTPS / WSS: PEM certificate (chain) and private key; both or neither.
    tls_cert: str | None = None
    tls_key: str | None = None
    # Limits of a key that sets none of its own (and of everyone while the gateway is open);
    # 0: no limit. rate: audio seconds per second over all the key's sessions on a gateway,
    # with burst_s seconds of audio in hand (a token bucket); max_session_s: a session's audio.
    rate: float = 0.0
    burst_s: float = 30.0
    max_session_s: float = 0.0
    max_sessions: int = 0
    # 0: gateway.max_frame_bytes.
    max_frame_bytes: int = 0
    # Sessions on one gateway, all keys together (0: no limit).
    gateway_max_sessions: int = 0

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("access.tls_cert and access.tls_key go together: give both or neither")
        if self.token_ttl_s <= 0:
            raise ValueError("access.token_ttl_s must be positive")
        if min(self.rate, self.burst_s, self.max_session_s) < 0:
            raise ValueError("access.rate, burst_s and max_session_s may not be negative")
        if min(self.max_sessions, self.max_frame_bytes, self.gateway_max_sessions) < 0:
            raise ValueError("access limits may not be negative")

    def __repr__(self) -> str:
        shown = msgspec.structs.asdict(self)
        if self.token_secret is not None:
            shown["token_secret"] = "***"
        return "AccessSettings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    data_dir: str = msgspec.field(
        default_factory=lambda: platformdirs.user_data_dir("nova-voice", appauthor=False)
    )
    log_level: str = "info"
    log_format: str = "console"
    nats: NatsSettings = msgspec.field(default_factory=NatsSettings)
    streams: StreamSettings = msgspec.field(default_factory=StreamSettings)
    vad: VadSettings = msgspec.field(default_factory=VadSettings)
    gateway: GatewaySettings = msgspec.field(default_factory=GatewaySettings)
    stt: SttSettings = msgspec.field(default_factory=SttSettings)
    mt: MtSettings = msgspec.field(default_factory=MtSettings)
    access: AccessSettings = msgspec.field(default_factory=AccessSettings)
    # The clients' credential for a gateway that wants one (`--api-key`, NOVA_API_KEY): an API
    # key or a session token.
    api_key: str | None = None

    @property
    def models_dir(self) -> Path:
        return Path(self.data_dir) / "models"

    def __repr__(self) -> str:
        shown = msgspec.structs.asdict(self)
        if self.api_key is not None:
            shown["api_key"] = "***"
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


_SECTIONS = {
    name: typ
    for name, typ in (
        ("nats", NatsSettings),
        ("streams", StreamSettings),
        ("vad", VadSettings),
        ("gateway", GatewaySettings),
        ("stt", SttSettings),
        ("mt", MtSettings),
        ("access", AccessSettings),
    )
}
_TOP_LEVEL = {"data_dir", "log_level", "log_format", "api_key"}
# Settings that are gone, and where their job went: a file or environment still setting one is
# told so, instead of being refused as an unknown field (or, from the environment, ignored).
_REMOVED = {
    ("gateway", "openai_port"): (
        "the OpenAI-compatible API is served under /v1 on the gateway's own port "
        "(gateway.port, NOVA_GATEWAY_PORT, --port); remove the setting"
    ),
    ("vad", "max_utterance_s"): (
        "utterances are cut where the speech allows, and vad.max_unfinal_s "
        "(NOVA_VAD_MAX_UNFINAL_S) bounds how long any word may wait to be final"
    ),
}


def _check_removed(from_file: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    for (section, field), instead in _REMOVED.items():
        variable = f"NOVA_{section}_{field}".upper()
        if variable in environ:
            raise ConfigError(f"{variable} no longer exists: {instead}")
        table = from_file.get(section)
        if isinstance(table, Mapping) and field in table:
            raise ConfigError(f"{section}.{field} no longer exists: {instead}")


def _env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith("NOVA_") or key == "NOVA_CONFIG":
            continue
        name = key[len("NOVA_") :].lower()
        if name in _TOP_LEVEL:
            layer[name] = value
            continue
        for section, typ in _SECTIONS.items():
            field = name.removeprefix(section + "_")
            if field != name and field in typ.__struct_fields__:
                layer.setdefault(section, {})[field] = _env_value(typ, field, value)
                break
    return layer


def _env_value(typ: type[msgspec.Struct], field: str, value: str) -> Any:
    """List settings come from the environment comma-separated: ``NOVA_MT_MODELS=a,b``."""
    info = next(f for f in msgspec.structs.fields(typ) if f.name == field)
    if getattr(info.type, "__origin__", None) is tuple:
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(
    *,
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from file, environment and flag overrides (``{"gateway": {"port": 1}}``)."""
    env = dict(os.environ if environ is None else environ)
    merged: dict[str, Any] = {}
    path = config_file or env.get("NOVA_CONFIG")
    if path:
        try:
            merged = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    _check_removed(merged, env)
    merged = _merge(merged, _env_layer(env))
    if overrides:
        merged = _merge(merged, {k: v for k, v in overrides.items() if v is not None})
    try:
        # strict=False lets "8765" from the environment become an int.
        return msgspec.convert(merged, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid setting: {exc}") from exc
