"""``POST /api/v1/voevents``: a feed (or an operator) posts one VOEvent packet; the answer is its outcome."""
from __future__ import annotations

from aiohttp import web

from services.ingest.deps import DEPS, token_from
from services.ingest.errors import IngestError, InvalidInput, TooLarge, Unavailable
from services.ingest.event_messages import n_packets
from services.ingest.forms import body_bytes, posted
from services.ingest.http_render import problem
from services.ingest.usecases.access import authenticate, require_voevent_poster
from services.ingest.voevents.intake import Outcome, VoeventIntake

VOEVENTS = web.AppKey("voevents", VoeventIntake)


def _bearer(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else token_from(request)


async def post_voevent(request: web.Request) -> web.Response:
    """The body is the packet's XML (or a form with the packet in field ``voevent``)."""
    try:
        intake = request.app.get(VOEVENTS)
        if intake is None:
            raise Unavailable("the VOEvent intake is not running on this server")
        require_voevent_poster(await authenticate(request.app[DEPS].store, _bearer(request),
                                                  unknown="unknown or missing token: VOEvents are posted with a token"))
        outcome = await intake.receive(await _packet_bytes(request, intake.max_packet_bytes), via="http")
    except IngestError as exc:
        return problem(exc)
    return web.json_response(outcome_json(outcome), status=201 if outcome.event_created else 200)


async def _packet_bytes(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit + 65536:
        raise TooLarge(f"the request is {request.content_length / 1024:.0f} KiB; the limit for a "
                       f"packet is {limit / 1024:.0f} KiB")
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await posted(request)
        field = form.get("voevent")
        if field is None:
            raise InvalidInput("the form has no field 'voevent' with the packet")
        return field.file.read() if isinstance(field, web.FileField) else str(field).encode()
    return await body_bytes(request)


def outcome_json(outcome: Outcome) -> dict:
    return {"packet_ivorn": outcome.packet_ivorn, "role": outcome.role, "outcome": outcome.outcome,
            "reason": outcome.reason, "event": event_view(outcome.event) if outcome.event else None}


def event_view(doc: dict) -> dict:
    """An event as the alert feeds see it: identity, aliases, position and whether it is a target."""
    return {"id": doc.get("alert_id"), "ivorn": doc["_id"], "name": doc.get("name"),
            "aliases": list(doc.get("aliases") or []), "ra": doc.get("ra_deg"), "dec": doc.get("dec_deg"),
            "error_radius_deg": doc.get("error_radius_deg"), "target_usable": doc.get("target_usable", True),
            "no_target_reason": doc.get("no_target_reason"), "role": doc.get("role"), "url": doc.get("url", ""),
            "source": doc.get("source", ""), "n_packets": n_packets(doc)}
