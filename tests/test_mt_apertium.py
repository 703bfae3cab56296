"""The Apertium backend against the real engine (``make test`` installs apertium-eng-spa)."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from nova_common.fate import Fate, fate_of
from nova_mt.apertium import ApertiumBackend, ApertiumFailed, pairs_from_modes
from nova_mt.backend import TranslationUnavailable

# Varied on purpose: sentences without final punctuation are the ones Apertium would run together
# if the batch separated them by a single newline ("I saw the big" / "red car").
SENTENCES = [
    "Good morning everyone.",
    "I would like a cup of coffee.",
    "I saw the big",
    "red car",
    "the house is green",
    "Dr. Smith went home.",
    "what time is it",
    "The meeting starts at 10 a.m. tomorrow",
    "Can you help me?",
    'She said "hello" and left!',
    "and then",
    "we went to the park",
    "the old",
    "man the boat",
    "e.g. this",
    "This is a test...",
    "Numbers 1, 2, 3.",
    "(parenthesis",
    "closing)",
    "ok",
]

# Apertium's stream format uses these; its deformatter must escape them.
SPECIAL = [
    r"Price is $5 ^ 2 [note] back\slash user@example.com *star #hash a/b",
    "^hello$",
    "[bracket]",
    "\\",
    "{curly} <tag> & ; 'quote'",
    "@ * # /",
]


@pytest.fixture(scope="module")
def apertium() -> ApertiumBackend:
    backend = ApertiumBackend.discover()
    if backend is None:
        pytest.fail("apertium is not installed: apt-get install apertium-eng-spa (make test does)")
    return backend


def one_at_a_time(
    backend: ApertiumBackend, texts: list[str], source: str, target: str
) -> list[str]:
    # In parallel only to keep the test fast: each call is still its own apertium process.
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda t: backend.translate_batch([t], source, target)[0], texts))


def test_discovery_finds_both_directions(apertium: ApertiumBackend) -> None:
    assert (apertium.name, apertium.neural) == ("apertium", False)
    assert {("en", "es"), ("es", "en")} <= apertium.pairs
    assert apertium.supports("en", "es") and apertium.supports("es", "en")
    assert apertium.mode_for("en", "es") == "eng-spa"
    # spa-eng_US is installed too: the plain mode wins.
    assert apertium.mode_for("es", "en") == "spa-eng"


@pytest.mark.parametrize(
    ("text", "source", "target", "words"),
    [
        ("Good morning everyone.", "en", "es", ["Buenos", "días"]),
        ("I would like a cup of coffee.", "en", "es", ["taza", "café"]),
        ("Me gustaría una taza de café.", "es", "en", ["cup", "coffee"]),
    ],
)
def test_translates(
    apertium: ApertiumBackend, text: str, source: str, target: str, words: list[str]
) -> None:
    [translated] = apertium.translate_batch([text], source, target)
    for word in words:
        assert word in translated
    assert "*" not in translated  # -u: no unknown-word marks
    assert translated == translated.strip()


def test_batch_equals_one_at_a_time(apertium: ApertiumBackend) -> None:
    batch = apertium.translate_batch(SENTENCES, "en", "es")
    assert batch == one_at_a_time(apertium, SENTENCES, "en", "es")
    assert batch[3] == "Coche rojo"  # not "rojo grande": no word crossed from the line before


def test_special_characters_keep_alignment(apertium: ApertiumBackend) -> None:
    texts = [part for special in SPECIAL for part in (special, "Good morning everyone.")]
    batch = apertium.translate_batch(texts, "en", "es")
    assert batch == one_at_a_time(apertium, texts, "en", "es")
    assert batch[1::2] == ["Buenos días Todo el mundo."] * len(SPECIAL)
    assert batch[0].startswith("El precio es $5 ^ 2 [")
    assert "@example.com *" in batch[0] and "#hash" in batch[0]
    assert batch[2:8:2] == ["^hola$", "[Grupo]", "\\"]


def test_empty_sentences_pass_through(apertium: ApertiumBackend) -> None:
    texts = ["", "Good morning everyone.", "   ", "\n", "I would like a cup of coffee.", ""]
    assert apertium.translate_batch(texts, "en", "es") == [
        "",
        "Buenos días Todo el mundo.",
        "",
        "",
        "Me gustaría una taza de café.",
        "",
    ]


def test_only_empty_sentences_never_start_the_engine() -> None:
    broken = ApertiumBackend("/nonexistent/apertium", modes={("en", "es"): "eng-spa"})
    assert broken.translate_batch(["", " ", "\n"], "en", "es") == ["", "", ""]
    assert broken.translate_batch([], "en", "es") == []


def test_line_breaks_inside_a_sentence_and_outer_whitespace(apertium: ApertiumBackend) -> None:
    texts = ["I would like\na cup of\r\ncoffee.", "  Good morning everyone.  ", "ok"]
    assert apertium.translate_batch(texts, "en", "es") == apertium.translate_batch(
        ["I would like a cup of coffee.", "Good morning everyone.", "ok"], "en", "es"
    )


def test_unsupported_pair_is_permanent_and_says_what_to_install(
    apertium: ApertiumBackend,
) -> None:
    assert not apertium.supports("en", "ja")
    with pytest.raises(TranslationUnavailable) as caught:
        apertium.translate_batch(["Hello."], "en", "ja")
    message = str(caught.value)
    assert "en → ja" in message
    assert "apt-get install apertium-eng-jpn" in message
    assert "en→es" in message  # what is installed
    assert fate_of(caught.value) is Fate.DEAD


def test_missing_binary_is_not_discovered() -> None:
    assert ApertiumBackend.discover("/nonexistent/apertium") is None
    assert ApertiumBackend.discover("apertium-that-is-not-installed") is None


def test_failing_engine_is_transient() -> None:
    false = shutil.which("false")
    assert false is not None
    with pytest.raises(ApertiumFailed, match="exited with 1") as caught:
        ApertiumBackend(false, modes={("en", "es"): "eng-spa"}).translate_batch(["Hi."], "en", "es")
    assert fate_of(caught.value) is Fate.RETRY
    # A mode that vanished after discovery (package removed): apertium itself fails.
    gone = ApertiumBackend(modes={("en", "es"): "eng-xxx"})
    with pytest.raises(ApertiumFailed, match="eng-xxx"):
        gone.translate_batch(["Hi."], "en", "es")


def test_timeout_is_transient() -> None:
    slow = ApertiumBackend(modes={("en", "es"): "eng-spa"}, timeout_s=0.01)
    with pytest.raises(ApertiumFailed, match=r"longer than 0\.01 s") as caught:
        slow.translate_batch(["Good morning everyone. " * 2000], "en", "es")
    assert fate_of(caught.value) is Fate.RETRY


def test_pairs_from_a_debian_mode_listing() -> None:
    listing = """
      eng-spa
      spa-eng
      spa-eng_US
      en-gl
      gl-en
      eng-es
      Cyrl-Latn
      eco-fr-es
      fr-es
      cat_valencia-por
      *
    """.splitlines()
    assert pairs_from_modes(listing) == {
        ("en", "es"): "eng-spa",  # three-letter name over the legacy "eng-es"
        ("es", "en"): "spa-eng",  # plain over the spa-eng_US variant
        ("en", "gl"): "en-gl",  # legacy two-letter names still count
        ("gl", "en"): "gl-en",
        ("fr", "es"): "fr-es",
        ("ca", "pt"): "cat_valencia-por",  # a variant where it is the only mode
    }
    # The order of the listing does not matter.
    assert pairs_from_modes(["spa-eng_US", "spa-eng"]) == {("es", "en"): "spa-eng"}
    assert pairs_from_modes(["spa-eng", "spa-eng_US"]) == {("es", "en"): "spa-eng"}
