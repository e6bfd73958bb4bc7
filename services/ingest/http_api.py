"""REST API under /api/v1: uploads answered with 202 and a status URL, observations, events, observatories."""
from __future__ import annotations

import uuid
from importlib import resources

from aiohttp import web

from services.ingest.cpcs_fields import request_from_fields
from services.ingest.deps import DEPS, token_from
from services.ingest.errors import IngestError, InvalidInput, NotAuthenticated, NotFound
from services.ingest.forms import json_body
from services.ingest.http_cgi import event_json, read_form, upload_and_wait
from services.ingest.http_render import problem
from services.ingest.read_policy import TOKEN_SCHEMES, may_see_observation, reader, require_data_reader
from services.ingest.results import status_url
from services.ingest.usecases.access import authenticate
from services.ingest.usecases.events import create_event as create_event_for
from services.ingest.usecases.events import list_events as events_page
from services.ingest.usecases.observations import delete_observation, find_observation
from services.ingest.usecases.observatories import observatory_rows
from services.ingest.voevents.http import post_voevent

routes = web.RouteTableDef()


__all__ = ["TOKEN_SCHEMES", "bearer", "routes"]


def bearer(request: web.Request, fields: dict | None = None) -> str:
    """The token of a REST call: from ``Authorization: Bearer|Token <t>``, else the form, query or cookie."""
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() in TOKEN_SCHEMES and value.strip():
        return value.strip()
    return token_from(request, fields)


@routes.post("/api/v1/uploads")
async def create_upload(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    try:
        fields, data, filename = await read_form(request)
        req = request_from_fields(fields, data, filename, bearer(request, fields))
        if req.dry_run:
            status, answer = await upload_and_wait(deps, req)
            return web.json_response(answer, status=status)
        accepted = await deps.uploads.accept(req, uuid.uuid4().hex)
    except IngestError as exc:
        return problem(exc)
    url = status_url(deps.settings.public_url, accepted.observation_id)
    return web.json_response({"observation_id": accepted.observation_id, "followup_id": accepted.followup_id,
                              "status": "received", "status_url": url}, status=202, headers={"Location": url})


def observation_json(doc: dict) -> dict:
    keep = ("followup_id", "event_ivorn", "observatory_id", "observatory_name", "mjd", "exptime_s", "filename",
            "sha256", "force_filter", "match_radius_arcsec", "comment", "declared_filter", "n_stars",
            "n_dropped", "file_format", "status", "result", "reason")
    body = {"observation_id": doc["_id"], **{k: doc.get(k) for k in keep}}
    body["received_at"] = doc["received_at"].isoformat() if doc.get("received_at") else None
    return body


@routes.get("/api/v1/observations/{observation_id}")
async def get_observation(request: web.Request) -> web.Response:
    """An observation's details, for the observatory that uploaded it and admins: to anyone else it is
    not there (404, the same answer as an unknown id, so ids cannot be probed); 401 without a token."""
    deps = request.app[DEPS]
    try:
        record = await reader(request)
        if record is None:
            raise NotAuthenticated("an observation's details are for the observatory that uploaded it: "
                                   "send its hashtag (Authorization: Bearer <hashtag>) or sign in")
        doc = await find_observation(deps.store, request.match_info["observation_id"])
        if not may_see_observation(record, doc):
            raise NotFound(f"there is no observation {request.match_info['observation_id']}")
    except IngestError as exc:
        return problem(exc)
    return web.json_response(observation_json(doc))


@routes.delete("/api/v1/observations/{observation_id}")
async def delete_obs(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    try:
        record = await authenticate(deps.store, bearer(request))
        doc = await find_observation(deps.store, request.match_info["observation_id"])
        await delete_observation(deps.store, deps.publish, record, observation_id=doc["_id"])
    except IngestError as exc:
        return problem(exc)
    return web.json_response({"deleted": True, "observation_id": doc["_id"], "followup_id": doc["followup_id"]})


@routes.get("/api/v1/events")
async def list_events(request: web.Request) -> web.Response:
    try:
        await require_data_reader(request)
        offset = max(0, int(request.query.get("offset", 0)))
        limit = min(1000, max(1, int(request.query.get("limit", 100))))
    except ValueError:
        return problem(InvalidInput("offset and limit must be integers"))
    except IngestError as exc:
        return problem(exc)
    events = await events_page(request.app[DEPS].store, offset=offset, limit=limit)
    return web.json_response({"events": [event_json(e) for e in events], "offset": offset, "limit": limit})


@routes.post("/api/v1/events")
async def create_event(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    try:
        await authenticate(deps.store, bearer(request))
        body = await json_body(request)
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object: "
                               "{\"ivorn\": ..., \"ra\": ..., \"dec\": ..., \"url\": ...}")
        doc, created = await create_event_for(deps.store, deps.publish, ivorn=body.get("ivorn"), ra=body.get("ra"),
                                              dec=body.get("dec"), url=str(body.get("url") or ""), source="api")
    except IngestError as exc:
        return problem(exc)
    return web.json_response(event_json(doc) | {"created": created}, status=201 if created else 200)


@routes.get("/api/v1/observatories")
async def list_observatories(request: web.Request) -> web.Response:
    try:
        await require_data_reader(request)
    except IngestError as exc:
        return problem(exc)
    return web.json_response({"observatories": await observatory_rows(request.app[DEPS].store)})


@routes.get("/api/v1/openapi.yaml")
async def openapi(request: web.Request) -> web.Response:
    text = resources.files("services.ingest").joinpath("openapi.yaml").read_text()
    return web.Response(text=text, content_type="application/yaml")


routes.post("/api/v1/voevents")(post_voevent)  # the handler lives with the rest of the alert feeds
