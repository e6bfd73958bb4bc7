"""The astrometry and photometry handlers use the header record of the message: they read each frame once,
never standardise its header again and never read ingest's collections (fakes of our own ports only).

A message without the record (from an older producer) is standardised once, without the observatory
record, and a log line says so.
"""
from __future__ import annotations

import io
import logging
import math
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from astropy.io import fits
from bson import ObjectId

import shared.fitsimage
from services.astrometry.handlers import AstrometryDeps, Solver
from services.astrometry.science import anet
from services.ingest.images import inspect_image
from services.ingest.usecases.uploads import _image_fields
from services.photometry.handlers import Measurer, PhotometryDeps
from shared.contracts import CatalogueMeasuredV1, EventRef, ImageReceivedV1, ImageSolvedV1, ObservatoryRef
from shared.refcat.model import ReferenceStars
from shared.simimage import make_reference_field, select_cone, simulate_image

RA0, DEC0 = 150.0, 20.0
OBSERVATORY = {"_id": 7, "name": "Test 0.5 m", "lon_deg": 20.81, "lat_deg": -32.38, "alt_m": 1798.0, "gain": 2.0}
needs_anet = pytest.mark.skipif(not anet.available(), reason="the Debian package astrometry.net is not installed")


class Download:
    def __init__(self, data: bytes):
        self.data = data

    async def read(self) -> bytes:
        return self.data


class Uploads:
    """The uploads bucket: one stored file."""

    def __init__(self, data: bytes):
        self.file_id, self.data = str(ObjectId()), data

    async def open_download_stream(self, file_id):
        assert str(file_id) == self.file_id
        return Download(self.data)


class Catalogues:
    """The catalogues bucket photometry writes."""

    def __init__(self):
        self.files: dict[ObjectId, tuple[bytes, dict]] = {}

    async def upload_from_stream(self, name, data, metadata=None):
        file_id = ObjectId()
        self.files[file_id] = (data, metadata or {})
        return file_id

    def find(self, query):
        wanted = query["metadata.observation_id"]
        found = [SimpleNamespace(_id=k) for k, (_, meta) in self.files.items() if meta["observation_id"] == wanted]

        async def to_list(_length):
            return found
        return SimpleNamespace(to_list=to_list)

    async def delete(self, file_id):
        del self.files[file_id]


class Documents:
    def __init__(self):
        self.docs: dict[str, dict] = {}

    async def find_one(self, query):
        return self.docs.get(query["_id"])

    async def replace_one(self, query, doc, upsert=False):
        self.docs[query["_id"]] = doc


class Database:
    """Records every collection a handler asks for; only the named ones exist."""

    def __init__(self, **collections):
        self.collections, self.asked = collections, []

    def __getattr__(self, name):
        self.asked.append(name)
        if name not in self.collections:
            raise AssertionError(f"the handler read the collection {name!r}")
        return self.collections[name]

    __getitem__ = __getattr__


class Refcat:
    """The reference store: the stars of a simulated field within each cone."""

    def __init__(self, stars: ReferenceStars):
        self.stars, self.cones = stars, []

    async def cone(self, ra_deg, dec_deg, radius_deg):
        self.cones.append(radius_deg)
        return [select_cone(self.stars, ra_deg, dec_deg, radius_deg)]


@pytest.fixture(scope="module")
def reference():
    return make_reference_field(ra_deg=RA0, dec_deg=DEC0, radius_deg=0.5, n_stars=20000, seed=4)


