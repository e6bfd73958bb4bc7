"""services/ingest/openapi.yaml describes exactly what the public URL serves, with the answers' real keys.

No servers and no network: the route tables are read from the aiohttp applications (built, never started)
and the answers from the pure functions that write them.
"""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from aiohttp import web

from services.ingest import http_admin, http_api, http_cgi, pages, proxy
from services.ingest import web as web_pages
from services.ingest.app import make_app
from services.ingest.deps import IngestDeps
from services.ingest.results import ResultWaiters, cpcs_answer
from services.ingest.settings import IngestSettings
from services.ingest.usecases.uploads import Accepted
from services.lightcurve import http as lightcurve_http
from services.lightcurve.store import point_doc
from services.lightcurve.views import CSV_COLUMNS, cpcs_columns, json_rows
from shared.contracts import ObservationCalibratedV1, ObservationFailedV1
from shared.ops import Ops

ROOT = Path(__file__).resolve().parents[2]
SPEC_FILE = ROOT / "services" / "ingest" / "openapi.yaml"
GOLDEN = ROOT / "shared" / "contracts" / "samples" / "observation.calibrated.v1.json"
PUBLIC = "http://cpcs.example.org"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
CPCS_ORIGINAL_KEYS = ["image_link", "mag", "mag_err", "ra", "dec", "zeropoint", "outlier_fraction", "scatter",
                      "npoints", "followup_id", "filter", "survey"]


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))


@pytest.fixture
def golden() -> ObservationCalibratedV1:
    return ObservationCalibratedV1.model_validate(json.loads(GOLDEN.read_text()))


def schema_props(spec: dict, name: str) -> dict:
    return spec["components"]["schemas"][name]["properties"]


def validate_against(spec: dict, name: str, instance) -> None:
    """Validate ``instance`` against components/schemas/<name> (JSON Schema 2020-12, refs resolved)."""
    jsonschema = pytest.importorskip("jsonschema")
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    jsonschema.Draft202012Validator(root).validate(instance)


def normalise(path: str) -> str:
    """aiohttp's ``{event_id:.+}`` is OpenAPI's ``{event_id}``."""
    return re.sub(r"\{(\w+):[^{}]*\}", r"{\1}", path)


# (1) the document ----------------------------------------------------------------------------------------

def test_spec_is_a_valid_openapi_31_document(spec):
    assert str(spec["openapi"]).startswith("3.1")
    try:
        from openapi_spec_validator import validate
    except ImportError:  # the validator is optional: check the shape by hand
        validate = None
    if validate is not None:
        validate(spec)
    assert {"title", "version"} <= set(spec["info"])
    assert spec["paths"] and spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        assert path.startswith("/"), path
        for method, operation in item.items():
            if method in HTTP_METHODS:
                assert operation["responses"], (method, path)
                assert "security" in operation, f"{method.upper()} {path} must say whether it needs a hashtag"


def test_every_ref_points_somewhere(spec):
    refs = re.findall(r"""['"]?\$ref['"]?\s*:\s*['"]([^'"]+)['"]""", SPEC_FILE.read_text(encoding="utf-8"))
    assert refs
    for ref in refs:
        node = spec
        assert ref.startswith("#/"), ref
        for part in ref[2:].split("/"):
            assert part in node, ref
            node = node[part]


def test_spec_ships_with_the_package_as_the_handler_reads_it(spec):
    text = resources.files("services.ingest").joinpath("openapi.yaml").read_text()
    assert yaml.safe_load(text) == spec


def test_security_schemes_cover_every_place_a_hashtag_is_read(spec):
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerHashtag"] == {**schemes["bearerHashtag"], "type": "http", "scheme": "bearer"}
    assert {(s.get("in"), s.get("name")) for s in schemes.values() if s["type"] == "apiKey"} == {
        ("query", "hashtag"), ("cookie", "hashtag"), ("cookie", "cpcs_session")}  # and the pages' login
    assert "hashtag" in schema_props(spec, "UploadForm")  # the form field (not expressible as a scheme)
    upload_security = spec["paths"]["/api/v1/uploads"]["post"]["security"]
    assert {"bearerHashtag": []} in upload_security


