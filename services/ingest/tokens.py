"""Upload tokens ("hashtags"): a readable prefix, '_', 32 hex digits; stored only as sha256 hashes."""
from __future__ import annotations

import hashlib
import re
import secrets

_PREFIX_OK = re.compile(r"[^A-Za-z0-9]+")


def clean_prefix(prefix: str) -> str:
    """The readable part a token made with this prefix starts with."""
    return _PREFIX_OK.sub("", prefix)[:40] or "observer"


def new_token(prefix: str) -> str:
    return f"{clean_prefix(prefix)}_{secrets.token_hex(16)}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.strip().encode()).hexdigest()


def readable_prefix(token: str) -> str:
    return token.rsplit("_", 1)[0] if "_" in token else ""
