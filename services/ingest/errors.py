"""What can go wrong in an ingest operation, named by meaning; adapters map each to their answer.

Every error carries the sentence for the observer (``str(exc)``, also ``reason``) and optional extra
fields the answer carries (``extra``, e.g. the existing point of a duplicate upload). The use cases
raise only these; the HTTP status or AMQP reply code of each is in ``services/ingest/answers.py``.
"""
from __future__ import annotations


class IngestError(Exception):
    """An operation refused or impossible, with the reason for the observer."""

    def __init__(self, reason: str, **extra):
        super().__init__(reason)
        self.reason, self.extra = reason, extra


class NotAuthenticated(IngestError):
    """No token, or one we do not know."""


class Forbidden(IngestError):
    """A known token that may not do this."""


class NotFound(IngestError):
    """The event, observation or recalibration named does not exist."""


class InvalidInput(IngestError):
    """A malformed form, body, field or file."""


class Refused(IngestError):
    """Well-formed but implausible: a file that misses the event, a time no observation can have."""


class Conflict(IngestError):
    """The same file was already uploaded for the event (``extra['followup_id']`` names the point)."""


class TooLarge(IngestError):
    """A file, packet or request over the limit."""


class TooManyRequests(IngestError):
    """Over a rate limit (``extra['retry_after_s']``: when to try again)."""


class Unavailable(IngestError):
    """A part we need is not running or not reachable: try again later."""
