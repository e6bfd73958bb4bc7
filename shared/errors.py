"""The few exception types that decide what happens to a message or a request."""
from __future__ import annotations


class PermanentError(Exception):
    """The input can never succeed: dead-letter the message with this reason, record the status."""


class TransientError(Exception):
    """Something outside us failed (database, archive, broker): retry, a bounded number of times."""
