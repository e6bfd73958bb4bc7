"""The admins' page of observatories: each with its tokens' readable prefixes, and a form creating an
observatory and its token (the CPCS ``/cgi/newuser``), the new token shown once."""
from __future__ import annotations

from aiohttp import web

from services.ingest.deps import DEPS
from services.ingest.errors import Forbidden, IngestError
from services.ingest.usecases.access import authenticate, require_admin
from services.ingest.usecases.observatories import create_observatory, observatories_with_tokens
from services.ingest.web.errors import page
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
        return page(request, "admin_forbidden.html", {"reason": str(exc)}, refusal=exc)
    return None


async def _render(request: web.Request, *, created=None, refusal: IngestError | None = None,
                  form=None) -> web.Response:
    rows = await observatories_with_tokens(request.app[DEPS].store)
    return page(request, "admin_observatories.html", {
        "rows": rows, "created": created, "error": str(refusal) if refusal else None, "form": form or {}},
        refusal=refusal)


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
        return await _render(request, refusal=exc, form=fields)
    return await _render(request, created=created)
