"""Admin API: recalibration of stored points (dry run first)."""
from __future__ import annotations

from aiohttp import web

from shared.calibration_params import CalibrationParameters
from services.ingest.deps import DEPS
from services.ingest.http_api import bearer, problem
from services.ingest.recalibrations import Recalibrations, selection_from
from services.ingest.uploads import UploadRefused

routes = web.RouteTableDef()
RECALIBRATIONS = web.AppKey("recalibrations", Recalibrations)


async def _admin(request: web.Request) -> dict:
    record = await request.app[DEPS].store.find_token(bearer(request))
    if record is None:
        raise UploadRefused(401, "unknown or missing token")
    if not record.get("is_admin"):
        raise UploadRefused(403, "recalibration needs an admin token")
    return record


@routes.post("/api/v1/admin/recalibrations")
async def request_recalibration(request: web.Request) -> web.Response:
    try:
        admin = await _admin(request)
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise UploadRefused(400, "the body must be a JSON object with the selection and options")
        overrides = body.get("params") or {}
        if not isinstance(overrides, dict):
            raise UploadRefused(400, "params must be an object of calibration parameter names and values")
        _check_params(overrides)
        report = await request.app[RECALIBRATIONS].request(
            selection_from(body), dry_run=bool(body.get("dry_run", True)), param_overrides=overrides,
            reason=str(body.get("reason") or ""), requested_by=admin.get("user", ""))
    except UploadRefused as exc:
        return problem(exc.status, str(exc))
    url = f"{request.app[DEPS].settings.public_url}/api/v1/admin/recalibrations/{report['recalibration_id']}"
    return web.json_response(report | {"status_url": url}, status=202, headers={"Location": url})


@routes.get("/api/v1/admin/recalibrations/{recalibration_id}")
async def recalibration_report(request: web.Request) -> web.Response:
    try:
        await _admin(request)
        return web.json_response(await request.app[RECALIBRATIONS].report(request.match_info["recalibration_id"]))
    except UploadRefused as exc:
        return problem(exc.status, str(exc))


def _check_params(overrides: dict) -> None:
    try:
        CalibrationParameters.with_overrides(overrides)
    except ValueError as exc:
        raise UploadRefused(400, str(exc)) from exc
