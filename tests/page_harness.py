"""Driving the browser page in Debian's chromium: launch flags, and the scripts a test or the
page benchmark installs in the page before its own code runs (they watch the page from outside:
the WebSocket frames it sends and the DOM changes it makes).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.speech import require_tool

if TYPE_CHECKING:
    from playwright.sync_api import Route

REPO = Path(__file__).resolve().parent.parent
STATIC_DIR = REPO / "nova_gateway" / "static"


def artifacts_dir() -> Path:
    """Where screenshots and logs of browser runs go: $NOVA_TEST_ARTIFACTS or test-artifacts/."""
    path = Path(os.environ.get("NOVA_TEST_ARTIFACTS") or REPO / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def chromium_path() -> str:
    # Playwright's own browser download is not reachable here; a missing chromium fails the test.
    return require_tool("chromium")


def chromium_args(wav: Path | None = None) -> list[str]:
    args = [
        "--no-sandbox",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
    ]
    if wav is not None:
        # Chromium loops this file as the microphone, from the moment the page opens it.
        args.append(f"--use-file-for-fake-audio-capture={wav}")
    return args


def launch_options(wav: Path | None = None) -> dict[str, Any]:
    return {"executable_path": chromium_path(), "args": chromium_args(wav)}


# Records what the page sends on its WebSockets: its JSON messages, and for each binary audio
# frame its send time, sample count, and where in the frame the first loud sample is (speech
# onsets in the audio the page really sent); and when each event arrived. Installed before the
# page's scripts.
WIRE_JS = r"""
(() => {
  const wire = (window.__novaWire = {
    starts: [], messages: [], frames: [], events: [], sockets: 0, threshold: 0.03,
  });
  // Events received: [time, socket number, type, seq, has text]. The listener goes on in the
  // constructor, so it runs before the page's own onmessage handler: the time is the arrival.
  const watch = (ws) => {
    if (ws.__novaSocket !== undefined) return;
    const socket = (ws.__novaSocket = wire.sockets++);
    ws.addEventListener("message", (e) => {
      if (typeof e.data !== "string") return;
      try {
        const m = JSON.parse(e.data);
        const text = Boolean(m.text && m.text.trim());
        wire.events.push([performance.now(), socket, m.type, m.seq ?? null, text]);
      } catch (err) {}
    });
  };
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      watch(this);
    }
  };
  const send = Native.prototype.send;
  Native.prototype.send = function (data) {
    const t = performance.now();
    watch(this);
    if (typeof data === "string") {
      try {
        const m = JSON.parse(data);
        wire.messages.push(m);
        if (m.type === "start") {
          wire.starts.push({ t, frame: wire.frames.length, socket: this.__novaSocket, message: m });
        }
      } catch (e) {}
    } else if (data instanceof ArrayBuffer) {
      const pcm = new Int16Array(data);
      const limit = wire.threshold * 32768;
      let loud = -1;
      for (let i = 0; i < pcm.length; i++) {
        if (pcm[i] > limit || pcm[i] < -limit) { loud = i; break; }
      }
      wire.frames.push([t, pcm.length, loud]);
    }
    return send.call(this, data);
  };
  // Seconds of audio sent since the latest `start`.
  wire.sentSeconds = () => {
    const start = wire.starts[wire.starts.length - 1];
    if (!start) return 0;
    let samples = 0;
    for (let i = start.frame; i < wire.frames.length; i++) samples += wire.frames[i][1];
    return samples / start.message.sample_rate;
  };
})();
"""

# Watches #transcript, #translation and #partial for the stability contract: a node holding
# committed text is never changed or removed (finals, translations, the committed part of the
# partial while its utterance lasts). Also notes, per utterance, when its first text appeared.
# Records arrive in batches, after the page's task: a committed span may already be out of the
# document by then, so it is recognised by its class (only #partial has them), not its place.
OBSERVER_JS = r"""
(() => {
  const seen = (window.__novaDom = {
    violations: [], finalsAdded: 0, translationsAdded: 0, committedAppends: 0,
    partialTexts: 0, firstText: {}, finalAt: {},
  });
  const within = (node, selector) => {
    const el = node && (node.nodeType === 1 ? node : node.parentElement);
    return Boolean(el && el.closest(selector));
  };
  const key = (el) => `${el.dataset.session}:${el.dataset.seq}`;
  const textAppeared = () => {
    const committed = document.querySelector("#partial .committed");
    const partial = document.getElementById("partial");
    if (committed && partial && partial.textContent.trim()) {
      seen.partialTexts++;
      seen.firstText[key(committed)] ??= performance.now();
    }
  };
  const observer = new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === "characterData") {
        if (within(r.target, "#transcript") || within(r.target, "#translation")) {
          seen.violations.push(`final text changed: ${JSON.stringify(r.oldValue)} → ` +
            JSON.stringify(r.target.data));
        } else if (within(r.target, ".committed")) {
          seen.violations.push(`committed partial text changed: ${JSON.stringify(r.oldValue)} → ` +
            JSON.stringify(r.target.data));
        } else if (within(r.target, "#partial")) {
          textAppeared();
        }
        continue;
      }
      for (const node of r.removedNodes) {
        const holds = node.nodeType === 1 &&
          (node.matches("#transcript, #translation") || node.querySelector("#transcript, #translation"));
        if (holds || within(r.target, "#transcript") || within(r.target, "#translation")) {
          seen.violations.push(`removed from the captions: ${JSON.stringify(node.textContent)}`);
        } else if (within(r.target, ".committed")) {
          seen.violations.push(`removed committed words: ${JSON.stringify(node.textContent)}`);
        } else if (node.nodeType === 1 && node.matches(".committed") &&
                   r.target.id === "partial") {
          // The committed part may go only once its utterance is over (its final is shown), or
          // when the live line moves on to the next utterance while this one's final is owed:
          // then a provisional line holds its words until the final comes.
          const at = `[data-session="${node.dataset.session}"][data-seq="${node.dataset.seq}"]`;
          const done = document.querySelector(`#transcript ${at}, .line.provisional${at}`);
          if (!done) {
            seen.violations.push(`committed words of seq ${node.dataset.seq} removed before ` +
              `their final: ${JSON.stringify(node.textContent)}`);
          }
        }
      }
      for (const node of r.addedNodes) {
        if (within(r.target, ".committed")) seen.committedAppends++;
        if (within(r.target, "#partial")) textAppeared();
        if (node.nodeType !== 1) continue;
        if (r.target.id === "transcript" && node.classList.contains("line")) {
          seen.finalsAdded++;
          seen.finalAt[key(node)] = performance.now();
          if (node.textContent.trim()) seen.firstText[key(node)] ??= performance.now();
        }
        if (r.target.id === "translation") seen.translationsAdded++;
      }
    }
  });
  observer.observe(document, {
    subtree: true, childList: true, characterData: true, characterDataOldValue: true,
  });
})();
"""


def page_state(page: Any) -> dict[str, Any]:
    """The DOM's captions as the test reads them (playwright Page, sync API)."""
    result: dict[str, Any] = page.evaluate(
        """() => ({
        lines: [...document.querySelectorAll('#transcript .line')].map((p) => ({
            seq: +p.dataset.seq, session: +p.dataset.session, text: p.textContent,
            start: p.dataset.start === undefined ? null : +p.dataset.start,
            end: p.dataset.end === undefined ? null : +p.dataset.end,
            failed: p.classList.contains('failed') })),
        translations: [...document.querySelectorAll('#translation .tr')].map((p) => ({
            seq: +p.dataset.seq, session: +p.dataset.session, lang: p.dataset.lang,
            text: p.textContent, failed: p.classList.contains('failed') })),
        transcript: document.getElementById('transcript').textContent,
        translation: document.getElementById('translation').textContent,
        partial: document.getElementById('partial').textContent,
        status: document.getElementById('status').textContent,
        state: document.getElementById('status').dataset.state,
        downloads: [...document.querySelectorAll('#downloads a')].map((a) => a.href),
        dom: window.__novaDom,
        sent: window.__novaWire ? window.__novaWire.sentSeconds() : null,
        events: window.__novaWire ? window.__novaWire.events : [],
    })"""
    )
    return result


VIEWPORT = {"width": 1280, "height": 720}

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
