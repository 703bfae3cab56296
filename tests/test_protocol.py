"""Client text frames parse into messages, or fail with a code the client can act on."""

from __future__ import annotations

import pytest

from nova_common.messages import StartMessage, StopMessage, UpdateMessage
from nova_gateway.protocol import ProtocolError, parse_client_message


def test_start_with_defaults() -> None:
    message = parse_client_message('{"type": "start"}')
    assert message == StartMessage()
    assert isinstance(message, StartMessage)
    assert message.language == "auto"
    assert message.task == "transcribe"
    assert message.sample_rate == 16000
    assert message.channels == 1
    assert message.encoding == "pcm_s16le"


def test_start_with_every_field() -> None:
    message = parse_client_message(
        '{"type": "start", "language": "de", "task": "translate", "sample_rate": 44100,'
        ' "channels": 2, "encoding": "pcm_s16le"}'
    )
    assert message == StartMessage(language="de", task="translate", sample_rate=44100, channels=2)


def test_stop() -> None:
    assert parse_client_message('{"type": "stop"}') == StopMessage()


def code_of(text: str) -> str:
    with pytest.raises(ProtocolError) as info:
        parse_client_message(text)
    assert str(info.value)  # every error carries a human-readable reason too
    return info.value.code


@pytest.mark.parametrize("text", ["", "not json", '{"type": "start"', "{'type': 'start'}"])
def test_invalid_json(text: str) -> None:
    assert code_of(text) == "invalid_json"


@pytest.mark.parametrize("text", ['["start"]', '"start"', "42", "null", "true"])
def test_json_that_is_not_an_object(text: str) -> None:
    assert code_of(text) == "invalid_message"


@pytest.mark.parametrize("text", ["{}", '{"language": "en"}', '{"type": 1}', '{"type": null}'])
def test_missing_or_non_string_type(text: str) -> None:
    assert code_of(text) == "invalid_message"


def test_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_message('{"type": "pause"}')
    assert info.value.code == "unknown_message_type"
    assert "'pause'" in str(info.value)
    assert "start" in str(info.value) and "stop" in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "start", "sample_rate": "16000"}',
        '{"type": "start", "channels": 1.5}',
        '{"type": "start", "task": "summarise"}',
        '{"type": "start", "encoding": "opus"}',
        '{"type": "start", "language": 7}',
    ],
)
def test_invalid_field_is_an_invalid_message(text: str) -> None:
    assert code_of(text) == "invalid_message"


def test_invalid_field_reason_names_the_field() -> None:
    with pytest.raises(ProtocolError, match="sample_rate"):
        parse_client_message('{"type": "start", "sample_rate": "fast"}')


# --------------------------------------------------------------------------- translation


def test_start_with_translate_to() -> None:
    message = parse_client_message('{"type": "start", "translate_to": ["es", "de"]}')
    assert message == StartMessage(translate_to=("es", "de"))


def test_start_translates_to_nothing_by_default() -> None:
    message = parse_client_message('{"type": "start"}')
    assert isinstance(message, StartMessage)
    assert message.translate_to == ()


def test_update_with_translate_to() -> None:
    message = parse_client_message('{"type": "update", "translate_to": ["fr"]}')
    assert message == UpdateMessage(translate_to=("fr",))


def test_update_with_an_empty_list_stops_translating() -> None:
    message = parse_client_message('{"type": "update", "translate_to": []}')
    assert isinstance(message, UpdateMessage)
    assert message.translate_to == ()


@pytest.mark.parametrize("text", ['{"type": "update"}', '{"type": "update", "translate_to": null}'])
def test_update_without_translate_to_leaves_it_unchanged(text: str) -> None:
    message = parse_client_message(text)
    assert isinstance(message, UpdateMessage)
    assert message.translate_to is None


@pytest.mark.parametrize("kind", ["start", "update"])
@pytest.mark.parametrize(
    "value", ['"es"', "[1]", '["es", 2]', '[["es"]]', '{"es": true}', "true", "3"]
)
def test_translate_to_must_be_a_list_of_strings(kind: str, value: str) -> None:
    assert code_of(f'{{"type": "{kind}", "translate_to": {value}}}') == "invalid_message"


def test_start_translate_to_cannot_be_null() -> None:
    assert code_of('{"type": "start", "translate_to": null}') == "invalid_message"


def test_invalid_translate_to_reason_names_the_field() -> None:
    with pytest.raises(ProtocolError, match="translate_to"):
        parse_client_message('{"type": "update", "translate_to": "es"}')


def test_unknown_type_lists_update() -> None:
    with pytest.raises(ProtocolError, match="update"):
        parse_client_message('{"type": "pause"}')
