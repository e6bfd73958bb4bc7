"""Every routing key has a golden sample; every sample validates and survives a round trip."""
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.contracts import REGISTRY

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "samples"


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
def test_unknown_fields_are_refused(routing_key):
    raw = json.loads((SAMPLES / f"{routing_key}.json").read_text())
    raw["surprise"] = 1
    with pytest.raises(ValidationError):
        REGISTRY[routing_key].model_validate(raw)
