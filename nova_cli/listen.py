"""`nova listen`: live subtitles of the microphone, of what the machine plays
(``--system-audio``) or of a file paced like a microphone (``--input``), with translations.

On a terminal the subtitles are live (nova_client.listen.terminal); piped, or with
``--format jsonl``, only finals are written, as `nova transcribe` writes them; ``--overlay``
puts them in a desktop window as well (finals still go to stdout). Ctrl-C stops: the utterance
in flight is finished and its translations come, then the exit status is 0 (a second Ctrl-C
quits at once).

The first connection must succeed (a gateway that is not there is an error, not something to
wait for); once a session has been live, a lost gateway is reconnected to, saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import TextIO

from nova_client.formats import Format
from nova_client.listen.captions import Captions
from nova_client.listen.overlay import (
    PUMP_INTERVAL_S,
    Overlay,
    OverlayUnavailable,
    overlay_view,
)
from nova_client.listen.printer import SessionWriter
from nova_client.listen.status import StatusLine
from nova_client.listen.terminal import TerminalView
from nova_client.live import ConnectionStatus, run_live
from nova_client.sources import AudioDeviceError, AudioSource, list_devices, open_source
from nova_client.streaming import GatewayError, SessionRefused, start_message
from nova_common.audio_file import AudioFileError
from nova_common.messages import ErrorEvent, NoticeEvent, ServerEvent, SessionStarted

# Exit statuses (the README lists them).
EXIT_OK = 0
EXIT_GATEWAY = 1  # unreachable, refused the session, or lost for good
EXIT_USAGE = 2
EXIT_AUDIO = 3  # no sound server, no such device, an unreadable --input file
EXIT_DISPLAY = 4  # --overlay without a display

# How often the live views are redrawn without an event: the reconnect countdown, the seconds
# sent, and finals whose translations took too long moving on.
TICK_S = 0.5


class ListenSession:
    """The live session's listener: keeps the captions and tells the views."""

    def __init__(
        self,
        *,
        source: AudioSource,
        asked_targets: tuple[str, ...],
        terminal: TerminalView | None,
        writer: SessionWriter | None,
        err: TextIO,
    ) -> None:
        self.captions = Captions()
        self.line = StatusLine(source.description)
        self.stop = asyncio.Event()
        # Set by Ctrl-C or the overlay's Escape: the user is done (an exit status of 0).
        self.quit = asyncio.Event()
        # The first connection failed: why.
        self.unreachable: str | None = None
        self._asked = asked_targets
        self._terminal = terminal
        # Made after the session, which its Escape key ends.
        self.overlay: Overlay | None = None
        self._writer = writer
        self._err = err
        self._lost = False
        self._said: set[str] = set()

    # --------------------------------------------------------------- LiveListener

    def status(self, status: ConnectionStatus) -> None:
        if status.state == "reconnecting":
            if not self.line.was_live:
                self.unreachable = status.detail
                self.stop.set()
                return
            if not self._lost:
                self._lost = True
                self.note(f"lost the gateway ({status.detail}); reconnecting")
        elif status.state == "live" and self._lost:
            self._lost = False
            self.note("reconnected (a new session)")
        self.line.update(status, time.monotonic())
        self.refresh()

    def event(self, event: ServerEvent) -> None:
        self.captions.apply(event, time.monotonic())
        if self._writer is not None:
            self._writer.event(event)
        if isinstance(event, SessionStarted) and self._asked and not event.translate_to:
            self.note_once("no_mt", "this gateway does not translate; --translate-to is ignored")
        elif isinstance(event, ErrorEvent):
            # A target with no backend fails every final the same way: once is enough.
            key = (
                f"{event.code}:{event.language}" if event.language else f"{event.code}:{event.seq}"
            )
            self.note_once(key, f"{event.code}: {event.reason}")
        elif isinstance(event, NoticeEvent):
            # The gateway may repeat a notice (at start and at stop).
            self.note_once(f"{event.code}:{event.reason}", event.reason)
        self.refresh()

    def audio_sent(self, seconds: float) -> None:
        self.line.sent(seconds)  # shown at the next tick: ten chunks a second need no redraw each

    # --------------------------------------------------------------- views

    def refresh(self) -> None:
        now = time.monotonic()
        if self._terminal is not None:
            self._terminal.show(self.captions, self.line.text(now), now)
        if self.overlay is not None:
            live = self.line.status.state == "live" and not self.line.finished
            closing = "finished · Esc closes" if self.line.finished else self.line.text(now)
            self.overlay.show(overlay_view(self.captions), "" if live else closing)

    def note(self, text: str) -> None:
        line = f"nova listen: {text}"
        if self._terminal is not None:
            self._terminal.message(line)
        else:
            self._err.write(line + "\n")
            self._err.flush()

    def note_once(self, key: str, text: str) -> None:
        if key not in self._said:
            self._said.add(key)
            self.note(text)

    def user_quit(self) -> None:
        self.quit.set()
        self.stop.set()
        if self.overlay is not None:
            self.overlay.hide()  # at once; the session may take a moment to finish

    def close(self) -> None:
        """The session is over: whatever still waits is written out."""
        if self._terminal is not None:
            self._terminal.close(self.captions)
        if self._writer is not None:
            self._writer.finish()


