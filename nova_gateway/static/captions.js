// Caption state and rendering for the Nova Voice page: no WebSocket, no audio, no timers of its
// own beyond the one the caller injects, so it can be driven by hand in a test.
//
// DOM contract (README, "Live subtitles in the browser"):
//   #transcript  the finals, one <p class="line"> each; its textContent is the finals only
//   #translation the translations, one <p class="tr"> each; its textContent is those only
//   #partial     the utterance in progress: <span class="committed"> + <span class="tail">
// Partials may come for a later utterance while earlier finals are still owed. When the live
// line moves on to another utterance, the words it showed stay where their final will be: a
// <p class="line provisional" data-seq data-session> in the caption column (outside
// #transcript), which that final (or the error in its place) replaces.
// #transcript and #translation are `display: contents` inside one flex column (#captions):
// every line and translation gets a CSS `order`, so a translation sits under its source line
// although the two live in different parents.
//
// Committed words are never re-rendered: a final's node is written once; the committed part of
// the partial only ever gets new text nodes appended while its utterance lasts. Only the tail
// (words the server may still revise) is rewritten.

// Order slots: each session gets a range (speech order survives a session that still delivers
// its last finals while the next one runs), each line LINE_SLOTS (itself + up to 8 targets).
const LINE_SLOTS = 10;
const SESSION_SLOTS = 1_000_000;
const PARTIAL_ORDER = 2_147_483_000;
const MAX_SESSIONS = Math.floor(PARTIAL_ORDER / SESSION_SLOTS) - 1;

export const PARTIAL_INTERVAL_MS = 100; // at most ~10 partial renders a second

/** "m:ss" (or "h:mm:ss") of session seconds, for a line's time gutter. */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** How far the captions are behind the speech: audio sent so far minus the end of the audio
 * the event covers (both seconds of session audio). Never negative. */
export function lagSeconds(sentSeconds, eventEnd) {
  return Math.max(0, sentSeconds - eventEnd);
}

/** Reconnect delay in seconds for the n-th attempt in a row (0-based): 1, 2, 4, 8, 16, 30, 30… */
export function backoffSeconds(attempt) {
  return Math.min(30, 2 ** Math.max(0, attempt));
}

const LANGUAGE = /^[a-z]{2,3}$/;

/** The page's query parameters, checked: unknown or malformed values fall back to defaults. */
export function parseOptions(search) {
  const q = new URLSearchParams(search);
  const flag = (name) => ["1", "true", "yes", "on"].includes((q.get(name) || "").toLowerCase());
  const lang = (q.get("lang") || "auto").toLowerCase();
  const to = (q.get("to") || "")
    .toLowerCase()
    .split(",")
    .map((s) => s.trim())
    .filter((s) => LANGUAGE.test(s));
  // Overlay height in lines; unset: two captions, each with its translations.
  const lines = Number.parseInt(q.get("lines") || "", 10);
  return {
    overlay: flag("overlay"),
    autostart: flag("autostart"),
    language: lang === "auto" || LANGUAGE.test(lang) ? lang : "auto",
    translateTo: [...new Set(to)].slice(0, 8),
    profile: q.get("profile") === "typing" ? "typing" : "subtitles",
    lines: Number.isFinite(lines) && lines >= 1 && lines <= 20 ? lines : null,
  };
}

/**
 * The caption area. `captions.session()` opens the rendering side of one server session; feed
 * it that session's events. Sessions render in the order they were opened.
 */
export class Captions {
  constructor({ root, transcript, translation, partial, schedule, onRender } = {}) {
    this.root = root;
    this.transcript = transcript;
    this.translation = translation;
    this.partialEl = partial;
    this.doc = root.ownerDocument;
    // A scheduler (fn, ms) → void; tests pass one they drive themselves.
    this.schedule = schedule || ((fn, ms) => setTimeout(fn, ms));
    this.onRender = onRender || (() => {});
    this.sessions = 0;
    this.shown = null; // {session, seq, committed: string, committedEl, tailText}
    this.pending = null; // {session, ev}: the latest partial not yet rendered
    this.timerArmed = false;
    this.lastRender = -Infinity;
    this.partialEl.style.order = String(PARTIAL_ORDER);
  }

