"""An event as the sum of its packets: identity, aliases, position history, target. Pure.

One event per transient however often its packets come: the event's ``_id`` is the CPCS-style IVORN
``ivo://<stream's name>`` when the stream names the transient (``ivo://Gaia16aac``,
``ivo://SWIFT_655721``), else the first packet's IVORN. Every packet is kept in ``history``; the
event's position is the best usable one in it (the smallest stated error circle; among equals the
latest written), whatever order the packets arrived in, so a later, sharper packet refines it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.ingest.voevents.packet import Packet
from services.ingest.voevents.policy import VoeventPolicy

_STATE_KEYS = ("ra_deg", "dec_deg", "error_radius_deg", "position_from", "target_usable", "no_target_reason")


@dataclass(frozen=True)
class Merged:
    doc: dict
    position_changed: bool
    aliases_added: list[str]


def event_id(packet: Packet) -> str:
    return packet.cpcs_ivorn or packet.ivorn


def aliases_of(packet: Packet) -> list[str]:
    """Every name that finds the event: CPCS IVORN, the packet's IVORN, the stream's name, cited packets."""
    names = [packet.cpcs_ivorn, packet.ivorn, packet.name, *(c.ivorn for c in packet.citations)]
    return list(dict.fromkeys(n for n in names if n))


def history_entry(packet: Packet, policy: VoeventPolicy, *, via: str, received_at: datetime) -> dict:
    position = packet.position
    return {"packet_ivorn": packet.ivorn, "role": packet.role, "via": via, "received_at": received_at,
            "authored": packet.authored, "observed_mjd": packet.observed_mjd,
            "ra_deg": position.ra_deg if position else None, "dec_deg": position.dec_deg if position else None,
            "error_radius_deg": position.error_radius_deg if position else None,
            "position_source": position.source if position else None,
            "target_problem": policy.target_problem(packet), "retraction": packet.is_retraction,
            "baseline_mag": packet.baseline_mag}


def new_event(packet: Packet, entry: dict, *, alert_id: int, now: datetime) -> dict:
    doc = {"_id": event_id(packet), "alert_id": alert_id, "name": packet.name, "stream": packet.stream,
           "source": "voevent", "url": packet.url, "published": packet.authored or now,
           "description": packet.description, "first_packet": packet.ivorn, "role": packet.role,
           "aliases": aliases_of(packet), "history": [entry], "revision": 1, "updated_at": now}
    return doc | position_state([entry])


def merge(doc: dict, packet: Packet, entry: dict, *, now: datetime) -> Merged | None:
    """The event with this packet added; None when the packet is already in its history."""
    history = list(doc.get("history") or _manual_entries(doc))
    if any(e.get("packet_ivorn") == packet.ivorn for e in history):
        return None
    history = sorted([*history, entry], key=_chronological)
    known = list(doc.get("aliases") or [])
    added = [a for a in aliases_of(packet) if a not in known and a != doc["_id"]]
    state = position_state(history)
    merged = {**doc, **state, "history": history, "aliases": known + added,
              "name": doc.get("name") or packet.name, "stream": doc.get("stream") or packet.stream,
              "url": doc.get("url") or packet.url, "description": doc.get("description") or packet.description,
              "role": "observation" if any(e.get("role") == "observation" for e in history) else packet.role,
              "revision": (doc.get("revision") or 0) + 1, "updated_at": now}
    moved = any(doc.get(k) != merged.get(k) for k in ("ra_deg", "dec_deg", "error_radius_deg"))
    return Merged(doc=merged, position_changed=moved, aliases_added=added)


def position_state(history: list[dict]) -> dict:
    """Position and target of an event from every packet it has had."""
    retractions = [e for e in history if e.get("retraction")]
    if retractions:
        best = _best([e for e in history if _on_sky(e)])
        return _state(best, False, f"the alert was retracted by {retractions[-1]['packet_ivorn']}")
    usable = [e for e in history if _on_sky(e) and not e.get("target_problem")]
    if usable:
        return _state(_best(usable), True, None)
    informative = [e for e in history if _on_sky(e) and not (e["ra_deg"] == 0 and e["dec_deg"] == 0)]
    best = _best(informative)
    reason = (best or max(history, key=_chronological)).get("target_problem") or "no usable position"
    return _state(best, False, reason)


def _state(entry: dict | None, usable: bool, reason: str | None) -> dict:
    if entry is None:
        return dict(zip(_STATE_KEYS, (None, None, None, None, usable, reason), strict=True))
    return {"ra_deg": entry["ra_deg"] % 360.0, "dec_deg": entry["dec_deg"],
            "error_radius_deg": entry.get("error_radius_deg"), "position_from": entry.get("packet_ivorn"),
            "target_usable": usable, "no_target_reason": reason}


def _best(entries: list[dict]) -> dict | None:
    return min(entries, key=_rank) if entries else None


def _rank(entry: dict) -> tuple:
    error = entry.get("error_radius_deg")
    return (0 if error else 1, error or 0.0, -_when(entry).timestamp(), entry.get("packet_ivorn") or "")


def _chronological(entry: dict) -> tuple:
    return (_when(entry).timestamp(), entry.get("packet_ivorn") or "")


def _when(entry: dict) -> datetime:
    return entry.get("authored") or entry["received_at"]


def _on_sky(entry: dict) -> bool:
    ra, dec = entry.get("ra_deg"), entry.get("dec_deg")
    return ra is not None and dec is not None and -90 <= dec <= 90


def _manual_entries(doc: dict) -> list[dict]:
    """An event typed in by hand (or made by the API or the demo) keeps that position as its first entry."""
    if doc.get("ra_deg") is None or doc.get("dec_deg") is None:
        return []
    when = doc.get("published") or doc.get("updated_at")
    return [{"packet_ivorn": None, "role": "observation", "via": doc.get("source", "manual"), "received_at": when,
             "authored": when, "observed_mjd": None, "ra_deg": doc["ra_deg"], "dec_deg": doc["dec_deg"],
             "error_radius_deg": None, "position_source": doc.get("source", "manual"), "target_problem": None,
             "retraction": False, "baseline_mag": None}]
