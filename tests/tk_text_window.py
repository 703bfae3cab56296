"""A Tk Text window for the desktop tests: it records every change that reaches the widget.

Run as a script under an X display: ``python tests/tk_text_window.py DIR``. It writes
``DIR/window`` (the X window id to give the focus to), ``DIR/state.json``
(its text and counts of inserts and deletions, rewritten on every change and on exit) and
``DIR/changes.jsonl`` (one line per change with ``time.monotonic()``, for the typing benchmark:
the monotonic clock is one clock for every process on the machine).

The widget's Tcl command is wrapped (as idlelib's WidgetRedirector does), so a deletion is seen
whatever made it — a BackSpace binding or anything else.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import tkinter as tk
from pathlib import Path
from typing import Any


def _wrapper(window_id: int) -> int:
    """The window Tk wraps a toplevel in (it carries WM_CLASS; a window manager would focus
    it). Tk takes X focus given to the Text widget's own window only while the pointer happens
    to be inside it; focus on the wrapper it always takes."""
    from Xlib import display

    connection = display.Display()
    try:
        window = connection.create_resource_object("window", window_id)
        return int(window.query_tree().parent.id)
    finally:
        connection.close()


def main(out: Path) -> None:
    root = tk.Tk()
    root.title("nova type test")
    text = tk.Text(root, width=100, height=20, undo=False)
    text.pack()
    state: dict[str, Any] = {"text": "", "inserts": 0, "deletions": 0, "deleted_chars": 0,
                             "focused": False}  # fmt: skip
    changes = (out / "changes.jsonl").open("a", encoding="utf-8")

    def save() -> None:
        state["text"] = text.get("1.0", "end-1c")
        tmp = out / "state.json.tmp"
        tmp.write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, out / "state.json")

    widget = str(text)
    original = widget + "_original"
    root.tk.call("rename", widget, original)

    def proxy(*args: Any) -> Any:
        operation = str(args[0]) if args else ""
        if operation not in ("insert", "delete", "replace"):
            return root.tk.call((original, *args))
        before = len(root.tk.call(original, "get", "1.0", "end-1c"))
        result = root.tk.call((original, *args))
        now = str(root.tk.call(original, "get", "1.0", "end-1c"))
        after = len(now)
        if after < before or operation == "replace":
            state["deletions"] += 1
            state["deleted_chars"] += max(before - after, 0)
        if operation == "insert":
            state["inserts"] += 1
        save()
        record = {"t": time.monotonic(), "op": operation, "text": now}
        changes.write(json.dumps(record, ensure_ascii=False) + "\n")
        changes.flush()
        return result

    root.tk.createcommand(widget, proxy)

    def finish(*_: Any) -> None:
        save()
        root.destroy()

    signal.signal(signal.SIGTERM, finish)
    root.protocol("WM_DELETE_WINDOW", finish)

    def tick() -> None:
        root.after(50, tick)  # gives Python a moment to run signal handlers

    def focused(_: Any) -> None:
        state["focused"] = True
        save()

    def unfocused(_: Any) -> None:
        state["focused"] = False
        save()

    # Tk takes keystrokes only once it has seen its FocusIn: the test waits for this.
    text.bind("<FocusIn>", focused, add=True)
    text.bind("<FocusOut>", unfocused, add=True)
    tick()
    text.focus_set()
    root.update()
    save()
    (out / "window.tmp").write_text(str(_wrapper(root.winfo_id())))
    os.replace(out / "window.tmp", out / "window")
    root.mainloop()
    changes.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