  session(label = "") {
    const number = this.sessions++;
    if (number > 0) {
      const mark = this.doc.createElement("div");
      mark.className = "session-break";
      mark.style.order = String(this.orderBase(number) - 1);
      mark.dataset.label = label;
      this.root.appendChild(mark);
    }
    return new CaptionSession(this, number);
  }

  orderBase(number) {
    return (Math.min(number, MAX_SESSIONS) + 1) * SESSION_SLOTS;
  }

  /** Queue a partial; it is rendered at most every PARTIAL_INTERVAL_MS, the latest one wins. */
  queuePartial(session, ev) {
    const pending = this.pending;
    if (pending && (pending.session !== session || pending.ev.seq !== ev.seq)) {
      this.flushPartial(); // another utterance's latest words: on screen before the line moves on
    }
    this.pending = { session, ev };
    if (this.timerArmed) return;
    const now = performance.now();
    const wait = Math.max(0, this.lastRender + PARTIAL_INTERVAL_MS - now);
    this.timerArmed = true;
    this.schedule(() => {
      this.timerArmed = false;
      this.flushPartial();
    }, wait);
  }

  flushPartial() {
    const pending = this.pending;
    this.pending = null;
    if (!pending) return;
    const { session, ev } = pending;
    // Its final (or a later one) may have come in while it waited.
    if (!session.accepts(ev)) return;
    const shown = this.shown;
    if (shown && shown.session.number > session.number) return; // a newer session owns it
    if (shown && shown.session === session && shown.seq > ev.seq) return; // an older utterance
    if (!shown || shown.session !== session || shown.seq !== ev.seq) {
      if (shown) shown.session.provisional(shown); // its final is still to come
      this.replacePartial(session, ev.seq);
    }
    const current = this.shown;
    const committed = ev.committed || "";
    if (committed.length > current.committed.length && committed.startsWith(current.committed)) {
      // Only new words are appended, as a new text node: what is there is never touched.
      const added = committed.slice(current.committed.length);
      current.committedEl.appendChild(this.doc.createTextNode(added));
      current.committed = committed;
    }
    const text = ev.text || "";
    const tail = text.startsWith(current.committed) ? text.slice(current.committed.length) : "";
    if (current.tailText.data !== tail) current.tailText.data = tail;
    current.start = ev.start;
    current.language = ev.language;
    this.lastRender = performance.now();
    this.onRender("partial");
  }

  replacePartial(session, seq) {
    const committedEl = this.doc.createElement("span");
    committedEl.className = "committed";
    committedEl.dataset.seq = String(seq);
    committedEl.dataset.session = String(session.number);
    const tailEl = this.doc.createElement("span");
    tailEl.className = "tail";
    const tailText = this.doc.createTextNode("");
    tailEl.appendChild(tailText);
    this.partialEl.replaceChildren(committedEl, tailEl);
    this.shown = { session, seq, committed: "", committedEl, tailText, start: null, language: "" };
  }

  /** The utterance `seq` of `session` is over (final or failed): its partial goes. */
  endPartial(session, seq) {
    if (this.pending && this.pending.session === session && this.pending.ev.seq <= seq) {
      this.pending = null;
    }
    const shown = this.shown;
    if (shown && shown.session === session && shown.seq <= seq) {
      this.partialEl.replaceChildren();
      this.shown = null;
    }
  }
}

class CaptionSession {
  constructor(captions, number) {
    this.captions = captions;
    this.number = number;
    this.base = captions.orderBase(number);
    this.lastFinal = -1; // finals arrive in seq order
    this.lines = new Map(); // seq → {order, element}
    this.provisionals = new Map(); // seq → <p>: a partial's words waiting there for its final
    this.languages = []; // translation targets in the order first seen: their slot under a line
    this.finals = 0;
    this.translations = 0;
  }

  accepts(ev) {
    return Number.isInteger(ev.seq) && ev.seq > this.lastFinal;
  }

  partial(ev) {
    if (!this.accepts(ev)) return false; // its final has arrived: stale
    this.captions.queuePartial(this, ev);
    return true;
  }

  final(ev) {
    if (!Number.isInteger(ev.seq) || this.lines.has(ev.seq)) return null; // a duplicate
    const line = this.addLine(ev.seq, ev.start, ev.language, ev.end);
    const text = (ev.text || "").trim();
    if (text) {
      line.element.appendChild(this.captions.doc.createTextNode(text));
      this.finals++;
    }
    this.captions.transcript.appendChild(line.element);
    // A separator outside any line: textContent reads as one line per final.
    this.captions.transcript.appendChild(this.captions.doc.createTextNode("\n"));
    this.captions.onRender("final");
    return line.element;
  }

