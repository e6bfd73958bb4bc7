"""Trust on the bus, on the real broker and database: the external publishers' user made by
``shared.broker_users`` may publish only the intake messages (the broker refuses a forged result), and
lightcurve refuses a result or deletion for an observation ingest never announced, or for another event."""
from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import pytest
from aiormq.exceptions import ChannelAccessRefused

from shared import broker_users
from shared.contracts import ObservationCalibratedV1, ObservationDeletedV1, UploadReceivedV1
from shared.messaging import QUEUE_HEADER, REASON_HEADER
from tests.support.amqp import next_message
from tests.support.system import running_system, settings_for

pytestmark = pytest.mark.integration
SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "samples"


def sample(key: str) -> dict:
    return json.loads((SAMPLES / f"{key}.json").read_text())


@pytest.fixture
def own_vhost(amqp_url):
    """A vhost of this test with a services user and an intake user of unique names, deleted afterwards."""
    if shutil.which("rabbitmqctl") is None or urlsplit(amqp_url).port not in (None, 5672):
        pytest.skip("needs rabbitmqctl for the broker the tests use (the local RabbitMQ on 5672)")
    tag = uuid.uuid4().hex[:10]
    defs = broker_users.definitions(exchange=f"x{tag}", vhost=f"cpcs-test-{tag}",
                                    services=broker_users.BrokerUser(f"svc-{tag}", uuid.uuid4().hex),
                                    intake=broker_users.BrokerUser(f"intake-{tag}", uuid.uuid4().hex))
    host = urlsplit(amqp_url).hostname or "127.0.0.1"
    try:
        broker_users.apply(defs)
        broker_users.apply(defs)  # a second run (every `cpcs up`) changes nothing and does not fail
        yield defs, {u.name: broker_users.Credentials(u.name, u.password, host, 5672, defs.vhost).url()
                     for u in defs.users}
    finally:
        broker_users.remove(defs, delete_vhost=True)


async def test_the_intake_user_may_publish_uploads_but_the_broker_refuses_its_forged_results(own_vhost):
    defs, urls = own_vhost
    [services_user, intake_user] = [u.name for u in defs.users]
    exchange_name = defs.topic_permissions[0].exchange
    services = await aio_pika.connect(urls[services_user])
    intake = await aio_pika.connect(urls[intake_user])
    try:
        channel = await services.channel()
        exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        dlx = await channel.declare_exchange(f"{exchange_name}.dlx", aio_pika.ExchangeType.FANOUT, durable=True)
        watched = await channel.declare_queue(f"{exchange_name}.everything", durable=True)
        await watched.bind(exchange, routing_key="#")

        publisher = await intake.channel(publisher_confirms=True)
        theirs = await publisher.get_exchange(exchange_name)  # passive: it exists, they may not change it
        replies = await publisher.declare_queue(exclusive=True, auto_delete=True)  # their reply queue
        await theirs.publish(aio_pika.Message(b"catalogue", reply_to=replies.name), routing_key="upload.submitted.v1")
        first = await next_message(_Channel(channel), watched.name, timeout_s=10)
        assert (first.routing_key, first.body) == ("upload.submitted.v1", b"catalogue")

        forged = sample("observation.calibrated.v1")
        forged["result"]["mag"] = 12.345
        for key, body in (("observation.calibrated.v1", json.dumps(forged)),
                          ("observation.deleted.v1", json.dumps(sample("observation.deleted.v1")))):
            publisher = await intake.channel(publisher_confirms=True)
            theirs = await publisher.get_exchange(exchange_name)
            with pytest.raises(ChannelAccessRefused, match=f"access to topic '{key}'"):
                await theirs.publish(aio_pika.Message(body.encode()), routing_key=key)

        publisher = await intake.channel(publisher_confirms=True)
        theirs = await publisher.get_exchange(exchange_name)
        await theirs.publish(aio_pika.Message(b"<VOEvent/>"), routing_key="voevent.received.v1")
        second = await next_message(_Channel(channel), watched.name, timeout_s=10)  # no forged result between
        assert second.routing_key == "voevent.received.v1"
        assert (await channel.declare_queue(watched.name, passive=True)).declaration_result.message_count == 0

        for refused in (lambda ch: ch.declare_queue(f"{exchange_name}.lightcurve", durable=True),  # a service queue
                        lambda ch: ch.declare_queue(watched.name, passive=False, durable=True),
                        lambda ch: _bind_own_queue(ch, exchange_name),  # to listen to the services' messages
                        lambda ch: _publish_on(ch, dlx.name, "observation.calibrated.v1"),
                        lambda ch: _publish_on(ch, "", watched.name)):  # the default exchange, to a queue
            with pytest.raises(ChannelAccessRefused):
                await refused(await intake.channel(publisher_confirms=True))
    finally:
        await intake.close()
        await services.close()


