"""The browser page at `/`, in Debian's chromium headless.

The live tests run a real `nova up` (Whisper base, Apertium) and feed a WAV of espeak-ng
sentences to the page as its microphone (chromium's fake capture device). They read the captions
from the DOM the page documents (#transcript, #translation, #partial, #status) and watch it with
a MutationObserver installed before the page's own scripts: committed text is never changed or
removed. The caption-logic test drives nova_gateway/static/captions.js in chromium without Nova.
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
from playwright.sync_api import Page, Route, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from nova_common.nats_server import EmbeddedNatsServer, free_port
from tests.page_harness import (
    OBSERVER_JS,
    STATIC_DIR,
    WIRE_JS,
    artifacts_dir,
    launch_options,
    page_state,
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
VIEWPORT = {"width": 1280, "height": 720}
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


# --------------------------------------------------------------------------- the caption logic

HARNESS_HTML = """<!doctype html><html><head><meta charset="utf-8"><link rel="stylesheet" href="/static/style.css">
</head><body><main id="captions"><div id="transcript"></div><div id="translation"></div>
<p id="partial"></p></main></body></html>"""


def serve_static(route: Route, page: str = "harness") -> None:
    """The static files as the gateway serves them; `/` is the real page or the test's own."""
    path = route.request.url.split("://", 1)[1].split("/", 1)[1].split("?")[0]
    if path == "" and page == "harness":
        route.fulfill(body=HARNESS_HTML, content_type="text/html")
        return
    if path == "":
        path = "static/index.html"
    file = STATIC_DIR / path.removeprefix("static/")
    if not path.startswith("static/") or not file.is_file():
        route.fulfill(status=404, body="")
        return
    kinds = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
    kind = kinds.get(file.suffix, "image/svg+xml" if file.suffix == ".svg" else "text/plain")
    route.fulfill(body=file.read_bytes(), content_type=kind)


CAPTIONS_SCRIPT = """async () => {
    const m = await import('/static/captions.js');
    const $ = (id) => document.getElementById(id);
    const renders = [];
    const timers = [];
    const captions = new m.Captions({
        root: $('captions'), transcript: $('transcript'), translation: $('translation'),
        partial: $('partial'), schedule: (fn, ms) => timers.push(fn),
        onRender: (kind) => renders.push(kind),
    });
    const run = () => { while (timers.length) timers.shift()(); };
    const out = {};
    const s = captions.session();
    const p = (seq, revision, text, committed) =>
        s.partial({type: 'partial', seq, revision, text, committed, start: 0, end: 1});
    // Thirty partials in one burst: one render, of the latest.
    for (let i = 0; i < 30; i++) p(0, i, 'Good morning every' + 'o'.repeat(i), '');
    out.timersAfterBurst = timers.length;
    run();
    out.rendersAfterBurst = renders.length;
    out.partialAfterBurst = $('partial').textContent;
    p(0, 31, 'Good morning everyone and', 'Good morning');
    run();
    p(0, 32, 'Good morning everyone and welcome', 'Good morning everyone');
    run();
    const committed = $('partial').querySelector('.committed');
    out.committed = committed.textContent;
    out.committedNodes = committed.childNodes.length;
    out.tail = $('partial').querySelector('.tail').textContent;
    s.final({type: 'final', seq: 0, text: ' Good morning, everyone, and welcome.', start: 0.4, end: 3});
    out.partialAfterFinal = $('partial').textContent;
    p(0, 33, 'stale words', 'stale');  // its final is in: ignored
    run();
    out.partialAfterStale = $('partial').textContent;
    p(1, 0, 'Please send', '');
    run();
    s.final({type: 'final', seq: 1, text: 'Please send the report.', start: 4, end: 6});
    s.translation({type: 'translation', seq: 0, language: 'es', text: 'Buenos días a todos.'});
    s.translation({type: 'translation', seq: 1, language: 'es', text: 'Por favor envía el informe.'});
    s.translation({type: 'translation', seq: 0, language: 'de', text: 'Guten Morgen.'});
    s.failed(2, 'stt_failed');
    p(2, 0, 'never shown', '');
    run();
    out.partialAfterFailed = $('partial').textContent;
    s.translationFailed(1, 'de', 'no backend');
    // A second session (say, the language changed) while the first still owes a final: the
    // first session's lines stay above the second's.
    const s2 = captions.session('de');
    s2.final({type: 'final', seq: 0, text: 'Guten Tag.', start: 0.2, end: 1});
    s.final({type: 'final', seq: 3, text: 'Late final of the first session.', start: 8, end: 9});
    out.transcript = $('transcript').textContent;
    out.translation = $('translation').textContent;
    const y = (el) => el.getBoundingClientRect().top;
    out.visual = [...document.querySelectorAll('#captions .line:not(:empty), #captions .line.failed, #captions .tr')]
        .sort((a, b) => y(a) - y(b))
        .map((el) => (el.classList.contains('tr') ? `  ${el.dataset.lang}: ` : '') +
             (el.textContent || (el.classList.contains('failed') ? '(failed)' : '')));
    out.options = m.parseOptions('?overlay=1&autostart=yes&lang=DE&to=es,de,es,x1,toolong&profile=typing&lines=4');
    out.defaults = m.parseOptions('?lang=../../&lines=99');
    out.backoff = [0, 1, 2, 3, 4, 5, 6, 10].map(m.backoffSeconds);
    out.lag = [m.lagSeconds(10, 8.5), m.lagSeconds(1, 2)];
    out.clock = [m.clock(0), m.clock(75.9), m.clock(3725)];
    return out;
}"""


