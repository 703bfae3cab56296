"""`nova type`: voice typing into the focused window.

Speech from the microphone (or ``--input FILE``, paced at real time) goes to the gateway in the
`typing` profile; partials and finals come back and are typed where the keyboard focus is.
Status changes go to stderr, one line each, and a summary line at the end. Ctrl-C finishes the
utterance in flight (its final is typed), then exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Hashable, Iterator, Mapping
from pathlib import Path
from typing import TextIO

from nova_cli.runtime import stop_on_signals
from nova_client.dictation import control
from nova_client.dictation.commands import prompt_for
from nova_client.dictation.editor import Editor
from nova_client.dictation.hotkey import (
    DEFAULT_HOTKEY,
    Hotkey,
    HotkeyError,
    PynputHotkey,
    X11Hotkey,
    parse_hotkey,
)
from nova_client.dictation.pause import PausableSource, Pause
from nova_client.dictation.typers import (
    Typer,
    TyperUnavailable,
    XdotoolTyper,
    choose_typer,
    open_typer,
)
from nova_client.dictation.typist import Typist
from nova_client.live import ConnectionStatus, run_live
from nova_client.sources import AudioDeviceError, AudioSource, list_devices, open_source
from nova_client.streaming import GatewayError, start_message
from nova_common.audio_file import AudioFileError
from nova_common.messages import ErrorEvent, NoticeEvent, ServerEvent

_NO_HOTKEY = ("", "none", "off")

# The same statuses as `nova listen`, plus the desktop's own.
EXIT_OK = 0
EXIT_GATEWAY = 1  # unreachable, refused the session, or lost for good
EXIT_USAGE = 2
EXIT_AUDIO = 3  # no sound server, no such device, an unreadable --input file
EXIT_DESKTOP = 4  # nothing to type with or into; --toggle with none running


def _say(message: str) -> None:
    print(f"nova type: {message}", file=sys.stderr, flush=True)


async def run_type(
    *,
    url: str,
    input_file: Path | None,
    device: str | None,
    list_devices: bool,
    language: str,
    toggle: bool,
    finals_only: bool,
    hotkey: str | None,
    typer: str,
    log_finals: Path | None = None,
    environ: Mapping[str, str] | None = None,
    api_key: str | None = None,
) -> int:
    environ = os.environ if environ is None else environ
    if toggle:
        return _toggle(environ)
    if list_devices:
        return _list_devices()
    try:
        keys = _hotkey(hotkey)
    except HotkeyError as exc:
        _say(str(exc))
        return EXIT_USAGE
    try:
        backend = open_typer(choose_typer(typer, environ), environ)
    except TyperUnavailable as exc:
        _say(str(exc))
        return EXIT_DESKTOP
    try:
        source: AudioSource = open_source(input_file=input_file, device=device, system_audio=False)
    except (AudioDeviceError, AudioFileError, OSError) as exc:
        backend.close()
        _say(str(exc))
        return EXIT_AUDIO
    if hasattr(signal, "SIGUSR1"):
        # Until the session's handler is in place, a --toggle must not kill us (the default).
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        with control.instance(environ), _finals_file(log_finals) as finals:
            return await _dictate(
                url=url, source=source, language=language, finals_only=finals_only,
                typer=backend, hotkey=keys, finals_log=finals, environ=environ,
                api_key=api_key,
            )  # fmt: skip
    except control.ControlError as exc:
        _say(str(exc))
        return EXIT_DESKTOP
    finally:
        backend.close()


def _toggle(environ: Mapping[str, str]) -> int:
    try:
        pid = control.toggle_running(environ)
    except control.ControlError as exc:
        _say(str(exc))
        return EXIT_DESKTOP
    print(f"nova type: told the running nova type (pid {pid}) to pause or resume")
    return EXIT_OK


def _list_devices() -> int:
    try:
        lines = list_devices()
    except AudioDeviceError as exc:
        _say(str(exc))
        return EXIT_AUDIO
    print("\n".join(lines) if lines else "no microphones")
    return EXIT_OK


def _hotkey(spec: str | None) -> Hotkey | None:
    if spec is not None and spec.strip().lower() in _NO_HOTKEY:
        return None
    return parse_hotkey(spec or DEFAULT_HOTKEY)


@contextlib.contextmanager
def _finals_file(path: Path | None) -> Iterator[TextIO | None]:
    if path is None:
        yield None
        return
    with path.open("w", encoding="utf-8") as file:
        yield file


class _Listener:
    """The live session's listener: status lines on stderr, events to the typist."""

    def __init__(self, typist: Typist, stop: asyncio.Event, url: str, what: str) -> None:
        self._typist = typist
        self._stop = stop
        self._url = url
        self._what = what
        self._was_live = False
        self.unreachable: str | None = None

    def status(self, status: ConnectionStatus) -> None:
        if status.state == "connecting" and not self._was_live:
            _say(f"connecting to {self._url}")
        elif status.state == "live":
            _say(("reconnected: " if self._was_live else "listening: ") + self._what)
            self._was_live = True
        elif status.state == "reconnecting":
            if not self._was_live:
                # The first connection failing is a setup problem (a wrong URL, Nova not
                # started): say so and stop, rather than retry forever in silence.
                self.unreachable = status.detail
                self._stop.set()
                return
            _say(f"lost the gateway ({status.detail}); reconnecting in {status.retry_in:.1f} s")
        elif status.state == "finishing":
            _say("finishing the last utterance")
        elif status.state == "stopped" and status.detail and not self.unreachable:
            _say(f"stopped: {status.detail}")

    def event(self, event: ServerEvent) -> None:
        if isinstance(event, NoticeEvent):
            _say(f"note: {event.reason}")
        elif isinstance(event, ErrorEvent):
            _say(f"{event.code}: {event.reason}")
        self._typist.put(event)

    def audio_sent(self, seconds: float) -> None:
        pass