# (2) documented routes == served routes ------------------------------------------------------------------

def ingest_app():
    deps = IngestDeps(settings=IngestSettings(), store=None, uploads=None, waiters=None, publish=None)
    return make_app(deps, operations=Ops("ingest", db=None, broker=None))


def served(app) -> set[tuple[str, str]]:
    """(method, path) of every route; aiohttp adds HEAD to each GET by itself, so HEAD is left out, and the
    pages' static files (stylesheet, scripts) are no API."""
    return {(route.method, normalise(route.resource.canonical)) for route in app.router.routes()
            if route.method != "HEAD" and not isinstance(route.resource, web.StaticResource)}


def documented(spec: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in spec["paths"].items() for method in item
            if method in HTTP_METHODS}


def test_route_tables_are_what_the_app_serves():
    tables = (http_cgi.routes, http_api.routes, http_admin.routes, pages.routes, *web_pages.ROUTE_TABLES)
    from_tables = {(r.method, normalise(r.path)) for table in tables for r in table}
    from_tables |= {("GET", p) for p in proxy.FORWARDED}
    from_tables |= {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/plots/{name}"),
                    ("GET", "/api/v1/events/{event_id}/lightcurve")}
    assert served(ingest_app()) == from_tables


def test_every_served_route_is_documented_and_every_documented_route_is_served(spec):
    public = served(ingest_app())
    assert public - documented(spec) == set(), "served but not in openapi.yaml"
    assert documented(spec) - public == set(), "in openapi.yaml but not served"


def test_every_lightcurve_read_path_is_forwarded_by_ingest():
    app = ingest_app()
    forwarded = {(r.method, normalise(r.resource.canonical)) for r in app.router.routes()
                 if r.handler is proxy.forward and r.method != "HEAD"}
    lightcurve = {(r.method, normalise(r.path)) for r in lightcurve_http.routes} - {("GET", "/healthz")}
    assert lightcurve == forwarded


