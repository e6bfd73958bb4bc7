"""The home page and the forms: upload, new event, delete a point (the lists are in ``web.lists``)."""
from __future__ import annotations

import aiohttp_jinja2
import astropy.units as u
from aiohttp import web
from astropy.coordinates import SkyCoord

from services.ingest.deps import DEPS
from services.ingest.errors import IngestError, InvalidInput
from services.ingest.usecases.access import authenticate
from services.ingest.usecases.events import create_event
from services.ingest.usecases.observations import delete_observation
from services.ingest.web.errors import page as error_page
from services.ingest.web.session import csrf_protected, current_user, login_required

routes = web.RouteTableDef()

@routes.get("/")
async def index(request: web.Request) -> web.StreamResponse:
    return aiohttp_jinja2.render_template("index.html", request, {})


def decimal_degrees(ra: str, dec: str) -> tuple[float, float]:
    """RA and Dec as typed: decimal degrees, or sexagesimal (RA in hours: ``19:40:01.15``, ``19h40m01s``;
    Dec in degrees: ``+30:07:53.3``), as decimal degrees; ``InvalidInput`` with the reason otherwise."""
    ra, dec = ra.strip(), dec.strip()
    if not ra or not dec:
        raise InvalidInput("give both RA and Dec")
    try:
        return float(ra), float(dec)
    except ValueError:
        pass
    try:
        position = SkyCoord(ra, dec, unit=(u.hourangle, u.deg), frame="icrs")
    except (ValueError, u.UnitsError) as exc:
        raise InvalidInput(f"RA {ra!r} and Dec {dec!r} are neither decimal degrees nor sexagesimal "
                           f"(e.g. 19:40:01.15 +30:07:53.3): {exc}") from None
    return float(position.ra.deg), float(position.dec.deg)


async def _token_record(request: web.Request) -> dict:
    user = await current_user(request)
    return await authenticate(request.app[DEPS].store, user.token if user else "",
                              unknown="your login has expired: log in again")


def _refused(request: web.Request, template: str, exc: IngestError, form: dict) -> web.Response:
    """The form again, with the reason and the status the error maps to."""
    return error_page(request, template, {"error": str(exc), "form": form, "done": None}, refusal=exc)


@routes.get("/newevent")
@login_required
async def newevent_form(request: web.Request) -> web.StreamResponse:
    return aiohttp_jinja2.render_template("newevent.html", request, {"error": None, "form": {}, "done": None})


@routes.post("/newevent")
@login_required
@csrf_protected
async def newevent(request: web.Request) -> web.StreamResponse:
    posted = await request.post()
    form = {k: str(posted.get(k, "")).strip() for k in ("ivorn", "ra", "dec", "url")}
    deps = request.app[DEPS]
    try:
        await _token_record(request)
        ra, dec = decimal_degrees(form["ra"], form["dec"])
        ivorn = form["ivorn"] if form["ivorn"].startswith("ivo://") or not form["ivorn"] else f"ivo://{form['ivorn']}"
        event, created = await create_event(deps.store, deps.publish, ivorn=ivorn, ra=ra, dec=dec, url=form["url"],
                                            source="manual")
    except IngestError as exc:
        return _refused(request, "newevent.html", exc, form)
    return aiohttp_jinja2.render_template("newevent.html", request, {
        "error": None, "form": {}, "done": {"event": event, "created": created}})


@routes.get("/delpoint")
@login_required
async def delpoint_form(request: web.Request) -> web.StreamResponse:
    form = {"followupid": request.query.get("followupid", "")}
    return aiohttp_jinja2.render_template("delpoint.html", request, {"error": None, "form": form, "done": None})


@routes.post("/delpoint")
@login_required
@csrf_protected
async def delpoint(request: web.Request) -> web.StreamResponse:
    posted = await request.post()
    form = {"followupid": str(posted.get("followupid", "")).strip()}
    deps = request.app[DEPS]
    try:
        record = await _token_record(request)
        if not form["followupid"].isdigit():
            raise InvalidInput(f"the follow-up id is the whole number of a point, got {form['followupid']!r}")
        if posted.get("confirm") != "yes":
            raise InvalidInput("tick the box to confirm: a deleted point cannot be brought back")
        observation = await delete_observation(deps.store, deps.publish, record, followup_id=int(form["followupid"]))
    except IngestError as exc:
        return _refused(request, "delpoint.html", exc, form)
    return aiohttp_jinja2.render_template("delpoint.html", request, {
        "error": None, "form": {}, "done": {"followup_id": int(form["followupid"]),
                                            "event": observation["event_ivorn"]}})
