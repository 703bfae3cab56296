"""The seed's wire format on ``/ws/v0``: binary audio frames ``[u32 LE length][JSON
{"sampleRate": N}][PCM16]``, its text messages, and its language pair. No I/O here."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import msgspec

from nova_common.audio import AudioFormatError
from nova_common.languages import check_language, check_target_language
from nova_common.messages import (
    SeedAudioHeader,
    SeedClientMessage,
    SeedGetStatus,
    SeedSetLangs,
    SeedStartOver,
)
from nova_gateway.protocol import parse_message

LENGTH_PREFIX = struct.Struct("<I")
SEED_TYPES: dict[str, type[SeedClientMessage]] = {
    "set_langs": SeedSetLangs,
    "get_status": SeedGetStatus,
    "start_over": SeedStartOver,
}

_header_decoder = msgspec.json.Decoder(SeedAudioHeader)


def parse_audio_frame(frame: bytes) -> tuple[SeedAudioHeader, bytes]:
    """The header and PCM of a binary frame, or ``AudioFormatError`` saying what is wrong."""
    if len(frame) < LENGTH_PREFIX.size:
        raise AudioFormatError(
            "bad_frame", f"binary frame of {len(frame)} bytes is shorter than its length prefix"
        )
    (length,) = LENGTH_PREFIX.unpack_from(frame)
    body = frame[LENGTH_PREFIX.size :]
    if length > len(body):
        raise AudioFormatError(
            "bad_frame",
            f"the length prefix announces {length} bytes of JSON but only {len(body)} bytes "
            "follow it (expected [u32 little-endian length][JSON][PCM16])",
        )
    try:
        header = _header_decoder.decode(body[:length])
    except msgspec.DecodeError as exc:
        raise AudioFormatError(
            "bad_header", f'the audio header must be JSON like {{"sampleRate": 48000}}: {exc}'
        ) from exc
    except RecursionError as exc:  # the decoder recurses once per level of nesting
        raise AudioFormatError("bad_header", "the audio header is JSON nested too deeply") from exc
    return header, body[length:]


def parse_seed_message(text: str) -> SeedClientMessage:
    """Raises ``ProtocolError`` with a code the client can act on."""
    return parse_message(text, SEED_TYPES)


def _base(code: str) -> str:
    """``en-US`` → ``en``: Whisper knows languages, not regions."""
    return code.strip().replace("_", "-").split("-")[0]


@dataclass(frozen=True)
class Languages:
    """The seed's language pair: translation is on when the target differs from the source."""

    source: str | None = None  # a Whisper code; None: detected per utterance
    target: str | None = None  # None: no translation

    @property
    def source_code(self) -> str:
        return self.source or "auto"

    @property
    def target_code(self) -> str:
        return self.target or self.source_code

    @property
    def targets(self) -> tuple[str, ...]:
        return (self.target,) if self.target else ()

    def updated(self, message: SeedSetLangs) -> Languages:
        """Raises ``UnsupportedLanguage``; a field left out keeps its value, as in the seed."""
        source = self.source
        if message.source_language is not None:
            source = check_language(_base(message.source_language))
        target = self.target
        if message.target_language is not None:
            code = message.target_language.strip()
            # Target == source is the seed's way of saying "no translation" (also "auto"/"auto").
            same = code.lower() in ("", source or "auto")
            target = None if same else check_target_language(_base(code))
        return Languages(source, None if target == source else target)
