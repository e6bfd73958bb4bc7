"""The diagnostic plot renders for success, limit, failure and zero stars."""
from __future__ import annotations

import time

import numpy as np
import pytest

from services.calibration.science.calibrate import calibrate
from services.calibration.science.plot import render_calibration_plot
from shared.catalogue.model import StarTable
from shared.refcat.model import ReferenceStars
from tests.unit.test_calibrate import DEC0, RA0, make_field

PNG = b"\x89PNG\r\n\x1a\n"


def _run(stars, refs, **kw):
    return calibrate(stars, refs, target_ra_deg=RA0, target_dec_deg=DEC0, **kw)


@pytest.fixture(scope="module")
def success():
    return _run(*make_field(1))


def test_success_png(success):
    assert success.status == "calibrated"
    png = render_calibration_plot(success, title="Gaia16aye · Demo 0.6 m")
    assert png.startswith(PNG) and len(png) > 5000


def test_limit_png():
    res = _run(*make_field(3, target=False))
    assert res.status == "limit"
    assert render_calibration_plot(res).startswith(PNG)


def test_failure_png_with_stars():
    stars, refs = make_field(2, with_gaia=False)
    ref = refs[0]
    few = ReferenceStars("APASS", "DR9", ref.ra_deg[:40], ref.dec_deg[:40],
                         {"B": ref.mags["B"][:40]}, {"B": ref.mag_errs["B"][:40]})
    res = _run(stars, [few])  # header says r: B is incompatible, nothing passes
    assert res.status == "failed" and res.matched is not None and res.matched.ref_mag
    assert res.zeropoint is None and res.fits[0].zeropoint is not None
    assert render_calibration_plot(res, title="incompatible band only").startswith(PNG)
    missing = _run(*make_field(2), force_filter="APASS/z")
    assert missing.status == "failed" and missing.matched is None
    assert render_calibration_plot(missing).startswith(PNG)


def test_failure_png_zero_matched_stars():
    res = _run(*make_field(5, shift_refs_deg=1.0))
    assert res.status == "failed" and not res.matched.ref_mag
    assert render_calibration_plot(res).startswith(PNG)


def test_failure_png_nothing_at_all():
    empty = StarTable(np.empty(0), np.empty(0), np.empty(0), np.empty(0), "FITS", "MAG", 0)
    res = _run(empty, [])
    assert res.status == "failed" and res.matched is None and not res.fits
    assert render_calibration_plot(res).startswith(PNG)


def test_plot_is_fast(success):
    render_calibration_plot(success)  # warm caches (fonts)
    t0 = time.perf_counter()
    render_calibration_plot(success)
    elapsed = time.perf_counter() - t0
    print(f"plot rendered in {elapsed:.3f} s")
    assert elapsed < 1.5  # typically ~0.15 s at dpi 80; generous for busy machines
