"""nova_gateway/static/captions.js alone, in Debian's chromium headless without Nova: the page's
own files served to it, events fed to the caption state, the DOM watched by the observer that
the live tests in test_browser_page.py use."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.page_harness import OBSERVER_JS, VIEWPORT, artifacts_dir, launch_options, serve_static

pytestmark = pytest.mark.browser


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
