"""The one mapping from an ingest error to its answer: the HTTP status of every HTTP adapter, and the
reply (and dead-letter reason) of the AMQP intakes. Rendering a response is ``http_render``'s job."""
from __future__ import annotations

from services.ingest.errors import (
    Conflict,
    Forbidden,
    IngestError,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    Refused,
    TooLarge,
    TooManyRequests,
    Unavailable,
)

HTTP_STATUS: dict[type[IngestError], int] = {
    NotAuthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    InvalidInput: 400,
    Refused: 422,
    Conflict: 409,
    TooLarge: 413,
    TooManyRequests: 429,
    Unavailable: 503,
}

#: The status code of an upload whose calibration failed (the pipeline's answer, not a refused request).
CALIBRATION_FAILED = 422


def http_status(exc: IngestError) -> int:
    """The HTTP status of an error (the nearest mapped class it derives from)."""
    for kind in type(exc).__mro__:
        if kind in HTTP_STATUS:
            return HTTP_STATUS[kind]
    raise TypeError(f"{type(exc).__name__} has no HTTP status: add it to HTTP_STATUS")


def amqp_reply(exc: IngestError) -> dict:
    """The JSON reply of an AMQP upload refused: the reason and the status code an HTTP upload gets."""
    return {"error": str(exc), "status": http_status(exc)}


def dead_letter_reason(exc: IngestError) -> str:
    """The ``x-cpcs-reason`` of a message dead-lettered for this error."""
    return str(exc)
