"""Parsing client text frames into messages, with an error code a client can act on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import msgspec

from nova_common.messages import ClientMessage, StartMessage, StopMessage, UpdateMessage

KNOWN_TYPES: dict[str, type[ClientMessage]] = {
    "start": StartMessage,
    "update": UpdateMessage,
    "stop": StopMessage,
}

M = TypeVar("M")


class ProtocolError(ValueError):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def parse_message(text: str, kinds: Mapping[str, type[M]]) -> M:
    """A JSON text frame as the struct its ``type`` names among ``kinds``."""
    try:
        raw = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise ProtocolError("invalid_json", f"text frame is not JSON: {exc}") from exc
    except RecursionError as exc:  # the decoder recurses once per level of nesting
        raise ProtocolError("invalid_json", "text frame is JSON nested too deeply") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise ProtocolError("invalid_message", "a text frame must be a JSON object with a 'type'")
    kind = kinds.get(raw["type"])
    if kind is None:
        raise ProtocolError(
            "unknown_message_type",
            f"unknown message type {raw['type']!r} (expected one of: {', '.join(kinds)})",
        )
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        raise ProtocolError("invalid_message", f"invalid {raw['type']!r} message: {exc}") from exc


def parse_client_message(text: str) -> ClientMessage:
    return parse_message(text, KNOWN_TYPES)
