"""The manual (preparing data, the formats the readers accept, the curl line, every form field), the API
documentation (Swagger UI from the ``swagger-ui-bundle`` package, on ``/api/v1/openapi.yaml``)."""
from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

from services.ingest.deps import DEPS
from shared.catalogue.reader import FLUX_COLUMNS, MAG_COLUMNS, MAX_MAG_ERR, POSITION_COLUMNS, SENTINEL

routes = web.RouteTableDef()
SWAGGER_UI = Path(str(swagger_ui_path))


@routes.get("/manual")
async def manual(request: web.Request) -> web.StreamResponse:
    settings = request.app[DEPS].settings
    return aiohttp_jinja2.render_template("manual.html", request, {
        "public_url": settings.public_url.rstrip("/"), "max_upload_mb": settings.max_upload_mb,
        "upload_wait_s": settings.upload_wait_s, "positions": POSITION_COLUMNS, "mags": MAG_COLUMNS,
        "fluxes": FLUX_COLUMNS, "max_mag_err": MAX_MAG_ERR, "sentinel": SENTINEL})


@routes.get("/api/docs")
async def api_docs(request: web.Request) -> web.StreamResponse:
    return aiohttp_jinja2.render_template("api_docs.html", request, {})

