"""Each service reads its own settings model from the environment, under the variable names it always had;
a refused value stops the service with one line naming it. Parameter sets come from a file and variables."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from services.astrometry.science import AstrometryParams
from services.astrometry.settings import AstrometrySettings
from services.calibration.settings import CalibrationSettings
from services.ingest.settings import IngestSettings
from services.launcher import SETTINGS_MODELS, SystemSettings, settings_model
from services.lightcurve.settings import LightcurveSettings
from services.photometry.science.model import PhotometryParams
from services.photometry.settings import PhotometrySettings
from shared.calibration_params import CalibrationParameters, ParameterSet, load_parameter_set
from shared.settings import SettingsError, load, load_parameters, parameter_values

ROOT = Path(__file__).resolve().parents[2]
#: every variable the configuration section of the README names, and who reads it
DOCUMENTED = {
    "CPCS_AMQP_URL": "*", "CPCS_MONGO_URL": "*", "CPCS_MONGO_DB": "*", "CPCS_EXCHANGE": "*",
    "CPCS_MAX_RETRIES": "*", "CPCS_PROCESS_WORKERS": "*", "CPCS_PREFETCH": "*", "CPCS_RETRY_DELAY_S": "*",
    "CPCS_HTTP_HOST": "ingest,lightcurve", "CPCS_INGEST_PORT": "ingest", "CPCS_PUBLIC_URL": "ingest",
    "CPCS_LIGHTCURVE_URL": "ingest", "CPCS_UPLOAD_WAIT_S": "ingest", "CPCS_MAX_UPLOAD_MB": "ingest",
    "CPCS_ADMIN_TOKEN": "ingest", "CPCS_LIGHTCURVE_PORT": "lightcurve", "CPCS_REFCAT_MARGIN_ARCMIN": "calibration",
    "CPCS_SESSION_SECRET": "ingest", "CPCS_SESSION_MAX_AGE_S": "ingest", "CPCS_LOG_FORMAT": "*",
    "CPCS_METRICS_PORT": "*", "CPCS_METRICS_HOST": "*", "CPCS_QUEUE_TYPE": "*",
    "CPCS_FETCH_ALLOW_PRIVATE": "ingest", "CPCS_FETCH_ALLOW_HOSTS": "ingest", "CPCS_FETCH_TIMEOUT_S": "ingest",
    "CPCS_FETCH_MAX_REDIRECTS": "ingest", "CPCS_MAX_UNPACKED_MB": "ingest", "CPCS_RATE_LIMITS": "ingest",
    "CPCS_RATE_WRITES_PER_S": "ingest", "CPCS_RATE_WRITES_BURST": "ingest", "CPCS_RATE_EVENTS_PER_MIN": "ingest",
    "CPCS_RATE_EVENTS_BURST": "ingest", "CPCS_RATE_FAILURES_PER_MIN": "ingest",
    "CPCS_RATE_FAILURES_BURST": "ingest", "CPCS_RATE_FORWARDED_FOR": "ingest", "CPCS_PUBLIC_DATA": "ingest",
    "CPCS_INTAKE_AMQP_URL": "ingest", "CPCS_OUTBOX_INTERVAL_S": "ingest", "CPCS_RECONCILE_INTERVAL_S": "ingest",
    "CPCS_RECONCILE_AFTER_S": "ingest", "CPCS_RETRY_MAX_DELAY_S": "*", "CPCS_DEAD_LETTER_MAX": "*",
    "CPCS_ANNOUNCE_WAIT_S": "lightcurve",
}
#: Read by the ``cpcs`` command itself, not by a service.
COMMAND_LINE = {"CPCS_TOKEN", "CPCS_URL", "CPCS_RUN_DIR", "CPCS_DEBUG", "CPCS_REPLICAS"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Each test starts from the defaults: no CPCS_ variable of the machine leaks in."""
    for var in list(os.environ):
        if var.startswith("CPCS_"):
            monkeypatch.delenv(var)


