"""Photometry of simulated frames: known truth, forced photometry, limits, flags, and the catalogue schema."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from astropy.table import QTable
from astropy.wcs import WCS
from photutils.psf import MoffatPSF, PSFPhotometry, SourceGrouper

from services.astrometry.science import anet, reference_cone, solve
from services.calibration.science.calibrate import calibrate
from services.photometry.science import FLAGS, measure
from services.photometry.science.psf import PsfModel, fit_fluxes
from shared.fitsimage import read_image, standardise_header
from shared.simimage import make_reference_field, select_cone, simulate_image

RA0, DEC0 = 150.0, 20.0
needs_anet = pytest.mark.skipif(not anet.available(), reason="the Debian package astrometry.net is not installed")


@pytest.fixture(scope="module")
def reference():
    return make_reference_field(ra_deg=RA0, dec_deg=DEC0, radius_deg=0.3, n_stars=6000, seed=1)


def simulated(reference, *, seed, size=512, **kw):
    data, truth = simulate_image(reference=reference, size_px=size, centre_ra_deg=RA0, centre_dec_deg=DEC0,
                                 seed=seed, n_faint=size // 4, **kw)
    return read_image(data), truth


def test_every_star_and_the_transient_at_known_truth(reference):
    frame, truth = simulated(reference, seed=21, transient_mag=18.0)
    result = measure(frame, WCS(truth["wcs_header"]), target_ra_deg=truth["event_ra_deg"],
                     target_dec_deg=truth["event_dec_deg"])
    assert result.status == "measured", result.reason
    meta = result.metadata
    assert meta["fwhm_arcsec"] == pytest.approx(truth["seeing_arcsec"], rel=0.05)
    assert meta["psf_beta"] == pytest.approx(truth["moffat_beta"], rel=0.15)
    assert meta["background_adu"] == pytest.approx(truth["sky_adu"], rel=0.02)
    assert meta["background_rms_adu"] == pytest.approx(truth["sky_sigma_adu"], rel=0.05)
    assert meta["airmass"] == 1.2 and meta["method"] == "psf" and meta["exptime_s"] == 60.0
    assert json.loads(json.dumps(result.to_dict()))["target"]["detected"] is True  # storable as it is
    target = result.target
    assert target.in_frame and target.detected and target.snr > 50
    assert target.mag_inst == pytest.approx(truth["transient_instrumental_mag"], abs=3 * target.mag_err + 0.01)
    assert target.x_px == pytest.approx(truth["event_xy_px"][0], abs=1e-6)
    # the catalogue: the schema of an uploaded one, instrumental mags of the drawn stars
    stars = result.stars
    assert stars.file_format == "IMAGE" and stars.mag_column == "MAG_PSF" and stars.exptime_s == 60.0
    assert stars.header["FILTER"] == "r" and stars.header["MJD-OBS"] == pytest.approx(61000.25)
    for arr in (stars.ra_deg, stars.dec_deg, stars.mag, stars.mag_err):
        assert arr.dtype == np.float64 and np.all(np.isfinite(arr)) and arr.size == len(stars)
    sep = np.hypot((stars.ra_deg - target.ra_deg) * math.cos(math.radians(DEC0)), stars.dec_deg - target.dec_deg)
    assert np.sum(sep * 3600 < 3.0) == 1 and np.min(sep) == 0.0  # only the target row near the event
    true = np.asarray(truth["star_mag"]) - truth["zeropoint_mag"]
    tx, ty = np.asarray(truth["star_x_px"]), np.asarray(truth["star_y_px"])
    src = result.sources
    good = (src["flags"] == 0) & (src["mag_psf_err"] < 0.02)
    d = np.hypot(src["x"][good][:, None] - tx[None, :], src["y"][good][:, None] - ty[None, :])
    nearest = np.argmin(d, axis=1)
    close = d[np.arange(d.shape[0]), nearest] < 0.5
    diff = np.asarray(src["mag_psf"][good])[close] - true[nearest[close]]
    assert close.sum() > 30 and abs(np.median(diff)) < 0.01  # PSF flux = total flux
    ap = np.asarray(src["mag_aper"][good])[close] - true[nearest[close]]
    assert abs(np.median(ap)) < 0.02  # aperture corrected to total


def test_without_transient_a_limit_consistent_with_the_injected_noise(reference):
    frame, truth = simulated(reference, seed=22, transient_mag=None)
    result = measure(frame, WCS(truth["wcs_header"]), target_ra_deg=truth["event_ra_deg"],
                     target_dec_deg=truth["event_dec_deg"])
    target = result.target
    assert not target.detected and abs(target.snr) < 4
    assert target.limit_sigma == 5.0
    assert target.limit_mag_inst == pytest.approx(truth["limit_instrumental_mag"], abs=0.1)
    sep = np.hypot((result.stars.ra_deg - target.ra_deg) * math.cos(math.radians(DEC0)),
                   result.stars.dec_deg - target.dec_deg) * 3600
    assert np.min(sep) > 3.0  # no catalogue row can be mistaken for the target


def test_saturated_stars_and_cosmic_rays_are_flagged_and_kept_out_of_the_catalogue(reference):
    frame, truth = simulated(reference, seed=23, saturation_adu=20000.0, n_cosmic=40)
    result = measure(frame, WCS(truth["wcs_header"]), target_ra_deg=truth["event_ra_deg"],
                     target_dec_deg=truth["event_dec_deg"])
    flags = np.asarray(result.sources["flags"])
    assert np.sum(flags & FLAGS["saturated"]) > 0 and np.sum(flags & FLAGS["cosmic_ray"]) > 0
    assert result.stars.n_dropped["saturated"] == result.metadata["n_saturated"]
    assert result.stars.n_dropped["cosmic ray"] == int(np.sum((flags & FLAGS["cosmic_ray"]) > 0))
    kept = (flags & (FLAGS["saturated"] | FLAGS["cosmic_ray"] | FLAGS["edge"])) == 0
    assert len(result.stars) <= int(kept.sum()) + 1


def test_an_event_outside_the_frame_has_no_forced_photometry(reference):
    frame, truth = simulated(reference, seed=24, size=256)
    result = measure(frame, WCS(truth["wcs_header"]), target_ra_deg=RA0 + 1.0, target_dec_deg=DEC0)
    assert result.status == "measured" and not result.target.in_frame and result.target.limit_mag_inst is None
    assert "outside the frame" in result.target.reason and len(result.stars) > 10


def test_an_empty_frame_fails_with_a_reason():
    rng = np.random.default_rng(3)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cdelt = [-1e-4, 1e-4]
    result = measure(rng.normal(10, 1, (128, 128)).astype(np.float32), wcs, target_ra_deg=0.0, target_dec_deg=0.0)
    assert result.status == "failed" and "sources detected" in result.reason
    assert result.to_dict()["n_catalogue_stars"] == 0


def test_the_simultaneous_linear_fit_equals_photutils_psf_photometry_at_fixed_positions():
    psf = PsfModel(alpha_px=2.4, beta=3.0, n_stars=0)
    yy, xx = np.mgrid[0:60, 0:60].astype(float)
    positions = [(20.3, 30.6, 5000.0), (24.1, 31.2, 3000.0), (45.5, 15.2, 800.0)]  # two blended
    image = np.zeros((60, 60))
    for x0, y0, f in positions:
        image += f * psf.evaluate(xx - x0, yy - y0)
    x = np.array([p[0] for p in positions])
    y = np.array([p[1] for p in positions])
    flux, err, err_b, rejected = fit_fluxes(image, np.ones_like(image), x, y, psf, gain=None, half=5)
    assert np.allclose(flux, [p[2] for p in positions], rtol=1e-4) and rejected.size == 0
    model = MoffatPSF(alpha=2.4, beta=3.0)
    model.x_0.fixed = model.y_0.fixed = True
    init = QTable({"x": x, "y": y, "flux": flux * 0.9})
    photometry = PSFPhotometry(model, (11, 11), grouper=SourceGrouper(min_separation=12))
    photutils_fit = photometry(image, init_params=init)
    assert np.allclose(photutils_fit["flux_fit"], flux, rtol=2e-3)
    assert np.all(err >= err_b) and err_b[2] == pytest.approx(1 / math.sqrt(psf.sum_p2(5)), rel=0.01)


@needs_anet
def test_transient_magnitude_through_solve_measure_calibrate_is_unbiased_at_snr_above_50(reference):
    """A seeded set of frames with a header WCS 0.3 deg off: solve -> measure -> calibrate."""
    diffs, pulls, limits = [], [], []
    for seed in range(6):
        rng = np.random.default_rng(500 + seed)
        mag = float(rng.uniform(16.5, 19.5))
        data, truth = simulate_image(reference=reference, size_px=640, centre_ra_deg=RA0 + rng.uniform(-0.05, 0.05),
                                     centre_dec_deg=DEC0 + rng.uniform(-0.05, 0.05), rotation_deg=rng.uniform(0, 360),
                                     seed=seed, n_faint=160, wcs_offset_deg=0.3, transient_mag=mag)
        frame = read_image(data)
        record = standardise_header(frame.header)
        ev_ra, ev_dec = truth["event_ra_deg"], truth["event_dec_deg"]
        cone = select_cone(reference, *reference_cone(frame.shape, pixel_scale_arcsec=record.pixel_scale_arcsec,
                                                      hint_ra_deg=ev_ra, hint_dec_deg=ev_dec))
        solved = solve(frame, references_ra_deg=cone.ra_deg, references_dec_deg=cone.dec_deg,
                       references_mag=cone.mags["r"], hint_ra_deg=ev_ra, hint_dec_deg=ev_dec, record=record)
        assert solved.status == "solved", solved.reason
        phot = measure(frame, solved.wcs, target_ra_deg=ev_ra, target_dec_deg=ev_dec, record=record)
        assert phot.target.snr > 50
        cal = calibrate(phot.stars, [cone], target_ra_deg=ev_ra, target_dec_deg=ev_dec)
        assert cal.status == "calibrated" and cal.band == "r", cal.reason
        diffs.append(cal.mag - mag)
        pulls.append((cal.mag - mag) / cal.total_err)
        limits.append(phot.target.limit_mag_inst - cal.zeropoint - (truth["limit_instrumental_mag"]
                                                                    + truth["zeropoint_mag"]))
    assert abs(np.mean(diffs)) < 0.02 and np.max(np.abs(diffs)) < 0.05
    assert np.std(pulls) < 2.0
    assert abs(np.mean(limits)) < 0.1  # the calibrated limit of the noise at the event
