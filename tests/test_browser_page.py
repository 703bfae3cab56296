"""The browser page at `/`, in Debian's chromium headless.

The live tests run a real `nova up` (Whisper base, Apertium) and feed a WAV of espeak-ng
sentences to the page as its microphone (chromium's fake capture device). They read the captions
from the DOM the page documents (#transcript, #translation, #partial, #status) and watch it with
a MutationObserver installed before the page's own scripts: committed text is never changed or
removed. captions.js alone, in chromium without Nova: tests/test_page_captions.py.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from nova_common.nats_server import EmbeddedNatsServer, free_port
from tests.page_harness import (
    OBSERVER_JS,
    VIEWPORT,
    WIRE_JS,
    artifacts_dir,
    launch_options,
    page_state,
    serve_static,
)
from tests.processes import NovaProcess, nova_env, nova_process, nova_up
from tests.speech import normalise, silence, speak, wer, with_pauses, write_wav

pytestmark = pytest.mark.browser

SENTENCES = [
    "Good morning, everyone, and welcome to the meeting.",
    "Please send the report to my office.",
    "The train is late again.",
]
# Apertium eng→spa of each sentence must contain these (checked by hand on its output).
SPANISH = [["buenos", "días", "reunión"], ["informe", "oficina"], ["tarde", "otra", "vez"]]
PAUSE_S = 1.5
# Long enough that the fake microphone does not loop back to the speech before the test stops.
TRAILING_SILENCE_S = 40.0
# On two cores Whisper with language detection falls behind real time: finals can come ~10 s
# after their speech. Waits are generous; the test asserts on text, not speed.
FINISH_TIMEOUT_MS = 120_000


@dataclass
class RunningNova:
    process: NovaProcess
    url: str


@pytest.fixture(scope="module")
def nova(
    nats_server: EmbeddedNatsServer, cli_dir: Path, cli_data_dir: Path
) -> Iterator[RunningNova]:
    """`nova up` on the session's nats-server, as a user starts it."""
    with nova_up(nats_server.url, cli_data_dir, cli_dir / "logs", name="up-page") as running:
        url = running.http_url
        # The banner names the page first.
        assert f"Nova Voice is up: {url}/ " in running.process.stdout
        assert f"ws://127.0.0.1:{running.port}/ws" in running.process.stdout
        yield RunningNova(running.process, url)


@pytest.fixture(scope="module")
def speech_wav(cli_dir: Path) -> tuple[Path, float]:
    """The sentences with pauses, and the second of the file where the last one ends."""
    speech = with_pauses([speak(s) for s in SENTENCES], pause=PAUSE_S)
    speech_end = len(speech) / 16000 - PAUSE_S
    audio = np.concatenate([speech, silence(TRAILING_SILENCE_S)])
    return write_wav(cli_dir / "page-speech.wav", audio, 16000), speech_end


class PageWatch:
    """A page with the test's observers, collecting its script errors."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on(
            "console",
            lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None,
        )

    def state(self) -> dict[str, Any]:
        return page_state(self.page)

    def wait_for_sent(self, seconds: float, timeout_ms: int = 60_000) -> None:
        self.page.wait_for_function(
            f"() => window.__novaWire.sentSeconds() >= {seconds}", timeout=timeout_ms
        )

    def stop_and_wait(self) -> dict[str, Any]:
        # A click by script: the overlay hides its controls (there one stops by closing it).
        self.page.evaluate("document.getElementById('stop').click()")
        self.page.wait_for_function(
            "() => document.getElementById('status').dataset.state === 'stopped'",
            timeout=FINISH_TIMEOUT_MS,
        )
        return self.state()

    def layout(self) -> dict[str, Any]:
        """Each caption element's box, in DOM order of #transcript and #translation."""
        boxes: dict[str, Any] = self.page.evaluate(
            """() => {
            const box = (el) => { const r = el.getBoundingClientRect();
                return {seq: +el.dataset.seq, top: r.top, bottom: r.bottom, lang: el.dataset.lang}; };
            const c = document.getElementById('captions').getBoundingClientRect();
            return {
                lines: [...document.querySelectorAll('#transcript .line:not(:empty)')].map(box),
                translations: [...document.querySelectorAll('#translation .tr')].map(box),
                partial: box(document.getElementById('partial')),
                captions: {top: c.top, bottom: c.bottom},
            };
        }"""
        )
        return boxes