async def run_listen(
    *,
    url: str,
    input_file: Path | None,
    device: str | None,
    list_devices: bool,
    system_audio: bool,
    language: str,
    translate_to: tuple[str, ...],
    fmt: str,
    overlay: bool,
    api_key: str | None = None,
) -> int:
    err = sys.stderr
    if list_devices:
        return _list_devices(err)
    if input_file is not None and (device is not None or system_audio):
        print("nova listen: --input takes the place of --device and --system-audio", file=err)
        return EXIT_USAGE
    if device is not None and system_audio:
        print("nova listen: --device is a microphone; --system-audio is not one: pick either",
              file=err)  # fmt: skip
        return EXIT_USAGE
    try:
        source = open_source(input_file=input_file, device=device, system_audio=system_audio)
    except (AudioDeviceError, AudioFileError) as exc:
        print(f"nova listen: {exc}", file=err)
        return EXIT_AUDIO

    out = sys.stdout
    live_terminal = fmt == "text" and not overlay and out.isatty()
    writer = (
        None
        if live_terminal
        else SessionWriter(out, _format(fmt), source=_name(source, input_file))
    )
    session = ListenSession(
        source=source,
        asked_targets=translate_to,
        terminal=TerminalView(out, err) if live_terminal else None,
        writer=writer,
        err=err,
    )
    if overlay:
        try:
            session.overlay = Overlay(targets=len(translate_to), on_quit=session.user_quit)
        except OverlayUnavailable as exc:
            print(f"nova listen: {exc} (is DISPLAY set?)", file=err)
            return EXIT_DISPLAY
    return await _run(session, url, source, language, translate_to, err, api_key)


async def _run(
    session: ListenSession,
    url: str,
    source: AudioSource,
    language: str,
    translate_to: tuple[str, ...],
    err: TextIO,
    api_key: str | None = None,
) -> int:
    loop = asyncio.get_running_loop()
    window = session.overlay

    def interrupted() -> None:
        # The next Ctrl-C gets Python's own handling: KeyboardInterrupt, out at once.
        with contextlib.suppress(NotImplementedError, ValueError):
            loop.remove_signal_handler(signal.SIGINT)
        session.user_quit()

    with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C stops at once there
        loop.add_signal_handler(signal.SIGINT, interrupted)
    background = [asyncio.create_task(_tick(session))]
    if window is not None:
        background.append(asyncio.create_task(_pump(window)))
    failure: tuple[int, str] | None = None
    summary = None
    try:
        start = start_message(language, translate_to=translate_to)
        summary = await run_live(
            url, start, source, session, reconnect=True, stop=session.stop, api_key=api_key
        )
    except SessionRefused as exc:
        failure = EXIT_GATEWAY, str(exc)
    except GatewayError as exc:
        failure = EXIT_GATEWAY, str(exc)
    except AudioDeviceError as exc:
        failure = EXIT_AUDIO, str(exc)
    finally:
        session.close()
    if failure is None and session.unreachable is not None:
        failure = EXIT_GATEWAY, f"{session.unreachable} (is `nova up` running?)"
    if failure is None and summary is None and not session.quit.is_set():
        failure = EXIT_GATEWAY, "the gateway went away and the audio ended before it came back"
    try:
        if failure is not None:
            print(f"nova listen: {failure[1]}", file=err)
            return failure[0]
        if window is not None and not session.quit.is_set():
            # The audio has ended (a file): the last captions stay up until the user closes them.
            session.line.finished = True
            session.refresh()
            await session.quit.wait()
        return EXIT_OK
    finally:
        with contextlib.suppress(NotImplementedError, ValueError):
            loop.remove_signal_handler(signal.SIGINT)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if window is not None:
            window.close()


async def _tick(session: ListenSession) -> None:
    while True:
        await asyncio.sleep(TICK_S)
        session.refresh()


async def _pump(window: Overlay) -> None:
    while not window.closed:
        window.pump()
        await asyncio.sleep(PUMP_INTERVAL_S)


def _list_devices(err: TextIO) -> int:
    try:
        lines = list_devices()
    except AudioDeviceError as exc:
        print(f"nova listen: {exc}", file=err)
        return EXIT_AUDIO
    print("\n".join(lines) if lines else "no microphones")
    return EXIT_OK


def _format(fmt: str) -> Format:
    return "jsonl" if fmt == "jsonl" else "text"


def _name(source: AudioSource, input_file: Path | None) -> str:
    """What --format jsonl's ``file`` says: the file, or the device the audio came from."""
    return str(input_file) if input_file is not None else source.description