@pytest.fixture
def calls(monkeypatch):
    """How often the frame is read and its header standardised, wherever the functions are called from."""
    counts = {"read_image": 0, "standardise_header": 0}
    for name in counts:
        original = getattr(shared.fitsimage, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            counts[_name] += 1
            return _original(*args, **kwargs)
        for module in list(sys.modules.values()):
            if getattr(module, name, None) is original and module.__name__.startswith(("services.", "shared.")):
                monkeypatch.setattr(module, name, counted)
    return counts


def received(data: bytes, truth: dict, file_id: str, *, with_record: bool = True) -> ImageReceivedV1:
    """The message ingest publishes (the record standardised there, with the observatory record)."""
    intake = inspect_image(data, observatory=OBSERVATORY, upload={"mjd": 61000.25})
    return ImageReceivedV1(
        observation_id="o" + file_id, correlation_id="c1", event=EventRef(
            ivorn="ivo://Test1", ra_deg=truth["event_ra_deg"], dec_deg=truth["event_dec_deg"]),
        observatory=ObservatoryRef(id=7, name="Test 0.5 m"), file_id=file_id, sha256="0" * 64, mjd=61000.25,
        filename="frame.fits", **(_image_fields(intake) if with_record else {}))


def astrometry_of(data: bytes, reference) -> tuple[Solver, Uploads, Database, Refcat]:
    uploads, db, refcat = Uploads(data), Database(), Refcat(reference)
    deps = AstrometryDeps(db=db, uploads=uploads, scratch=None, refcat=refcat, executor=None)
    return Solver(deps), uploads, db, refcat


def photometry_of(uploads: Uploads) -> tuple[Measurer, Database, Catalogues]:
    db, catalogues = Database(image_metadata=Documents()), Catalogues()
    deps = PhotometryDeps(db=db, uploads=uploads, scratch=None, catalogues=catalogues, executor=None)
    return Measurer(deps), db, catalogues


def frame_with_a_true_header_wcs(reference, seed: int):
    return simulate_image(reference=reference, size_px=384, centre_ra_deg=RA0, centre_dec_deg=DEC0,
                          wcs_offset_deg=0.0, transient_mag=17.0, filter_name="r", seed=seed, n_faint=64)


async def test_astrometry_and_photometry_read_the_frame_once_each_and_never_standardise_it(reference, calls):
    data, truth = frame_with_a_true_header_wcs(reference, seed=11)
    solver, uploads, astro_db, _ = astrometry_of(data, reference)
    message = received(data, truth, uploads.file_id)
    calls.update(read_image=0, standardise_header=0)  # ingest's own reading is not counted

    (solved,) = await solver.on_image_received(message)
    assert isinstance(solved, ImageSolvedV1), getattr(solved, "reason", solved)
    assert calls == {"read_image": 1, "standardise_header": 0}
    assert astro_db.asked == []  # no collection of ingest (nor any other) is read
    assert solved.observation == message.observation  # sent on as ingest standardised it
    assert solved.observation.site_name == "Test 0.5 m" and solved.observation.sources["site_lat_deg"] == \
        "observatory record"
    assert solved.astrometry.header_wcs == "verified" and solved.astrometry.rms_arcsec < 0.3

    measurer, phot_db, catalogues = photometry_of(uploads)
    (measured,) = await measurer.on_image_solved(solved)
    assert isinstance(measured, CatalogueMeasuredV1), getattr(measured, "reason", measured)
    assert calls == {"read_image": 2, "standardise_header": 0}
    assert set(phot_db.asked) == {"image_metadata"}  # its own collection only
    assert measured.target.detected and measured.target.snr > 20
    assert measured.image_metadata.airmass == message.observation.airmass  # from the record, not re-read
    assert measured.image_metadata.astrometry == solved.astrometry
    stored = phot_db.collections["image_metadata"].docs[message.observation_id]
    assert stored["header"] == message.observation.model_dump(mode="json") and len(catalogues.files) == 1


async def test_a_message_without_the_record_is_standardised_once_and_the_log_says_so(reference, calls, caplog):
    data, truth = frame_with_a_true_header_wcs(reference, seed=12)
    solver, uploads, astro_db, _ = astrometry_of(data, reference)
    message = received(data, truth, uploads.file_id, with_record=False)
    calls.update(read_image=0, standardise_header=0)
    with caplog.at_level(logging.WARNING):
        (solved,) = await solver.on_image_received(message)
    assert isinstance(solved, ImageSolvedV1), getattr(solved, "reason", solved)
    assert calls["standardise_header"] == 1 and astro_db.asked == []
    assert "no standardised header" in caplog.text and "without the observatory record" in caplog.text
    # standardised without the observatory record: the site is the header's, and it is sent on
    assert solved.observation is not None and solved.observation.site_name != "Test 0.5 m"
    assert solved.observation.sources.get("site_lat_deg") != "observatory record"

    caplog.clear()
    calls.update(read_image=0, standardise_header=0)
    measurer, phot_db, _ = photometry_of(uploads)
    older = solved.model_copy(update={"observation": None})  # as an older astrometry sends it
    with caplog.at_level(logging.WARNING):
        (measured,) = await measurer.on_image_solved(older)
    assert isinstance(measured, CatalogueMeasuredV1)
    assert calls == {"read_image": 1, "standardise_header": 1} and set(phot_db.asked) == {"image_metadata"}
    assert "image.solved.v1 has no standardised header" in caplog.text
    assert phot_db.collections["image_metadata"].docs[message.observation_id]["header"]["exptime_s"] == 60.0


def binned_16x(reference) -> tuple[bytes, dict]:
    """A 128-pixel frame binned 16x whose header keeps the unbinned 0.2 arcsec/pixel, with no WCS."""
    keep = np.argsort(reference.mags["r"], kind="stable")[:int(reference.ra_deg.size * 4600 / 29000)]
    visible = ReferenceStars(survey=reference.survey, version=reference.version, ra_deg=reference.ra_deg[keep],
                             dec_deg=reference.dec_deg[keep], mags={b: v[keep] for b, v in reference.mags.items()},
                             mag_errs={b: v[keep] for b, v in reference.mag_errs.items()})
    data, truth = simulate_image(reference=visible, size_px=128, centre_ra_deg=RA0, centre_dec_deg=DEC0,
                                 pixel_scale_arcsec=3.2, seeing_arcsec=5.76, wcs_offset_deg=None, rotation_deg=30.0,
                                 sip_strength_px=0.5, seed=160, n_faint=8, n_cosmic=2, saturation_adu=6e7,
                                 sky_adu=500.0 * 256)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdul = fits.open(io.BytesIO(data))
        hdul[0].header["PIXSCALE"] = 0.2
        buf = io.BytesIO()
        hdul.writeto(buf)
    return buf.getvalue(), truth


@pytest.fixture(scope="module")
def dense_reference():
    radius = 0.5
    return make_reference_field(ra_deg=RA0, dec_deg=DEC0, radius_deg=radius, seed=1,
                                n_stars=int(29_000 * math.pi * radius**2))


@needs_anet
async def test_the_wide_fallback_solves_on_the_frame_the_first_attempt_read(dense_reference, calls):
    data, truth = binned_16x(dense_reference)
    solver, uploads, astro_db, refcat = astrometry_of(data, dense_reference)
    message = received(data, truth, uploads.file_id)
    calls.update(read_image=0, standardise_header=0)
    (solved,) = await solver.on_image_received(message)
    assert isinstance(solved, ImageSolvedV1), getattr(solved, "reason", solved)
    assert [(a.wide, a.outcome == "solved") for a in solved.astrometry.attempts] == [(False, False), (True, True)]
    assert solved.astrometry.pixel_scale_arcsec == pytest.approx(3.2, rel=0.01)
    assert calls == {"read_image": 1, "standardise_header": 0}  # two solver calls, one reading
    assert len(refcat.cones) == 2 and refcat.cones[1] > refcat.cones[0]  # the wide cone only when needed
    assert astro_db.asked == []
