"""TranslationRouter: backend choice, batching by language pair, cache, and failure outcomes.

The router is pure logic over the ``TranslationBackend`` protocol, so the backends here are
small recording stand-ins; the real engines have their own tests (test_mt_ct2.py, ...).
"""

from __future__ import annotations

from collections.abc import Sequence

from nova_mt.backend import TranslationBackend, TranslationUnavailable
from nova_mt.translate import (
    BackendFailed,
    SentenceCache,
    Translated,
    TranslationJob,
    TranslationRouter,
    Unavailable,
)


class RecordingBackend:
    """Translates by tagging each sentence with its name and pair; records every call."""

    def __init__(
        self,
        name: str,
        pairs: set[tuple[str, str]],
        *,
        neural: bool = False,
        error: Exception | None = None,
    ) -> None:
        self.name = name
        self.neural = neural
        self.multilingual = False
        self.pairs = pairs
        self.error = error
        self.calls: list[tuple[list[str], str, str]] = []

    def supports(self, source: str, target: str) -> bool:
        return (source, target) in self.pairs

    def translate_batch(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        self.calls.append((list(texts), source, target))
        if self.error is not None:
            raise self.error
        return [f"{self.name}:{source}>{target}:{text}" for text in texts]


def as_backend(backend: RecordingBackend) -> TranslationBackend:
    # Checked by mypy: the stand-in really implements the protocol.
    return backend


def job(text: str, source: str = "en", target: str = "es") -> TranslationJob:
    return TranslationJob(text, source, target)


def test_one_batch_call_per_language_pair_with_outcomes_aligned_to_jobs() -> None:
    backend = RecordingBackend("rules", {("en", "es"), ("en", "fr"), ("de", "es")})
    router = TranslationRouter([as_backend(backend)])
    jobs = [job("a"), job("b", target="fr"), job("c", "de"), job("d"), job("e", target="fr")]

    report = router.translate(jobs)

    assert sorted(backend.calls) == sorted(
        [(["a", "d"], "en", "es"), (["b", "e"], "en", "fr"), (["c"], "de", "es")]
    )
    assert report.outcomes == [
        Translated("rules:en>es:a", "rules"),
        Translated("rules:en>fr:b", "rules"),
        Translated("rules:de>es:c", "rules"),
        Translated("rules:en>es:d", "rules"),
        Translated("rules:en>fr:e", "rules"),
    ]
    assert sorted((c.backend, c.sentences) for c in report.calls) == [
        ("rules", 1),
        ("rules", 2),
        ("rules", 2),
    ]
    assert all(c.seconds >= 0 for c in report.calls)
    assert report.cache_hits == 0


def test_no_jobs_no_calls() -> None:
    backend = RecordingBackend("rules", {("en", "es")})
    report = TranslationRouter([as_backend(backend)]).translate([])
    assert report.outcomes == [] and report.calls == [] and backend.calls == []


def test_neural_backend_is_preferred_over_rules_whatever_the_order_given() -> None:
    rules = RecordingBackend("apertium", {("en", "es")})
    neural = RecordingBackend("ct2:nllb", {("en", "es")}, neural=True)
    router = TranslationRouter([as_backend(rules), as_backend(neural)])

    assert router.names == ("ct2:nllb", "apertium")
    assert router.translate([job("hi")]).outcomes == [Translated("ct2:nllb:en>es:hi", "ct2:nllb")]
    assert rules.calls == []


def test_first_supporting_backend_wins_and_order_is_kept_within_a_kind() -> None:
    first = RecordingBackend("ct2:a", {("en", "es")}, neural=True)
    second = RecordingBackend("ct2:b", {("en", "es"), ("en", "de")}, neural=True)
    rules = RecordingBackend("apertium", {("en", "ca")})
    router = TranslationRouter([as_backend(first), as_backend(second), as_backend(rules)])

    report = router.translate([job("x"), job("y", target="de"), job("z", target="ca")])

    assert [o.backend for o in report.outcomes if isinstance(o, Translated)] == [
        "ct2:a",
        "ct2:b",
        "apertium",
    ]
    assert router.backend_for("en", "de") is second
    assert router.backend_for("de", "en") is None


def test_rules_backend_serves_a_pair_the_neural_one_lacks() -> None:
    neural = RecordingBackend("ct2:m", {("en", "de")}, neural=True)
    rules = RecordingBackend("apertium", {("en", "es")})
    router = TranslationRouter([as_backend(rules), as_backend(neural)])
    assert router.translate([job("x")]).outcomes == [Translated("apertium:en>es:x", "apertium")]
    assert neural.calls == []


def test_identical_sentences_in_a_group_are_translated_once() -> None:
    backend = RecordingBackend("rules", {("en", "es")})
    router = TranslationRouter([as_backend(backend)], cache_size=0)

    report = router.translate([job("yes"), job("no"), job("yes"), job("yes")])

    assert backend.calls == [(["yes", "no"], "en", "es")]
    assert [o.text for o in report.outcomes if isinstance(o, Translated)] == [
        "rules:en>es:yes",
        "rules:en>es:no",
        "rules:en>es:yes",
        "rules:en>es:yes",
    ]
    assert report.calls[0].sentences == 2


def test_cache_answers_a_repeat_in_a_later_batch_without_calling_the_backend() -> None:
    backend = RecordingBackend("rules", {("en", "es")})
    router = TranslationRouter([as_backend(backend)])
    router.translate([job("thank you")])

    report = router.translate([job("thank you"), job("new")])

    assert backend.calls[1:] == [(["new"], "en", "es")]  # only the unseen sentence
    assert report.outcomes[0] == Translated("rules:en>es:thank you", "rules")
    assert report.cache_hits == 1
    assert [c.sentences for c in report.calls] == [1]


def test_a_fully_cached_group_makes_no_call() -> None:
    backend = RecordingBackend("rules", {("en", "es")})
    router = TranslationRouter([as_backend(backend)])
    router.translate([job("a")])

    report = router.translate([job("a"), job("a")])

    assert len(backend.calls) == 1
    assert report.calls == []
    assert report.cache_hits == 2
    assert report.outcomes == [Translated("rules:en>es:a", "rules")] * 2


def test_cache_is_keyed_by_pair_so_another_target_is_translated() -> None:
    backend = RecordingBackend("rules", {("en", "es"), ("en", "fr"), ("de", "es")})
    router = TranslationRouter([as_backend(backend)])
    router.translate([job("a")])

    report = router.translate([job("a", target="fr"), job("a", source="de")])

    assert report.cache_hits == 0
    assert report.outcomes == [
        Translated("rules:en>fr:a", "rules"),
        Translated("rules:de>es:a", "rules"),
    ]


def test_cache_size_zero_disables_caching() -> None:
    backend = RecordingBackend("rules", {("en", "es")})
    router = TranslationRouter([as_backend(backend)], cache_size=0)
    router.translate([job("a")])
    report = router.translate([job("a")])
    assert len(backend.calls) == 2
    assert report.cache_hits == 0


def test_cache_evicts_the_least_recently_used_sentence() -> None:
    backend = RecordingBackend("rules", {("en", "es")})
    router = TranslationRouter([as_backend(backend)], cache_size=2)
    router.translate([job("a"), job("b")])
    router.translate([job("a")])  # a is now more recent than b
    router.translate([job("c")])  # evicts b
    backend.calls.clear()

    report = router.translate([job("a"), job("b"), job("c")])

    assert backend.calls == [(["b"], "en", "es")]
    assert report.cache_hits == 2


def test_sentence_cache_is_bounded_and_lru() -> None:
    cache = SentenceCache(2)
    a, b, c = (("x", "en", "es", t) for t in "abc")
    cache.put(a, "A")
    cache.put(b, "B")
    assert cache.get(a) == "A"
    cache.put(c, "C")
    assert len(cache) == 2
    assert cache.get(b) is None
    assert (cache.get(a), cache.get(c)) == ("A", "C")


def test_sentence_cache_keeps_an_empty_translation() -> None:
    cache = SentenceCache(4)
    key = ("x", "en", "es", "...")
    cache.put(key, "")
    assert cache.get(key) == ""


def test_cache_is_keyed_by_backend() -> None:
    neural = RecordingBackend("ct2:m", {("en", "es")}, neural=True)
    rules = RecordingBackend("apertium", {("en", "es")})
    router = TranslationRouter([as_backend(neural), as_backend(rules)])
    router.translate([job("a")])
    neural.pairs.clear()  # the pair now falls to the rules backend

    report = router.translate([job("a")])

    assert report.outcomes == [Translated("apertium:en>es:a", "apertium")]
    assert report.cache_hits == 0
    assert rules.calls == [(["a"], "en", "es")]


def test_same_source_and_target_is_identity_without_any_backend() -> None:
    router = TranslationRouter([])
    report = router.translate([job("Hola.", "es", "es")])
    assert report.outcomes == [Translated("Hola.", "identity")]
    assert report.calls == []


def test_no_backend_for_the_pair_is_unavailable_with_an_actionable_reason() -> None:
    backend = RecordingBackend("apertium", {("en", "es")})
    router = TranslationRouter([as_backend(backend)])

    report = router.translate([job("a", "ja", "ko"), job("b", "ja", "ko")])

    assert backend.calls == []
    first, second = report.outcomes
    assert isinstance(first, Unavailable) and first == second
    assert first.code == "translation_unavailable"
    assert "ja → ko" in first.reason
    assert "apertium" in first.reason  # what is installed
    assert "apt-get install apertium-jpn-kor" in first.reason
    assert "nova models pull" in first.reason


def test_no_backends_at_all_says_none_installed() -> None:
    outcome = TranslationRouter([]).translate([job("a")]).outcomes[0]
    assert isinstance(outcome, Unavailable)
    assert "installed: none" in outcome.reason


def test_translation_unavailable_from_a_backend_becomes_unavailable() -> None:
    error = TranslationUnavailable("model has no Korean")
    backend = RecordingBackend("ct2:m", {("en", "ko")}, neural=True, error=error)
    router = TranslationRouter([as_backend(backend)])

    report = router.translate([job("a", target="ko")])

    assert report.outcomes == [Unavailable("model has no Korean")]
    assert report.calls == []


def test_a_failing_backend_fails_only_its_own_group() -> None:
    error = RuntimeError("out of memory")
    broken = RecordingBackend("ct2:m", {("en", "de")}, neural=True, error=error)
    fine = RecordingBackend("apertium", {("en", "es")})
    router = TranslationRouter([as_backend(broken), as_backend(fine)])

    report = router.translate([job("a", target="de"), job("b"), job("c", target="de")])

    assert report.outcomes[0] == BackendFailed(error)
    assert report.outcomes[1] == Translated("apertium:en>es:b", "apertium")
    assert report.outcomes[2] == BackendFailed(error)
    assert [c.backend for c in report.calls] == ["apertium"]


def test_a_failed_call_keeps_cached_sentences_and_caches_nothing_new() -> None:
    backend = RecordingBackend("rules", {("en", "es")})
    router = TranslationRouter([as_backend(backend)])
    router.translate([job("cached")])
    backend.error = RuntimeError("flaky")

    report = router.translate([job("cached"), job("fresh")])

    assert report.outcomes[0] == Translated("rules:en>es:cached", "rules")
    assert isinstance(report.outcomes[1], BackendFailed)
    assert report.cache_hits == 1

    backend.error = None
    backend.calls.clear()
    router.translate([job("fresh")])
    assert backend.calls == [(["fresh"], "en", "es")]  # the failure was not cached


class MiscountingBackend(RecordingBackend):
    """Breaks the protocol: one sentence fewer back than it was given."""

    def translate_batch(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        return super().translate_batch(texts, source, target)[:-1]


def test_a_backend_returning_the_wrong_number_of_sentences_fails_only_its_group() -> None:
    broken = MiscountingBackend("ct2:m", {("en", "de")}, neural=True)
    fine = RecordingBackend("apertium", {("en", "es")})
    router = TranslationRouter([as_backend(broken), as_backend(fine)])

    report = router.translate([job("a", target="de"), job("b", target="de"), job("c")])

    assert isinstance(report.outcomes[0], BackendFailed)
    assert isinstance(report.outcomes[1], BackendFailed)
    assert report.outcomes[2] == Translated("apertium:en>es:c", "apertium")


class PoisonedBackend(RecordingBackend):
    """Fails any call that includes the poisoned sentence, as an engine crash on one input."""

    def __init__(self, poison: str) -> None:
        super().__init__("rules", {("en", "es")})
        self.poison = poison

    def translate_batch(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        if self.poison in texts:
            self.calls.append((list(texts), source, target))
            raise RuntimeError("engine crashed")
        return super().translate_batch(texts, source, target)


def test_one_failing_sentence_does_not_fail_the_rest_of_its_group() -> None:
    backend = PoisonedBackend("bad one")
    router = TranslationRouter([as_backend(backend)])
    report = router.translate([job("first"), job("bad one"), job("third")])
    first, bad, third = report.outcomes
    assert first == Translated("rules:en>es:first", "rules")
    assert third == Translated("rules:en>es:third", "rules")
    assert isinstance(bad, BackendFailed) and "crashed" in str(bad.error)
    # The batch, then each sentence alone.
    assert [texts for texts, _, _ in backend.calls] == [
        ["first", "bad one", "third"], ["first"], ["bad one"], ["third"],
    ]  # fmt: skip


def test_an_unavailable_pair_is_not_retried_sentence_by_sentence() -> None:
    backend = RecordingBackend("rules", {("en", "es")}, error=TranslationUnavailable("no"))
    router = TranslationRouter([as_backend(backend)])
    report = router.translate([job("a"), job("b")])
    assert all(isinstance(o, Unavailable) for o in report.outcomes)
    assert len(backend.calls) == 1
