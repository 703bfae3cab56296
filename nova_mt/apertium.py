"""Rule-based translation with Debian's Apertium (``apt-get install apertium-eng-spa``).

Starting ``apertium`` costs about 100 ms (a shell pipeline of a dozen programs), so a batch is one
process: the sentences go in as paragraphs, one per line with a blank line between. A blank line
is what Apertium's text deformatter turns into a sentence boundary; with a single newline it is
only whitespace *inside* a sentence, and transfer rules then move words across it ("I saw the
big" / "red car" comes back as "Vi el coche" / "rojo grande"). Everything else in the text is
safe: the deformatter escapes Apertium's stream syntax (``^ $ [ ] \\ @ * # / { }``), so such
characters neither break the stream nor shift the alignment.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import structlog

from nova_common.fate import TransientError
from nova_common.languages import WHISPER_LANGUAGE_SET, apertium_code, from_apertium
from nova_mt.backend import TranslationBackend, TranslationUnavailable

log = structlog.get_logger(__name__)

# Between sentences of a batch; see the module docstring.
_SEPARATOR = "\n\n"
# `apertium -l` reads a directory listing: never slow unless something is badly wrong.
_LIST_TIMEOUT_S = 10.0


class ApertiumFailed(TransientError):
    """The apertium process failed or timed out; the batch is retried."""


def _language(name: str) -> str | None:
    """The Whisper code for one side of a mode name.

    Debian still ships pairs named the old way, with two-letter codes (``en-gl``, ``fr-es``),
    next to the ISO 639-3 ones (``eng-spa``); ``from_apertium`` knows only the latter.
    """
    code = from_apertium(name)
    if code is not None:
        return code
    base = name.split("_")[0]
    return base if len(base) == 2 and base in WHISPER_LANGUAGE_SET else None


def pairs_from_modes(modes: Iterable[str]) -> dict[tuple[str, str], str]:
    """(source, target) in Whisper codes → the Apertium mode that translates it.

    ``modes`` are the names ``apertium -l`` prints. Modes that are not a language pair
    (``Cyrl-Latn`` transliteration, ``eco-fr-es`` variants of a pair) are left out. Where several
    modes translate the same pair, a plain one (``spa-eng``) wins over a regional variant
    (``spa-eng_US``), and a three-letter name over a legacy two-letter one.
    """
    best: dict[tuple[str, str], tuple[tuple[int, int, str], str]] = {}
    for raw in modes:
        mode = raw.strip()
        sides = mode.split("-")
        if len(sides) != 2:
            continue
        source, target = (_language(side) for side in sides)
        if source is None or target is None or source == target:
            continue
        variants = sum("_" in side for side in sides)
        legacy = sum(from_apertium(side) is None for side in sides)
        rank = (variants, legacy, mode)
        current = best.get((source, target))
        if current is None or rank < current[0]:
            best[(source, target)] = (rank, mode)
    return {pair: mode for pair, (_, mode) in best.items()}


class ApertiumBackend:
    """The installed Apertium pairs; blocking calls, run them in a worker thread."""

    name = "apertium"
    neural = False
    multilingual = False

    def __init__(
        self,
        command: str = "apertium",
        *,
        modes: dict[tuple[str, str], str] | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        self.command = command
        self.timeout_s = timeout_s
        self._modes = dict(modes) if modes is not None else self._list_modes(command)
        self.pairs: frozenset[tuple[str, str]] = frozenset(self._modes)

    @classmethod
    def discover(
        cls, command: str = "apertium", *, timeout_s: float = 60.0
    ) -> ApertiumBackend | None:
        """The backend with every installed pair, or None where ``command`` is not installed
        (or cannot even list its pairs)."""
        path = shutil.which(command)
        if path is None:
            log.info("apertium not installed", command=command)
            return None
        try:
            modes = cls._list_modes(path)
        except ApertiumFailed as exc:
            log.warning("apertium cannot list its pairs", command=path, error=str(exc))
            return None
        backend = cls(path, modes=modes, timeout_s=timeout_s)
        log.info("apertium pairs", command=path, pairs=sorted(f"{s}-{t}" for s, t in backend.pairs))
        return backend

    @staticmethod
    def _list_modes(command: str) -> dict[tuple[str, str], str]:
        listing = _run([command, "-l"], "", _LIST_TIMEOUT_S)
        return pairs_from_modes(listing.splitlines())

    def supports(self, source: str, target: str) -> bool:
        return (source, target) in self.pairs

    def mode_for(self, source: str, target: str) -> str:
        """The Apertium mode for a pair; raises ``TranslationUnavailable`` where none is installed."""
        mode = self._modes.get((source, target))
        if mode is not None:
            return mode
        a, b = apertium_code(source), apertium_code(target)
        installed = ", ".join(sorted(f"{s}→{t}" for s, t in self.pairs)) or "none"
        hint = (
            f"apt-get install apertium-{a}-{b} (or apertium-{b}-{a}), if Debian packages it"
            if a and b
            else "Apertium has no code for this language"
        )
        raise TranslationUnavailable(
            f"no Apertium pair for {source} → {target} (installed: {installed}); {hint}"
        )

    def translate_batch(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        mode = self.mode_for(source, target)
        # A sentence's own line breaks would split it in two on the way back.
        cleaned = [" ".join(text.splitlines()).strip() for text in texts]
        todo = [text for text in cleaned if text]
        if not todo:
            return ["" for _ in texts]
        translated = self._translate(todo, mode)
        if len(translated) != len(todo):
            # Not seen in testing, but one process per sentence cannot misalign.
            log.warning("apertium batch misaligned", mode=mode, sent=len(todo), got=len(translated))
            translated = [" ".join(self._translate([text], mode)) for text in todo]
        results = iter(translated)
        return [next(results) if text else "" for text in cleaned]

    def _translate(self, sentences: list[str], mode: str) -> list[str]:
        out = _run(
            [self.command, "-u", "-f", "txt", mode],
            _SEPARATOR.join(sentences) + "\n",
            self.timeout_s,
        )
        out = out.removesuffix("\n")
        return [sentence.strip() for sentence in out.split(_SEPARATOR)]


def _run(argv: list[str], stdin: str, timeout_s: float) -> str:
    """stdout of ``argv`` fed ``stdin``; raises ``ApertiumFailed`` on any failure.

    ``apertium`` is a shell script running a pipeline: on a timeout the whole process group is
    killed, or the pipeline's programs would linger after the script.
    """
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
    except OSError as exc:
        raise ApertiumFailed(f"cannot run {argv[0]}: {exc}") from exc
    try:
        out, err = proc.communicate(stdin, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise ApertiumFailed(f"{' '.join(argv)} took longer than {timeout_s:g} s") from None
    except BaseException:
        _kill_group(proc)
        raise
    if proc.returncode != 0:
        detail = (err.strip() or out.strip())[-500:]
        raise ApertiumFailed(f"{' '.join(argv)} exited with {proc.returncode}: {detail}")
    return out


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


if TYPE_CHECKING:  # mypy checks the backend against the protocol
    _protocol_check: TranslationBackend = ApertiumBackend(modes={})
