"""The result page of an upload sent from a browser, its error page, and the browser branch of /cgi/upload.

The page says what the original's did: who sent it, the event and position, the survey/band and whether it
was chosen automatically or forced, the magnitude (or the limit, said as one), the zero point, scatter,
stars used, outlier fraction and radius, dry run or stored, and the calibration plot (drawn right after
the answer, as the page's upload shows it: the page's image asks again, with backoff, until it is
there). After a dry run the bytes are kept (``usecases.uploads.keep_dry_run``) so that "Store this
point" needs no second upload.
"""
from __future__ import annotations

import time
from urllib.parse import urlencode

import aiohttp_jinja2
import astropy.units as u
from aiohttp import web
from astropy.coordinates import Angle

from services.ingest.answers import CALIBRATION_FAILED, http_status
from services.ingest.cpcs_fields import request_from_fields
from services.ingest.deps import DEPS, token_from
from services.ingest.errors import IngestError
from services.ingest.results import plot_url, status_url
from services.ingest.usecases import uploads
from services.ingest.web.products import image_products_context
from services.ingest.web.session import check_csrf, current_user
from shared.contracts import ObservationCalibratedV1, ObservationFailedV1

RADIUS_METHOD = {"user": "as given", "auto": "automatic", "default": "default"}


def wants_page(request: web.Request, fields: dict[str, str]) -> bool:
    """A browser's form post: the Accept header prefers HTML and ``outputFormat=json`` was not asked for.

    curl and scripts send ``*/*`` (or nothing) and keep today's JSON; an explicit ``outputFormat=html``
    without a browser's Accept keeps the original's HTML answer."""
    if fields.get("outputFormat", "").strip().lower() == "json":
        return False
    weights: dict[str, float] = {}
    for part in request.headers.get("Accept", "").split(","):
        kind, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if kind:
            weights[kind.lower()] = max(q, weights.get(kind.lower(), 0.0))
    html = max(weights.get("text/html", 0.0), weights.get("application/xhtml+xml", 0.0))
    return html > 0 and html >= weights.get("application/json", 0.0)


def light_curve_link(ivorn: str) -> str:
    return "/get_alert_lc?" + urlencode({"alert_name": ivorn})


def sexagesimal(ra_deg: float | None, dec_deg: float | None) -> str:
    """RA and Dec as hh:mm:ss.ss ±dd:mm:ss.s (empty when unknown)."""
    if ra_deg is None or dec_deg is None:
        return ""
    ra = Angle(ra_deg, unit=u.deg).to_string(unit=u.hourangle, sep=":", precision=2, pad=True)
    dec = Angle(dec_deg, unit=u.deg).to_string(unit=u.deg, sep=":", precision=1, pad=True, alwayssign=True)
    return f"{ra} {dec}"


def _radius(result) -> str:
    if result.match_radius_arcsec is None:
        return "—"
    method = RADIUS_METHOD.get(result.match_radius_method or "", result.match_radius_method or "")
    return f"{result.match_radius_arcsec:.2f}″ ({method})" if method else f"{result.match_radius_arcsec:.2f}″"


def result_context(req: uploads.UploadRequest, outcome: ObservationCalibratedV1, *, elapsed_s: float,
                   kept_id: str | None) -> dict:
    """What result.html shows of a calibrated (or limit) outcome."""
    r = outcome.result
    ra = r.ra_deg if r.ra_deg is not None else outcome.event.ra_deg
    dec = r.dec_deg if r.dec_deg is not None else outcome.event.dec_deg
    return {
        "observatory": outcome.observatory.name, "event": outcome.event.ivorn,
        "ra": ra, "dec": dec, "radec_hms": sexagesimal(ra, dec), "mjd": outcome.mjd,
        "filter": f"{r.survey}/{r.band}" if r.survey and r.band else (r.filter or "—"), "mode": r.mode,
        "is_limit": r.is_limit or r.status == "limit", "limit_sigma": r.limit_sigma,
        "mag": r.mag, "mag_err": r.total_err if r.total_err is not None else r.mag_err,
        "inst_err": r.mag_err, "zeropoint": r.zeropoint, "zp_err": r.zp_err, "scatter": r.scatter,
        "npoints": r.npoints, "n_catalogue_stars": r.n_catalogue_stars,
        "outlier_percent": None if r.outlier_fraction is None else 100.0 * r.outlier_fraction,
        "radius": _radius(r), "colour_note": r.colour_note,
        "dry_run": outcome.dry_run, "followup_id": outcome.followup_id, "comment": req.comment,
        "declared_filter": req.declared_filter, "filename": req.filename,
        "elapsed_s": elapsed_s, "algorithm_version": outcome.algorithm_version,
        "plot": plot_url("", outcome.observation_id),
        "light_curve": light_curve_link(outcome.event.ivorn),
        "point": None if outcome.dry_run else status_url("", outcome.observation_id),
        "kept_id": kept_id,
    }


