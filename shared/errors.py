"""The few exception types that decide what happens to a message or a request."""
from __future__ import annotations

import functools


class PermanentError(Exception):
    """The input can never succeed: dead-letter the message with this reason, record the status."""


class TransientError(Exception):
    """Something outside us failed (database, archive, broker): retry, a bounded number of times."""


class NotYet(TransientError):
    """What the message needs has not arrived yet (e.g. another queue's message that comes first): retried
    with capped backoff until the message is ``patience_s`` old, then dead-lettered with this reason."""

    patience_s: float = 900.0


@functools.cache
def _infrastructure_types() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(outage types, their subclasses that are not outages); imported late so this module stays light.
    The broker's types come from the messaging module, the one place that speaks AMQP."""
    import pymongo.errors as mongo

    from shared.messaging import broker_outage_types

    broker_outages, broker_not_outages = broker_outage_types()
    outages: tuple[type[BaseException], ...] = (
        ConnectionError,  # refused, reset, aborted: the peer is not there
        mongo.ConnectionFailure,  # AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError, NotPrimaryError
        *broker_outages)
    return outages, broker_not_outages


def is_infrastructure(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is an outage of the database or the broker:
    it heals when they come back, so the work is retried for as long as it takes, never given up."""
    outages, not_outages = _infrastructure_types()
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, outages) and not isinstance(exc, not_outages):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def backoff_delay_s(attempt: int, *, base_s: float, max_s: float) -> float:
    """The wait before retry number ``attempt`` (0 for the first): ``base_s`` doubled each time, never
    more than ``max_s``."""
    if attempt < 0:
        raise ValueError("attempt counts from 0")
    if attempt > 60:  # 2**60 times any base is far past any cap
        return max_s
    return float(min(max_s, base_s * 2.0**attempt))