def test_path_parameters_are_declared(spec):
    for path, item in spec["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            params = item.get("parameters", []) + operation.get("parameters", [])
            declared = {p["name"] for p in params if "$ref" not in p and p["in"] == "path"}
            assert declared == names, (method, path)


# (3) the answers' keys are the schemas' properties -------------------------------------------------------

def test_cpcs_upload_answer_keys_are_the_schema_properties(spec, golden):
    answer = cpcs_answer(golden, PUBLIC)
    props = schema_props(spec, "CpcsUploadAnswer")
    assert set(answer) == set(props)
    assert list(answer)[:12] == list(props)[:12] == CPCS_ORIGINAL_KEYS
    assert set(spec["components"]["schemas"]["CpcsUploadAnswer"]["required"]) == set(answer)
    validate_against(spec, "CpcsUploadAnswer", answer)


def test_a_limit_answers_mag_err_minus_one(spec, golden):
    limit = golden.model_copy(update={"result": golden.result.model_copy(
        update={"status": "limit", "is_limit": True, "limit_sigma": 5.0})})
    answer = cpcs_answer(limit, PUBLIC)
    assert answer["mag_err"] == -1
    validate_against(spec, "CpcsUploadAnswer", answer)


def test_a_dry_run_answer_has_no_followup_id(spec, golden):
    dry = golden.model_copy(update={"dry_run": True, "followup_id": None})
    validate_against(spec, "CpcsUploadAnswer", cpcs_answer(dry, PUBLIC))


def fake_deps(outcome_for):
    """Just what upload_and_wait touches; ``outcome_for(correlation_id)`` is the pipeline's answer, if any."""
    deps = SimpleNamespace(waiters=ResultWaiters(), settings=SimpleNamespace(upload_wait_s=0.05, public_url=PUBLIC))

    async def accept(req, correlation_id):
        outcome = outcome_for(correlation_id)
        if outcome is not None:
            await deps.waiters.on_result(outcome)
        return Accepted("8d3f1c2b4a5e6f708192a3b4c5d6e7f8", 42, correlation_id, False)

    deps.uploads = SimpleNamespace(accept=accept)
    return deps


async def test_upload_and_wait_answers_match_their_schemas(spec, golden):
    status, answer = await http_cgi.upload_and_wait(fake_deps(lambda cid: None), None)
    assert status == 202
    assert set(answer) == set(schema_props(spec, "UploadProcessing"))
    validate_against(spec, "UploadProcessing", answer)

    status, answer = await http_cgi.upload_and_wait(
        fake_deps(lambda cid: golden.model_copy(update={"correlation_id": cid})), None)
    assert status == 200
    validate_against(spec, "CpcsUploadAnswer", answer)

    def failed(cid):
        return ObservationFailedV1(observation_id=golden.observation_id, followup_id=None, correlation_id=cid,
                                   dry_run=True, event_ivorn=golden.event.ivorn, stage="calibration",
                                   reason="no reference stars in the field")

    status, answer = await http_cgi.upload_and_wait(fake_deps(failed), None)
    assert status == 422
    assert set(answer) == set(schema_props(spec, "UploadFailed"))
    validate_against(spec, "UploadFailed", answer)


def test_observation_status_document_matches_its_schema(spec, golden):
    doc = {"_id": golden.observation_id, "followup_id": 42, "event_ivorn": golden.event.ivorn,
           "observatory_id": 3, "observatory_name": "Demo 0.6 m", "mjd": golden.mjd, "exptime_s": 60.0,
           "filename": "demo.cat", "sha256": "0" * 64, "force_filter": "no", "match_radius_arcsec": None,
           "comment": "", "declared_filter": "r", "n_stars": 640, "n_dropped": {"sentinel": 3},
           "file_format": "ASCII_HEAD", "status": "calibrated", "result": golden.result.model_dump(mode="json"),
           "reason": None, "received_at": datetime.now(UTC)}
    body = http_api.observation_json(doc)
    assert set(body) == set(schema_props(spec, "ObservationStatus"))
    validate_against(spec, "ObservationStatus", json.loads(json.dumps(body)))
    validate_against(spec, "ObservationStatus", json.loads(json.dumps(http_api.observation_json(
        doc | {"status": "received", "result": None}))))
    assert set(golden.result.model_dump()) == set(schema_props(spec, "CalibrationSummary"))


def test_event_json_matches_its_schema(spec):
    event = {"_id": "ivo://Gaia16aye", "alert_id": 7, "ra_deg": 295.00479, "dec_deg": 30.13148, "url": "",
             "source": "manual", "published": datetime.now(UTC)}
    body = json.loads(json.dumps(http_cgi.event_json(event) | {"created": True}))
    assert set(body) - {"created"} == set(schema_props(spec, "Event"))
    validate_against(spec, "EventCreated", body)


def test_lightcurve_formats_match_their_schemas(spec, golden):
    point = point_doc(golden)
    limit = point_doc(golden.model_copy(update={"followup_id": 43, "result": golden.result.model_copy(
        update={"status": "limit", "is_limit": True, "limit_sigma": 5.0})}))
    columns = cpcs_columns(golden.event.ivorn, [point, limit])
    assert set(columns) == set(schema_props(spec, "CpcsLightcurveColumns"))
    assert columns["magerr"][1] == -1
    validate_against(spec, "CpcsLightcurveColumns", columns)

    rows = json_rows([point, limit])
    assert set(rows[0]) == set(schema_props(spec, "LightcurvePoint"))
    validate_against(spec, "Lightcurve", {"ivorn": golden.event.ivorn, "id": 7, "points": rows})

    csv_example = (spec["paths"]["/api/v1/events/{event_id}/lightcurve"]["get"]["responses"]["200"]
                   ["content"]["text/csv"]["example"])
    assert csv_example.splitlines()[0] == ",".join(CSV_COLUMNS)
