"""The admins' page of observatories: each with its tokens' readable prefixes, and a form creating an
observatory and its token (the CPCS ``/cgi/newuser``), the new token shown once."""
from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from services.ingest.answers import http_status
from services.ingest.deps import DEPS
from services.ingest.errors import Forbidden, IngestError
from services.ingest.usecases.access import authenticate, require_admin
from services.ingest.usecases.observatories import create_observatory, observatories_with_tokens
from services.ingest.web.session import csrf_protected, current_user, login_required

routes = web.RouteTableDef()
NOT_ADMIN = "this page is for admins: log in with an admin hashtag"


async def _admin_or_refusal(request: web.Request) -> web.Response | None:
    """None for a signed-in admin (its token still known and still an admin), else the 403 page."""
    user = await current_user(request)
    try:
        if user is None or not user.is_admin:
            raise Forbidden(NOT_ADMIN)
        require_admin(await authenticate(request.app[DEPS].store, user.token), NOT_ADMIN)
    except IngestError as exc:
        response = aiohttp_jinja2.render_template("admin_forbidden.html", request, {"reason": str(exc)})
        response.set_status(http_status(exc))
        return response
    return None


async def _render(request: web.Request, *, created=None, error: str | None = None, form=None,
                  status: int | None = None) -> web.Response:
    rows = await observatories_with_tokens(request.app[DEPS].store)
    response = aiohttp_jinja2.render_template("admin_observatories.html", request, {
        "rows": rows, "created": created, "error": error, "form": form or {}})
    if status is not None:
        response.set_status(status)
    return response


@routes.get("/admin/observatories")
@login_required
async def admin_observatories(request: web.Request) -> web.StreamResponse:
    refusal = await _admin_or_refusal(request)
    return refusal if refusal is not None else await _render(request)


@routes.post("/admin/observatories")
@login_required
@csrf_protected
async def admin_create_observatory(request: web.Request) -> web.StreamResponse:
    refusal = await _admin_or_refusal(request)
    if refusal is not None:
        return refusal
    form = await request.post()
    fields = {k: str(form.get(k, "")).strip() for k in ("name", "lon", "lat", "prefix")}
    try:
        created = await create_observatory(request.app[DEPS].store, name=fields["name"], lon=fields["lon"],
                                           lat=fields["lat"], prefix=fields["prefix"],
                                           allow_upload=form.get("allow_upload") == "1",
                                           allow_voevents=form.get("allow_voevents") == "1")
    except IngestError as exc:
        return await _render(request, error=str(exc), form=fields, status=http_status(exc))
    return await _render(request, created=created)
