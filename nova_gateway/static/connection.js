// One WebSocket session on the same origin's /ws: start, audio out, events in, the lag.

import { lagSeconds } from "./captions.js";
import { languageName } from "./languages.js";

const STARVED_MS = 3000; // no caption event for this long while a partial shows: lag grows live
// A start refused for its settings: reconnecting would only be refused again.
const REFUSALS = new Set(["unsupported_language", "unsupported_sample_rate",
  "unsupported_channels", "invalid_message", "already_started"]);

function wsUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

export class Connection {
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
    // A token, if the page has one, rides as a subprotocol (see access.js).
    const ws = new WebSocket(wsUrl(), this.page.access.protocols());
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.opened = false;
    ws.onopen = () => {
      this.opened = true;
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
