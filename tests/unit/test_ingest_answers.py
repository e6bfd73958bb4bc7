"""Each ingest error has one answer: its HTTP status for every HTTP adapter, and the AMQP reply and
dead-letter reason of the AMQP intakes; the bodies are the ones the CPCS contract and openapi.yaml give."""
from __future__ import annotations

import json

import pytest

from services.ingest import errors
from services.ingest.answers import CALIBRATION_FAILED, HTTP_STATUS, amqp_reply, dead_letter_reason, http_status
from services.ingest.http_render import plain_refusal, problem

EXPECTED = {
    errors.NotAuthenticated: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.InvalidInput: 400,
    errors.Refused: 422,
    errors.Conflict: 409,
    errors.TooLarge: 413,
    errors.TooManyRequests: 429,
    errors.Unavailable: 503,
}


def test_every_error_has_its_pinned_http_status():
    assert HTTP_STATUS == EXPECTED
    for kind, status in EXPECTED.items():
        assert http_status(kind("why")) == status


def test_every_error_class_is_mapped():
    defined = {v for v in vars(errors).values()
               if isinstance(v, type) and issubclass(v, errors.IngestError) and v is not errors.IngestError}
    assert defined == set(HTTP_STATUS)


def test_a_subclass_takes_its_parents_status_and_the_bare_base_has_none():
    class Duplicate(errors.Conflict):
        pass

    assert http_status(Duplicate("again")) == 409
    with pytest.raises(TypeError):
        http_status(errors.IngestError("no kind"))


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_amqp_reply_and_dead_letter_reason_carry_the_reason_and_the_status_code(kind):
    exc = kind("the reason for the observer")
    assert amqp_reply(exc) == {"error": "the reason for the observer", "status": EXPECTED[kind]}
    assert dead_letter_reason(exc) == "the reason for the observer"


def test_the_cpcs_form_answer_is_the_reason_as_one_line_of_text():
    response = plain_refusal(errors.Refused("the catalogue does not cover the event"))
    assert response.status == 422
    assert response.text == "the catalogue does not cover the event\n"


def test_the_rest_answer_is_a_problem_with_the_extra_fields():
    response = problem(errors.Conflict("already uploaded as point 7", followup_id=7))
    assert response.status == 409
    assert json.loads(response.body) == {"error": "already uploaded as point 7", "status": 409, "followup_id": 7}
    plain = problem(errors.NotAuthenticated("unknown or missing token"))
    assert json.loads(plain.body) == {"error": "unknown or missing token", "status": 401}


def test_a_failed_calibration_keeps_its_status():
    assert CALIBRATION_FAILED == 422
