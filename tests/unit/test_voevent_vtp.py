"""The VTP subscriber against a minimal broker written from the IVOA note (tests/support/vtp_peer.py).

The subscriber's own ports (forward, notify) are fakes here; the broker is a real TCP peer.
"""
import asyncio

import pytest
from lxml import etree

from services.ingest.voevents.policy import VoeventPolicy
from services.ingest.voevents.subscriber import Backoff, VtpSubscriber
from services.ingest.voevents.vtp import TRANSPORT_NS, classify, transport
from tests.support.voevents import sample, synthetic_packet
from tests.support.vtp_peer import VtpPeer

LOCAL = "ivo://cpcs.test/subscriber"


def test_transport_messages_follow_the_note():
    root = etree.fromstring(transport("ack", origin="ivo://a/b#1", response=LOCAL))
    assert root.tag == f"{{{TRANSPORT_NS}}}Transport" and root.get("role") == "ack"
    assert [child.tag for child in root] == ["Origin", "Response", "TimeStamp"]
    assert (root.findtext("Origin"), root.findtext("Response")) == ("ivo://a/b#1", LOCAL)
    assert classify(transport("iamalive", origin="ivo://b")).role == "iamalive"
    assert classify(b"\x00garbage").kind == "unreadable"


class Feed:
    """The subscriber's ports: what it forwards and the feed states it reports."""

    def __init__(self):
        self.forwarded: asyncio.Queue[bytes] = asyncio.Queue()
        self.states: asyncio.Queue = asyncio.Queue()
        self.gate = asyncio.Event()
        self.gate.set()

    async def forward(self, body: bytes) -> None:
        await self.forwarded.put(body)
        await self.gate.wait()

    async def notify(self, message) -> None:
        await self.states.put(message)

    async def state(self, timeout_s=10):
        async with asyncio.timeout(timeout_s):
            return await self.states.get()

    async def next_forwarded(self, timeout_s=10) -> bytes:
        async with asyncio.timeout(timeout_s):
            return await self.forwarded.get()


@pytest.fixture
async def peer():
    broker = VtpPeer()
    await broker.start()
    yield broker
    await broker.stop()


@pytest.fixture
async def feed(peer):
    ports = Feed()
    subscriber = VtpSubscriber("127.0.0.1", peer.port, forward=ports.forward, notify=ports.notify,
                               policy=VoeventPolicy(), local_ivorn=LOCAL, alive_timeout_s=5,
                               backoff=Backoff(0.05, 0.2))
    subscriber.start()
    ports.subscriber = subscriber
    yield ports
    await subscriber.stop()


async def test_subscriber_answers_the_broker_and_acknowledges_after_forwarding(peer, feed):
    answer = await peer.next_answer()
    assert (answer.role, answer.origin, answer.response) == ("authenticate", peer.ivorn, LOCAL)
    connected = await feed.state()
    assert connected.state == "connected" and connected.remote == f"127.0.0.1:{peer.port}"
    await peer.iamalive()
    answer = await peer.next_answer()
    assert (answer.role, answer.origin, answer.response) == ("iamalive", peer.ivorn, LOCAL)

    feed.gate.clear()
    packet = sample("Gaia16aac.xml")
    await peer.send(packet)
    assert await feed.next_forwarded() == packet
    assert peer.answers.empty(), "no ack before the packet is safely forwarded"
    feed.gate.set()
    answer = await peer.next_answer()
    assert (answer.role, answer.origin) == ("ack", "ivo://gaia.cam.uk/alerts#Gaia16aac")
    assert feed.subscriber.status.forwarded == 1


async def test_roles_not_taken_are_acknowledged_but_not_forwarded(peer, feed):
    await feed.state()
    await peer.send(sample("no_namespace_packet.xml"))  # role test
    await peer.send(synthetic_packet(1))
    assert (await peer.next_answer()).role == "authenticate"
    assert (await peer.next_answer()).origin.endswith("BrokerTest-2014-02-24T15:55:27.72")
    assert (await peer.next_answer()).origin.endswith("#Synth000001-1")
    assert await feed.next_forwarded() == synthetic_packet(1)
    assert feed.subscriber.status.skipped == 1 and feed.forwarded.empty()


async def test_unreadable_frames_are_forwarded_for_the_dead_letter_queue_without_an_ack(peer, feed):
    await feed.state()
    await peer.send(b"<not a voevent")
    assert await feed.next_forwarded() == b"<not a voevent"
    await peer.send(synthetic_packet(2))
    assert await feed.next_forwarded() == synthetic_packet(2)
    assert (await peer.next_answer()).role == "authenticate"
    assert (await peer.next_answer()).origin.endswith("#Synth000002-1")  # nothing was answered in between


async def test_subscriber_survives_the_broker_restarting(peer, feed):
    assert (await feed.state()).state == "connected"
    await peer.stop()
    down = await feed.state()
    assert down.state == "disconnected" and "connection" in down.reason
    await peer.start()  # same port
    assert (await feed.state()).state == "connected"
    await peer.wait_for_subscribers(1, total=2)
    await peer.send(synthetic_packet(3))
    assert await feed.next_forwarded() == synthetic_packet(3)


async def test_a_silent_broker_is_left_and_connected_again(peer):
    ports = Feed()
    subscriber = VtpSubscriber("127.0.0.1", peer.port, forward=ports.forward, notify=ports.notify,
                               policy=VoeventPolicy(), alive_timeout_s=0.3, backoff=Backoff(0.05, 0.1))
    subscriber.start()
    try:
        assert (await ports.state()).state == "connected"
        down = await ports.state()
        assert down.state == "disconnected" and "said nothing for 0.3 s" in down.reason
        assert (await ports.state()).state == "connected"
        await peer.wait_for_subscribers(1, total=2)
    finally:
        await subscriber.stop()


async def test_an_oversized_frame_drops_the_connection_and_it_is_made_again(peer):
    ports = Feed()
    subscriber = VtpSubscriber("127.0.0.1", peer.port, forward=ports.forward, notify=ports.notify,
                               policy=VoeventPolicy(), max_bytes=4096, backoff=Backoff(0.05, 0.1))
    subscriber.start()
    try:
        await ports.state()
        await peer.send(synthetic_packet(4) + b" " * 5000)
        down = await ports.state()
        assert down.state == "disconnected" and "limit is 4096" in down.reason
        assert (await ports.state()).state == "connected" and ports.forwarded.empty()
    finally:
        await subscriber.stop()
