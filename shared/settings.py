"""Typed settings, read from the environment (prefix ``CPCS_``) once per process in ``main()``.

The shared parts live here: the broker (``BusSettings``), the database (``DatabaseSettings``) and the
two together with the process pool (``ServiceSettings``). Each service composes its own model from
them in ``services/<service>/settings.py`` and reads only that one. The fields are flat, so every
variable keeps its plain name (``CPCS_AMQP_URL``, ``CPCS_MONGO_DB``, ...); groups with their own
prefix (``CPCS_VOEVENT_``, ``CPCS_REFCAT_``) are models of their own, composed in as fields.

Parameter sets (the calibration's, astrometry's, photometry's) are read by :func:`parameter_values`:
an operator's file (TOML or JSON) named by ``CPCS_<SET>_PARAMS``, then ``CPCS_<SET>_<NAME>``
variables over it, and a sentence saying where the values came from.
"""
from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "CPCS_"


class SettingsError(ValueError):
    """A setting or parameter an operator gave is unknown or invalid; the message is one line."""


class _Base(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="forbid", frozen=True)


class BusSettings(_Base):
    """The broker: where it is, the exchange, how deliveries are taken and retried."""

    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    exchange: str = "cpcs"
    prefetch: int = 8
    max_retries: int = 3
    retry_delay_s: float = 0.5
    retry_max_delay_s: float = Field(default=30.0, gt=0)  # the cap of the backoff while the database or broker is away
    dead_letter_max: int = Field(default=10000, ge=0)  # the dead-letter queue's bound (oldest dropped); 0: unbounded
    queue_type: Literal["classic", "quorum"] = "classic"  # quorum: replicated queues on a RabbitMQ cluster


class DatabaseSettings(_Base):
    """The MongoDB-protocol database of the service."""

    mongo_url: SecretStr = SecretStr("mongodb://127.0.0.1:27017")
    mongo_db: str = "cpcs"


class ServiceSettings(BusSettings, DatabaseSettings):
    """What every service has: the broker, the database, its process pool, its log format, and (for the
    services without HTTP of their own) where its ``/metrics``, ``/healthz`` and ``/readyz`` are served."""

    process_workers: int = 1
    log_format: Literal["text", "json"] = "text"
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None


def load(model: type[BaseSettings], **values: Any) -> Any:
    """``model`` from the environment (``values`` win); ``SettingsError`` in one line when it is refused."""
    try:
        return model(**values)
    except ValidationError as exc:
        raise SettingsError(validation_line(exc, model)) from None


def validation_line(exc: ValidationError, model: type[BaseSettings] | None = None) -> str:
    """The first error of a settings model as one line naming the variable, e.g.
    ``CPCS_PREFETCH: Input should be a valid integer, got 'many'`` (a nested model's error, e.g. of
    ``CPCS_VOEVENT_*``, is named with that model's prefix)."""
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    prefix = PREFIX
    if model is not None:
        prefix = str(model.model_config.get("env_prefix", PREFIX))
        for info in model.model_fields.values():  # an error raised by a nested settings model
            kind = info.annotation
            if isinstance(kind, type) and issubclass(kind, BaseSettings) and kind.__name__ == exc.title:
                prefix = str(kind.model_config.get("env_prefix", PREFIX))
    name = (loc[0] if loc and loc[0].upper().startswith(PREFIX) else prefix + (loc[0] if loc else "")).upper()
    message = str(error["msg"]).removeprefix("Value error, ")
    more = "" if len(exc.errors()) == 1 else f" (and {len(exc.errors()) - 1} more)"
    if message.startswith(name):
        return message + more
    return f"{name}: {message}, got {error.get('input')!r}{more}"


