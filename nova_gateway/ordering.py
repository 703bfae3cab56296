"""Per-session delivery in ``seq`` order without duplicates, whatever order workers finish in."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class InOrderDelivery(Generic[T]):
    """Holds results until every earlier ``seq`` is resolved; drops repeats (redeliveries)."""

    def __init__(self) -> None:
        self._next = 0
        self._issued = 0
        self._held: dict[int, T | None] = {}
        self.duplicates = 0

    def issue(self) -> int:
        """A new seq for an utterance about to be published."""
        seq = self._issued
        self._issued += 1
        return seq

    @property
    def stalled(self) -> bool:
        """A later result is held back waiting for an earlier one."""
        return bool(self._held)

    @property
    def next_seq(self) -> int:
        """The seq the next ``issue()`` will return: the utterance now in progress."""
        return self._issued

    @property
    def next_release(self) -> int:
        """The earliest seq not yet released to the client."""
        return self._next

    @property
    def outstanding(self) -> int:
        """Issued seqs not yet released to the client."""
        return self._issued - self._next

    def accept(self, seq: int, item: T | None) -> list[T]:
        """Record the result for ``seq`` (``None`` resolves it with nothing to show)."""
        if seq < self._next or seq in self._held or seq >= self._issued:
            self.duplicates += 1
            return []
        self._held[seq] = item
        ready: list[T] = []
        while self._next in self._held:
            value = self._held.pop(self._next)
            if value is not None:
                ready.append(value)
            self._next += 1
        return ready
