"""REST API under /api/v1: uploads answered with 202 and a status URL, observations, events, observatories."""
from __future__ import annotations

import uuid
from importlib import resources

from aiohttp import web

from services.ingest.deps import DEPS, token_from
from services.ingest.event_messages import event_created
from services.ingest.http_cgi import checked_event, delete_observation, event_json, read_form, upload_and_wait
from services.ingest.results import status_url
from services.ingest.uploads import UploadRefused, request_from_fields
from services.ingest.voevents.http import post_voevent

routes = web.RouteTableDef()


def bearer(request: web.Request, fields: dict | None = None) -> str:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return token_from(request, fields)


def problem(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason, "status": status}, status=status)


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
    except UploadRefused as exc:
        return web.json_response({"error": str(exc), "status": exc.status, **exc.extra}, status=exc.status)
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


async def _find_observation(request: web.Request) -> dict:
    store, key = request.app[DEPS].store, request.match_info["observation_id"]
    doc = (await store.find_observation_by_followup(int(key)) if key.isdigit()
           else await store.find_observation(key))
    if doc is None:
        raise UploadRefused(404, f"there is no observation {key}")
    return doc


@routes.get("/api/v1/observations/{observation_id}")
async def get_observation(request: web.Request) -> web.Response:
    try:
        return web.json_response(observation_json(await _find_observation(request)))
    except UploadRefused as exc:
        return problem(exc.status, str(exc))


@routes.delete("/api/v1/observations/{observation_id}")
async def delete_obs(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    try:
        record = await deps.store.find_token(bearer(request))
        if record is None:
            raise UploadRefused(401, "unknown or missing token")
        doc = await _find_observation(request)
        await delete_observation(deps, record, observation_id=doc["_id"])
    except UploadRefused as exc:
        return problem(exc.status, str(exc))
    return web.json_response({"deleted": True, "observation_id": doc["_id"], "followup_id": doc["followup_id"]})


@routes.get("/api/v1/events")
async def list_events(request: web.Request) -> web.Response:
    try:
        offset = max(0, int(request.query.get("offset", 0)))
        limit = min(1000, max(1, int(request.query.get("limit", 100))))
    except ValueError:
        return problem(400, "offset and limit must be integers")
    events = await request.app[DEPS].store.list_events(offset=offset, limit=limit)
    return web.json_response({"events": [event_json(e) for e in events], "offset": offset, "limit": limit})


@routes.post("/api/v1/events")
async def create_event(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    if await deps.store.find_token(bearer(request)) is None:
        return problem(401, "unknown or missing token")
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return problem(400, "the body must be a JSON object: {\"ivorn\": ..., \"ra\": ..., \"dec\": ..., \"url\": ...}")
    try:
        ivorn, ra, dec = checked_event(body.get("ivorn"), body.get("ra"), body.get("dec"))
    except UploadRefused as exc:
        return problem(exc.status, str(exc))
    url = str(body.get("url") or "")
    doc, created = await deps.store.create_event(ivorn, ra, dec, url, "api")
    if created:
        await deps.publish(event_created(doc))
    return web.json_response(event_json(doc) | {"created": created}, status=201 if created else 200)


@routes.get("/api/v1/observatories")
async def list_observatories(request: web.Request) -> web.Response:
    store = request.app[DEPS].store
    rows = [{"id": o["_id"], "name": o["name"], "longitude": o.get("lon_deg"), "latitude": o.get("lat_deg"),
             "observations": await store.count_observations(o["_id"])}
            for o in await store.list_observatories()]
    return web.json_response({"observatories": rows})


@routes.get("/api/v1/openapi.yaml")
async def openapi(request: web.Request) -> web.Response:
    text = resources.files("services.ingest").joinpath("openapi.yaml").read_text()
    return web.Response(text=text, content_type="application/yaml")


routes.post("/api/v1/voevents")(post_voevent)  # the handler lives with the rest of the alert feeds