  /** A final that will never come (the error event named its seq). */
  failed(seq, reason) {
    if (!Number.isInteger(seq) || this.lines.has(seq)) return;
    const line = this.addLine(seq, null, null);
    line.element.classList.add("failed");
    line.element.title = reason || "";
    this.captions.transcript.appendChild(line.element);
    this.captions.onRender("final");
  }

  /** The live line moves on from `shown` (a partial of this session): while its final is owed,
   * its words stay as a provisional line where that final will be. */
  provisional(shown) {
    const text = shown.committed + shown.tailText.data;
    if (!this.accepts(shown) || !text.trim()) return;
    const doc = this.captions.doc;
    const el = doc.createElement("p");
    el.className = "line provisional";
    el.dataset.seq = String(shown.seq);
    el.dataset.session = String(this.number);
    if (Number.isFinite(shown.start)) el.dataset.time = clock(shown.start);
    if (shown.language) el.lang = shown.language;
    const tail = doc.createElement("span");
    tail.className = "tail";
    tail.append(shown.tailText.data);
    el.append(shown.committed, tail);
    this.provisionals.get(shown.seq)?.remove();
    this.provisionals.set(shown.seq, el);
    this.captions.root.appendChild(el);
    this.placeProvisionals();
    this.captions.onRender("provisional");
  }

  /** Provisional lines take the slots the finals before and among them leave free. */
  placeProvisionals() {
    const seqs = [...this.provisionals.keys()].sort((a, b) => a - b);
    seqs.forEach((seq, i) => {
      const slot = Math.min(this.lines.size + i, SESSION_SLOTS / LINE_SLOTS - 1);
      this.provisionals.get(seq).style.order = String(this.base + slot * LINE_SLOTS);
    });
  }

  addLine(seq, start, language, end) {
    this.lastFinal = Math.max(this.lastFinal, seq);
    this.captions.endPartial(this, seq);
    const el = this.captions.doc.createElement("p");
    el.className = "line";
    el.dataset.seq = String(seq);
    el.dataset.session = String(this.number);
    if (Number.isFinite(start)) {
      el.dataset.time = clock(start);
      el.dataset.start = start.toFixed(2);
    }
    if (Number.isFinite(end)) el.dataset.end = end.toFixed(2);
    if (language) el.lang = language;
    const order = this.base + Math.min(this.lines.size, SESSION_SLOTS / LINE_SLOTS - 1) * LINE_SLOTS;
    el.style.order = String(order);
    const line = { order, element: el };
    this.lines.set(seq, line);
    for (const [held, provisional] of this.provisionals) {
      if (held > seq) continue;
      provisional.remove(); // the final (or its failure) takes its place
      this.provisionals.delete(held);
    }
    this.placeProvisionals();
    return line;
  }

  translationElement(seq, language) {
    let slot = this.languages.indexOf(language);
    if (slot < 0) {
      this.languages.push(language);
      slot = this.languages.length - 1;
    }
    const line = this.lines.get(seq);
    const order = line ? line.order + 1 + Math.min(slot, LINE_SLOTS - 2) : PARTIAL_ORDER - 1;
    const el = this.captions.doc.createElement("p");
    el.className = "tr";
    el.dataset.seq = String(seq);
    el.dataset.session = String(this.number);
    el.dataset.lang = language;
    el.lang = language;
    el.style.order = String(order);
    return el;
  }

  translation(ev) {
    if (!Number.isInteger(ev.seq) || !ev.language) return null;
    const el = this.translationElement(ev.seq, ev.language);
    const text = (ev.text || "").trim();
    if (text) el.appendChild(this.captions.doc.createTextNode(text));
    if (ev.backend) el.title = `${ev.language} · ${ev.backend}`;
    this.captions.translation.appendChild(el);
    this.captions.translation.appendChild(this.captions.doc.createTextNode("\n"));
    this.translations++;
    this.captions.onRender("translation");
    return el;
  }

  translationFailed(seq, language, reason) {
    if (!Number.isInteger(seq) || !language) return;
    const el = this.translationElement(seq, language);
    el.classList.add("failed");
    el.title = reason || "";
    this.captions.translation.appendChild(el);
    this.captions.onRender("translation");
  }
}
