"""In-order, exactly-once release of per-session results, whatever order they arrive in."""

from __future__ import annotations

import random

import pytest

from nova_gateway.ordering import InOrderDelivery


def issued(n: int) -> InOrderDelivery[str]:
    delivery: InOrderDelivery[str] = InOrderDelivery()
    for expected in range(n):
        assert delivery.issue() == expected
    return delivery


def test_seqs_are_issued_from_zero_upwards() -> None:
    delivery: InOrderDelivery[str] = InOrderDelivery()
    assert [delivery.issue() for _ in range(4)] == [0, 1, 2, 3]
    assert delivery.outstanding == 4


def test_in_order_results_are_released_immediately() -> None:
    delivery = issued(3)
    assert delivery.accept(0, "a") == ["a"]
    assert delivery.accept(1, "b") == ["b"]
    assert delivery.accept(2, "c") == ["c"]
    assert delivery.outstanding == 0


def test_out_of_order_results_are_held_until_the_gap_fills() -> None:
    delivery = issued(4)
    assert delivery.accept(2, "c") == []
    assert delivery.accept(1, "b") == []
    assert delivery.outstanding == 4
    assert delivery.accept(0, "a") == ["a", "b", "c"]
    assert delivery.outstanding == 1
    assert delivery.accept(3, "d") == ["d"]
    assert delivery.outstanding == 0
    assert delivery.duplicates == 0


def test_resent_held_seq_is_dropped_and_counted() -> None:
    delivery = issued(2)
    assert delivery.accept(1, "b") == []
    assert delivery.accept(1, "b-again") == []
    assert delivery.duplicates == 1
    # The first copy is the one released.
    assert delivery.accept(0, "a") == ["a", "b"]


def test_already_released_seq_is_dropped_and_counted() -> None:
    delivery = issued(2)
    assert delivery.accept(0, "a") == ["a"]
    assert delivery.accept(0, "a-again") == []
    assert delivery.duplicates == 1
    assert delivery.outstanding == 1


def test_none_resolves_a_seq_without_output() -> None:
    delivery = issued(3)
    assert delivery.accept(1, None) == []
    assert delivery.accept(0, "a") == ["a"]  # seq 1 resolved, nothing to show
    assert delivery.outstanding == 1
    assert delivery.accept(2, "c") == ["c"]
    assert delivery.outstanding == 0


def test_none_at_the_head_unblocks_later_results() -> None:
    delivery = issued(2)
    assert delivery.accept(1, "b") == []
    assert delivery.accept(0, None) == ["b"]


def test_outstanding_counts_issued_but_unreleased_seqs() -> None:
    delivery = issued(0)
    assert delivery.outstanding == 0
    delivery.issue()
    delivery.issue()
    assert delivery.outstanding == 2
    delivery.accept(1, "b")  # held, not released
    assert delivery.outstanding == 2
    delivery.accept(0, "a")
    assert delivery.outstanding == 0


@pytest.mark.parametrize("seq", [2, 3, 1000])
def test_seq_never_issued_is_ignored(seq: int) -> None:
    """A result for a seq this session never issued (another gateway's, or garbage) changes nothing."""
    delivery = issued(2)
    assert delivery.accept(seq, "stray") == []
    assert delivery.outstanding == 2
    # Issuing that seq later must not release the stray result.
    while delivery.issue() < seq:
        pass
    assert delivery.accept(0, "a") == ["a"]
    assert delivery.accept(1, "b") == ["b"]
    assert delivery.outstanding == seq + 1 - 2


@pytest.mark.parametrize("seed", range(200))
def test_any_arrival_order_with_duplicates_yields_each_seq_once_in_order(seed: int) -> None:
    """Property (hypothesis is not a dependency, so seeded random cases instead)."""
    rng = random.Random(seed)
    n = rng.randint(0, 40)
    delivery: InOrderDelivery[int] = InOrderDelivery()
    for _ in range(n):
        delivery.issue()
    repeats = [rng.randrange(n) for _ in range(rng.randint(0, n))] if n else []
    arrivals = list(range(n)) + repeats
    rng.shuffle(arrivals)
    # Some results carry nothing to show (an utterance that failed or had no text).
    silent = {seq for seq in range(n) if rng.random() < 0.2}

    released: list[int] = []
    for seq in arrivals:
        released += delivery.accept(seq, None if seq in silent else seq)

    assert released == [seq for seq in range(n) if seq not in silent]
    assert delivery.outstanding == 0
    assert delivery.duplicates == len(arrivals) - n
