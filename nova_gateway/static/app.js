// The Nova Voice page: audio capture (microphone or a shared tab), one WebSocket session at a
// time on the same origin's /ws, reconnects, controls. Caption rendering is in captions.js.

import { Captions, backoffSeconds, clock, lagSeconds, parseOptions } from "./captions.js";

const FRAME_SECONDS = 0.05; // one binary frame per 50 ms of audio
const QUEUE_SECONDS = 5; // audio kept while (re)connecting; older audio is dropped
const STARVED_MS = 3000; // no caption event for this long while a partial shows: lag grows live
const LANGUAGES = ["en", "de", "es", "fr", "it", "pt", "nl", "pl", "ru", "uk", "tr", "ar",
  "zh", "ja", "ko", "hi", "vi", "sv"];
const TARGETS = ["es", "en", "de", "fr", "it", "pt", "nl", "ja", "zh", "ru"];
// A start refused for its settings: reconnecting would only be refused again.
const REFUSALS = new Set(["unsupported_language", "unsupported_sample_rate",
  "unsupported_channels", "invalid_message", "already_started"]);

const $ = (id) => document.getElementById(id);
const displayNames = (() => {
  try {
    return new Intl.DisplayNames([navigator.language || "en"], { type: "language" });
  } catch {
    return null;
  }
})();
const languageName = (code) => {
  try {
    return (displayNames && displayNames.of(code)) || code;
  } catch {
    return code;
  }
};

function wsUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

// --------------------------------------------------------------------------- audio capture

async function openCapture(kind, onFrame) {
  if (!window.isSecureContext || !navigator.mediaDevices) {
    throw new Error("The browser allows audio capture only on https:// or http://localhost; " +
      "open this page through one of those.");
  }
  let stream;
  if (kind === "tab") {
    if (!navigator.mediaDevices.getDisplayMedia) {
      throw new Error("This browser cannot share a tab's audio (try Chrome or Edge).");
    }
    stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: true });
    if (stream.getAudioTracks().length === 0) {
      stream.getTracks().forEach((t) => t.stop());
      throw new Error("The shared tab came without audio. Share again and tick " +
        "“Also share tab audio” (only tabs, not windows, can share audio in most browsers).");
    }
  } else {
    // Speech recognition wants the raw signal: the voice-call processing distorts it.
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false,
        autoGainControl: false },
    });
  }
  const audioTrack = stream.getAudioTracks()[0];
  // The device's own rate: the gateway resamples, and no browser resampler runs in between.
  const ctx = new AudioContext({ latencyHint: "interactive" });
  try {
    await ctx.audioWorklet.addModule(new URL("./audio-worklet.js", import.meta.url));
    const source = ctx.createMediaStreamSource(new MediaStream([audioTrack]));
    const node = new AudioWorkletNode(ctx, "pcm-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: { frameSamples: Math.round(ctx.sampleRate * FRAME_SECONDS) },
    });
    node.port.onmessage = (e) => onFrame(e.data);
    source.connect(node);
    // Connected so the graph pulls it; its output is silence, so nothing is heard.
    node.connect(ctx.destination);
  } catch (err) {
    stream.getTracks().forEach((t) => t.stop());
    await ctx.close();
    throw err;
  }
  return {
    kind,
    ctx,
    stream,
    track: audioTrack,
    sampleRate: ctx.sampleRate,
    label: audioTrack.label || (kind === "tab" ? "shared tab" : "microphone"),
    close() {
      stream.getTracks().forEach((t) => t.stop());
      ctx.close().catch(() => {});
    },
  };
}

// --------------------------------------------------------------------------- one session

class Connection {
  constructor(page, settings) {
    this.page = page;
    this.settings = settings; // {language, translateTo, profile, sampleRate}
    this.ws = null;
    this.started = false;
    this.stopping = false;
    this.refused = null;
    this.summary = null;
    this.sessionId = null;
    this.captions = null;
    this.sentBytes = 0;
    this.lastLag = null;
    this.lastEnd = undefined; // session seconds the latest caption event covered
    this.lastEventAt = 0;
  }

