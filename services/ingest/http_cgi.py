"""The CPCS-compatible endpoints, with the original field names and answers."""
from __future__ import annotations

import uuid

from aiohttp import web

from shared.contracts import ObservationCalibratedV1, ObservationDeletedV1
from services.ingest.deps import DEPS, IngestDeps, token_from
from services.ingest.event_messages import event_created
from services.ingest.results import cpcs_answer, cpcs_html, status_url
from services.ingest.tokens import new_token
from services.ingest.uploads import UploadRefused, flag, request_from_fields

routes = web.RouteTableDef()


def refusal(exc: UploadRefused) -> web.Response:
    return web.Response(status=exc.status, text=str(exc) + "\n")


async def posted(request: web.Request):
    """The posted form, or a 4xx with the reason when it cannot be read."""
    try:
        return await request.post()
    except web.HTTPRequestEntityTooLarge as exc:
        raise UploadRefused(413, f"the request is larger than the limit of {exc.max_size / 1e6:.0f} MB") from exc
    except ValueError as exc:
        raise UploadRefused(400, f"the form could not be read: {exc}") from exc


async def text_fields(request: web.Request) -> dict[str, str]:
    return {k: str(v) for k, v in (await posted(request)).items() if not isinstance(v, web.FileField)}


async def read_form(request: web.Request) -> tuple[dict[str, str], bytes, str]:
    """Form fields as text, plus the bytes and name of the uploaded catalogue (field sexCat)."""
    form = await posted(request)
    fields, data, filename = {}, b"", ""
    for key, value in form.items():
        if isinstance(value, web.FileField):
            if key == "sexCat":
                data, filename = value.file.read(), value.filename or "catalogue"
        else:
            fields[key] = str(value)
    if not data and isinstance(form.get("sexCat"), str):
        data = form["sexCat"].encode()
    return fields, data, filename


async def upload_and_wait(deps: IngestDeps, req) -> tuple[int, dict]:
    """Accept an upload and wait for its result: (HTTP status, answer) for the caller."""
    correlation_id = uuid.uuid4().hex
    deps.waiters.expect(correlation_id)
    try:
        accepted = await deps.uploads.accept(req, correlation_id)
    except BaseException:
        deps.waiters.forget(correlation_id)
        raise
    outcome = await deps.waiters.wait(correlation_id, deps.settings.upload_wait_s)
    if outcome is not None and accepted.dry_run:  # a dry run keeps nothing once answered (the durable
        # handler deletes it too, for an answer nobody waited for)
        await deps.store.drop_dry_run_bytes(outcome)
    public = deps.settings.public_url
    if outcome is None and accepted.dry_run:
        return 202, {"status": "processing", "followup_id": None, "observation_id": accepted.observation_id,
                     "message": "the dry run is still being calibrated and dry runs are not kept: "
                                "send it again in a moment", "status_url": None}
    if outcome is None:
        return 202, {"status": "processing", "followup_id": accepted.followup_id,
                     "observation_id": accepted.observation_id,
                     "message": "the calibration is still running; ask the status URL for the result",
                     "status_url": status_url(public, accepted.observation_id)}
    if isinstance(outcome, ObservationCalibratedV1):
        return 200, cpcs_answer(outcome, public)
    return 422, {"error": outcome.reason, "status": 422, "followup_id": outcome.followup_id,
                 "observation_id": outcome.observation_id,
                 "image_link": f"{public}/plots/{outcome.observation_id}.png"}