@pytest.fixture
def browser_context(speech_wav: tuple[Path, float]) -> Iterator[Any]:
    with sync_playwright() as p:
        browser = p.chromium.launch(**launch_options(speech_wav[0]))
        try:
            context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
            context.add_init_script(WIRE_JS)
            context.add_init_script(OBSERVER_JS)
            yield context
        finally:
            browser.close()


def spoken_lines(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [line for line in state["lines"] if line["text"].strip() and not line["failed"]]


def assert_partials_shown(state: dict[str, Any]) -> int:
    """Every partial with text that arrived well before its final was on screen before the
    final; the number of utterances that had one. (Under load the server sends none: with
    language detection on two cores it may skip every partial window as stale.)"""
    arrived: dict[tuple[int, int], list[float]] = {}
    finals: dict[tuple[int, int], float] = {}
    for t, socket, kind, seq, text in state["events"]:
        if kind == "partial" and text:
            arrived.setdefault((socket, seq), []).append(t)
        elif kind == "final":
            finals[(socket, seq)] = t
    shown = 0
    for (socket, seq), times in arrived.items():
        # One socket per session here, numbered like the page's caption sessions.
        if (socket, seq) in finals and min(times) < finals[(socket, seq)] - 200:
            key = f"{socket}:{seq}"
            first, final = state["dom"]["firstText"].get(key), state["dom"]["finalAt"].get(key)
            assert first is not None and final is not None and first < final, (key, state["dom"])
            shown += 1
    return shown


def assert_captions(state: dict[str, Any], watch: PageWatch) -> int:
    """The spoken sentences in #transcript, their Spanish under them in #translation, and the
    stability contract kept throughout; the number of utterances shown with partials."""
    lines = spoken_lines(state)
    assert lines, state
    said = " ".join(line["text"] for line in lines)
    error = wer([" ".join(SENTENCES)], [said])
    assert error <= 0.15, f"WER {error:.2%}: {said!r}"
    # #transcript holds the finals and nothing else (one per line); #translation likewise.
    assert [t for t in state["transcript"].split("\n") if t] == [x["text"] for x in lines]
    spanish = [t for t in state["translations"] if not t["failed"]]
    assert [t for t in state["translation"].split("\n") if t] == [t["text"] for t in spanish]
    # Every final has its Spanish, and it is not the English again.
    by_seq = {(t["session"], t["seq"]): t for t in spanish if t["lang"] == "es"}
    for line in lines:
        translation = by_seq.get((line["session"], line["seq"]))
        assert translation is not None and translation["text"].strip(), (line, state)
        english = set(normalise(line["text"]).split())
        words = normalise(translation["text"]).split()
        assert sum(w in english for w in words) < len(words) / 2, (line, translation)
    all_spanish = normalise(" ".join(t["text"] for t in spanish))
    for expected in SPANISH:
        for word in expected:
            assert word in all_spanish.split(), (word, all_spanish)

    dom = state["dom"]
    assert dom["violations"] == [], dom["violations"]
    assert dom["finalsAdded"] == len(state["lines"])
    with_partials = assert_partials_shown(state)
    assert watch.errors == [], watch.errors

    # Visually each translation sits right under its own line, before the next line.
    layout = watch.layout()
    tops = {b["seq"]: b for b in layout["lines"]}
    ordered = sorted(layout["lines"], key=lambda b: b["top"])
    assert [b["seq"] for b in ordered] == sorted(tops), layout
    for tr in layout["translations"]:
        line = tops[tr["seq"]]
        assert tr["top"] >= line["bottom"] - 1, (tr, line)
        later = [b["top"] for b in ordered if b["top"] > line["top"]]
        if later:
            assert tr["bottom"] <= min(later) + 1, (tr, line, later)
    return with_partials


@pytest.mark.slow
def test_microphone_captions_with_spanish_under_each_line(
    nova: RunningNova, speech_wav: tuple[Path, float], browser_context: Any
) -> None:
    speech_end = speech_wav[1]
    started = time.monotonic()
    watch = PageWatch(browser_context.new_page())
    watch.page.goto(f"{nova.url}/?autostart=1&to=es")
    # The page sends at the device's rate, 50–100 ms a frame.
    watch.page.wait_for_function("() => window.__novaWire.starts.length === 1")
    start = watch.page.evaluate("window.__novaWire.starts[0].message")
    assert start["channels"] == 1 and 8000 <= start["sample_rate"] <= 192000, start
    assert start["translate_to"] == ["es"] and start["language"] == "auto", start
    with contextlib.suppress(PlaywrightTimeout):
        # An artefact, not a check: a final with its translation and a partial in progress
        # (under load the server may skip a later utterance's partials).
        watch.page.wait_for_function(
            "() => document.querySelector('#translation .tr') &&"
            " document.querySelector('#partial .tail')?.textContent.trim()",
            timeout=int(speech_end * 1000),
        )
        watch.page.screenshot(path=str(artifacts_dir() / "page-live.png"))
    watch.wait_for_sent(speech_end + 1.0)
    frames = watch.page.evaluate("window.__novaWire.frames.slice(-20).map((f) => f[1])")
    assert all(0.05 <= n / start["sample_rate"] <= 0.1 for n in frames), frames
    assert watch.state()["state"] == "live"

    state = watch.stop_and_wait()
    watch.page.screenshot(path=str(artifacts_dir() / "page.png"))
    assert state["status"].startswith("Stopped ·"), state["status"]  # the summary came
    with_partials = assert_captions(state, watch)

    # Once a session started, its subtitles can be downloaded from the page.
    links = state["downloads"]
    srt = next(u for u in links if u.endswith("/subtitles.srt"))
    vtt = next(u for u in links if u.endswith("/subtitles.vtt"))
    assert f"{nova.url}/sessions/" in srt, links
    assert any(u.endswith("/subtitles.vtt?language=es") for u in links), links
    reply = watch.page.request.get(vtt)
    assert reply.status == 200 and reply.text().startswith("WEBVTT"), reply.text()
    assert "report" in reply.text(), reply.text()
    spanish = watch.page.request.get(f"{vtt}?language=es").text()
    assert "informe" in spanish, spanish
    said = " ".join(line["text"] for line in state["lines"])
    print(
        f"page test: {time.monotonic() - started:.1f} s, WER "
        f"{wer([' '.join(SENTENCES)], [said]):.1%}, {with_partials} of {len(state['lines'])} "
        f"utterances shown with partials: {said!r}"
    )


@pytest.mark.slow
def test_overlay_keeps_the_latest_lines_without_controls(
    nova: RunningNova, browser_context: Any
) -> None:
    watch = PageWatch(browser_context.new_page())
    # The language given: one encoder pass a segment instead of two (detection), so this run is
    # quicker on two cores; lines=4 (the default for one target, said here to test the param).
    watch.page.goto(f"{nova.url}/?overlay=1&autostart=1&to=es&lang=en&lines=4")
    watch.page.wait_for_function("() => window.__novaWire.starts.length === 1")
    start = watch.page.evaluate("window.__novaWire.starts[0].message")
    assert start["language"] == "en" and start["profile"] == "subtitles", start
    # Three lines with their translations: six rows, more than the four shown.
    watch.page.wait_for_function(
        "() => document.querySelectorAll('#translation .tr').length >= 3",
        timeout=FINISH_TIMEOUT_MS,
    )
    page = watch.page
    page.screenshot(path=str(artifacts_dir() / "page-overlay.png"), omit_background=True)

    look = page.evaluate(
        """() => {
        const c = document.getElementById('captions');
        const s = getComputedStyle(c);
        const y = (el) => el.getBoundingClientRect().top;
        const rows = [...document.querySelectorAll('#transcript .line:not(:empty), #translation .tr')]
            .sort((a, b) => y(a) - y(b));
        const top = c.getBoundingClientRect().top;
        return {
            background: [getComputedStyle(document.documentElement).backgroundColor,
                         getComputedStyle(document.body).backgroundColor],
            scroll: [document.scrollingElement.scrollHeight, innerHeight,
                     document.scrollingElement.scrollWidth, innerWidth],
            overflow: s.overflowY,
            height: c.clientHeight,
            lineHeight: parseFloat(s.lineHeight),
            fontSize: parseFloat(s.fontSize),
            shown: rows.filter((r) => y(r) >= top - 1).map((r) => r.textContent),
            rows: rows.map((r) => r.textContent),
        };
    }"""
    )
    assert look["background"] == ["rgba(0, 0, 0, 0)"] * 2, look
    assert look["scroll"][0] <= look["scroll"][1] and look["scroll"][2] <= look["scroll"][3], look
    assert look["overflow"] == "hidden", look
    assert look["fontSize"] >= 28, look  # large text
    for control in ("header", "footer", "#mic", "#stop", "#language", "#targets"):
        assert page.locator(control).is_hidden(), control
    # Four rows tall; the latest rows are the ones in view, older ones clipped above.
    assert 4 * look["lineHeight"] <= look["height"] < 5 * look["lineHeight"], look
    assert len(look["rows"]) >= 6, look
    assert look["shown"] == look["rows"][-len(look["shown"]) :], look
    assert 0 < len(look["shown"]) <= 4, look

    state = watch.stop_and_wait()
    assert state["dom"]["violations"] == [], state["dom"]
    print(f"overlay: {assert_partials_shown(state)} utterances shown with partials")
    assert watch.errors == [], watch.errors


# --------------------------------------------------------------------------- controls, reconnect


@pytest.fixture(scope="module")
def silent_wav(cli_dir: Path) -> Path:
    # Silence: no utterance is ever owed, so sessions end at once without a speech worker.
    return write_wav(cli_dir / "page-silence.wav", silence(30.0), 16000)


def wait_state(page: Page, state: str, timeout_ms: int = 30_000) -> None:
    page.wait_for_function(
        f"() => document.getElementById('status').dataset.state === {state!r}",
        timeout=timeout_ms,
    )


def sent(page: Page) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = page.evaluate("window.__novaWire.messages")
    return messages


@pytest.mark.slow
def test_controls_and_reconnect_after_the_gateway_dies(
    nats_server: EmbeddedNatsServer, cli_dir: Path, cli_data_dir: Path, silent_wav: Path
) -> None:
    """Targets change in place (`update`), the language restarts the session, a killed gateway
    is reconnected to with backoff, and a tab's audio is a second source. A real `nova gateway`
    (no speech worker: nothing here needs text)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = nova_env(
        cli_data_dir,
        NOVA_NATS_URL=nats_server.url,
        NOVA_NATS_SUBJECT_PREFIX=f"t{uuid.uuid4().hex[:10]}",
    )

    def gateway(name: str) -> contextlib.AbstractContextManager[NovaProcess]:
        return nova_process(
            ["gateway", "--port", str(port)], env=env, log_dir=cli_dir / "logs", name=name
        )

    with sync_playwright() as p:
        browser = p.chromium.launch(**launch_options(silent_wav))
        try:
            context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
            context.add_init_script(WIRE_JS)
            watch = PageWatch(context.new_page())
            page = watch.page
            with gateway("gateway-1") as first:
                first.wait_for_stdout("nova gateway listening on")
                page.goto(f"{url}/?autostart=1&to=es")
                wait_state(page, "live")
                # Without a speech worker the gateway says so, and the page shows it.
                page.wait_for_function(
                    "() => document.getElementById('messages').textContent.length > 0"
                )

                # Another target: an `update` on the running session.
                page.click("#targets label:has(input[value=de])")
                page.wait_for_function(
                    "() => /Translating from now on/.test("
                    "document.getElementById('messages').textContent)"
                )
                assert {"type": "update", "translate_to": ["es", "de"]} in sent(page)
                assert len(page.evaluate("window.__novaWire.starts")) == 1

                # Another spoken language: the session stops and a new one starts.
                page.select_option("#language", "de")
                page.wait_for_function("() => window.__novaWire.starts.length === 2")
                wait_state(page, "live")
                messages = sent(page)
                assert [m["type"] for m in messages] == ["start", "update", "stop", "start"]
                assert messages[-1]["language"] == "de"
                assert messages[-1]["translate_to"] == ["es", "de"]

                first.kill()  # a crash, not a clean shutdown
                wait_state(page, "reconnecting")
            # Refused while it is down: the wait grows (1 s, then 2 s, …) and the page says so.
            page.wait_for_function(
                r"() => /reconnecting in ([2-9]|\d\d) s/.test("
                "document.getElementById('status').textContent)",
                timeout=20_000,
            )
            with gateway("gateway-2") as second:
                second.wait_for_stdout("nova gateway listening on")
                wait_state(page, "live", timeout_ms=40_000)
                starts = page.evaluate("window.__novaWire.starts.map((s) => s.message)")
                assert len(starts) == 3, starts
                # A new session, with the settings the user had chosen.
                assert starts[-1]["language"] == "de" and starts[-1]["translate_to"] == ["es", "de"]
                sessions = page.evaluate(
                    "[...document.querySelectorAll('#downloads li')].map((li) => li.dataset.session)"
                )
                assert len(set(sessions)) == 3, sessions

                # A tab's audio: chromium's fake picker shares the screen with "Fake audio".
                page.click("#tab")
                page.wait_for_function("() => window.__novaWire.starts.length === 4")
                wait_state(page, "live")
                assert "Fake audio" in watch.state()["status"]
                assert page.evaluate("document.getElementById('tab').classList.contains('active')")
                state = watch.stop_and_wait()
                assert state["status"].startswith("Stopped"), state["status"]
            # Chromium logs each refused attempt itself; nothing else may go wrong.
            errors = [e for e in watch.errors if "ERR_CONNECTION_REFUSED" not in e]
            assert errors == [], watch.errors
        finally:
            browser.close()


def test_a_tab_shared_without_audio_is_explained(silent_wav: Path) -> None:
    """The user unticked "share tab audio": the page says what to do instead of going silent.
    (Chromium's fake picker always shares audio, so the page is given the video-only stream
    such a choice yields.)"""
    with sync_playwright() as p:
        browser = p.chromium.launch(**launch_options(silent_wav))
        try:
            page = browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
            page.add_init_script(
                """(() => {
                const real = navigator.mediaDevices.getDisplayMedia.bind(navigator.mediaDevices);
                navigator.mediaDevices.getDisplayMedia = (c) => real({...c, audio: false});
            })()"""
            )
            # The page's own files, at an origin where capture is allowed; no Nova needed.
            page.route("http://localhost/**", lambda route: serve_static(route, page="index"))
            page.goto("http://localhost/")
            page.click("#tab")
            page.wait_for_function(
                "() => /without audio/.test(document.getElementById('status').textContent)"
            )
            assert page.evaluate("document.getElementById('status').dataset.state") == "error"
            assert not page.evaluate("document.getElementById('tab').classList.contains('active')")
        finally:
            browser.close()
