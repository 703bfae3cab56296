"""The browser page on a gateway that wants keys: it connects with a session token from its URL
(and hides it from the address bar), offers its downloads with it, and without one shows the
access field, where an API key is traded for a token. Debian's chromium headless against a real
`nova up` (Whisper base) whose data dir holds a key."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import sync_playwright

from nova_common.nats_server import EmbeddedNatsServer
from tests.page_harness import VIEWPORT, WIRE_JS, launch_options
from tests.processes import RunningUp, nova_env, nova_up, run_nova
from tests.speech import silence, speak, with_pauses, write_wav

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SENTENCE = "Good morning, everyone, and welcome to the meeting."


@pytest.fixture(scope="module")
def keyed_up(
    nats_server: EmbeddedNatsServer, cli_dir: Path, cli_data_dir: Path
) -> Iterator[tuple[RunningUp, str]]:
    added = run_nova("keys", "add", "page", env=nova_env(cli_data_dir))
    assert added.returncode == 0, added.stderr
    with nova_up(nats_server.url, cli_data_dir, cli_dir / "logs", name="up-keyed") as running:
        yield running, added.stdout.strip()


def mint(base: str, key: str) -> str:
    request = urllib.request.Request(
        f"{base}/auth/token", method="POST", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["token"])


def test_the_page_connects_with_a_token_and_asks_for_one_without(
    keyed_up: tuple[RunningUp, str], cli_dir: Path
) -> None:
    up, key = keyed_up
    base = up.http_url
    audio = np.concatenate([with_pauses([speak(SENTENCE)]), silence(40.0)])
    wav = write_wav(cli_dir / "access-speech.wav", audio, 16000)
    token = mint(base, key)
    with sync_playwright() as p:
        browser = p.chromium.launch(**launch_options(wav))
        try:
            context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
            context.add_init_script(WIRE_JS)

            # Given a token in the fragment: it connects, and the token leaves the address bar.
            page = context.new_page()
            page.goto(f"{base}/?autostart=1#token={token}")
            page.wait_for_function(
                "() => /morning/i.test(document.getElementById('transcript').textContent)",
                timeout=120_000,
            )
            assert "token" not in page.url
            assert page.evaluate("document.getElementById('access').hidden")
            link = page.evaluate("document.querySelector('#downloads a').href")
            assert f"token={token}" in link
            subtitles = page.request.get(link)
            assert subtitles.status == 200 and "morning" in subtitles.text().lower()
            page.close()

            # Without one: the access field and the gateway's reason; an API key typed there
            # is traded for a session token, and the microphone then connects with it.
            page = context.new_page()
            page.goto(f"{base}/")
            page.wait_for_function("() => !document.getElementById('access').hidden")
            reason = page.text_content("#access-reason") or ""
            assert "needs an API key or a session token" in reason
            assert page.text_content("#status") == "This server needs an access token"
            page.fill("#token", key)
            page.click("#access button")
            page.wait_for_function("() => document.getElementById('access').hidden")
            stored = page.evaluate("sessionStorage.getItem('nova.token')")
            assert stored and stored != key  # the key itself is not kept
            page.click("#mic")
            page.wait_for_function(
                "() => document.getElementById('status').dataset.state === 'live'",
                timeout=30_000,
            )
            page.close()
        finally:
            browser.close()
