"""Parsing client text frames into messages, with an error code a client can act on."""

from __future__ import annotations

import msgspec

from nova_common.messages import ClientMessage, StartMessage, StopMessage, UpdateMessage

KNOWN_TYPES = {"start": StartMessage, "update": UpdateMessage, "stop": StopMessage}


class ProtocolError(ValueError):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def parse_client_message(text: str) -> ClientMessage:
    try:
        raw = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise ProtocolError("invalid_json", f"text frame is not JSON: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise ProtocolError("invalid_message", "a text frame must be a JSON object with a 'type'")
    kind = KNOWN_TYPES.get(raw["type"])
    if kind is None:
        raise ProtocolError(
            "unknown_message_type",
            f"unknown message type {raw['type']!r} (expected one of: {', '.join(KNOWN_TYPES)})",
        )
    try:
        message: ClientMessage = msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        raise ProtocolError("invalid_message", f"invalid {raw['type']!r} message: {exc}") from exc
    return message