def test_defaults_are_those_of_before():
    ingest, lightcurve, calibration = IngestSettings(), LightcurveSettings(), CalibrationSettings()
    assert ingest.amqp_url.get_secret_value() == "amqp://guest:guest@127.0.0.1:5672/"
    assert (ingest.mongo_db, ingest.exchange, ingest.prefetch, ingest.max_retries, ingest.retry_delay_s) == (
        "cpcs", "cpcs", 8, 3, 0.5)
    assert (ingest.ingest_port, ingest.upload_wait_s, ingest.max_upload_mb, ingest.admin_token) == (
        8080, 30.0, 45.0, None)
    assert ingest.voevent.roles == "observation" and ingest.voevent.vtp_remotes == ""
    assert lightcurve.lightcurve_port == 8081 and lightcurve.http_host == "127.0.0.1"
    assert calibration.refcat_margin_arcmin == 2.0 and calibration.online_refcat.enabled == frozenset()
    assert calibration.params == ParameterSet(CalibrationParameters(), "defaults")
    assert AstrometrySettings().params.values == AstrometryParams()
    assert PhotometrySettings().params.values == PhotometryParams()


@pytest.mark.parametrize("service", sorted(SETTINGS_MODELS))
def test_each_service_reads_the_shared_variables(service, monkeypatch):
    monkeypatch.setenv("CPCS_MONGO_DB", "night7")
    monkeypatch.setenv("CPCS_EXCHANGE", "night7x")
    monkeypatch.setenv("CPCS_PREFETCH", "3")
    monkeypatch.setenv("CPCS_PROCESS_WORKERS", "2")
    settings = settings_model(service)()
    assert (settings.mongo_db, settings.exchange, settings.prefetch, settings.process_workers) == (
        "night7", "night7x", 3, 2)


def test_each_service_reads_its_own_variables(monkeypatch):
    for var, value in {"CPCS_INGEST_PORT": "9000", "CPCS_UPLOAD_WAIT_S": "5", "CPCS_ADMIN_TOKEN": "s3cret",
                       "CPCS_VOEVENT_ROLES": "observation,test", "CPCS_VOEVENT_VTP_REMOTES": "broker.example:8099",
                       "CPCS_LIGHTCURVE_PORT": "9001", "CPCS_REFCAT_MARGIN_ARCMIN": "3.5",
                       "CPCS_REFCAT_ONLINE": "APASS, GaiaDR3", "CPCS_REFCAT_TIMEOUT_S": "5",
                       "CPCS_ASTROMETRY_MIN_STARS": "8", "CPCS_ASTROMETRY_WIDE_SCALE_RANGE_ARCSEC": "0.2, 20",
                       "CPCS_PHOTOMETRY_METHOD": "aperture", "CPCS_CALIBRATION_MIN_NPOINTS": "7"}.items():
        monkeypatch.setenv(var, value)
    ingest = IngestSettings()
    assert (ingest.ingest_port, ingest.upload_wait_s, ingest.admin_token.get_secret_value()) == (9000, 5.0, "s3cret")
    assert ingest.voevent.policy().roles == frozenset({"observation", "test"})
    assert ingest.voevent.remotes() == [("broker.example", 8099)]
    assert LightcurveSettings().lightcurve_port == 9001
    calibration = CalibrationSettings()
    assert calibration.refcat_margin_arcmin == 3.5
    assert calibration.online_refcat.enabled == frozenset({"APASS", "GaiaDR3"})
    assert calibration.online_refcat.timeout_s == 5.0
    assert calibration.params.params.min_npoints == 7
    assert calibration.params.source == "env CPCS_CALIBRATION_MIN_NPOINTS"
    astrometry = AstrometrySettings().params
    assert astrometry.values.min_stars == 8 and astrometry.values.wide_scale_range_arcsec == (0.2, 20.0)
    assert astrometry.source == "env CPCS_ASTROMETRY_MIN_STARS, CPCS_ASTROMETRY_WIDE_SCALE_RANGE_ARCSEC"
    assert PhotometrySettings().params.values.method == "aperture"