  open() {
    const ws = new WebSocket(wsUrl());
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      const s = this.settings;
      ws.send(JSON.stringify({
        type: "start",
        language: s.language,
        sample_rate: s.sampleRate,
        channels: 1,
        encoding: "pcm_s16le",
        translate_to: s.translateTo,
        profile: s.profile,
        partials: true,
      }));
    };
    ws.onmessage = (e) => {
      if (typeof e.data !== "string") return;
      let ev;
      try {
        ev = JSON.parse(e.data);
      } catch {
        return;
      }
      this.onEvent(ev);
    };
    ws.onclose = (e) => this.page.onClosed(this, e);
  }

  get canSend() {
    return this.started && !this.stopping && this.ws.readyState === WebSocket.OPEN;
  }

  send(pcm) {
    this.ws.send(pcm);
    this.sentBytes += pcm.byteLength;
  }

  /** Seconds of audio the server has been handed (what is still in the socket's buffer not). */
  sentSeconds() {
    const buffered = this.ws ? this.ws.bufferedAmount : 0;
    return Math.max(0, this.sentBytes - buffered) / 2 / this.settings.sampleRate;
  }

  update(translateTo) {
    this.settings = { ...this.settings, translateTo };
    if (this.started && !this.stopping && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: "update", translate_to: translateTo }));
    }
  }

  stop() {
    if (this.stopping) return;
    this.stopping = true;
    if (this.started && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: "stop" }));
    } else {
      this.ws.close(1000, "stopped");
    }
  }

  lag(end) {
    // After `stop` no audio follows: what is sent no longer tracks the speech.
    if (!Number.isFinite(end) || this.stopping) return;
    this.lastEnd = end;
    this.lastEventAt = performance.now();
    this.lastLag = lagSeconds(this.sentSeconds(), end);
    this.page.showLag(this);
  }

  /** While an utterance's partial is on screen and the server has gone quiet for a while, the
   * lag grows live: an overloaded server sends nothing, and a frozen figure would hide that. */
  tickLag(partialShown) {
    if (!partialShown || this.stopping || this.lastEnd === undefined) return;
    if (performance.now() - this.lastEventAt < STARVED_MS) return;
    this.lastLag = Math.max(this.lastLag, lagSeconds(this.sentSeconds(), this.lastEnd));
    this.page.showLag(this);
  }

  onEvent(ev) {
    const c = this.captions;
    switch (ev.type) {
      case "started":
        this.started = true;
        this.sessionId = ev.session_id;
        this.captions = this.page.captions.session(
          `${new Date().toLocaleTimeString()} · ${ev.language}`);
        this.page.onStarted(this, ev);
        break;
      case "updated":
        this.settings = { ...this.settings, translateTo: ev.translate_to || [] };
        this.page.onUpdated(this, ev);
        break;
      case "partial":
        if (c && c.partial(ev)) this.lag(ev.end);
        break;
      case "final":
        if (c && c.final(ev)) this.lag(ev.end);
        break;
      case "translation":
        if (c) c.translation(ev);
        break;
      case "error":
        if (c && Number.isInteger(ev.seq) && ev.language) {
          c.translationFailed(ev.seq, ev.language, ev.reason);
          this.page.message(`No ${languageName(ev.language)} translation: ${ev.reason}`,
            "warning", `translation:${ev.language}:${ev.code}`);
        } else if (c && Number.isInteger(ev.seq)) {
          c.failed(ev.seq, ev.reason);
          this.page.message(`Part of the speech was not transcribed: ${ev.reason}`, "warning");
        } else if (!this.started && REFUSALS.has(ev.code)) {
          this.refused = ev;
          this.ws.close(1000, "refused");
        } else {
          this.page.message(ev.reason || ev.code, ev.fatal ? "error" : "warning", ev.code);
        }
        break;
      case "notice":
        this.page.message(ev.reason || ev.code, "info", ev.code);
        break;
      case "summary":
        this.summary = ev;
        break;
      default:
        break; // newer event types: ignored
    }
  }
}

// --------------------------------------------------------------------------- the page

