"""Contracts of the alert feeds: VOEvent packets handled, events refined, alert photometry, feed state.

The raw packets themselves travel as ``voevent.received.v1`` with the XML as the body (like
``upload.submitted.v1``); they are not a JSON contract and are not in the registry.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.contracts.base import Message, Part

Outcome = Literal["created", "updated", "recorded_without_target", "duplicate", "ignored"]
Intake = Literal["http", "amqp", "vtp"]


_Part = Part


class VoeventProcessedV1(Message):
    """What became of one VOEvent packet, whichever intake brought it; ``reason`` says why."""

    routing_key = "voevent.processed.v1"
    packet_ivorn: str
    via: Intake
    role: str
    outcome: Outcome
    reason: str
    event_ivorn: str | None = None  # the event's own IVORN (its ``_id``), None when ignored
    target_usable: bool | None = None


class EventUpdatedV1(Message):
    """A known event took a new packet: its position may be refined, its aliases grown."""

    routing_key = "event.updated.v1"
    ivorn: str
    packet_ivorn: str
    ra_deg: float | None = None
    dec_deg: float | None = None
    error_radius_deg: float | None = None
    position_changed: bool = False
    target_usable: bool
    no_target_reason: str | None = None
    aliases: list[str] = []
    n_packets: int = Field(ge=1)
    # the rest of the event as it is now, so readers need not ask ingest (see EventCreatedV1)
    alert_id: int | None = None
    name: str | None = None
    published: datetime | None = None
    url: str = ""
    source: str = ""
    revision: int = 0  # the event's revision after this packet: readers keep the highest they saw


class LightcurveEventStoredV1(Message):
    """The lightcurve service stored its copy of an event (from event.created.v1 / event.updated.v1);
    ``applied`` is False when it already held a newer revision."""

    routing_key = "lightcurve.event.stored.v1"
    event_ivorn: str
    revision: int
    applied: bool


class AlertPoint(_Part):
    """A magnitude the alert stream itself measured (survey data, not a follow-up point)."""

    mjd: float
    mag: float
    mag_err: float | None = None
    band: str
    is_limit: bool = False


class AlertPhotometryReceivedV1(Message):
    """An alert packet carried the survey's own photometry of its event; the light curve keeps it apart."""

    routing_key = "alert.photometry.received.v1"
    event_ivorn: str
    packet_ivorn: str
    survey: str
    points: list[AlertPoint] = Field(min_length=1)


class AlertPhotometryStoredV1(Message):
    """The lightcurve service stored an alert packet's points (idempotently, by point id)."""

    routing_key = "alert.photometry.stored.v1"
    event_ivorn: str
    packet_ivorn: str
    point_ids: list[str]


class VoeventFeedChangedV1(Message):
    """A VOEvent Transport Protocol subscription came up (the broker spoke) or went down."""

    routing_key = "voevent.feed.changed.v1"
    remote: str
    state: Literal["connected", "disconnected"]
    reason: str = ""
