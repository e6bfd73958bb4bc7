"""What an operator sees of a running service: Prometheus metrics, readiness, and log lines that carry the
correlation id of the message being handled.

Metrics (prometheus-client, the default registry; every service serves ``/metrics``):
``cpcs_messages_total{service, routing_key, outcome}`` (outcome: ``ack``, ``retry``, ``dead_letter``),
``cpcs_handler_seconds{service, routing_key}`` (a histogram: each stage's latency),
``cpcs_dead_letters_total{service, queue}``, ``cpcs_uploads_total{outcome}`` (ingest: ``accepted`` or the
refusal's HTTP status), ``cpcs_outcomes_total{service, outcome, stage, reason}`` (calibrated / failed, by
the failure's reason in a few words), ``cpcs_queue_messages{queue}`` and ``cpcs_queue_consumers{queue}``
(ingest samples the service queues).
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

#: The correlation id of the message being handled in this task (``-`` outside one).
CORRELATION_ID: contextvars.ContextVar[str] = contextvars.ContextVar("cpcs_correlation_id", default="-")

MESSAGES = Counter("cpcs_messages", "Messages consumed, by outcome", ["service", "routing_key", "outcome"])
HANDLER_SECONDS = Histogram("cpcs_handler_seconds", "Time to handle one message (a stage's latency)",
                            ["service", "routing_key"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
DEAD_LETTERS = Counter("cpcs_dead_letters", "Messages dead-lettered", ["service", "queue"])
DEAD_LETTER_FILL = Gauge("cpcs_dead_letter_fill",
                         "Share of the dead-letter queue's bound in use (1: full, the oldest are dropped)", ["queue"])
OUTBOX_PENDING = Gauge("cpcs_outbox_pending", "Observations whose message is not yet confirmed by the broker")
UPLOADS = Counter("cpcs_uploads", "Uploads received by ingest, by outcome", ["outcome"])
OUTCOMES = Counter("cpcs_outcomes", "Observations calibrated or failed, by stage and reason",
                   ["service", "outcome", "stage", "reason"])
QUEUE_MESSAGES = Gauge("cpcs_queue_messages", "Messages waiting in a queue", ["queue"])
QUEUE_CONSUMERS = Gauge("cpcs_queue_consumers", "Consumers attached to a queue", ["queue"])

_service = "cpcs"


def set_service(name: str) -> None:
    """The ``service`` label of this process's metrics and the name in its log lines."""
    global _service
    _service = name


def service_name() -> str:
    return _service


def reason_kind(reason: str, words: int = 4) -> str:
    """A failure's reason in a few words, numbers and names left out, as a metric label of bounded variety:
    ``"only 3 matched stars in APASS/r, need 5"`` -> ``"only matched stars in"``."""
    kept = [w for w in re.findall(r"[a-z]+", reason.lower().split(":")[0]) if len(w) > 1][:words]
    return " ".join(kept) or "unknown"


def metrics_body() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST


async def timed(service: str, routing_key: str, handle: Callable[[], Awaitable[Any]]) -> Any:
    """Run a handler under the stage-latency histogram."""
    start = time.perf_counter()
    try:
        return await handle()
    finally:
        HANDLER_SECONDS.labels(service, routing_key).observe(time.perf_counter() - start)


class CorrelationFilter(logging.Filter):
    """Puts the current correlation id and the service's name on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = CORRELATION_ID.get()
        record.service = _service
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, service, level, logger, message, correlation id (and the error)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
                 "service": getattr(record, "service", _service), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage(),
                 "correlation_id": getattr(record, "correlation_id", "-")}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(service: str, *, json_lines: bool = False, level: int = logging.INFO) -> None:
    """The process's log format: text with the correlation id, or JSON lines (``CPCS_LOG_FORMAT=json``)."""
    set_service(service)
    handler = logging.StreamHandler()
    handler.addFilter(CorrelationFilter())
    if json_lines:
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter("%(asctime)s %(service)s %(levelname)s %(name)s [%(correlation_id)s]: "
                                      "%(message)s")
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiormq", "aio_pika", "pymongo"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