class Page {
  constructor(options) {
    this.options = options;
    this.settings = {
      language: options.language,
      translateTo: options.translateTo,
      profile: options.profile,
    };
    this.captions = new Captions({
      root: $("captions"),
      transcript: $("transcript"),
      translation: $("translation"),
      partial: $("partial"),
      onRender: () => this.rendered(),
    });
    this.capture = null;
    this.conn = null;
    this.queue = []; // audio frames waiting for a session
    this.queuedBytes = 0;
    this.droppedSeconds = 0;
    this.attempt = 0;
    this.reconnectTimer = null;
    this.stopping = false;
    this.starting = false;
    this.messages = new Map();
  }

  // ------------------------------------------------------------------ controls

  init() {
    const overlay = this.options.overlay;
    document.documentElement.classList.toggle("overlay", overlay);
    this.setOverlayLines();
    this.buildLanguageSelect();
    this.buildTargets();
    $("mic").addEventListener("click", () => this.start("mic"));
    $("tab").addEventListener("click", () => this.start("tab"));
    $("stop").addEventListener("click", () => this.stop());
    $("captions").addEventListener("scroll", () => {
      const el = $("captions");
      this.follow = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
    });
    this.follow = true;
    setInterval(() => {
      const conn = this.conn;
      const shown = this.captions.shown;
      if (conn && conn.captions) conn.tickLag(Boolean(shown && shown.session === conn.captions));
    }, 500);
    this.updateOverlayLink();
    this.setStatus("idle", "Not started");
    if (this.options.autostart) {
      this.start("mic");
    } else if (overlay) {
      this.setStatus("idle", "Click to start the microphone");
      document.addEventListener("pointerdown", () => this.capture || this.start("mic"),
        { once: true });
    }
  }

  buildLanguageSelect() {
    const select = $("language");
    const codes = [...new Set([...LANGUAGES, this.settings.language])].filter((c) => c !== "auto");
    select.replaceChildren(new Option("Detect automatically", "auto"),
      ...codes.map((c) => new Option(`${languageName(c)} (${c})`, c)));
    select.value = this.settings.language;
    select.addEventListener("change", () => {
      this.settings.language = select.value;
      this.updateOverlayLink();
      // A session's language is fixed at its start: a new session takes over.
      if (this.capture && this.conn && !this.stopping) this.restartSession();
    });
  }

  buildTargets() {
    const box = $("targets");
    const codes = [...new Set([...TARGETS, ...this.settings.translateTo])];
    box.replaceChildren(...codes.map((code) => {
      const label = document.createElement("label");
      label.className = "chip";
      label.title = languageName(code);
      const input = document.createElement("input");
      input.type = "checkbox";
      input.value = code;
      input.checked = this.settings.translateTo.includes(code);
      input.addEventListener("change", () => this.targetsChanged());
      label.append(input, code);
      return label;
    }));
  }

  targetsChanged() {
    this.settings.translateTo = [...$("targets").querySelectorAll("input:checked")]
      .map((i) => i.value);
    this.updateOverlayLink();
    this.setOverlayLines();
    if (this.conn && !this.conn.stopping) this.conn.update(this.settings.translateTo);
  }

  setOverlayLines() {
    const lines = this.options.lines || Math.min(6, 2 * (1 + this.settings.translateTo.length));
    document.documentElement.style.setProperty("--lines", String(lines));
  }

  updateOverlayLink() {
    const q = new URLSearchParams({ overlay: "1", autostart: "1" });
    if (this.settings.language !== "auto") q.set("lang", this.settings.language);
    if (this.settings.translateTo.length) q.set("to", this.settings.translateTo.join(","));
    if (this.settings.profile !== "subtitles") q.set("profile", this.settings.profile);
    $("overlay-link").href = `/?${q}`;
  }

  setButtons() {
    const running = Boolean(this.capture);
    $("mic").classList.toggle("active", running && this.capture.kind === "mic");
    $("tab").classList.toggle("active", running && this.capture.kind === "tab");
    $("stop").disabled = !running && !(this.conn && !this.conn.stopping);
  }

  setStatus(state, text) {
    const el = $("status");
    el.dataset.state = state;
    el.textContent = text;
    document.documentElement.dataset.state = state;
  }