@contextlib.contextmanager
def static_page() -> Iterator[tuple[Page, list[str]]]:
    """The page's own files served to Chromium without a gateway (captions.js alone), with
    the DOM observer installed; yields the page and the script errors it raised."""
    with sync_playwright() as p:
        browser = p.chromium.launch(**launch_options())
        try:
            page = browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
            page.add_init_script(OBSERVER_JS)
            page.route("http://nova.test/**", serve_static)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto("http://nova.test/")
            yield page, errors
        finally:
            browser.close()


def test_caption_logic(tmp_path: Path) -> None:
    """captions.js alone: coalesced partials, append-only committed text, stale partials
    dropped, translations under their lines, sessions kept in order, and the URL options."""
    with static_page() as (page, errors):
        out = page.evaluate(CAPTIONS_SCRIPT)
        dom = page.evaluate("window.__novaDom")
        # The observer itself: a rewritten final, a removed translation and rewritten
        # committed words must each be caught, or the live tests prove nothing.
        caught = page.evaluate(
            """async () => {
            const before = window.__novaDom.violations.length;
            document.querySelector('#transcript .line').firstChild.data += '!';
            document.querySelector('#translation .tr').remove();
            const s = document.createElement('span');
            s.className = 'committed';
            s.append('kept');
            document.getElementById('partial').append(s);
            await new Promise((r) => setTimeout(r, 0));
            s.firstChild.data = 'changed';
            await new Promise((r) => setTimeout(r, 0));
            return window.__novaDom.violations.slice(before);
        }"""
        )
        page.screenshot(path=str(artifacts_dir() / "page-caption-logic.png"))
    assert errors == []
    assert out["timersAfterBurst"] == 1
    assert out["rendersAfterBurst"] == 1
    assert out["partialAfterBurst"] == "Good morning every" + "o" * 29
    assert out["committed"] == "Good morning everyone"
    assert out["committedNodes"] == 2  # "Good morning" then " everyone": appended, not rewritten
    assert out["tail"] == " and welcome"
    assert out["partialAfterFinal"] == ""
    assert out["partialAfterStale"] == ""
    assert out["partialAfterFailed"] == ""
    assert out["transcript"] == (
        "Good morning, everyone, and welcome.\nPlease send the report.\n"
        "Guten Tag.\nLate final of the first session.\n"
    )
    assert out["translation"] == (
        "Buenos días a todos.\nPor favor envía el informe.\nGuten Morgen.\n"
    )
    assert out["visual"] == [
        "Good morning, everyone, and welcome.",
        "  es: Buenos días a todos.",
        "  de: Guten Morgen.",
        "Please send the report.",
        "  es: Por favor envía el informe.",
        "  de: (failed)",
        "(failed)",
        "Late final of the first session.",
        "Guten Tag.",
    ]
    assert out["options"] == {
        "overlay": True,
        "autostart": True,
        "language": "de",
        "translateTo": ["es", "de"],
        "profile": "typing",
        "lines": 4,
    }
    assert out["defaults"]["language"] == "auto" and out["defaults"]["lines"] is None
    assert out["backoff"] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert out["lag"] == [1.5, 0]
    assert out["clock"] == ["0:00", "1:15", "1:02:05"]
    # The same observer as the live test saw the committed words appended, nothing rewritten.
    assert dom["violations"] == [], dom["violations"]
    assert dom["committedAppends"] == 2
    assert len(caught) == 3, caught


