"""Solving the WCS of simulated frames: a stale header WCS is detected and replaced; known truth."""
from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import pytest

from services.astrometry.science import AstrometryParams, anet, reference_cone, solve
from shared.fitsimage import read_image, standardise_header
from shared.simimage import make_reference_field, select_cone, simulate_image, wcs_error_vs_truth_arcsec
from tests.support.images import solve_simulated

needs_anet = pytest.mark.skipif(not anet.available(), reason="the Debian package astrometry.net is not installed")
RA0, DEC0, SCALE = 150.0, 20.0, 0.4
DENSITY_PER_DEG2 = 1500 / (2048 * SCALE / 3600) ** 2  # 1 500 stars on a 2k x 2k frame


@pytest.fixture(scope="module")
def reference():
    radius = 0.5
    return make_reference_field(ra_deg=RA0, dec_deg=DEC0, radius_deg=radius, seed=1,
                                n_stars=int(DENSITY_PER_DEG2 * math.pi * radius**2))




def run(reference, *, size, seed, offset, **sim):
    data, truth = simulate_image(reference=reference, size_px=size, centre_ra_deg=RA0, centre_dec_deg=DEC0,
                                 pixel_scale_arcsec=SCALE, wcs_offset_deg=offset, seed=seed, n_faint=size // 4, **sim)
    frame = read_image(data)
    return solve_simulated(frame, truth, reference), truth, frame


@needs_anet
@pytest.mark.parametrize("size, seed, rotation", [(2048, 11, 37.0), (1024, 12, 250.0)])
def test_a_header_wcs_off_by_0_3_deg_is_replaced_and_the_solution_is_within_0_2_arcsec(reference, size, seed, rotation):
    result, truth, frame = run(reference, size=size, seed=seed, offset=0.3, rotation_deg=rotation,
                               sip_strength_px=2.0, transient_mag=17.5)
    assert result.status == "solved", result.reason
    assert result.header_wcs == "stale" and result.method == "astrometry.net"
    assert result.header_wcs_offset_arcsec == pytest.approx(1080.0, abs=5.0)
    assert wcs_error_vs_truth_arcsec(result.wcs, truth["wcs_header"], frame.shape) < 0.2
    assert result.rms_arcsec < 0.2 and result.n_stars >= 100 and result.sip_degree == 3
    assert result.pixel_scale_arcsec == pytest.approx(SCALE, rel=1e-3)
    assert result.rotation_deg == pytest.approx(rotation, abs=0.05) and result.flipped is False
    header = result.wcs_header
    assert header["CTYPE1"] == "RA---TAN-SIP" and "AP_ORDER" in header
    stored = json.loads(json.dumps(result.to_dict()))
    assert stored["wcs_header"]["A_ORDER"] == 3 and stored["status"] == "solved"


def test_a_right_header_wcs_is_verified_and_refined_without_a_solver(reference):
    result, truth, frame = run(reference, size=768, seed=3, offset=0.0, sip_strength_px=1.0)
    assert result.status == "solved" and result.method == "header WCS" and result.header_wcs == "verified"
    assert "astrometry.net" not in result.timings_s
    assert wcs_error_vs_truth_arcsec(result.wcs, truth["wcs_header"], frame.shape) < 0.2


def test_a_header_wcs_off_by_some_arcseconds_is_corrected(reference):
    result, truth, frame = run(reference, size=768, seed=4, offset=12.0 / 3600, sip_strength_px=1.0)
    assert result.status == "solved" and result.header_wcs == "corrected", result.notes
    assert result.method.startswith("header WCS (shifted by")
    assert result.header_wcs_offset_arcsec == pytest.approx(12, abs=1)
    assert wcs_error_vs_truth_arcsec(result.wcs, truth["wcs_header"], frame.shape) < 0.2


@needs_anet
def test_no_header_wcs_a_mirrored_frame_and_the_event_as_the_only_hint(reference):
    result, truth, frame = run(reference, size=768, seed=5, offset=None, flip=True, rotation_deg=100.0)
    assert result.status == "solved" and result.header_wcs == "absent" and result.flipped is True
    assert wcs_error_vs_truth_arcsec(result.wcs, truth["wcs_header"], frame.shape) < 0.2


def test_without_reference_stars_the_failure_says_the_store_does_not_cover_the_field(reference):
    data, _ = simulate_image(reference=reference, size_px=256, seed=6, centre_ra_deg=RA0, centre_dec_deg=DEC0)
    result = solve(read_image(data), references_ra_deg=[], references_dec_deg=[])
    assert result.status == "failed" and "reference store does not cover" in result.reason
    assert result.wcs is None and result.to_dict()["wcs_header"] == {}


@needs_anet
def test_reference_stars_of_another_field_fail_quickly_with_a_reason(reference):
    data, truth = simulate_image(reference=reference, size_px=768, seed=7, centre_ra_deg=RA0, centre_dec_deg=DEC0,
                                 wcs_offset_deg=0.3)
    elsewhere = make_reference_field(ra_deg=RA0, dec_deg=DEC0, radius_deg=0.2, n_stars=1500, seed=99)
    t = time.perf_counter()
    result = solve(read_image(data), references_ra_deg=elsewhere.ra_deg, references_dec_deg=elsewhere.dec_deg,
                   references_mag=elsewhere.mags["r"], hint_ra_deg=truth["event_ra_deg"],
                   hint_dec_deg=truth["event_dec_deg"], params=AstrometryParams(time_limit_s=3.0))
    assert time.perf_counter() - t < 10
    assert result.status == "failed" and result.header_wcs == "stale"
    assert "astrometry.net found no solution" in result.reason


def test_an_empty_frame_fails_with_too_few_stars(reference):
    rng = np.random.default_rng(0)
    result = solve(rng.normal(100, 5, (256, 256)).astype(np.float32), references_ra_deg=reference.ra_deg,
                   references_dec_deg=reference.dec_deg, pixel_scale_arcsec=SCALE, header_wcs=None)
    assert result.status == "failed" and "stars detected" in result.reason


@needs_anet
def test_indexes_built_while_detecting_give_the_same_solution_as_indexes_built_after(reference):
    data, truth = simulate_image(reference=reference, size_px=1024, centre_ra_deg=RA0, centre_dec_deg=DEC0,
                                 pixel_scale_arcsec=SCALE, wcs_offset_deg=0.3, seed=14, n_faint=256, rotation_deg=75.0)
    frame = read_image(data)
    record = standardise_header(frame.header)
    cone = select_cone(reference, *reference_cone(frame.shape, pixel_scale_arcsec=SCALE,
                                                  hint_ra_deg=truth["event_ra_deg"],
                                                  hint_dec_deg=truth["event_dec_deg"]))
    results = [solve(frame, references_ra_deg=cone.ra_deg, references_dec_deg=cone.dec_deg,
                     references_mag=cone.mags["r"], hint_ra_deg=truth["event_ra_deg"],
                     hint_dec_deg=truth["event_dec_deg"], record=record,
                     params=AstrometryParams(overlap_index_build=overlap)) for overlap in (True, False)]
    assert [r.method for r in results] == ["astrometry.net", "astrometry.net"]
    np.testing.assert_allclose(results[0].wcs.wcs.crval, results[1].wcs.wcs.crval, rtol=0, atol=1e-12)
    np.testing.assert_allclose(results[0].wcs.sip.a, results[1].wcs.sip.a, rtol=0, atol=1e-15)
    assert results[0].rms_arcsec == results[1].rms_arcsec and results[0].n_stars == results[1].n_stars


@needs_anet
def test_an_index_build_no_longer_needed_is_stopped_and_its_directory_removed(reference):
    cone = select_cone(reference, RA0, DEC0, 0.3)
    build = anet.start_index_build(shape=(1024, 1024), ref_ra_deg=cone.ra_deg, ref_dec_deg=cone.dec_deg,
                                   ref_mag=cone.mags["r"], scale_low_arcsec=0.36, scale_high_arcsec=0.44)
    assert os.path.isdir(build.tmp) and len(build.commands) >= 3
    build.close()
    assert not os.path.exists(build.tmp)
    assert all(proc.returncode is not None for proc in build._procs)
    build.close()  # twice is harmless
