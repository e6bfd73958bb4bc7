"""Alert photometry: the alert stream's own points (e.g. Gaia G), kept apart from follow-up points.

They live in their own collection ``alert_points`` so that every follow-up reader (CPCS column arrays,
``/list_of_followups``, counts) sees exactly what it saw before; the JSON/CSV light curve and the page
show them beside the follow-up points with ``kind: "alert"``.
"""
from __future__ import annotations

from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from services.lightcurve.ports import AlertPointStore
from shared.contracts import AlertPhotometryReceivedV1, AlertPhotometryStoredV1, AlertPoint
from shared.db import IndexSpec, asc

INDEXES = [IndexSpec("alert_points", asc("event_ivorn", "mjd"))]


def alert_point_id(packet_ivorn: str, point: AlertPoint) -> str:
    """One point per packet, band and epoch: a packet delivered again replaces its own points."""
    return f"{packet_ivorn}|{point.band}|{point.mjd:.6f}"


class AlertPointCollection:
    """The ``alert_points`` collection (the ``AlertPointStore`` of the handler, and the pages' reader)."""

    def __init__(self, db: AsyncDatabase):
        self.points = db.alert_points

    async def replace_alert_point(self, doc: dict) -> None:
        await self.points.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def of_event(self, ivorn: str) -> list[dict]:
        return await self.points.find({"event_ivorn": ivorn}).sort([("mjd", 1), ("_id", 1)]).to_list(None)


class AlertPoints:
    def __init__(self, store: AlertPointStore):
        self.store = store

    async def on_alert_photometry_received(self, message: AlertPhotometryReceivedV1) -> list[AlertPhotometryStoredV1]:
        ids = []
        for point in message.points:
            doc = {"_id": alert_point_id(message.packet_ivorn, point), "event_ivorn": message.event_ivorn,
                   "packet_ivorn": message.packet_ivorn, "survey": message.survey, "mjd": point.mjd,
                   "mag": point.mag, "mag_err": point.mag_err, "filter": point.band, "is_limit": point.is_limit,
                   "stored_at": datetime.now(UTC)}
            await self.store.replace_alert_point(doc)
            ids.append(doc["_id"])
        return [AlertPhotometryStoredV1(event_ivorn=message.event_ivorn, packet_ivorn=message.packet_ivorn,
                                        point_ids=ids)]
