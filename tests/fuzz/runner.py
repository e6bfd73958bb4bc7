"""Send the generated cases to a live stack and count the answers: per kind, and every 5xx (HTTP) or message
that a consumer failed on (AMQP: a reply with status >= 500, or a dead-letter after retries instead of a
reason) with the case that caused it."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import aio_pika
import aiohttp

from tests.fuzz.cases import AmqpCase, HttpCase


@dataclass
class Tally:
    cases: Counter = field(default_factory=Counter)  # per kind (the part before ':')
    statuses: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)  # one line per 5xx, with what caused it
    no_answer: list[str] = field(default_factory=list)  # a connection dropped or timed out
    nonconforming: list[str] = field(default_factory=list)  # schemathesis: answer not as documented

    def add(self, kind: str, status: int | str) -> None:
        self.cases[kind.split(":")[0]] += 1
        self.statuses[status] += 1

    @property
    def total(self) -> int:
        return sum(self.cases.values())

    def line(self, seconds: float | None = None) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.cases.items()))
        took = f", {seconds:.0f} s" if seconds is not None else ""
        return (f"fuzz: {self.total} cases ({kinds}); 5xx: {len(self.server_errors)}; no answer: "
                f"{len(self.no_answer)}; not as documented: {len(self.nonconforming)}{took}")


def _describe(case: HttpCase, index: int) -> str:
    return f"#{index} {case.kind} {case.method} {case.path} {case.params or ''} body[:80]={case.body[:80]!r}"


async def run_http(url: str, cases: list[HttpCase], tally: Tally, *, concurrency: int = 6,
                   timeout_s: float = 30) -> None:
    semaphore = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    # a new connection per case: an answer sent before the whole body was read closes the connection
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False, connector=connector) as http:
        async def one(index: int, case: HttpCase) -> None:
            async with semaphore:
                try:
                    async with http.request(case.method, url + case.path, data=case.body or None,
                                            headers=case.headers, params=case.params or None,
                                            skip_auto_headers=["Content-Type"]) as response:
                        text = await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    tally.add(case.kind, "no answer")
                    tally.no_answer.append(f"{_describe(case, index)}: {type(exc).__name__}: {exc}")
                    return
                tally.add(case.kind, status)
                if status >= 500:
                    tally.server_errors.append(f"{status} {_describe(case, index)}: {text[:200]!r}")

        await asyncio.gather(*(one(i, c) for i, c in enumerate(cases)))


def _header_value(value):
    """AMQP tables carry at most 64-bit integers: a bigger one travels as its digits (as a client's would)."""
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return str(value)
    if isinstance(value, bytes):  # pamqp sends a byte array, not bytes
        return bytearray(value)
    return value


async def run_amqp(amqp_url: str, exchange: str, cases: list[AmqpCase], tally: Tally, *,
                   timeout_s: float = 90) -> None:
    """Publish every case to the stack's exchange; wait until each upload is answered or dead-lettered and the
    queues are drained; a dead-letter whose reason is a failure after retries is a consumer's 5xx."""
    run = uuid.uuid4().hex[:8]
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        target = await channel.get_exchange(exchange)
        replies: dict[str, dict] = {}
        dead: dict[str, str] = {}
        changed = asyncio.Event()

        reply_queue = await channel.declare_queue(exclusive=True, auto_delete=True)

        async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            try:
                replies[message.correlation_id or ""] = json.loads(message.body)
            except ValueError:
                replies[message.correlation_id or ""] = {"status": "unreadable reply", "body": message.body[:200]}
            changed.set()

        await reply_queue.consume(on_reply, no_ack=True)
        # a queue of our own bound to the dead-letter exchange sees every message the consumers give up on
        dlq = await channel.declare_queue(exclusive=True, auto_delete=True)
        dlx = await channel.get_exchange(f"{exchange}.dlx")
        await dlq.bind(dlx, routing_key="#")

        async def on_dead(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            case_id = str((message.headers or {}).get("x-fuzz-case") or message.correlation_id or "")
            reason = (message.headers or {}).get("x-cpcs-reason", b"")
            dead[case_id] = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
            changed.set()

        await dlq.consume(on_dead, no_ack=True)
        ids = []
        for index, case in enumerate(cases):
            case_id = f"fuzz-{run}-{index}"
            ids.append(case_id)
            headers = {k: _header_value(v) for k, v in case.headers.items()} | {"x-fuzz-case": case_id}
            message = aio_pika.Message(case.body, headers=headers, correlation_id=case_id,
                                       content_type=case.content_type,
                                       reply_to=reply_queue.name if case.expects_reply else None)
            try:
                await target.publish(message, routing_key=case.routing_key)
            except (TypeError, OverflowError):  # a value AMQP cannot carry as it is: sent as its text
                message.headers = {k: str(v) for k, v in headers.items()}
                await target.publish(message, routing_key=case.routing_key)
        waiting = {i for i, c in zip(ids, cases, strict=True) if c.expects_reply}
        deadline = time.monotonic() + timeout_s
        last_seen, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            seen = len(replies) + len(dead)
            if seen != last_seen:
                last_seen, quiet_since = seen, time.monotonic()
            answered = all(i in replies or i in dead for i in waiting)
            if answered and time.monotonic() - quiet_since > 2.0:  # the rest has been consumed by now
                break
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), 0.5)
            except TimeoutError:
                pass
        for index, (case_id, case) in enumerate(zip(ids, cases, strict=True)):
            where = f"#{index} {case.kind} {case.routing_key} headers={case.headers} body[:80]={case.body[:80]!r}"
            if case_id in replies:
                status = replies[case_id].get("status", 200)
                tally.add(case.kind, status if isinstance(status, int) else 200)
                if isinstance(status, int) and status >= 500:
                    tally.server_errors.append(f"reply {status} {where}: {replies[case_id]}")
            elif case_id in dead:
                tally.add(case.kind, "dead-lettered")
                if dead[case_id].startswith("failed after"):
                    tally.server_errors.append(f"dead-lettered after retries {where}: {dead[case_id][:300]}")
            elif case.expects_reply:
                tally.add(case.kind, "no answer")
                tally.no_answer.append(f"no reply {where}")
            else:
                tally.add(case.kind, "consumed")
    finally:
        await connection.close()


