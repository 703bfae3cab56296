"""JSON Schemas (and an AsyncAPI document) generated from the message structs.

``python -m nova_common.schemas`` rewrites ``schemas/``; the test suite fails when they drift.
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from nova_common import messages as m

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

# file name → (title, type); one file per direction or subject, so consumers read only theirs.
DOCUMENTS: dict[str, tuple[str, Any]] = {
    "client-messages.json": ("Client → gateway text frames on /ws", m.ClientMessage),
    "server-events.json": ("Gateway → client events on /ws", m.ServerEvent),
    "seed-client-messages.json": ("Client → gateway text frames on /ws/v0", m.SeedClientMessage),
    "seed-events.json": ("Gateway → client events on /ws/v0", m.SeedEvent),
    "audio-segment.json": ("nova.audio.<sid> payload (msgpack)", m.AudioSegment),
    "translation-request.json": ("nova.text.<sid> payload (msgpack)", m.TranslationRequest),
    "result.json": ("nova.results.<sid> payload (msgpack)", m.ResultMessage),
    "worker-heartbeat.json": ("nova.workers.<role> payload (msgpack)", m.WorkerHeartbeat),
    "health-report.json": ("GET /health/full response", m.HealthReport),
    "transcribe-jsonl.json": ("One line of `nova transcribe --format jsonl`", m.FinalRecord),
}


def _cleaned(node: Any) -> Any:
    """Every ``description`` through ``inspect.cleandoc``: msgspec (0.23 dedents docstrings that
    start on the quotes' line, 0.22 did not) and Python versions must not change the schemas."""
    if isinstance(node, dict):
        return {
            key: inspect.cleandoc(value)
            if key == "description" and isinstance(value, str)
            else _cleaned(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_cleaned(item) for item in node]
    return node


def _schema(title: str, typ: Any) -> dict[str, Any]:
    (root,), components = msgspec.json.schema_components([typ], ref_template="#/$defs/{name}")
    root, components = _cleaned(root), _cleaned(components)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        **root,
        "$defs": components,
    }


def _asyncapi() -> dict[str, Any]:
    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"./{name}"}

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Nova Voice subjects",
            "version": "1",
            "description": "NATS subjects between Nova services. `nova` is the configurable "
            "prefix (NOVA_NATS_SUBJECT_PREFIX); stream names are the prefix upper-cased.",
        },
        "defaultContentType": "application/msgpack",
        "channels": {
            "audio": {
                "address": "nova.audio.{session_id}",
                "description": "Utterances for speech-to-text. JetStream stream NOVA_AUDIO "
                "(work queue, discard new); header Nats-Msg-Id: <sid>:<seq>:<kind>.",
                "messages": {"AudioSegment": {"payload": ref("audio-segment.json")}},
            },
            "text": {
                "address": "nova.text.{session_id}",
                "description": "Finals that a session wants translated, from STT workers to MT "
                "workers. JetStream stream NOVA_TEXT (work queue), durable consumer 'mt'; header "
                "Nats-Msg-Id: <sid>:<seq>:text.",
                "messages": {"TranslationRequest": {"payload": ref("translation-request.json")}},
            },
            "results": {
                "address": "nova.results.{session_id}",
                "description": "Transcripts, translations and failures per session. JetStream "
                "stream NOVA_RESULTS (limits, short max_age) for replay; gateways core-subscribe. "
                "Translations carry the seq of the final they translate; Nats-Msg-Id "
                "<sid>:<seq>:translation:<lang>.",
                "messages": {"Result": {"payload": ref("result.json")}},
            },
            "partials": {
                "address": "nova.partials.{session_id}",
                "description": "Partial transcripts (Transcript, kind 'partial', with its "
                "revision) of the utterance in progress. Core NATS only, in no stream: best "
                "effort, never replayed. AUDIO header Nats-Msg-Id <sid>:<seq>:partial:<revision>.",
                "messages": {"Result": {"payload": ref("result.json")}},
            },
            "workers": {
                "address": "nova.workers.{role}",
                "description": "Core NATS worker heartbeats; gateways derive readiness.",
                "messages": {"WorkerHeartbeat": {"payload": ref("worker-heartbeat.json")}},
            },
        },
    }


def generate() -> dict[str, str]:
    docs: dict[str, Any] = {name: _schema(*spec) for name, spec in DOCUMENTS.items()}
    docs["asyncapi.json"] = _asyncapi()
    return {name: json.dumps(doc, indent=2, sort_keys=True) + "\n" for name, doc in docs.items()}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else SCHEMA_DIR
    out.mkdir(parents=True, exist_ok=True)
    for name, text in generate().items():
        (out / name).write_text(text)
    print(f"wrote {len(DOCUMENTS) + 1} documents to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
