"""The messaging module against the real RabbitMQ: routing, confirms, retries, dead letters."""
import asyncio
import json
from pathlib import Path

import aio_pika
import pytest

from shared.contracts import EventCreatedV1
from shared.errors import PermanentError
from shared.messaging import REASON_HEADER, Broker
from tests.support.amqp import dead_letters_tapped, next_message

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "samples"

pytestmark = pytest.mark.integration


@pytest.fixture
async def broker(amqp_url, unique_name):
    b = Broker(amqp_url, unique_name, retry_delay_s=0.01, max_retries=2)
    await b.start()
    yield b
    channel = b._channel
    for name in (b.dead_letter_queue, f"{unique_name}.q", f"{unique_name}.q2"):
        await channel.queue_delete(name)
    await channel.exchange_delete(unique_name)
    await channel.exchange_delete(f"{unique_name}.dlx")
    await b.close()


async def next_dead_letter(broker, timeout_s=10.0):
    return await next_message(broker, broker.dead_letter_queue, timeout_s)


def event(ivorn="ivo://Test1"):
    return EventCreatedV1(ivorn=ivorn, ra_deg=10.0, dec_deg=-5.0)


async def test_handler_receives_and_its_result_is_published(broker, unique_name):
    seen, forwarded = asyncio.Queue(), asyncio.Queue()

    async def first(message):
        await seen.put(message)
        return [event("ivo://Forwarded")] if message.ivorn == "ivo://Test1" else []

    async def second(message):
        await forwarded.put(message)

    await broker.subscribe(f"{unique_name}.q", {"event.created.v1": first})
    await broker.subscribe(f"{unique_name}.q2", {"event.created.v1": second})
    await broker.publish(event())
    async with asyncio.timeout(10):
        assert (await seen.get()).ivorn == "ivo://Test1"
        got = {(await forwarded.get()).ivorn, (await forwarded.get()).ivorn}
    assert got == {"ivo://Test1", "ivo://Forwarded"}


async def test_unparseable_message_is_dead_lettered_and_consumer_keeps_going(broker, unique_name):
    seen = asyncio.Queue()

    async def handler(message):
        await seen.put(message)

    await broker.subscribe(f"{unique_name}.q", {"event.created.v1": handler})
    await broker.publish_bytes("event.created.v1", b"{not json")
    dead = await next_dead_letter(broker)
    assert "does not match event.created.v1" in dead.headers[REASON_HEADER]
    assert dead.body == b"{not json"
    await broker.publish(event("ivo://After"))
    async with asyncio.timeout(10):
        assert (await seen.get()).ivorn == "ivo://After"


async def test_permanent_error_dead_letters_with_reason(broker, unique_name):
    async def handler(message):
        raise PermanentError("the event is outside the sky")

    await broker.subscribe(f"{unique_name}.q", {"event.created.v1": handler})
    await broker.publish(event())
    dead = await next_dead_letter(broker)
    assert dead.headers[REASON_HEADER] == "the event is outside the sky"


async def test_transient_failure_is_retried_then_succeeds(broker, unique_name):
    attempts, done = [], asyncio.Event()

    async def flaky(message):
        attempts.append(message.message_id)
        if len(attempts) < 2:
            raise ConnectionError("database went away")
        done.set()

    await broker.subscribe(f"{unique_name}.q", {"event.created.v1": flaky})
    await broker.publish(event())
    async with asyncio.timeout(10):
        await done.wait()
    assert len(attempts) == 2 and attempts[0] == attempts[1]


async def test_retries_are_bounded(broker, unique_name):
    attempts = []

    async def broken(message):
        attempts.append(1)
        raise RuntimeError("always fails")

    await broker.subscribe(f"{unique_name}.q", {"event.created.v1": broken})
    await broker.publish(event())
    dead = await next_dead_letter(broker)
    assert "failed after 2 retries" in dead.headers[REASON_HEADER]
    assert len(attempts) == 3


async def test_messages_are_persistent(broker, unique_name):
    queue = await broker._channel.declare_queue(f"{unique_name}.q2", durable=True)
    await queue.bind(unique_name, routing_key="event.created.v1")
    await broker.publish(event())
    message = await next_message(broker, queue.name)
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT


