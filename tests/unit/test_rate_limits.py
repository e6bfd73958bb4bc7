"""The token buckets behind ingest's rate limits, on a clock the test moves: a burst, then the refill
rate; a failure spent beyond empty keeps the address waiting longer; keys past the cap are forgotten."""
from __future__ import annotations

import pytest

from services.ingest.ratelimit import Buckets, RateLimits, Rates, rates_of
from services.ingest.settings import IngestSettings


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_the_rate():
    clock = Clock()
    buckets = Buckets(rate_per_s=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # one more in half a second at 2 a second
    assert buckets.take("b") == 0.0  # keys are apart
    clock.now += 0.5
    assert buckets.take("a") == 0.0 and buckets.take("a") == pytest.approx(0.5)
    clock.now += 60
    assert [buckets.take("a") for _ in range(4)][-1] > 0  # refilled to the burst, never beyond


def test_failures_spent_beyond_empty_keep_the_key_waiting():
    clock = Clock()
    failures = Buckets(rate_per_s=0.5, burst=2, clock=clock)
    for _ in range(10):
        failures.spend("addr")
    assert failures.wait_s("addr") == pytest.approx((1 + 2) / 0.5)  # floored at minus the burst
    clock.now += 6.0
    assert failures.wait_s("addr") == 0.0


def test_the_least_recently_seen_keys_are_forgotten_past_the_cap():
    buckets = Buckets(rate_per_s=1.0, burst=1, clock=Clock(), max_keys=2)
    for key in ("a", "b", "c"):
        assert buckets.take(key) == 0.0
    assert buckets.take("a") == 0.0  # forgotten, so full again
    assert buckets.take("c") > 0


def test_the_settings_give_the_rates_and_can_turn_them_off():
    assert rates_of(IngestSettings()) == Rates()
    assert Rates().writes_per_s >= 2 * 40  # the upload benchmark sends ~40 a second from one address
    assert rates_of(IngestSettings(rate_limits=False)) is None
    limits = RateLimits(rates_of(IngestSettings(rate_events_per_min=6, rate_events_burst=2)))
    assert (limits.events.rate, limits.events.burst) == (0.1, 2)