@routes.post("/cgi/upload")
async def upload(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    try:
        fields, data, filename = await read_form(request)
        req = request_from_fields(fields, data, filename, token_from(request, fields))
        status, answer = await upload_and_wait(deps, req)
    except UploadRefused as exc:
        return refusal(exc)
    if status == 422:
        return web.Response(status=422, text=answer["error"] + "\n")
    if fields.get("outputFormat", "json").lower() == "html" and status == 200:
        return web.Response(text=cpcs_html(answer, no_plot=req.no_plot), content_type="text/html")
    return web.json_response(answer, status=status)


async def _require(deps: IngestDeps, token: str, *, admin: bool = False) -> dict:
    record = await deps.store.find_token(token)
    if record is None:
        raise UploadRefused(401, "unknown or missing hashtag")
    if admin and not record.get("is_admin"):
        raise UploadRefused(403, "this needs an admin hashtag")
    return record


def _coordinate(raw, name: str, low: float, high: float) -> float:
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise UploadRefused(400, f"{name} must be in decimal degrees, got {raw!r}") from None
    if not low <= value <= high:
        raise UploadRefused(400, f"{name} must be between {low:g} and {high:g} degrees, got {raw!r}")
    return value


def checked_event(ivorn, ra, dec) -> tuple[str, float, float]:
    """An event's IVORN and position as every intake accepts them, or a 400 with the reason."""
    ivorn = str(ivorn or "").strip()
    if not ivorn.startswith("ivo://") or len(ivorn) < 7:
        raise UploadRefused(400, f"the event id must be an IVORN such as ivo://Gaia16aye, got {ivorn!r}")
    ra_deg = _coordinate(ra, "ra", 0, 360) % 360.0
    dec_deg = _coordinate(dec, "dec", -90, 90)
    if ra_deg == 0 and dec_deg == 0:
        raise UploadRefused(400, "ra=0, dec=0 is not a usable position for an event")
    return ivorn, ra_deg, dec_deg


@routes.post("/cgi/newevent")
async def new_event(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    try:
        fields = await text_fields(request)
        await _require(deps, token_from(request, fields))
        ivorn, ra, dec = checked_event(fields.get("EventID", ""), fields.get("ra", ""), fields.get("dec", ""))
        event, created = await deps.store.create_event(ivorn, ra, dec, fields.get("url", ""), "manual")
    except UploadRefused as exc:
        return refusal(exc)
    if created:
        await deps.publish(event_created(event))
    body = event_json(event) | {"created": created}
    if fields.get("outputFormat", "json").lower() == "html":
        verb = "created" if created else "already known"
        return web.Response(text=f"<p>Event {body['ivorn']} {verb} (id {body['id']}).</p>",
                            content_type="text/html")
    return web.json_response(body)


def event_json(event: dict) -> dict:
    return {"id": event["alert_id"], "ivorn": event["_id"], "ra": event["ra_deg"], "dec": event["dec_deg"],
            "url": event.get("url", ""), "source": event.get("source", ""),
            "published": event["published"].isoformat() if event.get("published") else None}


@routes.post("/cgi/newuser")
async def new_user(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    try:
        fields = await text_fields(request)
        await _require(deps, token_from(request, fields), admin=True)
        name = fields.get("obsName", "").strip()
        if not name:
            raise UploadRefused(400, "obsName is missing: give the observatory's name")
        lon = _coordinate(fields["lon"], "lon", -180, 360) if fields.get("lon") else None
        lat = _coordinate(fields["lat"], "lat", -90, 90) if fields.get("lat") else None
    except UploadRefused as exc:
        return refusal(exc)
    observatory = await deps.store.create_observatory(name, lon, lat)
    token = new_token(fields.get("prefix") or name)
    await deps.store.add_token(token, observatory_id=observatory["_id"], user=fields.get("prefix") or name,
                               allow_upload=flag(fields.get("allow_upload", "1")),
                               allow_voevents=flag(fields.get("allow_voevents", "0")))
    return web.Response(text=f"New user for observatory {name} (id {observatory['_id']}): {token}")


@routes.post("/cgi/delpoint")
async def delete_point(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    try:
        fields = await text_fields(request)
        record = await _require(deps, token_from(request, fields))
        try:
            followup_id = int(fields.get("followupid", ""))
        except ValueError:
            raise UploadRefused(400, "followupid must be the integer id of a point") from None
        observation = await delete_observation(deps, record, followup_id=followup_id)
    except UploadRefused as exc:
        return refusal(exc)
    answer = {"deleted": True, "followup_id": followup_id, "event": observation["event_ivorn"]}
    if fields.get("outputFormat", "json").lower() == "html":
        return web.Response(text=f"<p>Point {followup_id} deleted.</p>", content_type="text/html")
    return web.json_response(answer)


async def delete_observation(deps: IngestDeps, token_record: dict, *, followup_id: int | None = None,
                             observation_id: str | None = None) -> dict:
    """Delete a point owned by the token's observatory (or any, for an admin) everywhere."""
    store = deps.store
    observation = (await store.find_observation_by_followup(followup_id) if followup_id is not None
                   else await store.find_observation(observation_id))
    if observation is None:
        raise UploadRefused(404, f"there is no point {followup_id or observation_id}")
    if not token_record.get("is_admin") and token_record.get("observatory_id") != observation["observatory_id"]:
        raise UploadRefused(403, "only the observatory that uploaded a point (or an admin) may delete it")
    await deps.publish(ObservationDeletedV1(
        observation_id=observation["_id"], followup_id=observation["followup_id"],
        event_ivorn=observation["event_ivorn"], deleted_by=token_record.get("user", "")))
    await store.delete_observation(observation["_id"])
    await store.release_upload(observation["_id"])
    await store.delete_bytes(observation["file_id"])
    return observation
