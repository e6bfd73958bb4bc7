"""What ingest's composition root calls to run the alert feeds: the intake and the VTP subscribers."""
from __future__ import annotations

from dataclasses import dataclass

from services.ingest.store import IngestStore
from services.ingest.voevents.intake import ROUTING_KEY, VIA_HEADER, VoeventIntake
from services.ingest.voevents.log import INDEXES, PacketLog
from services.ingest.voevents.settings import VoeventSettings
from services.ingest.voevents.subscriber import Backoff, VtpSubscriber
from shared.db import ensure_indexes
from shared.messaging import ORIGINAL_KEY_HEADER

__all__ = ["Voevents", "start", "intake_router", "ROUTING_KEY"]


@dataclass
class Voevents:
    intake: VoeventIntake
    subscribers: list[VtpSubscriber]

    def start_feeds(self) -> None:
        """Subscribe to the brokers (once the intake queue exists, so no forwarded packet is unroutable)."""
        for subscriber in self.subscribers:
            subscriber.start()

    def feeds(self) -> list[dict]:
        return [s.status.as_json() for s in self.subscribers]

    async def close(self) -> None:
        for subscriber in self.subscribers:
            await subscriber.stop()


async def start(settings: VoeventSettings, store: IngestStore, broker) -> Voevents:
    """Build the intake and one subscriber per configured VOEvent broker (started by ``start_feeds``)."""
    await ensure_indexes(store.db, INDEXES)
    policy = settings.policy()
    intake = VoeventIntake(store, PacketLog(store.db), broker.publish, policy,
                           max_packet_bytes=settings.max_packet_bytes)

    async def forward(body: bytes) -> None:
        await broker.publish_bytes(ROUTING_KEY, body, headers={VIA_HEADER: "vtp"}, content_type="application/xml")

    subscribers = [VtpSubscriber(host, port, forward=forward, notify=broker.publish, policy=policy,
                                 local_ivorn=settings.vtp_local_ivorn, alive_timeout_s=settings.vtp_alive_timeout_s,
                                 max_bytes=settings.max_packet_bytes,
                                 backoff=Backoff(settings.vtp_backoff_initial_s, settings.vtp_backoff_max_s))
                   for host, port in settings.remotes()]
    return Voevents(intake=intake, subscribers=subscribers)


def intake_router(on_upload, on_voevent):
    """One consumer for ingest's intake queue: packets to the VOEvent intake, the rest to uploads."""
    async def route(delivery) -> None:
        key = (delivery.headers or {}).get(ORIGINAL_KEY_HEADER) or delivery.routing_key
        await (on_voevent if key == ROUTING_KEY else on_upload)(delivery)

    return route