async def error_page(request: web.Request, exc: IngestError | str, *, status: int | None = None,
                     plot: str | None = None, title: str = "The upload was refused",
                     event: str | None = None) -> web.Response:
    """The reason as a page, with the status the CPCS answer has for it; ``event``: the form to go back to."""
    reason = str(exc)
    code = status if status is not None else http_status(exc) if isinstance(exc, IngestError) else CALIBRATION_FAILED
    back = "/uploader" + ("?" + urlencode({"event": event}) if event else "")
    return aiohttp_jinja2.render_template("error.html", request, {
        "title": title, "reason": reason, "plot": plot, "back": back,
        "light_curve": light_curve_link(event) if event else None}, status=code)


async def outcome_page(request: web.Request, req: uploads.UploadRequest, waited: uploads.Waited, *,
                       elapsed_s: float, observatory_id: int | None) -> web.StreamResponse:
    """The page of an upload's outcome: the result, the calibration's failure, or "still running"."""
    outcome = waited.outcome
    if isinstance(outcome, ObservationFailedV1):
        return await error_page(request, outcome.reason, status=CALIBRATION_FAILED, event=req.event_ivorn,
                                plot=plot_url("", outcome.observation_id), title="The calibration failed")
    if outcome is None:
        accepted = waited.accepted
        return aiohttp_jinja2.render_template("result.html", request, {
            "pending": True, "dry_run": accepted.dry_run, "followup_id": accepted.followup_id,
            "point": None if accepted.dry_run else status_url("", accepted.observation_id),
            "wait_s": request.app[DEPS].settings.upload_wait_s}, status=202)
    kept_id = None
    if outcome.dry_run and observatory_id is not None:
        kept_id = await uploads.keep_dry_run(request.app[DEPS].store, req, observatory_id)
    context = result_context(req, outcome, elapsed_s=elapsed_s, kept_id=kept_id)
    products = await image_products_context(request, outcome.observation_id, zeropoint=outcome.result.zeropoint)
    return aiohttp_jinja2.render_template("result.html", request,
                                          context | {"pending": False, "image_products": products})


async def cgi_upload_page(request: web.Request, fields: dict[str, str], data: bytes,
                          filename: str) -> web.StreamResponse:
    """/cgi/upload posted by a browser: the same upload, answered with the result page. The hashtag is the
    form's (a cookie's alone is refused: 403), else the signed-in observatory's, with the form's CSRF
    token; only the signed-in observatory's own dry run is kept for "Store this point"."""
    deps = request.app[DEPS]
    user = await current_user(request)
    started = time.monotonic()
    try:
        token = token_from(request, fields)
        if not token and user is not None:  # the session's token, only with the session's form token
            await check_csrf(request, fields)
            token = user.token
        req = request_from_fields(fields, data, filename, token)
        waited = await uploads.upload_and_wait(deps.uploads, deps.waiters, req,
                                               deps.settings.upload_wait_s)
    except IngestError as exc:
        return await error_page(request, exc, event=fields.get("EventID", "").strip() or None)
    same_user = user is not None and user.token == token
    return await outcome_page(request, req, waited, elapsed_s=time.monotonic() - started,
                              observatory_id=user.observatory_id if same_user and user else None)

