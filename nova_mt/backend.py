"""The one small interface every translation engine sits behind.

Backends speak Whisper's language codes (the ones sessions use) and map them to their own
through ``nova_common.languages``. They know nothing about NATS: the worker hands them a list of
sentences for one (source, target) pair and gets the same number of sentences back. Calls are
blocking and run in the worker's thread, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from nova_common.fate import PermanentError


class TranslationUnavailable(PermanentError):
    """No installed backend translates this pair: retrying cannot help, the session is told."""

    code = "translation_unavailable"


class TranslationBackend(Protocol):
    #: Shown in events and heartbeats: "apertium", "ct2:<model name>".
    name: str
    #: A neural model (as opposed to rules): preferred over rules for a pair both support.
    neural: bool
    #: Translates among many languages (NLLB-200, M2M-100), so it can take any speech to
    #: English: with one running, the gateway routes English to text MT instead of Whisper.
    multilingual: bool

    def supports(self, source: str, target: str) -> bool:
        """Whether this backend translates ``source`` → ``target`` (Whisper codes)."""
        ...

    def translate_batch(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        """One translation per input, in order. Raises ``TranslationUnavailable`` for a pair
        it does not support; any other exception counts as transient (the batch is retried)."""
        ...
