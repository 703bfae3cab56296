// The Nova Voice page: the controls, one session at a time (connection.js) fed from the
// microphone or a shared tab (capture.js), reconnects. Caption rendering is in captions.js.

import { Access } from "./access.js";
import { openCapture } from "./capture.js";
import { Captions, backoffSeconds, clock, parseOptions } from "./captions.js";
import { Connection } from "./connection.js";
import { LANGUAGES, TARGETS, languageName } from "./languages.js";

const QUEUE_SECONDS = 5; // audio kept while (re)connecting; older audio is dropped
const $ = (id) => document.getElementById(id);

class Page {
  constructor(options) {
    this.options = options;
    this.access = Access.fromPage();
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
    $("access").addEventListener("submit", (e) => {
      e.preventDefault();
      this.useCredential($("token").value);
    });
    this.checkAccess();
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
    const token = this.access.token;
    $("overlay-link").href = `/?${q}${token ? `#token=${encodeURIComponent(token)}` : ""}`;
  }

  // ------------------------------------------------------------------ access

  /** True when the gateway refuses this page's credential (then the access field shows, with
   * the reason); false when it lets the page in, or cannot be asked (down: reconnect). */
  async checkAccess() {
    const result = await this.access.check();
    if (result.ok || result.status !== 401) return false;
    this.showAccess(result.reason);
    return true;
  }

  showAccess(reason) {
    $("access").hidden = false;
    $("access-reason").textContent = reason;
    this.setStatus("error", "This server needs an access token");
  }

  async useCredential(credential) {
    const result = await this.access.use(credential);
    $("token").value = "";
    if (!result.ok) {
      this.showAccess(result.reason);
      return;
    }
    $("access").hidden = true;
    this.updateOverlayLink();
    this.setStatus("idle", "Access granted: press Microphone or Subtitle a tab");
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
    if (!conn.opened && !conn.stopping && conn === this.conn) {
      // Refused before it opened: a browser does not say why; /auth/whoami does.
      this.checkAccess().then((denied) => {
        if (!denied) {
          this.lost(conn, e);
        } else if (conn === this.conn) {
          this.stop();
          this.showAccess($("access-reason").textContent);
        }
      });
      return;
    }
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
    this.lost(conn, e);
  }

  /** The session's connection went away unasked: reconnect while there is audio to send. */
  lost(conn, e) {
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
      a.href = this.access.link(`${base}.${fmt}${language ? `?language=${language}` : ""}`);
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
