"""The per-location circuit breaker and the order in which locations are tried (shared/locations.py)."""
from __future__ import annotations

import pytest

from shared import locations as locations_module
from shared.config import parse_config
from shared.locations import CircuitBreaker, Locations


class Clock:
    """Stands in for the `time` module inside shared.locations, so time passes when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(locations_module, "time", fake)
    return fake


def test_closed_until_a_failure(clock):
    breaker = CircuitBreaker(retry_after=30)
    assert not breaker.is_open("us")
    breaker.failed("us")
    assert breaker.is_open("us")
    assert not breaker.is_open("eu")  # one breaker per location


def test_opens_for_retry_after_seconds_then_lets_one_try(clock):
    breaker = CircuitBreaker(retry_after=30)
    breaker.failed("us")
    clock.now += 29.9
    assert breaker.is_open("us")
    clock.now += 0.1
    assert not breaker.is_open("us")


def test_another_failure_restarts_the_wait(clock):
    breaker = CircuitBreaker(retry_after=30)
    breaker.failed("us")
    clock.now += 20
    breaker.failed("us")
    clock.now += 20
    assert breaker.is_open("us")
    clock.now += 10
    assert not breaker.is_open("us")


def test_a_success_closes_it_at_once(clock):
    breaker = CircuitBreaker(retry_after=30)
    breaker.failed("us")
    breaker.succeeded("us")
    assert not breaker.is_open("us")
    breaker.succeeded("eu")  # a location that never failed
    assert not breaker.is_open("eu")


def test_a_hold_longer_than_retry_after_keeps_it_open_until_a_success(clock):
    # The own-location probe holds the breaker open across the gap between two failing probes.
    breaker = CircuitBreaker(retry_after=5)
    breaker.failed("us", hold=16)
    clock.now += 15.9
    assert breaker.is_open("us")
    breaker.succeeded("us")
    assert not breaker.is_open("us")
    breaker.failed("us", hold=1)  # a hold shorter than retry_after does not shorten it
    clock.now += 4.9
    assert breaker.is_open("us")


def test_zero_retry_after_never_skips(clock):
    breaker = CircuitBreaker(retry_after=0)
    breaker.failed("us")
    assert not breaker.is_open("us")


@pytest.fixture
def three_regions(tmp_path, monkeypatch, clock):
    monkeypatch.delenv("MERIDIAN_DISTRIBUTED_STORAGE_PREFERENCE", raising=False)
    monkeypatch.delenv("QUAY_DISTRIBUTED_STORAGE_PREFERENCE", raising=False)
    config = parse_config({
        "DISTRIBUTED_STORAGE_CONFIG": {name: ["LocalStorage", {"storage_path": str(tmp_path / name)}] for name in ("us", "eu", "ap")},
        "DISTRIBUTED_STORAGE_PREFERENCE": ["us", "eu", "ap"],
        "MERIDIAN_LOCATION_RETRY_AFTER_SEC": 30,
    })
    return Locations(config)


CANDIDATES = [
    # (locations holding the blob, breakers open, order tried)
    (["ap", "eu", "us"], [], ["us", "eu", "ap"]),  # nearest first, by preference
    (["ap", "eu"], [], ["eu", "ap"]),
    (["ap", "eu", "us"], ["us"], ["eu", "ap", "us"]),  # an open breaker goes last, still tried
    (["ap", "eu", "us"], ["us", "eu"], ["ap", "us", "eu"]),
    (["ap", "eu", "us"], ["us", "eu", "ap"], ["us", "eu", "ap"]),
    (["mars", "eu"], [], ["eu"]),  # a location this process cannot reach is never a candidate
    ([], [], []),
]


@pytest.mark.parametrize("held, failed, order", CANDIDATES)
def test_candidates(three_regions, held, failed, order):
    for name in failed:
        three_regions.breaker.failed(name)
    assert three_regions.candidates(held) == order


def test_candidates_return_to_preference_order_after_the_wait(three_regions, clock):
    three_regions.breaker.failed("us")
    assert three_regions.candidates(["us", "eu"]) == ["eu", "us"]
    clock.now += 30
    assert three_regions.candidates(["us", "eu"]) == ["us", "eu"]
