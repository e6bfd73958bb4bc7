"""The fuzz stage: thousands of malformed inputs (seeded: ``CPCS_FUZZ_SEED`` reproduces a run) against a live
stack, over HTTP and AMQP, then schemathesis against the OpenAPI document the stack serves. No input may get a
5xx (or make a consumer fail on a message instead of dead-lettering it with its reason), every answer is as
documented, and every service is still running afterwards."""
from __future__ import annotations

import asyncio
import os
import time

import pytest

from tests.fuzz.cases import Context, amqp_cases, http_cases
from tests.fuzz.runner import Tally, run_amqp, run_http, run_schemathesis

pytestmark = [pytest.mark.integration, pytest.mark.fuzz]

SEED = int(os.environ.get("CPCS_FUZZ_SEED", "20261202"))
HTTP_CASES, AMQP_CASES, SCHEMATHESIS_EXAMPLES = 1600, 400, 8


def context(stack) -> Context:
    return Context(event=stack.demo["event"], token=stack.demo["token"], admin_token=stack.demo["admin_token"],
                   catalogue=stack.catalogue)


async def assert_still_running(stack) -> None:
    assert stack.dead() == {}, f"a service exited: {stack.dead()}\n{stack.log_tail()}"
    consumers = await stack.consumers()
    assert all(n > 0 for n in consumers.values()), f"a queue lost its consumers: {consumers}\n{stack.log_tail()}"


def report(tally: Tally, started: float) -> None:
    print("\n" + tally.line(time.monotonic() - started))
    for line in (tally.server_errors + tally.no_answer)[:40]:
        print("  " + line)
    counted: dict[str, int] = {}
    for line in tally.nonconforming:
        counted[line[:160]] = counted.get(line[:160], 0) + 1
    for line, n in sorted(counted.items(), key=lambda x: -x[1])[:60]:
        print(f"  {n:4d} x {line}")


async def test_malformed_inputs_get_no_5xx_and_every_service_survives(stack):
    started, tally, ctx = time.monotonic(), Tally(), context(stack)
    await run_http(stack.url, http_cases(SEED, HTTP_CASES, ctx), tally)
    await run_amqp(stack.amqp_url, stack.exchange, amqp_cases(SEED, AMQP_CASES, ctx), tally)
    report(tally, started)
    if tally.server_errors or tally.no_answer:
        print(stack.log_errors())
    assert tally.total >= HTTP_CASES + AMQP_CASES
    assert tally.server_errors == [], f"seed {SEED}: {len(tally.server_errors)} 5xx"
    assert tally.no_answer == [], f"seed {SEED}: {len(tally.no_answer)} without an answer"
    await assert_still_running(stack)


async def test_schemathesis_finds_no_5xx_and_answers_as_documented(stack):
    started, tally = time.monotonic(), Tally()
    await asyncio.to_thread(run_schemathesis, stack.url, context(stack), tally, seed=SEED,
                            max_examples=SCHEMATHESIS_EXAMPLES)
    report(tally, started)
    assert tally.total > 0
    assert tally.server_errors == [], f"seed {SEED}: {len(tally.server_errors)} 5xx"
    assert tally.nonconforming == [], f"seed {SEED}: {len(tally.nonconforming)} answers not as documented"
    await assert_still_running(stack)
