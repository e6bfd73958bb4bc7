"""The CPCS-compatible endpoints, with the original field names and answers: each reads its form, calls a
use case and writes the answer; refusals are one line of text with the status of ``answers``."""
from __future__ import annotations

import html

from aiohttp import web

from services.ingest.answers import CALIBRATION_FAILED
from services.ingest.cpcs_fields import flag, request_from_fields
from services.ingest.deps import DEPS, IngestDeps, token_from
from services.ingest.errors import IngestError, InvalidInput
from services.ingest.forms import posted
from services.ingest.http_render import plain_refusal, upload_answer
from services.ingest.results import cpcs_html
from services.ingest.usecases import uploads
from services.ingest.usecases.access import authenticate, require_admin
from services.ingest.usecases.events import create_event
from services.ingest.usecases.observations import delete_observation
from services.ingest.usecases.observatories import create_observatory
from services.ingest.web import results as browser_results

routes = web.RouteTableDef()
_UNKNOWN = "unknown or missing hashtag"



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
    waited = await uploads.upload_and_wait(deps.uploads, deps.waiters, req, deps.settings.upload_wait_s)
    return upload_answer(waited, deps.settings.public_url)


@routes.post("/cgi/upload")
async def upload(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    try:
        fields, data, filename = await read_form(request)
        if browser_results.wants_page(request, fields):  # a person's browser: the result page
            return await browser_results.cgi_upload_page(request, fields, data, filename)
        req = request_from_fields(fields, data, filename, token_from(request, fields))
        status, answer = await upload_and_wait(deps, req)
    except IngestError as exc:
        return plain_refusal(exc)
    if status == CALIBRATION_FAILED:
        return web.Response(status=status, text=answer["error"] + "\n")
    if fields.get("outputFormat", "json").lower() == "html" and status == 200:
        return web.Response(text=cpcs_html(answer, no_plot=req.no_plot), content_type="text/html")
    return web.json_response(answer, status=status)


@routes.post("/cgi/newevent")
async def new_event(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    try:
        fields = await text_fields(request)
        await authenticate(deps.store, token_from(request, fields), unknown=_UNKNOWN)
        event, created = await create_event(deps.store, deps.publish, ivorn=fields.get("EventID", ""),
                                            ra=fields.get("ra", ""), dec=fields.get("dec", ""),
                                            url=fields.get("url", ""), source="manual")
    except IngestError as exc:
        return plain_refusal(exc)
    body = event_json(event) | {"created": created}
    if fields.get("outputFormat", "json").lower() == "html":
        verb = "created" if created else "already known"
        return web.Response(text=f"<p>Event {html.escape(body['ivorn'])} {verb} (id {body['id']}).</p>",
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
        require_admin(await authenticate(deps.store, token_from(request, fields), unknown=_UNKNOWN),
                      "this needs an admin hashtag")
        user = await create_observatory(
            deps.store, name=fields.get("obsName", ""), lon=fields.get("lon", ""), lat=fields.get("lat", ""),
            prefix=fields.get("prefix", ""), allow_upload=flag(fields.get("allow_upload", "1")),
            allow_voevents=flag(fields.get("allow_voevents", "0")))
    except IngestError as exc:
        return plain_refusal(exc)
    observatory = user.observatory
    return web.Response(text=f"New user for observatory {observatory['name']} (id {observatory['_id']}): "
                             f"{user.token}")


@routes.post("/cgi/delpoint")
async def delete_point(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    try:
        fields = await text_fields(request)
        record = await authenticate(deps.store, token_from(request, fields), unknown=_UNKNOWN)
        try:
            followup_id = int(fields.get("followupid", ""))
        except ValueError:
            raise InvalidInput("followupid must be the integer id of a point") from None
        observation = await delete_observation(deps.store, deps.publish, record, followup_id=followup_id)
    except IngestError as exc:
        return plain_refusal(exc)
    answer = {"deleted": True, "followup_id": followup_id, "event": observation["event_ivorn"]}
    if fields.get("outputFormat", "json").lower() == "html":
        return web.Response(text=f"<p>Point {followup_id} deleted.</p>", content_type="text/html")
    return web.json_response(answer)
