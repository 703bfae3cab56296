"""Subtitles over everything else on the desktop: a frameless, always-on-top, semi-transparent
window near the bottom of the screen, like the seed's Electron overlay. Two caption lines roll
as words come (the newest final, then the utterance in progress, its unsure tail dimmer) and the
newest translation sits under them.

Drag it with the mouse to move it; Escape (or q) closes it and ends `nova listen`; + and - make
the text larger or smaller. It is override-redirect (no window manager frame or focus), so a
click on it takes the keyboard focus for those keys, and it raises itself again whenever
another window covers it.

Tk is not thread-safe, so only one thread ever touches it: the asyncio loop's, which calls
``pump`` every few milliseconds (that also keeps Tk on the main thread, which macOS requires).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nova_client.listen.captions import Captions
from nova_client.listen.layout import Line, Span, Style, words_of, wrap

# The broadcast convention for live captions: two lines of at most 42 characters.
CAPTION_CHARS = 42
CAPTION_ROWS = 2
# With several targets each gets one row, up to this many.
MAX_TRANSLATION_ROWS = 4
# How often the loop lets Tk handle its events and redraw.
PUMP_INTERVAL_S = 0.03

BACKGROUND = "#101010"
ALPHA = 0.82
_COLOURS: dict[Style, str] = {
    "final": "#ffffff",
    "committed": "#ffffff",
    "tail": "#b8b8b8",
    "translation": "#ffd75e",
    "pending": "#8a8a8a",
    "status": "#8a8a8a",
}
FONT_FAMILIES = ("DejaVu Sans", "Noto Sans", "Helvetica", "Arial")


@dataclass(frozen=True)
class OverlayView:
    caption: tuple[Line, ...]
    translation: tuple[Line, ...]


def translation_rows(targets: int) -> int:
    return (
        0 if targets == 0 else CAPTION_ROWS if targets == 1 else min(targets, MAX_TRANSLATION_ROWS)
    )


def overlay_view(captions: Captions, width: int = CAPTION_CHARS) -> OverlayView:
    """What the window shows: the newest caption rows, then the newest translation."""
    words: list[tuple[str, Style]] = []
    latest = captions.latest
    if latest is not None:
        words += words_of(latest.text, "tail" if latest.unfinished else "final")
    for partial in [*captions.pending, captions.partial]:
        if partial is not None:
            words += words_of(partial.committed, "committed") + words_of(partial.tail, "tail")
    caption = tuple(wrap(words, width)[-CAPTION_ROWS:])

    translated = captions.latest_translated
    rows: list[Line] = []
    if translated is not None:
        pairs = translated.ordered_translations()
        if len(translated.targets) == 1:
            rows = wrap(words_of(pairs[0][1], "translation"), width)[-CAPTION_ROWS:]
        else:
            for language, text in pairs[:MAX_TRANSLATION_ROWS]:
                # One row each: the end of a long one gives way to the other languages.
                rows += wrap(
                    words_of(text, "translation"), width, first=Span(f"[{language}] ", "pending")
                )[:1]
    return OverlayView(caption, tuple(rows))


class OverlayUnavailable(RuntimeError):
    """No display to open the window on (no X server or Wayland's XWayland, say)."""


class Overlay:
    def __init__(
        self,
        *,
        targets: int,
        on_quit: Callable[[], None],
        title: str = "Nova Voice subtitles",
    ) -> None:
        import tkinter as tk
        import tkinter.font as tkfont

        try:
            root = tk.Tk(className="NovaListen")
        except tk.TclError as exc:
            raise OverlayUnavailable(f"cannot open the overlay window: {exc}") from exc
        self._tk = tk
        self._root = root
        self._on_quit = on_quit
        self.closed = False
        root.title(title)
        root.overrideredirect(True)
        root.attributes("-topmost", True)
        root.configure(bg=BACKGROUND)

        families = set(tkfont.families(root))
        family = next((f for f in FONT_FAMILIES if f in families), "TkDefaultFont")
        self._size = max(22, root.winfo_screenheight() // 28)
        self._font = tkfont.Font(root, family=family, size=-self._size)
        self._small = tkfont.Font(root, family=family, size=-max(12, self._size // 2))
        self._rows = CAPTION_ROWS + translation_rows(targets)
        self._text = tk.Text(
            root,
            width=CAPTION_CHARS + 4,  # proportional letters: room for a line of wide ones
            height=self._rows,
            font=self._font,
            bg=BACKGROUND,
            bd=0,
            highlightthickness=0,
            wrap="none",
            cursor="fleur",
            padx=self._size,
            pady=self._size // 3,
        )
        for style, colour in _COLOURS.items():
            self._text.tag_configure(style, foreground=colour)
        self._text.tag_configure("centre", justify="center")
        self._text.configure(state="disabled")
        self._text.pack(fill="both", expand=True)
        self._status = tk.Label(
            root, font=self._small, fg=_COLOURS["status"], bg=BACKGROUND, anchor="center"
        )
        self._status.pack(fill="x")
        self._shown: tuple[OverlayView, str] | None = None
        self._drag_from: tuple[int, int] | None = None

        for widget in (root, self._text, self._status):
            widget.bind("<ButtonPress-1>", self._press)
            widget.bind("<B1-Motion>", self._drag)
        root.bind("<Escape>", self._quit)
        root.bind("<KeyPress-q>", self._quit)
        root.bind("<KeyPress-plus>", lambda _e: self._resize(+4))
        root.bind("<KeyPress-equal>", lambda _e: self._resize(+4))
        root.bind("<KeyPress-minus>", lambda _e: self._resize(-4))
        # Covered by another window (there is no window manager to keep an override-redirect
        # window above the others): come back on top.
        self._text.bind("<Visibility>", self._covered)
        root.protocol("WM_DELETE_WINDOW", self._quit)

        root.update_idletasks()
        width, height = root.winfo_reqwidth(), root.winfo_reqheight()
        x = (root.winfo_screenwidth() - width) // 2
        y = root.winfo_screenheight() - height - root.winfo_screenheight() // 12
        root.geometry(f"+{x}+{y}")
        root.update()
        # Only now: on X11 Tk sets the window's opacity property only once it is mapped.
        root.attributes("-alpha", ALPHA)
        self.show(OverlayView((), ()), "Nova Voice · drag to move · Esc closes")

    @property
    def window_title(self) -> str:
        return str(self._root.title())

    def show(self, view: OverlayView, status: str) -> None:
        if self.closed or self._shown == (view, status):
            return
        self._shown = (view, status)
        # Captions sit on the lower of their rows, next to the translation, as subtitles do.
        padding: list[Line] = [()] * (CAPTION_ROWS - len(view.caption))
        rows = padding + list(view.caption) + list(view.translation)
        text = self._text
        text.configure(state="normal")
        text.delete("1.0", "end")
        for i, line in enumerate(rows[: self._rows]):
            if i:
                text.insert("end", "\n")
            for span in line:
                text.insert("end", span.text, (span.style, "centre"))
        text.tag_add("centre", "1.0", "end")
        text.configure(state="disabled")
        self._status.configure(text=status)

    def pump(self) -> None:
        """Lets Tk handle what happened (clicks, keys, drags) and redraw."""
        if self.closed:
            return
        try:
            self._root.update()
        except self._tk.TclError:  # the window or the display went away
            self.closed = True
            self._on_quit()

    def hide(self) -> None:
        if not self.closed:
            self._root.withdraw()  # shown at the next pump: this may run inside Tk's callback

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._root.destroy()

    def _press(self, event: Any) -> None:
        self._root.focus_force()  # override-redirect: nothing else gives it the keyboard
        self._drag_from = (event.x_root - self._root.winfo_x(), event.y_root - self._root.winfo_y())

    def _drag(self, event: Any) -> None:
        if self._drag_from is not None:
            dx, dy = self._drag_from
            self._root.geometry(f"+{event.x_root - dx}+{event.y_root - dy}")

    def _covered(self, event: Any) -> None:
        if str(event.state) != "VisibilityUnobscured":
            self._root.lift()

    def _resize(self, step: int) -> None:
        self._size = max(12, min(96, self._size + step))
        self._font.configure(size=-self._size)
        self._small.configure(size=-max(12, self._size // 2))
        self._text.configure(padx=self._size, pady=self._size // 3)

    def _quit(self, _event: Any = None) -> None:
        self._on_quit()
