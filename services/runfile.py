"""The effective settings of the stack ``cpcs up`` started, kept in ``<run dir>/settings.env``.

``cpcs up`` writes the ``CPCS_*`` values its services run with (ports, URLs, database, exchange); every
other ``cpcs`` command reads them back while that stack is running (its ingest process is alive), so
``cpcs refcat ...``, ``cpcs upload`` and ``cpcs recalibrate`` talk to the stack that is running and not
to a default port. A variable set in the environment wins over the file. The run directory is
``.run`` or ``CPCS_RUN_DIR``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

FILE = "settings.env"


def run_dir(environ: Mapping[str, str] | None = None) -> Path:
    return Path((environ if environ is not None else os.environ).get("CPCS_RUN_DIR", ".run"))


def write(directory: Path, values: Mapping[str, str]) -> Path:
    """Write ``values`` (``CPCS_*`` names) as ``NAME=value`` lines, readable by the owner only."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILE
    text = "".join(f"{name}={value}\n" for name, value in sorted(values.items()))
    path.touch(mode=0o600)
    path.write_text("# written by cpcs up: the settings of the running stack\n" + text)
    return path


def read(directory: Path) -> dict[str, str]:
    path = directory / FILE
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name.startswith("CPCS_") and not line.startswith("#"):
            values[name.strip()] = value
    return values


def running(directory: Path) -> bool:
    """Whether the stack recorded in ``directory`` is up (its ingest process is alive)."""
    pid_file = directory / "pids" / "ingest.pid"
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def apply(directory: Path, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Put the running stack's settings into the environment (set variables win); what was applied."""
    target = os.environ if environ is None else environ
    if not running(directory):
        return {}
    applied = {name: value for name, value in read(directory).items() if name not in target}
    target.update(applied)
    return applied