  message(text, level = "info", key = text) {
    const box = $("messages");
    let item = this.messages.get(key);
    if (!item) {
      item = document.createElement("li");
      this.messages.set(key, item);
    }
    item.className = level;
    item.textContent = text;
    box.prepend(item);
    while (box.children.length > 4) {
      const last = box.lastElementChild;
      for (const [k, v] of this.messages) if (v === last) this.messages.delete(k);
      last.remove();
    }
  }

  // ------------------------------------------------------------------ start / stop

  async start(kind) {
    if (this.starting) return;
    if (this.capture && this.capture.kind === kind) return;
    this.starting = true;
    try {
      const capture = await openCapture(kind, (frame) => this.onFrame(frame));
      if (this.capture) {
        // Another source: its rate may differ, so the running session finishes and a new
        // one begins.
        this.capture.close();
        if (this.conn) this.conn.stop();
        this.conn = null;
      }
      this.capture = capture;
      this.stopping = false;
      capture.track.addEventListener("ended", () => {
        if (this.capture === capture) this.stop(); // "Stop sharing", or the device went away
      });
      if (capture.ctx.state === "suspended") await this.resumeAudio(capture.ctx);
      this.connect();
    } catch (err) {
      const denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
      const text = denied
        ? `${kind === "tab" ? "Screen sharing" : "The microphone"} was not allowed: ${err.message}`
        : String((err && err.message) || err);
      this.setStatus(this.conn ? $("status").dataset.state : "error", text);
      this.message(text, "error", "capture");
    } finally {
      this.starting = false;
      this.setButtons();
    }
  }

  async resumeAudio(ctx) {
    await ctx.resume().catch(() => {});
    if (ctx.state !== "suspended") return;
    // Autoplay policy: audio may start only after a user gesture on this page.
    this.setStatus("idle", "Click anywhere to start the microphone");
    await new Promise((resolve) => {
      document.addEventListener("pointerdown", () => ctx.resume().then(resolve, resolve),
        { once: true });
    });
  }

  stop() {
    this.stopping = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (this.capture) {
      this.capture.close();
      this.capture = null;
    }
    this.clearQueue();
    const conn = this.conn;
    if (conn && conn.started && !conn.stopping) {
      this.setStatus("finishing", "Finishing the last captions…");
      conn.stop();
    } else {
      if (conn) conn.stop();
      this.conn = null;
      this.setStatus("stopped", "Stopped");
    }
    this.setButtons();
  }

  restartSession() {
    const old = this.conn;
    if (old) old.stop(); // it still delivers its last finals while the new one starts
    this.conn = null;
    this.connect();
  }

  connect() {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (!this.capture) return;
    const conn = new Connection(this, { ...this.settings, sampleRate: this.capture.sampleRate });
    this.conn = conn;
    this.setStatus("connecting", this.attempt ? "Reconnecting…" : "Connecting…");
    conn.open();
    this.setButtons();
  }

  // ------------------------------------------------------------------ audio

  onFrame({ pcm, peak }) {
    $("level").style.setProperty("--level", String(Math.min(1, peak * 3)));
    const conn = this.conn;
    if (conn && conn.canSend) {
      conn.send(pcm);
      return;
    }
    if (!this.capture || this.stopping) return;
    this.queue.push(pcm);
    this.queuedBytes += pcm.byteLength;
    const limit = QUEUE_SECONDS * this.capture.sampleRate * 2;
    while (this.queuedBytes > limit) {
      const old = this.queue.shift();
      this.queuedBytes -= old.byteLength;
      this.droppedSeconds += old.byteLength / 2 / this.capture.sampleRate;
    }
  }

  clearQueue() {
    this.queue = [];
    this.queuedBytes = 0;
  }

  // ------------------------------------------------------------------ connection events

