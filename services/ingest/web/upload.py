"""The upload form (``/uploader``), its filter choices (``/uploader/filters``), the upload it posts
(``POST /upload``) and storing a dry run that was tried (``POST /upload/store``).

Every upload goes through the same use case as ``/cgi/upload`` (``usecases.uploads.upload_and_wait``), with
the signed-in observatory's hashtag from the session; the answer is the result page (``results``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp_jinja2
import numpy as np
from aiohttp import web
from astropy.time import Time

from services.ingest.cpcs_fields import request_from_fields
from services.ingest.deps import DEPS
from services.ingest.errors import IngestError, InvalidInput, NotFound
from services.ingest.forms import posted
from services.ingest.usecases import uploads
from services.ingest.usecases.events import list_events
from services.ingest.web import results
from services.ingest.web.session import User, csrf_protected, current_user, login_required
from shared.refcat.store import RefcatStore

routes = web.RouteTableDef()

#: Matching radius choices [arcsec]; "" is the automatic radius (from the catalogue's astrometry).
RADII = ("", "1", "2", "4", "6")
#: The bands an observer's filter is usually called (suggestions; any name is accepted).
USUAL_BANDS = ("U", "B", "V", "R", "I", "u", "g", "r", "i", "z", "y", "Clear", "G", "J", "H", "K")
#: How far around the event the force-filter choices look for reference stars [deg].
FILTER_CONE_DEG = 0.2
EVENTS_LISTED = 1000


@dataclass(frozen=True)
class FilterChoice:
    value: str
    label: str


def refcat(app: web.Application) -> RefcatStore:
    """The reference store (shared code; ingest is one of its ``REFCAT_USERS``, as a reader)."""
    return RefcatStore(app[DEPS].store.db)


async def filter_choices(app: web.Application, event: dict | None) -> list[FilterChoice]:
    """"Automatic" and every SURVEY/band the reference store has stars in around the event."""
    choices = [FilterChoice("no", "automatic")]
    if not event or event.get("ra_deg") is None or event.get("dec_deg") is None:
        return choices
    found = await refcat(app).cone(float(event["ra_deg"]), float(event["dec_deg"]), FILTER_CONE_DEG)
    for stars in found:
        for band, mags in stars.mags.items():
            n = int(np.isfinite(np.asarray(mags, dtype=float)).sum())
            if n:
                choices.append(FilterChoice(f"{stars.survey}/{band}", f"{stars.survey} {band} ({n} stars)"))
    return choices


def _event_label(event: dict) -> str:
    name = event.get("name") or event["_id"].removeprefix("ivo://")
    return name if name == event["_id"] else f"{name} — {event['_id']}"


@routes.get("/uploader")
@login_required
async def uploader(request: web.Request) -> web.StreamResponse:
    deps = request.app[DEPS]
    events = await list_events(deps.store, offset=0, limit=EVENTS_LISTED)
    wanted = request.query.get("event", "").strip()
    selected = await deps.store.find_event(wanted) if wanted else None
    return aiohttp_jinja2.render_template("uploader.html", request, {
        "events": [(e["_id"], _event_label(e)) for e in events],
        "selected": selected["_id"] if selected else wanted,
        "unknown_event": bool(wanted) and selected is None,
        "filters": await filter_choices(request.app, selected),
        "radii": RADII, "bands": USUAL_BANDS, "max_mb": deps.settings.max_upload_mb})


@routes.get("/uploader/filters")
@login_required
async def uploader_filters(request: web.Request) -> web.StreamResponse:
    """The force-filter choices of one event, for the form when the event changes."""
    ivorn = request.query.get("event", "").strip()
    event = await request.app[DEPS].store.find_event(ivorn) if ivorn else None
    choices = await filter_choices(request.app, event)
    return web.json_response({"event": event["_id"] if event else None,
                              "choices": [{"value": c.value, "label": c.label} for c in choices]})


def mjd_from_form(form) -> str:
    """The MJD field of the upload: typed, or converted from the UTC date and time (mid-exposure)."""
    typed = str(form.get("MJD", "")).strip()
    moment = str(form.get("utc", "")).strip()
    if str(form.get("time_kind", "mjd")) == "utc" or (moment and not typed):
        if not moment:
            return ""
        try:
            return repr(float(Time(moment.replace(" ", "T"), format="isot", scale="utc").mjd))
        except ValueError:
            raise InvalidInput(f"the UTC time must be a date and time like 2026-03-14T21:05:30, got {moment!r}") \
                from None
    return typed


async def request_of_form(request: web.Request, user: User) -> uploads.UploadRequest:
    """The upload request of the form: the CPCS field names, the hashtag of the session."""
    form = await posted(request)
    upload = form.get("sexCat")
    if not isinstance(upload, web.FileField):
        raise InvalidInput("no catalogue file was attached: choose the file of the observation")
    fields = {name: str(form.get(name, "")) for name in
              ("EventID", "expTime", "matchDist", "forceFilter", "comment", "filter")}
    fields["MJD"] = mjd_from_form(form)
    fields["dryRun"] = "1" if form.get("dryRun") else "0"
    return request_from_fields(fields, upload.file.read(), upload.filename or "catalogue", user.token)


async def _posted_event(request: web.Request) -> str | None:
    """The event of a refused form (for the way back), None when the form itself could not be read."""
    try:
        return str((await posted(request)).get("EventID", "")).strip() or None
    except IngestError:
        return None


@routes.post("/upload")
@login_required
@csrf_protected
async def upload(request: web.Request) -> web.StreamResponse:
    deps = request.app[DEPS]
    user = await current_user(request)
    assert user is not None  # login_required
    started = time.monotonic()
    try:
        req = await request_of_form(request, user)
        waited = await uploads.upload_and_wait(deps.uploads, deps.waiters, req,
                                               deps.settings.upload_wait_s)
    except IngestError as exc:
        return await results.error_page(request, exc, event=await _posted_event(request))
    return await results.outcome_page(request, req, waited, elapsed_s=time.monotonic() - started,
                                      observatory_id=user.observatory_id)


@routes.post("/upload/store")
@login_required
@csrf_protected
async def store_dry_run(request: web.Request) -> web.StreamResponse:
    """Store the point a kept dry run gave, with the same file and parameters."""
    deps = request.app[DEPS]
    user = await current_user(request)
    assert user is not None
    started = time.monotonic()
    kept_id = str((await request.post()).get("kept", ""))
    try:
        if not kept_id:
            raise NotFound(uploads.GONE_DRY_RUN)
        req, waited = await uploads.store_kept_dry_run(
            deps.uploads, deps.waiters, deps.store, kept_id, token=user.token,
            observatory_id=user.observatory_id, wait_s=deps.settings.upload_wait_s)
    except IngestError as exc:
        return await results.error_page(request, exc)
    return await results.outcome_page(request, req, waited, elapsed_s=time.monotonic() - started,
                                      observatory_id=user.observatory_id)
