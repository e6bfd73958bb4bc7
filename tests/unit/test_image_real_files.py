"""Every real image of ../shared/data/images: a WCS and a catalogue, or a refusal with the reason.

No Gaia catalogue of these fields is available offline, so the reference stars are made from the
image itself: stars detected on it, placed on the sky by its header WCS (SDSS, 2MASS, UKIDSS) or,
for frames without one (M13, MRO, NTT), by an invented WCS at the header pointing (or, for M13,
which has none, at the cluster), then jittered by 0.1 arcsec. This checks that each real frame
(its noise, PSF, crowding, units, header) goes through detection, solving and photometry and that
the solution found is the one the references encode; it does NOT show that these frames solve
against Gaia. Without references the outcome is the refusal a real server gives.
"""
from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import WCS

from services.astrometry.science import anet, solve
from services.astrometry.science.fit import sky_separation_arcsec
from services.photometry.science import measure
from shared.fitsimage import ImageRefused, read_image, standardise_header
from shared.fitsimage.header import header_wcs
from shared.fitsimage.sources import find_sources
from shared.simimage import true_wcs

M13_CENTRE = (250.4235, 36.4613)
# file -> (observatory record, invented WCS centre or None for the header pointing, pixel scale) when the
# frame has no celestial WCS
NO_WCS = {
    "M13_blue_0001.fits": ({"pixel_scale_arcsec": 1.0}, M13_CENTRE, 1.0),
    "mro_2.4m_didymos_512.fits": ({"pixel_scale_arcsec": 0.3}, None, 1.2),  # 0.3"/px unbinned, binned 4x4
    "sep_eso_ntt_emmi_R_256.fits": ({"pixel_scale_arcsec": 0.27}, None, 0.27),
}
WITH_WCS = ["2mass_galactic_center_j.fits", "sdss_ngc6976_reprojected_g.fits", "sdss_ngc6976_reprojected_i.fits",
            "sdss_ngc6976_reprojected_r.fits", "ukidss_wfcam_K_gcs_cutout300.fits"]


def self_references(frame, wcs, seed=0):
    sources, _ = find_sources(frame.data, threshold_sigma=5.0, max_sources=500, measure_shape=False)
    ra, dec = wcs.all_pix2world(sources.x, sources.y, 0)
    rng = np.random.default_rng(seed)
    jitter = 0.1 / 3600.0
    return (ra + rng.normal(0, jitter, ra.size) / np.cos(np.radians(dec)), dec + rng.normal(0, jitter, ra.size),
            -2.5 * np.log10(sources.flux))


def grid_error_arcsec(a: WCS, b: WCS, shape) -> float:
    gy, gx = np.mgrid[0:shape[0] - 1:10j, 0:shape[1] - 1:10j]
    p, q = a.all_pix2world(gx.ravel(), gy.ravel(), 0), b.all_pix2world(gx.ravel(), gy.ravel(), 0)
    return float(np.sqrt(np.mean(sky_separation_arcsec(p[0], p[1], q[0], q[1]) ** 2)))


def check_catalogue(frame, wcs, record, event):
    result = measure(frame, wcs, target_ra_deg=event[0], target_dec_deg=event[1], record=record)
    assert result.status == "measured", result.reason
    assert len(result.stars) >= 3 and result.target.in_frame and result.target.limit_mag_inst is not None
    assert result.metadata["fwhm_px"] > 0 and result.metadata["background_rms_adu"] > 0
    return result


def test_the_raw_lco_frame_is_refused(shared_data):
    with pytest.raises(ImageRefused, match="raw multi-amplifier"):
        read_image((shared_data / "images" / "lco_elp1m008_fa05_raw_mef_2021SO2.fits").read_bytes())


@pytest.mark.parametrize("name", WITH_WCS)
def test_frames_with_a_header_wcs_verify_it_and_give_a_catalogue(shared_data, name):
    frame = read_image((shared_data / "images" / name).read_bytes())
    record = standardise_header(frame.header)
    truth = header_wcs(frame.header)
    ra, dec, mag = self_references(frame, truth)
    ny, nx = frame.shape
    event = truth.all_pix2world([[0.45 * nx, 0.55 * ny]], 0)[0]
    result = solve(frame, references_ra_deg=ra, references_dec_deg=dec, references_mag=mag, record=record,
                   hint_ra_deg=event[0], hint_dec_deg=event[1])
    assert result.status == "solved", result.reason
    assert result.header_wcs == "verified" and result.method == "header WCS"
    assert grid_error_arcsec(result.wcs, truth, frame.shape) < 0.5 * record.pixel_scale_arcsec
    phot = check_catalogue(frame, result.wcs, record, event)
    if name.startswith(("2mass", "sdss")):  # resampled, undersampled PSFs
        assert phot.metadata["method"] == "aperture"


@pytest.mark.skipif(not anet.available(), reason="the Debian package astrometry.net is not installed")
@pytest.mark.parametrize("name", sorted(NO_WCS))
def test_frames_without_wcs_solve_from_the_event_position_and_give_a_catalogue(shared_data, name):
    frame = read_image((shared_data / "images" / name).read_bytes())
    observatory, centre, scale = NO_WCS[name]
    record = standardise_header(frame.header, observatory=observatory)
    assert not record.has_celestial_wcs and record.pixel_scale_arcsec == pytest.approx(scale)
    if centre is None:
        centre = (record.pointing_ra_deg, record.pointing_dec_deg)
    else:
        assert record.pointing_ra_deg is None  # M13: no pointing at all, the event is the only hint
    truth = true_wcs(centre_ra_deg=centre[0], centre_dec_deg=centre[1], size_px=frame.shape, pixel_scale_arcsec=scale,
                     rotation_deg=12.0)
    ra, dec, mag = self_references(frame, truth, seed=1)
    ny, nx = frame.shape
    event = truth.all_pix2world([[0.6 * nx, 0.4 * ny]], 0)[0]  # the event is in the field, off-centre
    result = solve(frame, references_ra_deg=ra, references_dec_deg=dec, references_mag=mag, record=record,
                   hint_ra_deg=event[0], hint_dec_deg=event[1])
    assert result.status == "solved", result.reason
    assert result.method == "astrometry.net" and result.header_wcs == "absent"
    assert grid_error_arcsec(result.wcs, truth, frame.shape) < 0.5 * scale
    check_catalogue(frame, result.wcs, record, event)


@pytest.mark.parametrize("name", WITH_WCS + sorted(NO_WCS))
def test_without_reference_stars_every_frame_gets_a_clear_refusal(shared_data, name):
    frame = read_image((shared_data / "images" / name).read_bytes())
    result = solve(frame, references_ra_deg=[], references_dec_deg=[])
    assert result.status == "failed" and result.reason.startswith("only 0 reference stars around the field")
