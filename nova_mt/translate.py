"""Which backend translates what, batched by language pair, with a small sentence cache.

Pure logic over ``TranslationBackend``s: no NATS. The worker collects every (text, source,
target) job of a fetched batch, across sessions, and calls ``TranslationRouter.translate`` once
(in its thread); each language pair becomes one ``translate_batch`` call.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from nova_common.languages import apertium_code
from nova_mt.backend import TranslationBackend, TranslationUnavailable


@dataclass(frozen=True)
class TranslationJob:
    text: str
    source: str
    target: str


@dataclass(frozen=True)
class Translated:
    text: str
    backend: str


@dataclass(frozen=True)
class Unavailable:
    """No backend for the pair: permanent, the session is told."""

    reason: str
    code: str = TranslationUnavailable.code


@dataclass(frozen=True)
class BackendFailed:
    """The backend raised: counted as transient, the request is retried."""

    error: BaseException


Outcome = Translated | Unavailable | BackendFailed


@dataclass(frozen=True)
class BackendCall:
    backend: str
    sentences: int
    seconds: float


@dataclass
class RouterReport:
    outcomes: list[Outcome]
    calls: list[BackendCall] = field(default_factory=list)
    cache_hits: int = 0


class SentenceCache:
    """Least-recently-used cache of translations; repeated short phrases are common in speech."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, str, str, str], str] = OrderedDict()

    def get(self, key: tuple[str, str, str, str]) -> str | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: tuple[str, str, str, str], value: str) -> None:
        if self._size <= 0:
            return
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class TranslationRouter:
    """Picks, per language pair, the first backend that supports it (neural models before
    rules, in the order given); call from one thread."""

    def __init__(self, backends: Sequence[TranslationBackend], *, cache_size: int = 2048) -> None:
        self.backends = sorted(backends, key=lambda b: not b.neural)  # stable: order kept
        self._cache = SentenceCache(cache_size)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.backends)

    def backend_for(self, source: str, target: str) -> TranslationBackend | None:
        return next((b for b in self.backends if b.supports(source, target)), None)

    def translate(self, jobs: Sequence[TranslationJob]) -> RouterReport:
        report = RouterReport(outcomes=[Unavailable("not translated")] * len(jobs))
        groups: dict[tuple[str, str], list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault((job.source, job.target), []).append(i)
        for (source, target), indices in groups.items():
            self._translate_group(jobs, indices, source, target, report)
        return report

    def _translate_group(
        self,
        jobs: Sequence[TranslationJob],
        indices: list[int],
        source: str,
        target: str,
        report: RouterReport,
    ) -> None:
        if source == target:
            for i in indices:
                report.outcomes[i] = Translated(jobs[i].text, "identity")
            return
        backend = self.backend_for(source, target)
        if backend is None:
            reason = self._no_backend(source, target)
            for i in indices:
                report.outcomes[i] = Unavailable(reason)
            return
        todo: list[str] = []  # distinct sentences not in the cache, in first-seen order
        for i in indices:
            text = jobs[i].text
            cached = self._cache.get((backend.name, source, target, text))
            if cached is not None:
                report.outcomes[i] = Translated(cached, backend.name)
                report.cache_hits += 1
            elif text not in todo:
                todo.append(text)
        if not todo:
            return
        done, failures = self._call(backend, todo, source, target, report)
        transient = any(isinstance(f, BackendFailed) for f in failures.values())
        if transient and len(todo) > 1:
            # One bad sentence must not fail every session batched with it: each again, alone.
            done, failures = {}, {}
            for text in todo:
                one, failed = self._call(backend, [text], source, target, report)
                done.update(one)
                failures.update(failed)
        for i in indices:
            text = jobs[i].text
            if text in done:
                report.outcomes[i] = Translated(done[text], backend.name)
            elif text in failures:
                report.outcomes[i] = failures[text]

    def _call(
        self,
        backend: TranslationBackend,
        texts: list[str],
        source: str,
        target: str,
        report: RouterReport,
    ) -> tuple[dict[str, str], dict[str, Outcome]]:
        """One ``translate_batch``: what it translated (and cached), or why each failed."""
        started = time.perf_counter()
        failed: Outcome
        try:
            translated = backend.translate_batch(texts, source, target)
            if len(translated) != len(texts):  # a backend bug must not cost other groups
                raise RuntimeError(
                    f"{backend.name} returned {len(translated)} sentences for {len(texts)}"
                )
        except TranslationUnavailable as exc:
            failed = Unavailable(str(exc))
        except Exception as exc:
            failed = BackendFailed(exc)
        else:
            report.calls.append(
                BackendCall(backend.name, len(texts), time.perf_counter() - started)
            )
            done = dict(zip(texts, translated, strict=True))
            for text, result in done.items():
                self._cache.put((backend.name, source, target, text), result)
            return done, {}
        return {}, dict.fromkeys(texts, failed)

    def _no_backend(self, source: str, target: str) -> str:
        installed = ", ".join(self.names) or "none"
        a, b = apertium_code(source), apertium_code(target)
        # Debian names a pair's package in one order for both directions.
        apertium = (
            f" or an Apertium pair (apt-get install apertium-{a}-{b} or apertium-{b}-{a}, if "
            "Debian has it)"
            if a and b
            else ""
        )
        return (
            f"no translation backend for {source} → {target} (installed: {installed}); install "
            f"a model (nova models pull nllb-200-distilled-600M){apertium}"
        )
