"""The one line that says how the live session stands: connecting, live (and how much audio
has gone out), reconnecting with a countdown, finishing. The terminal view and the overlay both
show it; it reads no clock of its own."""

from __future__ import annotations

import math

from nova_client.live import ConnectionStatus


class StatusLine:
    def __init__(self, source: str) -> None:
        self.source = source
        self.status = ConnectionStatus("connecting")
        self._since = 0.0
        self._sent_s = 0.0
        # Set once a session has been live: a later "connecting" is a reconnection attempt.
        self.was_live = False
        self.finished = False

    def update(self, status: ConnectionStatus, now: float) -> None:
        self.status = status
        self._since = now
        if status.state == "live":
            self.was_live = True
            self._sent_s = 0.0  # a new session counts its own audio

    def sent(self, seconds: float) -> None:
        self._sent_s = seconds

    def text(self, now: float) -> str:
        status = self.status
        if self.finished:
            return "finished"
        if status.state == "connecting":
            again = "reconnecting" if self.was_live else "connecting"
            return f"{again} to {status.detail}…" if status.detail else f"{again}…"
        if status.state == "live":
            return f"● live · {self.source} · {self._sent_s:.0f} s of audio sent"
        if status.state == "reconnecting":
            left = max(0, math.ceil((status.retry_in or 0.0) - (now - self._since)))
            # The countdown first: a narrow terminal cuts the end of the line.
            return f"reconnecting in {left} s · gateway lost: {status.detail}"
        if status.state == "finishing":
            return "finishing: the last words and translations…"
        return status.detail or "stopped"
