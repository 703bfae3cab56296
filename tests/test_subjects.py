"""Subject and stream names all derive from one prefix; session ids are safe subject tokens."""

from __future__ import annotations

import base64
import re

import pytest

from nova_common.subjects import Subjects, is_valid_token, new_session_id


def test_default_prefix_names() -> None:
    subjects = Subjects()
    assert subjects.audio_stream == "NOVA_AUDIO"
    assert subjects.results_stream == "NOVA_RESULTS"
    assert subjects.text_stream == "NOVA_TEXT"
    assert subjects.audio("abc") == "nova.audio.abc"
    assert subjects.audio_all == "nova.audio.*"
    assert subjects.results("abc") == "nova.results.abc"
    assert subjects.results_all == "nova.results.*"
    assert subjects.text("abc") == "nova.text.abc"
    assert subjects.text_all == "nova.text.*"
    assert subjects.worker_heartbeats() == "nova.workers.*"
    assert subjects.worker_heartbeats("stt") == "nova.workers.stt"


def test_custom_prefix_is_used_for_every_subject() -> None:
    subjects = Subjects("tenant-a.prod")
    assert subjects.audio("s1") == "tenant-a.prod.audio.s1"
    assert subjects.results_all == "tenant-a.prod.results.*"
    assert subjects.text("s1") == "tenant-a.prod.text.s1"
    assert subjects.worker_heartbeats("stt") == "tenant-a.prod.workers.stt"


def test_stream_names_are_upper_cased_with_non_alphanumerics_replaced() -> None:
    subjects = Subjects("tenant-a.prod_1")
    assert subjects.audio_stream == "TENANT_A_PROD_1_AUDIO"
    assert subjects.results_stream == "TENANT_A_PROD_1_RESULTS"
    assert subjects.text_stream == "TENANT_A_PROD_1_TEXT"
    # JetStream stream names may not contain '.', '*', '>' or whitespace.
    assert re.fullmatch(r"[A-Z0-9_]+", subjects.audio_stream)


def test_different_prefixes_give_disjoint_names() -> None:
    a, b = Subjects("t1"), Subjects("t2")
    assert a.audio_stream != b.audio_stream
    assert a.audio_all != b.audio_all


@pytest.mark.parametrize(
    "prefix", ["", "a..b", ".a", "a.", "a b", "a.*", "a.>", "nova/x", "ä", "nova\n", "a\r\nPUB x"]
)
def test_invalid_prefix_is_rejected(prefix: str) -> None:
    with pytest.raises(ValueError, match="subject prefix"):
        Subjects(prefix)


def test_session_ids_are_128_bit_url_safe_single_tokens() -> None:
    ids = {new_session_id() for _ in range(200)}
    assert len(ids) == 200
    for session_id in ids:
        assert is_valid_token(session_id)
        assert "." not in session_id  # one subject token, not several
        assert re.fullmatch(r"[A-Za-z0-9_-]+", session_id)
        raw = base64.urlsafe_b64decode(session_id + "=" * (-len(session_id) % 4))
        assert len(raw) * 8 >= 128
        assert Subjects().audio(session_id).split(".") == ["nova", "audio", session_id]


@pytest.mark.parametrize(
    ("token", "valid"),
    [
        ("abc", True),
        ("A-b_9", True),
        ("", False),
        ("a.b", False),
        ("a*", False),
        ("a>", False),
        # NATS is a line protocol: a newline in a subject would split the command.
        ("abc\n", False),
    ],
)
def test_is_valid_token(token: str, valid: bool) -> None:
    assert is_valid_token(token) is valid