  onStarted(conn, ev) {
    if (conn !== this.conn) return;
    this.attempt = 0;
    // What was said while connecting goes first: the session's clock starts with it.
    for (const pcm of this.queue) conn.send(pcm);
    this.clearQueue();
    if (this.droppedSeconds >= 0.5) {
      this.message(`${this.droppedSeconds.toFixed(1)} s of audio were lost while disconnected`,
        "warning", "dropped");
    }
    this.droppedSeconds = 0;
    this.setStatus("live", `Live · ${this.capture ? this.capture.label : ""}`);
    this.addDownloads(conn, ev.translate_to || []);
    this.setButtons();
  }

  onUpdated(conn, ev) {
    const targets = ev.translate_to || [];
    this.addDownloads(conn, targets);
    this.message(targets.length
      ? `Translating from now on into ${targets.map(languageName).join(", ")}`
      : "Translation off from now on", "info", "updated");
  }

  onClosed(conn, e) {
    if (conn.refused) {
      const why = conn.refused.reason || conn.refused.code;
      if (conn === this.conn) {
        this.stop();
        this.setStatus("error", `The server refused the session: ${why}`);
      }
      this.message(why, "error", "refused");
      return;
    }
    if (conn.stopping) {
      if (conn === this.conn || !this.conn) {
        const s = conn.summary;
        this.conn = null;
        if (!this.capture) {
          this.setStatus("stopped", s
            ? `Stopped · ${s.finals} lines, ${clock(s.audio_seconds)} of audio`
            : "Stopped (the connection closed before the last captions)");
        }
      }
      this.setButtons();
      return;
    }
    if (conn !== this.conn) return;
    this.conn = null;
    if (!this.capture || this.stopping) {
      this.setStatus("stopped", "Stopped");
      return;
    }
    this.scheduleReconnect(e);
  }

  scheduleReconnect(e) {
    const delay = backoffSeconds(this.attempt);
    this.attempt += 1;
    const until = performance.now() + delay * 1000;
    const why = e && e.code === 1001 ? "The server is restarting" : "Connection lost";
    const tick = () => {
      const left = Math.ceil((until - performance.now()) / 1000);
      if (left <= 0) {
        this.connect();
        return;
      }
      this.setStatus("reconnecting", `${why} — reconnecting in ${left} s`);
      this.reconnectTimer = setTimeout(tick, Math.min(1000, until - performance.now()));
    };
    tick();
  }

  // ------------------------------------------------------------------ display

  showLag(conn) {
    if (conn !== this.conn || conn.lastLag === null) return;
    const el = $("lag");
    const lag = conn.lastLag;
    el.textContent = `lag ${lag.toFixed(1)} s`;
    el.dataset.level = lag < 2.5 ? "ok" : lag < 6 ? "slow" : "behind";
    el.title = lag < 6
      ? "How far the captions are behind the speech"
      : "The captions are far behind the speech: the server is overloaded";
  }

  rendered() {
    document.documentElement.classList.add("has-captions");
    if (this.follow !== false) {
      const el = $("captions");
      el.scrollTop = el.scrollHeight;
    }
  }

  addDownloads(conn, targets) {
    const box = $("downloads");
    let item = box.querySelector(`[data-session="${conn.sessionId}"]`);
    if (!item) {
      item = document.createElement("li");
      item.dataset.session = conn.sessionId;
      item.dataset.time = new Date().toLocaleTimeString();
      box.prepend(item);
      while (box.children.length > 5) box.lastElementChild.remove();
    }
    const base = `/sessions/${encodeURIComponent(conn.sessionId)}/subtitles`;
    const link = (fmt, language) => {
      const a = document.createElement("a");
      a.href = `${base}.${fmt}${language ? `?language=${language}` : ""}`;
      a.download = `nova-${conn.sessionId.slice(0, 8)}${language ? `.${language}` : ""}.${fmt}`;
      a.textContent = fmt.toUpperCase();
      return a;
    };
    const parts = [document.createTextNode(`${item.dataset.time}: `), link("srt"), " ",
      link("vtt")];
    for (const t of targets) parts.push(` · ${t}: `, link("srt", t), " ", link("vtt", t));
    item.replaceChildren(...parts);
  }
}

const page = new Page(parseOptions(location.search));
// For embedding pages and tests: the running state, read-only by convention.
window.novaPage = page;
page.init();