AHEAD_SCRIPT = """async () => {
    const m = await import('/static/captions.js');
    const $ = (id) => document.getElementById(id);
    const timers = [];
    const captions = new m.Captions({
        root: $('captions'), transcript: $('transcript'), translation: $('translation'),
        partial: $('partial'), schedule: (fn, ms) => timers.push(fn),
    });
    const run = () => { while (timers.length) timers.shift()(); };
    const s = captions.session();
    const p = (seq, revision, text, committed) =>
        s.partial({type: 'partial', seq, revision, text, committed, start: 4 * seq, end: 4 * seq + 1});
    const y = (el) => el.getBoundingClientRect().top;
    const seen = [];
    const look = (label) => seen.push({
        label,
        partial: $('partial').textContent,
        transcript: $('transcript').textContent,
        // What is on screen, top to bottom: finals, provisional lines, the live line.
        screen: [...document.querySelectorAll('#captions .line, #partial')]
            .filter((el) => el.textContent || el.classList.contains('failed'))
            .sort((a, b) => y(a) - y(b))
            .map((el) => el.id === 'partial' ? `live: ${el.textContent}`
                : el.classList.contains('provisional') ? `provisional ${el.dataset.seq}: ${el.textContent}`
                : el.classList.contains('failed') ? `failed ${el.dataset.seq}` : el.textContent),
    });
    p(0, 1, 'Good morning every', 'Good morning');
    run();
    look('partial 0');
    p(1, 1, 'Please send', '');  // final 0 is still owed
    run();
    look('partial 1');
    p(1, 2, 'Please send the', 'Please send');
    run();
    look('partial 1 again');
    s.final({type: 'final', seq: 0, text: 'Good morning, everyone.', start: 0.4, end: 3});
    look('final 0');
    p(2, 1, 'the report', '');
    run();
    p(3, 1, 'to my office', 'to my');
    run();
    p(1, 3, 'an older utterance', '');  // the live line never goes back to an earlier one
    run();
    look('partial 3, finals 1 and 2 owed');
    s.final({type: 'final', seq: 1, text: ' ', start: 4, end: 5});
    s.failed(2, 'stt_failed');
    look('final 1 empty, 2 failed');
    p(4, 1, 'one two', '');
    p(5, 1, 'three four', '');  // within one render interval: 4 is drawn before 5 takes over
    run();
    look('partials 4 and 5 in one burst');
    s.final({type: 'final', seq: 3, text: 'To my office.', start: 12, end: 13});
    s.final({type: 'final', seq: 4, text: 'One, two.', start: 16, end: 17});
    look('finals 3 and 4');
    return seen;
}"""


def test_a_later_partial_keeps_the_earlier_utterances_words_until_its_final(
    tmp_path: Path,
) -> None:
    """Partials may run ahead of earlier finals: the live line shows the newest, and the words
    it showed of an utterance whose final is owed stay as a provisional line in that final's
    place, which the final then takes (or which an empty final or an error removes)."""
    with static_page() as (page, errors):
        seen = {step["label"]: step for step in page.evaluate(AHEAD_SCRIPT)}
        dom = page.evaluate("window.__novaDom")
        page.screenshot(path=str(artifacts_dir() / "page-partials-ahead.png"))
    assert errors == []
    assert seen["partial 0"]["screen"] == ["live: Good morning every"]
    for label in ("partial 1", "partial 1 again"):
        assert seen[label]["transcript"] == ""  # #transcript holds finals only
    assert seen["partial 1"]["screen"] == [
        "provisional 0: Good morning every",
        "live: Please send",
    ]
    assert seen["partial 1 again"]["screen"] == [
        "provisional 0: Good morning every",
        "live: Please send the",
    ]
    # The final takes the provisional line's place; the live line is the next utterance's.
    assert seen["final 0"]["screen"] == ["Good morning, everyone.", "live: Please send the"]
    assert seen["final 0"]["transcript"] == "Good morning, everyone.\n"
    assert seen["partial 3, finals 1 and 2 owed"]["screen"] == [
        "Good morning, everyone.",
        "provisional 1: Please send the",
        "provisional 2: the report",
        "live: to my office",
    ]
    assert seen["final 1 empty, 2 failed"]["screen"] == [
        "Good morning, everyone.",
        "failed 2",
        "live: to my office",
    ]
    assert seen["partials 4 and 5 in one burst"]["screen"] == [
        "Good morning, everyone.",
        "failed 2",
        "provisional 3: to my office",
        "provisional 4: one two",
        "live: three four",
    ]
    assert seen["finals 3 and 4"]["screen"] == [
        "Good morning, everyone.",
        "failed 2",
        "To my office.",
        "One, two.",
        "live: three four",
    ]
    # Committed words left the live line only with a provisional line or their final showing.
    assert dom["violations"] == [], dom["violations"]
