"""Every routing key has a golden sample; every sample validates and survives a round trip; the
versioning rule of ``shared.contracts`` holds (unknown fields ignored, required fields fixed per version)."""
import json
from pathlib import Path

import pytest

from shared.contracts import REGISTRY
from shared.errors import PermanentError
from shared.messaging import decode

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "samples"
REQUIRED = Path(__file__).with_name("required_fields.json")


def test_every_routing_key_has_a_sample():
    assert {p.stem for p in SAMPLES.glob("*.json")} == set(REGISTRY)


def test_routing_keys_are_past_tense_and_versioned():
    for key in REGISTRY:
        *_, version = key.split(".")
        assert version.startswith("v") and version[1:].isdigit(), key


@pytest.mark.parametrize("routing_key", sorted(REGISTRY))
def test_sample_validates_and_round_trips(routing_key):
    raw = json.loads((SAMPLES / f"{routing_key}.json").read_text())
    model = REGISTRY[routing_key].model_validate(raw)
    again = REGISTRY[routing_key].model_validate_json(model.model_dump_json())
    assert again == model


@pytest.mark.parametrize("routing_key", sorted(REGISTRY))
def test_an_unknown_field_is_ignored_and_not_re_emitted(routing_key):
    """A newer publisher may add an optional field: an older reader takes the message and drops it."""
    raw = json.loads((SAMPLES / f"{routing_key}.json").read_text())
    expected = REGISTRY[routing_key].model_validate(raw)
    raw["surprise"] = {"added": "by a newer publisher"}
    model = REGISTRY[routing_key].model_validate(raw)
    assert model == expected
    assert "surprise" not in model.model_dump() and "surprise" not in model.model_dump_json()


def test_an_unknown_field_inside_a_part_is_ignored_too():
    raw = json.loads((SAMPLES / "observation.calibrated.v1.json").read_text())
    raw["event"]["surprise"] = 1
    raw["result"]["surprise"] = 2
    model = REGISTRY["observation.calibrated.v1"].model_validate(raw)
    assert "surprise" not in model.model_dump_json()


def test_every_sample_of_every_version_validates():
    """Samples are named <routing key>.json; a name with several versions keeps one sample per version."""
    families: dict[str, set[str]] = {}
    for path in SAMPLES.glob("*.json"):
        name, _, version = path.stem.rpartition(".")
        families.setdefault(name, set()).add(version)
        assert path.stem in REGISTRY, f"{path.name} has no model in the registry"
        REGISTRY[path.stem].model_validate(json.loads(path.read_text()))
    for key in REGISTRY:
        name, _, version = key.rpartition(".")
        assert version in families.get(name, set()), f"{key} has no golden sample"


def required_fields(model) -> dict[str, str]:
    schema = model.model_json_schema()
    return {name: json.dumps(schema["properties"][name], sort_keys=True) for name in sorted(schema.get("required", []))}


def test_required_fields_of_a_published_version_do_not_change():
    """Adding a required field, removing or retyping one breaks readers: that is a new .vN routing key.

    ``required_fields.json`` records each version's required fields and their schema; a new routing
    key adds its entry, an existing entry is never edited."""
    recorded = json.loads(REQUIRED.read_text())
    current = {key: required_fields(model) for key, model in sorted(REGISTRY.items())}
    for key, fields in recorded.items():
        assert key in current, f"{key} is no longer in the registry; keep it while it is published"
        assert current[key] == fields, f"{key}: required fields changed; publish a new version instead"
    assert set(current) <= set(recorded), f"record the required fields of {sorted(set(current) - set(recorded))}"


@pytest.mark.parametrize("routing_key", sorted(REGISTRY))
def test_a_message_missing_a_required_field_or_mistyped_is_dead_lettered_with_the_reason(routing_key):
    raw = json.loads((SAMPLES / f"{routing_key}.json").read_text())
    required = [name for name in required_fields(REGISTRY[routing_key]) if name in raw]
    assert required, routing_key
    missing = {k: v for k, v in raw.items() if k != required[0]}
    with pytest.raises(PermanentError, match=f"does not match {routing_key}: Field required at {required[0]}"):
        decode(routing_key, json.dumps(missing).encode())
    mistyped = {**raw, required[0]: {"not": ["a", "valid", "value"]}}
    with pytest.raises(PermanentError, match=f"does not match {routing_key}"):
        decode(routing_key, json.dumps(mistyped).encode())
    decode(routing_key, json.dumps({**raw, "surprise": 1}).encode())  # an added field is no reason


def test_inline_bytes_travel_as_base64_and_only_with_the_inline_bucket():
    raw = json.loads((SAMPLES / "upload.received.v1.json").read_text())
    data = bytes(range(256)) * 3
    model = REGISTRY["upload.received.v1"].model_validate(raw | {"bucket": "inline", "file_id": "",
                                                                 "inline_data": data})
    text = model.model_dump_json()
    assert json.loads(text)["inline_data"].startswith("AAECAwQF")  # base64 in JSON
    assert decode("upload.received.v1", text.encode()).inline_data == data
    for wrong in ({"bucket": "inline"}, {"inline_data": "AAEC"}, {"bucket": "inline", "inline_data": "@@not base64"}):
        with pytest.raises(PermanentError):
            decode("upload.received.v1", json.dumps(raw | wrong).encode())
