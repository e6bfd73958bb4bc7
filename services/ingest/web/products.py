"""The products of an image upload: downloads and what the result page shows of them.

Photometry writes the products while it measures the frame (it owns the GridFS bucket ``products``)
and names them in ``image.products.v1``; ingest keeps those ids per observation (``image_products``)
and reads the bytes by id (``BLOB_READERS``). Only the observatory that uploaded the image, or an admin,
signed in, may download them; a refusal (404, 403) is the problem page with its reason.

Routes (``{observation_id}`` is the upload's uuid hex):

* ``GET /results/{observation_id}/catalogue.cat``: every star measured, SExtractor ASCII_HEAD;
* ``GET /results/{observation_id}/catalogue.ldac.fits``: the same as SExtractor FITS_LDAC;
* ``GET /results/{observation_id}/wcs.hdr``: the solved WCS (TAN-SIP) as a FITS header;
* ``GET /results/{observation_id}/cutout.png`` and ``cutout.fits``: 64 x 64 pixels around the event;
* ``GET /results/{observation_id}/products``: a page with the fragment below.

The fragment ``_image_products.html`` is included by a page with ``image_products`` in its context,
the dict :func:`image_products_context` returns (None: nothing to show, the fragment shows nothing):

* ``observation_id``, ``dry_run`` (bool), ``expires_at`` (datetime or None: when a dry run's go);
* ``downloads``: list of ``{"kind", "label", "format", "href", "filename", "size"}`` (size for people);
* ``cutout``: ``{"href", "fits_href", "size_px", "alt"}`` or None (the event off the frame);
* ``quality``: ``astrometry_rms_arcsec``, ``astrometry_n_stars``, ``fwhm_arcsec``, ``fwhm_px``,
  ``n_detected``, ``limiting_mag`` (the 5-sigma limit calibrated with the zero point given, else None),
  ``limiting_mag_inst`` (instrumental, per second).
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from services.ingest.deps import DEPS
from services.ingest.errors import IngestError
from services.ingest.usecases.products import image_products, product_bytes
from services.ingest.web.session import current_user, login_required

routes = web.RouteTableDef()

#: route file name -> (product kind, label, format for people)
DOWNLOADS = {
    "catalogue.cat": ("catalogue_ascii", "Catalogue of every star measured, text", "SExtractor ASCII_HEAD"),
    "catalogue.ldac.fits": ("catalogue_ldac", "Catalogue of every star measured, FITS", "SExtractor FITS_LDAC"),
    "wcs.hdr": ("wcs_header", "Astrometric solution (TAN-SIP WCS)", "FITS header"),
    "cutout.fits": ("cutout_fits", "Cutout around the event, with its WCS", "FITS image"),
    "cutout.png": ("cutout_png", "Cutout around the event, picture", "PNG, asinh stretch"),
}
_INLINE = {"cutout_png"}


def _size(n: int) -> str:
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


async def _products_of(request: web.Request, observation_id: str) -> dict:
    user = await current_user(request)
    return await image_products(request.app[DEPS].store, observation_id,
                                observatory_id=user.observatory_id if user else None,
                                is_admin=bool(user and user.is_admin))


def context_of(doc: dict, *, zeropoint: float | None = None) -> dict[str, Any]:
    """The fragment's context from a products record (see the module text)."""
    observation_id = doc["_id"]
    base = f"/results/{observation_id}"
    stored = {p["kind"]: p for p in doc.get("products", [])}
    downloads = []
    for route_name, (kind, label, fmt) in DOWNLOADS.items():
        if kind in stored:
            downloads.append({"kind": kind, "label": label, "format": fmt, "href": f"{base}/{route_name}",
                              "filename": _filename(doc, stored[kind]["filename"]),
                              "size": _size(int(stored[kind].get("size_bytes", 0)))})
    q = doc.get("quality") or {}
    lim_inst = q.get("limiting_mag_inst_5sigma")
    cutout = None
    if "cutout_png" in stored:
        cutout = {"href": f"{base}/cutout.png", "fits_href": f"{base}/cutout.fits" if "cutout_fits" in stored else None,
                  "size_px": q.get("cutout_size_px"),
                  "alt": f"{q.get('cutout_size_px') or ''} by {q.get('cutout_size_px') or ''} pixel cutout of the "
                         "image around the event, marked in the middle; north and east arrows at the lower left"}
    return {
        "observation_id": observation_id, "dry_run": bool(doc.get("dry_run")),
        "expires_at": _moment(doc.get("expires_at_unix")),
        "downloads": downloads, "cutout": cutout,
        "quality": {"astrometry_rms_arcsec": q.get("astrometry_rms_arcsec"),
                    "astrometry_n_stars": q.get("astrometry_n_stars"), "fwhm_arcsec": q.get("fwhm_arcsec"),
                    "fwhm_px": q.get("fwhm_px"), "n_detected": q.get("n_detected"),
                    "limiting_mag": None if lim_inst is None or zeropoint is None else lim_inst - zeropoint,
                    "limiting_mag_inst": lim_inst},
    }


def _moment(unix: float | None) -> datetime | None:
    return None if unix is None else datetime.fromtimestamp(unix, UTC)


def _filename(doc: dict, name: str) -> str:
    """What the browser saves: the follow-up id (or the observation's) before the product's name."""
    prefix = f"followup{doc['followup_id']}" if doc.get("followup_id") is not None else doc["_id"][:12]
    return f"cpcs-{prefix}-{name}"


async def image_products_context(request: web.Request, observation_id: str, *,
                                 zeropoint: float | None = None) -> dict[str, Any] | None:
    """For a page including ``_image_products.html``: the products the signed-in user may see, or None.

    ``zeropoint`` (the calibration's, ``mag = m_inst - zeropoint``) turns the limiting magnitude into
    a calibrated one.
    """
    try:
        doc = await _products_of(request, observation_id)
    except IngestError:
        return None
    return context_of(doc, zeropoint=zeropoint)


async def _zeropoint(request: web.Request, observation_id: str) -> float | None:
    observation = await request.app[DEPS].store.find_observation(observation_id)
    result = (observation or {}).get("result") or {}
    value = result.get("zeropoint")
    return float(value) if isinstance(value, (int, float)) else None


@routes.get("/results/{observation_id}/products")
@login_required
async def products_page(request: web.Request) -> web.StreamResponse:
    observation_id = request.match_info["observation_id"]
    doc = await _products_of(request, observation_id)  # a refusal is the problem page (web.errors)
    context = context_of(doc, zeropoint=await _zeropoint(request, observation_id))
    return aiohttp_jinja2.render_template("image_products.html", request, {
        "image_products": context, "event_ivorn": doc.get("event_ivorn"), "followup_id": doc.get("followup_id")})


async def _download(request: web.Request, route_name: str) -> web.StreamResponse:
    doc = await _products_of(request, request.match_info["observation_id"])
    product, data = await product_bytes(request.app[DEPS].store, doc, DOWNLOADS[route_name][0])
    kind = product["kind"]
    disposition = "inline" if kind in _INLINE else "attachment"
    return web.Response(body=data, headers={
        "Content-Type": product["content_type"],
        "Content-Disposition": f'{disposition}; filename="{_filename(doc, product["filename"])}"',
        "Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"})


def _route(route_name: str):
    @login_required
    async def handler(request: web.Request) -> web.StreamResponse:
        return await _download(request, route_name)
    handler.__name__ = f"download_{DOWNLOADS[route_name][0]}"
    return handler


for _name in DOWNLOADS:
    routes.get(f"/results/{{observation_id}}/{_name}")(_route(_name))