async def test_a_dry_runs_messages_are_not_persistent(broker, unique_name):
    from shared.contracts import REGISTRY
    queue = await broker._channel.declare_queue(f"{unique_name}.q3", durable=True)
    await queue.bind(unique_name, routing_key="upload.received.v1")
    raw = json.loads((SAMPLES / "upload.received.v1.json").read_text())
    for dry_run in (True, False):
        await broker.publish(REGISTRY["upload.received.v1"].model_validate(raw | {"dry_run": dry_run}))
        message = await next_message(broker, queue.name)
        assert message.delivery_mode == (aio_pika.DeliveryMode.NOT_PERSISTENT if dry_run
                                         else aio_pika.DeliveryMode.PERSISTENT)


async def test_an_outage_is_retried_past_the_bound_and_never_dead_lettered(broker, unique_name):
    """max_retries is 2: an outage that lasts five tries is waited out (backoff capped), then handled."""
    from pymongo.errors import ServerSelectionTimeoutError

    broker.retry_max_delay_s = 0.05
    attempts, done = [], asyncio.Event()

    async def database_away(message):
        attempts.append(1)
        if len(attempts) <= 5:
            raise ServerSelectionTimeoutError("no servers available")
        done.set()

    await broker.subscribe(f"{unique_name}.q", {"event.created.v1": database_away})
    await broker.publish(event())
    async with asyncio.timeout(20):
        await done.wait()
    assert len(attempts) == 6
    assert (await broker.queue_state(broker.dead_letter_queue))[0] == 0


async def test_the_dead_letter_queue_is_bounded_dropping_the_oldest(amqp_url, unique_name):
    from shared.messaging import DEAD_LETTERED_AT_HEADER, QUEUE_HEADER

    b = Broker(amqp_url, unique_name, dead_letter_max=3)
    await b.start()
    try:
        refused = []

        async def refuse(message):
            refused.append(message.ivorn)
            raise PermanentError(f"refused {message.ivorn}")

        async with dead_letters_tapped(b) as dead_letters:
            await b.subscribe(f"{unique_name}.q", {"event.created.v1": refuse})
            for i in range(5):
                await b.publish(event(f"ivo://T{i}"))
            assert len(await dead_letters(5)) == 5
        assert len(refused) == 5
        assert (await b.watch_dead_letters()) == (3, 3)
        dlq = await b._channel.get_queue(b.dead_letter_queue)
        dead = [await dlq.get(no_ack=True) for _ in range(3)]
        reasons = sorted(d.headers[REASON_HEADER] for d in dead)
        assert len(reasons) == 3 and "refused ivo://T0" not in reasons and "refused ivo://T1" not in reasons
        assert all(d.headers[QUEUE_HEADER] == f"{unique_name}.q" and d.headers[DEAD_LETTERED_AT_HEADER] > 0
                   for d in dead)
    finally:
        for name in (b.dead_letter_queue, f"{unique_name}.q"):
            await b._channel.queue_delete(name)
        await b._channel.exchange_delete(unique_name)
        await b._channel.exchange_delete(f"{unique_name}.dlx")
        await b.close()


async def test_a_message_waits_for_what_it_needs_exactly_its_patience(broker, unique_name):
    """Today's defect: the first try's time travelled as a Python float, which an AMQP table carries as a
    32-bit float (today's unix seconds in 128 s steps), so the patience ended up to a minute early or late
    (a 2 s patience in the suite waited for over 30 s). Now times travel as whole milliseconds."""
    import time

    from shared.errors import NotYet
    from shared.messaging import DEAD_LETTERED_AT_HEADER, FIRST_TRY_HEADER, dead_letter_of, unix_s_of_header

    tries: list[float] = []

    async def not_yet(message):
        tries.append(time.time())
        refusal = NotYet("what this message needs has not come")
        refusal.patience_s = 1.5
        raise refusal

    await broker.subscribe(f"{unique_name}.q", {"event.created.v1": not_yet})
    await broker.publish(event())
    dead = await next_dead_letter(broker, timeout_s=20)
    waited_s = time.time() - tries[0]
    assert 1.5 <= waited_s < 6 and len(tries) >= 2
    assert "still not possible" in dead.headers[REASON_HEADER]
    assert abs(unix_s_of_header(dead.headers[FIRST_TRY_HEADER]) - tries[0]) < 0.01
    assert abs(dead_letter_of(dead).dead_lettered_at.timestamp() - time.time()) < 5
    assert isinstance(dead.headers[DEAD_LETTERED_AT_HEADER], int)