def run_schemathesis(url: str, ctx, tally: Tally, *, seed: int, max_examples: int) -> None:
    """Every documented operation, ``max_examples`` generated cases each (positive and negative data), checked
    for no 5xx and for an answer whose status code, content type and body the document gives."""
    import hypothesis
    import hypothesis.errors
    import requests
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hsettings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_url(f"{url}/api/v1/openapi.yaml")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    session = requests.Session()
    headers = {"Authorization": f"Bearer {ctx.token}"}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = operation.label
        if operation.path in ("/event/{alert_id}/live",):  # an endless event stream: the page tests read it
            continue
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)

            call = _caller(mode, label, url, ctx, session, headers, checks, tally)
            call = given(case=strategy)(call)
            call = hsettings(max_examples=max_examples, deadline=None, database=None,
                             suppress_health_check=list(HealthCheck), phases=[hypothesis.Phase.generate])(call)
            try:
                hypothesis.seed(seed)(call)()
            except (hypothesis.errors.Unsatisfiable, hypothesis.errors.FailedHealthCheck) as exc:
                tally.add(f"schemathesis {mode.value}", f"not generated: {type(exc).__name__}")


def _caller(mode, label, url, ctx, session, headers, checks, tally):
    import requests
    import schemathesis

    def call(case) -> None:
        if isinstance(case.body, dict) and "hashtag" in case.body:
            case.body["hashtag"] = ctx.token
        if case.query and "hashtag" in case.query:
            case.query["hashtag"] = ctx.token
        kind = f"schemathesis {mode.value}"
        try:
            response = case.call(base_url=url, session=session, headers=headers, timeout=30)
        except requests.RequestException as exc:
            tally.add(kind, "no answer")
            tally.no_answer.append(f"{label}: {type(exc).__name__}: {exc}")
            return
        tally.add(kind, response.status_code)
        if response.status_code >= 500:
            tally.server_errors.append(f"{response.status_code} {label} {case.as_curl_command()}: "
                                       f"{response.text[:200]!r}")
            return
        if mode is not schemathesis.GenerationMode.POSITIVE and response.status_code < 300:
            return  # data the schema forbids, accepted anyway: lenient, not wrong
        try:
            case.validate_response(response, checks=checks[1:])
        except (AssertionError, BaseExceptionGroup) as exc:  # schemathesis: what was not as documented
            found = [e for e in getattr(exc, "exceptions", [exc])]
            for failure in found:
                title = getattr(failure, "title", None) or str(failure).strip().splitlines()[0]
                tally.nonconforming.append(f"{label} {response.status_code}: {title}: "
                                           f"{str(getattr(failure, 'message', ''))[:200]}")

    return call
