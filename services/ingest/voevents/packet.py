"""One VOEvent packet read into plain values (VOEvent 2.0, and 1.1 where it differs only in namespaces).

Pure and synchronous: bytes in, a ``Packet`` out, or ``PacketError`` with a reason for the sender.
Real packets are messy, and each mess has a rule here: unnamed Params (read by UCD), empty values
(absent), text that is not the UTF-8 it claims (read as Windows-1252), UTF-8 read once as
Windows-1252 (repaired), no namespace prefix or STC-namespaced children (namespaces are dropped),
no position (None, with the reason), a position only in RA/Dec Params (read, sexagesimal too).
Whether a position is usable as a photometry target is decided by ``policy``, not here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.ingest.voevents._what import AlertMagnitude, alert_magnitudes, event_url, survey_name, transient_name
from services.ingest.voevents._where import Position, parse_datetime, read_position, read_time
from services.ingest.voevents._xml import PacketError, parse_xml, text
from services.ingest.voevents._xml import params as read_params

ROLES = ("observation", "prediction", "utility", "test")
__all__ = ["Packet", "PacketError", "Position", "AlertMagnitude", "Citation", "parse_packet", "ROLES"]


@dataclass(frozen=True)
class Citation:
    ivorn: str
    cite: str  # followup, supersedes or retraction


@dataclass(frozen=True)
class Packet:
    ivorn: str
    role: str
    version: str
    stream: str  # the IVORN before '#': who publishes, e.g. ivo://gaia.cam.uk/alerts
    name: str | None  # the stream's name for the transient, e.g. Gaia16aac
    author_ivorn: str | None
    authored: datetime | None  # Who/Date, UTC
    observed_iso: str | None  # WhereWhen time as written
    time_scale: str
    observed_mjd: float | None  # that time as MJD (UTC)
    position: Position | None
    position_problem: str | None  # why there is no position, when there is none
    citations: tuple[Citation, ...]
    url: str
    description: str | None
    survey: str
    photometry: tuple[AlertMagnitude, ...]
    baseline_mag: float | None
    params: dict[str, str] = field(default_factory=dict)  # named Params with values (last wins)
    notes: tuple[str, ...] = ()

    @property
    def cpcs_ivorn(self) -> str | None:
        """The IVORN the original CPCS used for the transient: ``ivo://`` and the stream's name."""
        return f"ivo://{self.name}" if self.name else None

    @property
    def is_retraction(self) -> bool:
        return any(c.cite == "retraction" for c in self.citations)


def parse_packet(data: bytes) -> Packet:
    """Read a VOEvent packet; ``PacketError`` says why when it is not one."""
    root, notes = parse_xml(data)
    if root.tag != "VOEvent":
        raise PacketError(f"the document is a <{root.tag}>, not a <VOEvent>")
    ivorn = (root.get("ivorn") or "").strip()
    if not ivorn.startswith("ivo://") or len(ivorn) <= len("ivo://"):
        raise PacketError(f"the VOEvent has no usable ivorn attribute (got {ivorn!r}): it cannot be identified")
    role = (root.get("role") or "observation").strip().lower()
    if role not in ROLES:
        raise PacketError(f"the VOEvent role {role!r} is none of {', '.join(ROLES)}")
    params = read_params(root)
    position, problem, where_notes = read_position(root, params)
    iso, scale, mjd, time_notes = read_time(root, params)
    stream = ivorn.split("#", 1)[0]
    magnitudes, baseline = alert_magnitudes(params, notes)
    if magnitudes and mjd is None:
        notes.append("the packet's magnitudes have no observation time; they are not kept")
        magnitudes = []
    return Packet(
        ivorn=ivorn, role=role, version=(root.get("version") or "").strip(), stream=stream,
        name=transient_name(params, stream), author_ivorn=text(root, "Who/AuthorIVORN"),
        authored=_authored(root, notes), observed_iso=iso, time_scale=scale, observed_mjd=mjd,
        position=position, position_problem=problem, citations=_citations(root), url=event_url(root, params),
        description=text(root, "What/Description") or text(root, "Description"), survey=survey_name(stream),
        photometry=tuple(magnitudes), baseline_mag=baseline,
        params={p.name: p.value for p in params if p.name and p.value is not None},
        notes=tuple(notes + where_notes + time_notes))


def _authored(root, notes: list[str]) -> datetime | None:
    written = text(root, "Who/Date")
    if written is None:
        return None
    try:
        moment = parse_datetime(written)
    except ValueError:
        notes.append(f"Who/Date {written!r} is not an ISO 8601 time")
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _citations(root) -> tuple[Citation, ...]:
    found = []
    for element in root.iterfind("Citations/EventIVORN"):
        cited = (element.text or "").strip()
        if cited.startswith("ivo://"):
            found.append(Citation(ivorn=cited, cite=(element.get("cite") or "followup").strip().lower()))
    return tuple(found)
