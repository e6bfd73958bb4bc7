"""Ingest's rate limits on the running service (real database and broker): guessed tokens are answered 429
after a few failures, before they are even checked, and new events past the burst are refused per
address and per token, each with Retry-After and a sentence. Small limits set for the test."""
from __future__ import annotations

import json

import pytest

from tests.support.flows import demo_system

pytestmark = pytest.mark.integration
LIMITS = {"CPCS_RATE_FAILURES_BURST": "5", "CPCS_RATE_FAILURES_PER_MIN": "6", "CPCS_RATE_EVENTS_BURST": "3",
          "CPCS_RATE_EVENTS_PER_MIN": "6", "CPCS_RATE_FORWARDED_FOR": "true"}


@pytest.fixture
async def system(mongo_url, amqp_url, unique_name, tmp_path, monkeypatch):
    for name, value in LIMITS.items():
        monkeypatch.setenv(name, value)
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path, services=("ingest",)) as running:
        yield running


async def new_event(system, n: int, *, token: str, address: str = "203.0.113.7", api: bool = False):
    headers = {"X-Forwarded-For": address}
    if api:
        headers["Authorization"] = f"Bearer {token}"
        request = system.http.post(f"{system.url}/api/v1/events", headers=headers,
                                   json={"ivorn": f"ivo://test/rate-{n}", "ra": 10 + n, "dec": -5})
    else:
        request = system.http.post(f"{system.url}/cgi/newevent", headers=headers, data={
            "EventID": f"ivo://test/rate-{n}", "ra": str(10 + n), "dec": "-5", "hashtag": token})
    async with request as response:
        return response.status, response.headers.get("Retry-After"), await response.text()


async def delete_point(system, token: str, address: str = "203.0.113.7"):
    async with system.http.post(f"{system.url}/cgi/delpoint", headers={"X-Forwarded-For": address},
                                data={"followupid": "1", "hashtag": token}) as response:
        return response.status, response.headers.get("Retry-After"), await response.text()


async def test_guessed_tokens_are_refused_before_they_are_checked_after_a_few(system):
    answers = [await delete_point(system, token=f"guess-{n:04d}") for n in range(8)]
    assert [status for status, _, _ in answers] == [401] * 5 + [429] * 3
    status, retry_after, body = answers[5]
    assert "too many requests with unknown tokens or failed logins came from your address" in body
    assert 1 <= int(retry_after) <= 10 and f"try again in {retry_after} s" in body
    status, _, body = await new_event(system, 100, token=system.demo["token"])  # even the right one, for now
    assert status == 429 and "unknown tokens" in body
    status, _, _ = await new_event(system, 101, token=system.demo["token"], address="198.51.100.9")
    assert status == 200  # another address is not held back


async def test_new_events_past_the_burst_are_refused_per_address_and_per_token(system):
    token = system.demo["token"]
    answers = [await new_event(system, n, token=token) for n in range(4)]
    assert [status for status, _, _ in answers] == [200, 200, 200, 429]
    assert "too many new events from your address; try again in" in answers[3][2]
    assert int(answers[3][1]) >= 1
    # the same token from other addresses: its own bucket is empty too (the form carried it)
    status, retry_after, body = await new_event(system, 10, token=token, address="198.51.100.1")
    assert status == 429 and "too many new events from this token" in body and int(retry_after) >= 1
    status, retry_after, body = await new_event(system, 11, token=token, address="198.51.100.2", api=True)
    assert status == 429 and retry_after is not None
    answer = json.loads(body)
    assert answer["status"] == 429 and answer["retry_after_s"] == int(retry_after)
    assert answer["error"].startswith("too many new events from this token")
