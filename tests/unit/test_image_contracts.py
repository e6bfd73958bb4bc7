"""The image contracts declare exactly what their producers write, so a consumer cannot read a key that no
producer writes, and nothing a producer writes is lost on the way."""
from __future__ import annotations

import dataclasses

from astropy.wcs import WCS

from services.astrometry.science import AstrometryResult, SolveAttempt
from services.photometry.science import ForcedPhotometry, measure
from shared.contracts import AstrometrySummary, ForcedTarget, ImageMetadata, ObservationRecord, SolveTry
from shared.fitsimage import ObservationHeader, read_image, standardise_header
from shared.imaging import observation_header, observation_record
from shared.simimage import make_reference_field, simulate_image


def names(dataclass) -> set[str]:
    return {f.name for f in dataclasses.fields(dataclass)}


def test_the_header_record_mirrors_the_standardised_header_and_survives_the_trip():
    assert list(ObservationRecord.model_fields) == [f.name for f in dataclasses.fields(ObservationHeader)]
    data, _ = simulate_image(reference=make_reference_field(ra_deg=10.0, dec_deg=-5.0, radius_deg=0.1, n_stars=200),
                             size_px=128, centre_ra_deg=10.0, centre_dec_deg=-5.0, filter_name="V", seed=1)
    header = standardise_header(read_image(data).header, observatory={"lat_deg": -30.0, "lon_deg": 70.0},
                                upload={"mjd": 60000.5})
    record = ObservationRecord.model_validate_json(observation_record(header).model_dump_json())
    assert observation_header(record) == header


def test_the_astrometry_summary_declares_what_the_solver_returns():
    # the WCS goes as wcs_header; retryable only steers the handler's fallback
    assert set(AstrometrySummary.model_fields) == names(AstrometryResult) - {"wcs", "retryable"}
    assert set(SolveTry.model_fields) == names(SolveAttempt) | {"outcome"}


def test_the_forced_target_declares_what_forced_photometry_returns():
    assert set(ForcedTarget.model_fields) == names(ForcedPhotometry)


def test_the_image_metadata_declares_what_the_measurement_returns():
    reference = make_reference_field(ra_deg=150.0, dec_deg=20.0, radius_deg=0.2, n_stars=3000, seed=3)
    data, truth = simulate_image(reference=reference, size_px=256, centre_ra_deg=150.0, centre_dec_deg=20.0,
                                 transient_mag=17.0, filter_name="r", seed=3)
    result = measure(read_image(data), WCS(truth["wcs_header"]), target_ra_deg=truth["event_ra_deg"],
                     target_dec_deg=truth["event_dec_deg"])
    assert result.status == "measured", result.reason
    assert set(result.metadata) == set(ImageMetadata.model_fields) - {"astrometry"}  # photometry adds it
    ImageMetadata(**result.to_dict()["metadata"])  # every value has the declared type
    ForcedTarget(**result.to_dict()["target"])