class _Channel:
    """What ``next_message`` reads (``broker._channel``) for a bare channel."""

    def __init__(self, channel):
        self._channel = channel


async def _bind_own_queue(channel, exchange_name: str) -> None:
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange_name, routing_key="#")


async def _publish_on(channel, exchange_name: str, routing_key: str) -> None:
    exchange = channel.default_exchange if not exchange_name else await channel.get_exchange(exchange_name)
    await exchange.publish(aio_pika.Message(b"{}"), routing_key=routing_key)


async def test_lightcurve_refuses_results_for_observations_ingest_never_announced(mongo_url, amqp_url,
                                                                                  unique_name):
    # a result waits for its announcement (which may come after it, on another queue) for 2 s here
    settings = settings_for(mongo_url, amqp_url, unique_name, announce_wait_s=2.0)
    dead_letters = f"{unique_name}.dead-letter"
    async with running_system(settings, services=("lightcurve",)) as system:
        points = system.started["lightcurve"].store.db.points

        forged = sample("observation.calibrated.v1")
        forged["result"]["mag"] = 12.345
        await system.broker.publish(ObservationCalibratedV1.model_validate(forged))
        dead = await next_message(system.broker, dead_letters, timeout_s=30)
        assert "never announced by ingest" in dead.headers[REASON_HEADER]
        assert dead.headers[QUEUE_HEADER] == f"{unique_name}.lightcurve"
        assert await points.count_documents({}) == 0

        await system.broker.publish(ObservationDeletedV1.model_validate(sample("observation.deleted.v1")))
        dead = await next_message(system.broker, dead_letters, timeout_s=30)
        assert "observation.deleted.v1 refused" in dead.headers[REASON_HEADER]
        assert await system.started["lightcurve"].store.was_deleted(42) is False

        await system.broker.publish_bytes("upload.received.v1", b'{"observation_id": 7}')  # poison: not ours to refuse
        await system.broker.publish(UploadReceivedV1.model_validate(sample("upload.received.v1")))  # ingest's
        await system.broker.publish(ObservationCalibratedV1.model_validate(sample("observation.calibrated.v1")))
        stored = await system.probe.wait_for("lightcurve.updated.v1", lambda m: m.action == "stored")
        assert stored.followup_id == 42 and (await points.find_one({"_id": 42}))["mag"] == 17.012

        elsewhere = forged | {"event": {"ivorn": "ivo://nowhere", "ra_deg": 1.0, "dec_deg": 2.0}}
        await system.broker.publish(ObservationCalibratedV1.model_validate(elsewhere))
        dead = await next_message(system.broker, dead_letters, timeout_s=30)
        assert "not to the unknown event ivo://nowhere" in dead.headers[REASON_HEADER]
        assert (await points.find_one({"_id": 42}))["mag"] == 17.012  # the forged 12.345 never replaced it
        assert await system.started["lightcurve"].store.copies.find(ivorn="ivo://nowhere") is None
        waiting, _ = await system.broker.queue_state(dead_letters)
        assert waiting == 0  # the poison announcement was not dead-lettered by lightcurve
