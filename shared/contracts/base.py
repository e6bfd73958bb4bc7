"""Base of every message: a versioned pydantic model published under one routing key.

Readers ignore fields they do not know (``extra="ignore"``), so a publisher may add an optional field
within a major version without breaking older readers; the field is dropped on reading and not sent on.
Missing required fields and wrong types are still refused (and such a message is dead-lettered), and so
are non-finite numbers (NaN, Infinity: JSON parsers accept them, no measurement is one): a consumer
dead-letters such a message at once with the reason instead of failing on it later and retrying.
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


def _now() -> datetime:
    return datetime.now(UTC)


#: Every contract model and its parts: unknown fields ignored on reading, instances immutable, numbers
#: finite.
CONTRACT_CONFIG = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


class Part(BaseModel):
    """A value inside a message (a reference to an event, a calibration summary...)."""

    model_config = CONTRACT_CONFIG


class Message(BaseModel):
    """A fact that happened, named in the past tense; ``routing_key`` carries the major version."""

    model_config = CONTRACT_CONFIG
    routing_key: ClassVar[str]

    message_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: datetime = Field(default_factory=_now)