def parameter_values(name: str, known: Iterable[str], environ: Mapping[str, str] | None = None
                     ) -> tuple[dict[str, Any], str]:
    """The values an operator gave for the parameter set ``name`` and where they came from.

    ``CPCS_<NAME>_PARAMS``: a ``.toml`` or ``.json`` file of ``parameter = value`` (an optional
    ``version`` key is returned as ``"version"``); then ``CPCS_<NAME>_<PARAMETER>`` variables, which
    win over the file. Unknown names in either are refused (``SettingsError``, one line). The source is
    ``"defaults"``, ``"file /path"``, ``"env CPCS_X_A, CPCS_X_B"`` or ``"file /path + env ..."``.
    """
    env = os.environ if environ is None else environ
    known = set(known)
    stem = f"{PREFIX}{name.upper()}_"
    file_var = f"{stem}PARAMS"
    values: dict[str, Any] = {}
    sources: list[str] = []
    path = env.get(file_var, "").strip()
    if path:
        values = read_parameter_file(Path(path), known, what=name)
        sources.append(f"file {path}")
    from_env = sorted(var for var in env if var.upper().startswith(stem) and var.upper() != file_var)
    unknown = [var for var in from_env if var[len(stem):].lower() not in known]
    if unknown:
        raise SettingsError(f"{', '.join(unknown)}: unknown {name} parameter(s); known: {', '.join(sorted(known))}")
    for var in from_env:
        values[var[len(stem):].lower()] = env[var]
    if from_env:
        sources.append(f"env {', '.join(from_env)}")
    return values, " + ".join(sources) or "defaults"


def read_parameter_file(path: Path, known: set[str], *, what: str) -> dict[str, Any]:
    """A parameter file's table (TOML by ``.toml``, else JSON), unknown keys refused."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"{what} parameter file {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise SettingsError(f"{what} parameter file {path} is not valid "
                            f"{'TOML' if path.suffix.lower() == '.toml' else 'JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{what} parameter file {path} must hold a table of name = value")
    unknown = sorted(set(data) - known - {"version"})
    if unknown:
        raise SettingsError(f"{what} parameter file {path}: unknown parameter(s) {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(known))}")
    return data


def typed_parameters(kind: type, values: Mapping[str, Any], *, what: str, base: Any = None) -> Any:
    """An instance of the parameter dataclass ``kind``: ``base`` (else the defaults) with ``values``
    replaced, each converted to its field's type (text from a variable as well as file values; a tuple
    from comma-separated text). ``SettingsError`` (one line) naming the parameter when refused."""
    from dataclasses import asdict, fields

    from pydantic import TypeAdapter

    names = {f.name for f in fields(kind)}
    unknown = sorted(set(values) - names - {"version"})
    if unknown:
        raise SettingsError(f"unknown {what} parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    raw = asdict(base if base is not None else kind())
    for key, value in values.items():
        if key != "version":
            raw[key] = split_list(raw[key], value)
    try:
        return TypeAdapter(kind).validate_python(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = str(error["loc"][0]) if error["loc"] else "?"
        raise SettingsError(f"{what} parameter {key}: {error['msg']}, got {values.get(key)!r}") from None


def split_list(default: Any, value: Any) -> Any:
    """Comma-separated text for a parameter whose default is a tuple; anything else unchanged."""
    if isinstance(default, tuple | list) and isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


@dataclass(frozen=True)
class LoadedParameters:
    """A parameter dataclass an operator may set (``values``) and where it came from (``source``)."""

    values: Any
    source: str = "defaults"

    def provenance(self) -> dict[str, Any]:
        """Hash (16 hex digits of the SHA-256 of the sorted JSON of the values) and source."""
        from dataclasses import asdict

        canonical = json.dumps(asdict(self.values), sort_keys=True, separators=(",", ":"), default=list)
        return {"hash": hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16], "source": self.source}


def load_parameters(kind: type, name: str, environ: Mapping[str, str] | None = None) -> LoadedParameters:
    """The parameter dataclass ``kind`` as the operator set it (``CPCS_<NAME>_PARAMS`` file,
    ``CPCS_<NAME>_<PARAMETER>`` variables; see :func:`parameter_values`)."""
    from dataclasses import fields

    values, source = parameter_values(name, [f.name for f in fields(kind)], environ)
    values.pop("version", None)
    return LoadedParameters(typed_parameters(kind, values, what=name), source)
