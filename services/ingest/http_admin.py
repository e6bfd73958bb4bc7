"""Admin API: recalibration of stored points (dry run first)."""
from __future__ import annotations

from aiohttp import web

from services.ingest.deps import DEPS
from services.ingest.errors import IngestError, InvalidInput
from services.ingest.forms import json_body
from services.ingest.http_api import bearer
from services.ingest.http_render import problem
from services.ingest.usecases.access import authenticate, require_admin
from services.ingest.usecases.recalibrations import Recalibrations, check_overrides, selection_from

routes = web.RouteTableDef()
RECALIBRATIONS = web.AppKey("recalibrations", Recalibrations)


async def _admin(request: web.Request) -> dict:
    record = await authenticate(request.app[DEPS].store, bearer(request))
    return require_admin(record, "recalibration needs an admin token")


@routes.post("/api/v1/admin/recalibrations")
async def request_recalibration(request: web.Request) -> web.Response:
    try:
        admin = await _admin(request)
        body = await json_body(request)
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object with the selection and options")
        overrides = body.get("params") or {}
        if not isinstance(overrides, dict):
            raise InvalidInput("params must be an object of calibration parameter names and values")
        check_overrides(overrides)
        report = await request.app[RECALIBRATIONS].request(
            selection_from(body), dry_run=bool(body.get("dry_run", True)), param_overrides=overrides,
            reason=str(body.get("reason") or ""), requested_by=admin.get("user", ""))
    except IngestError as exc:
        return problem(exc)
    url = f"{request.app[DEPS].settings.public_url}/api/v1/admin/recalibrations/{report['recalibration_id']}"
    return web.json_response(report | {"status_url": url}, status=202, headers={"Location": url})


@routes.get("/api/v1/admin/recalibrations/{recalibration_id}")
async def recalibration_report(request: web.Request) -> web.Response:
    try:
        await _admin(request)
        return web.json_response(await request.app[RECALIBRATIONS].report(request.match_info["recalibration_id"]))
    except IngestError as exc:
        return problem(exc)