def test_every_documented_variable_is_read_by_the_service_the_readme_names():
    readme = (ROOT / "README.md").read_text()
    models = {name: settings_model(name) for name in SETTINGS_MODELS}
    for var, reader in DOCUMENTED.items():
        field = var.removeprefix("CPCS_").lower()
        readers = {name for name, model in models.items() if field in model.model_fields}
        assert readers == (set(models) if reader == "*" else set(reader.split(","))), var
    words = {word.strip("`,.()").split("=")[0] for word in readme.split()}
    named = {word for word in words if word.startswith("CPCS_")} - {"CPCS_"}
    # groups with their own prefix and the parameter sets have their own tests; the CLI reads its two itself
    own_tests = ("CPCS_TEST_", "CPCS_VOEVENT_", "CPCS_REFCAT_", "CPCS_CALIBRATION_", "CPCS_ASTROMETRY_",
                 "CPCS_PHOTOMETRY_")
    assert {v for v in named if not v.startswith(own_tests)} <= set(DOCUMENTED) | COMMAND_LINE


def test_every_flat_setting_of_every_service_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name in SETTINGS_MODELS:
        for field, info in settings_model(name).model_fields.items():
            kind = info.annotation
            if isinstance(kind, type) and issubclass(kind, BaseSettings):
                continue  # a group with its own prefix (CPCS_VOEVENT_, CPCS_REFCAT_): its own test
            if field == "params":
                continue  # the parameter sets: CPCS_<SET>_PARAMS and CPCS_<SET>_<NAME>, tested with them
            assert f"`CPCS_{field.upper()}`" in readme, (name, field)


