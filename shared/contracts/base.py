"""Base of every message: a versioned, strict pydantic model published under one routing key."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


def _now() -> datetime:
    return datetime.now(UTC)


class Message(BaseModel):
    """A fact that happened, named in the past tense; ``routing_key`` carries the major version."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    routing_key: ClassVar[str]

    message_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: datetime = Field(default_factory=_now)