async def _dictate(
    *,
    url: str,
    source: AudioSource,
    language: str,
    finals_only: bool,
    typer: Typer,
    hotkey: Hotkey | None,
    finals_log: TextIO | None,
    environ: Mapping[str, str],
    api_key: str | None = None,
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stop_on_signals(stop)

    def paused(now: bool, why: str) -> None:
        _say(f"paused ({why}): no audio is sent" if now else f"listening again ({why})")

    pause = Pause(paused)
    if hasattr(signal, "SIGUSR1"):
        loop.add_signal_handler(signal.SIGUSR1, pause.toggle, "--toggle")

    def failed(exc: BaseException) -> None:
        stop.set()

    typist = Typist(
        Editor(finals_only=finals_only), typer, own_windows=_own_windows(typer, environ),
        finals_log=finals_log, on_error=failed, warn=_say,
    )  # fmt: skip

    def pressed() -> None:  # on the hotkey's thread
        loop.call_soon_threadsafe(pause.toggle, "hotkey")

    listening = _start_hotkey(hotkey, typer, environ, pressed)
    what = f"{source.description}, typing with {typer.name} into the focused window"
    if listening is not None:
        what += f"; {hotkey} pauses"
    listener = _Listener(typist, stop, url, what)
    typing = asyncio.create_task(typist.run())
    start = start_message(
        language, profile="typing", partials=True, prompt=prompt_for(language.strip())
    )
    try:
        summary = await run_live(
            url, start, PausableSource(source, pause), listener, stop=stop, api_key=api_key
        )
    except GatewayError as exc:  # SessionRefused included
        _say(str(exc))
        return EXIT_GATEWAY
    except (AudioDeviceError, AudioFileError) as exc:
        _say(str(exc))
        return EXIT_AUDIO
    finally:
        typist.close()
        await typing
        if listening is not None:
            listening.stop()
        if hasattr(signal, "SIGUSR1"):
            loop.remove_signal_handler(signal.SIGUSR1)
    if listener.unreachable is not None:
        _say(f"{listener.unreachable} (is `nova up` running?)")
        return EXIT_GATEWAY
    if typist.error is not None:
        _say(f"typing failed: {typist.error}")
        return EXIT_DESKTOP
    if summary is None and not stop.is_set():
        _say("the gateway went away and the audio ended before it came back")
        return EXIT_GATEWAY
    _say(typist.editor.stats.line() + (f" ({summary.audio_seconds:.1f} s of audio)"
                                       if summary is not None else ""))  # fmt: skip
    return EXIT_OK


def _own_windows(typer: Typer, environ: Mapping[str, str]) -> set[Hashable]:
    window = environ.get("WINDOWID", "")
    if isinstance(typer, XdotoolTyper) and window.isdigit():
        return set(typer.keyboard.window_and_ancestors(int(window)))
    return set()


def _start_hotkey(
    hotkey: Hotkey | None, typer: Typer, environ: Mapping[str, str], on_press: Callable[[], None]
) -> X11Hotkey | PynputHotkey | None:
    """The hotkey, where this desktop has one; a hotkey that cannot be had is no reason to stop
    (`nova type --toggle` does the same), so it is only reported."""
    if hotkey is None:
        return None
    try:
        if typer.name == "xdotool":
            return X11Hotkey(hotkey, on_press, environ.get("DISPLAY"))
        if typer.name == "pynput":
            return PynputHotkey(hotkey, on_press)
    except HotkeyError as exc:
        _say(f"no hotkey: {exc}")
        return None
    _say(f"no global hotkey with {typer.name} (Wayland has none): bind `nova type --toggle` "
         "to a shortcut in the desktop's settings")  # fmt: skip
    return None