@pytest.mark.parametrize(("model", "var", "value", "words"), [
    (IngestSettings, "CPCS_INGEST_PORT", "http", "CPCS_INGEST_PORT: Input should be a valid integer"),
    (LightcurveSettings, "CPCS_PREFETCH", "many", "CPCS_PREFETCH: Input should be a valid integer"),
    (IngestSettings, "CPCS_VOEVENT_MAX_PACKET_KB", "big",
     "CPCS_VOEVENT_MAX_PACKET_KB: Input should be a valid integer"),
    (IngestSettings, "CPCS_VOEVENT_VTP_REMOTES", "broker.example",
     "CPCS_VOEVENT_VTP_REMOTES: 'broker.example' is not host:port"),
    (CalibrationSettings, "CPCS_REFCAT_ONLINE", "Hipparcos",
     "CPCS_REFCAT_ONLINE names Hipparcos, which has no archive"),
    (CalibrationSettings, "CPCS_REFCAT_TIMEOUT_S", "slow", "CPCS_REFCAT_TIMEOUT_S: Input should be a valid number"),
    (CalibrationSettings, "CPCS_CALIBRATION_MIN_NPOINTS", "many",
     "calibration parameter min_npoints (env CPCS_CALIBRATION_MIN_NPOINTS): Input should be a valid integer"),
    (CalibrationSettings, "CPCS_CALIBRATION_USE_COLOUR_TERMS", "maybe",
     "calibration parameter use_colour_terms (env CPCS_CALIBRATION_USE_COLOUR_TERMS): Input should be a valid boolean"),
    (CalibrationSettings, "CPCS_CALIBRATION_MIN_NPONITS", "7",
     "CPCS_CALIBRATION_MIN_NPONITS: unknown calibration parameter"),
    (AstrometrySettings, "CPCS_ASTROMETRY_MIN_STARS", "x",
     "astrometry parameter min_stars: Input should be a valid integer"),
    (PhotometrySettings, "CPCS_PHOTOMETRY_APERTURE", "2", "CPCS_PHOTOMETRY_APERTURE: unknown photometry parameter"),
])
def test_a_refused_value_is_one_line_naming_it(model, var, value, words, monkeypatch):
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as caught:
        load(model)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_service_refusing_its_settings_exits_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPCS_")} | {
        "CPCS_CALIBRATION_LIMIT_SIGMA": "five", "CPCS_AMQP_URL": "amqp://guest:guest@127.0.0.1:9/"}
    done = subprocess.run([sys.executable, "-m", "services.calibration.main"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.startswith("calibration: ")]
    assert lines == ["calibration: settings refused: calibration parameter limit_sigma "
                     "(env CPCS_CALIBRATION_LIMIT_SIGMA): Input should be a valid number, "
                     "unable to parse string as a number, got 'five'"]


def test_a_parameter_file_and_variables_over_it(tmp_path):
    toml = tmp_path / "night.toml"
    toml.write_text('version = "1"\nmin_npoints = 6\nastrometric_surveys = ["GaiaDR3"]\nscatter_prior_mag = 0.03\n')
    chosen = load_parameter_set({"CPCS_CALIBRATION_PARAMS": str(toml), "CPCS_CALIBRATION_MIN_NPOINTS": "8"})
    assert chosen.params == CalibrationParameters(min_npoints=8, astrometric_surveys=("GaiaDR3",),
                                                  scatter_prior_mag=0.03)
    assert chosen.source == f"file {toml} + env CPCS_CALIBRATION_MIN_NPOINTS"
    assert chosen.provenance() == {"version": "1", "hash": chosen.params.hash(), "source": chosen.source}
    js = tmp_path / "night.json"
    js.write_text(json.dumps({"use_colour_terms": False, "scatter_prior_mag": None}))
    chosen = load_parameter_set({"CPCS_CALIBRATION_PARAMS": str(js)})
    assert chosen.params == CalibrationParameters(use_colour_terms=False, scatter_prior_mag=None)
    assert chosen.source == f"file {js}"


@pytest.mark.parametrize(("text", "words"), [
    ('min_npoints = 6\nmin_npionts = 7\n', "unknown parameter(s) min_npionts; known: "),
    ('min_npoints = "six"\n', "calibration parameter min_npoints"),
    ('version = "2"\nmin_npoints = 6\n', "are for version 2; this server's parameter set is version 1"),
    ('min_npoints = \n', "is not valid TOML"),
])
def test_a_bad_parameter_file_is_refused_in_one_line(tmp_path, text, words):
    path = tmp_path / "params.toml"
    path.write_text(text)
    with pytest.raises(SettingsError) as caught:
        load_parameter_set({"CPCS_CALIBRATION_PARAMS": str(path)})
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_parameter_file_is_named(tmp_path):
    with pytest.raises(SettingsError, match="calibration parameter file .*nowhere.toml: No such file"):
        load_parameter_set({"CPCS_CALIBRATION_PARAMS": str(tmp_path / "nowhere.toml")})


def test_image_parameter_sets_from_a_file(tmp_path):
    path = tmp_path / "phot.json"
    path.write_text(json.dumps({"aperture_fwhm": 2, "method": "aperture"}))
    loaded = load_parameters(PhotometryParams, "photometry", {"CPCS_PHOTOMETRY_PARAMS": str(path)})
    assert loaded.values == PhotometryParams(aperture_fwhm=2.0, method="aperture")
    assert loaded.source == f"file {path}"
    assert loaded.provenance()["hash"] != load_parameters(PhotometryParams, "photometry", {}).provenance()["hash"]
    assert parameter_values("photometry", ["method"], {}) == ({}, "defaults")


def test_recalibration_overrides_apply_over_the_configured_set():
    configured = ParameterSet(CalibrationParameters(min_npoints=8), "file /etc/cpcs/params.toml")
    assert configured.overridden({}) is configured
    over = configured.overridden({"limit_sigma": "3"})
    assert over.params == CalibrationParameters(min_npoints=8, limit_sigma=3.0)
    assert over.provenance() == {"version": "1", "hash": over.params.hash(), "source": "recalibration override",
                                 "base_source": "file /etc/cpcs/params.toml", "overrides": ["limit_sigma"]}


def test_a_system_builds_every_service_model_from_the_same_values():
    system = SystemSettings.build(mongo_db="shared7", ingest_port=9100, lightcurve_port=9101)
    assert {system[name].mongo_db for name in SETTINGS_MODELS} == {"shared7"}
    assert (system.ingest_port, system.lightcurve_port, system.mongo_db) == (9100, 9101, "shared7")
    assert system.environment()["CPCS_LIGHTCURVE_PORT"] == "9101"
    with pytest.raises(ValueError, match="no service has the setting"):
        SystemSettings.build(ingest_prot=9100)
