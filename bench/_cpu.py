"""CPU seconds used by the processes of a benchmark's system, by service (read from ``/proc``, Linux).

Wall-clock figures on a shared 2-core machine move with its other tenants; the CPU time each part of the
system spends per upload moves far less, and says where the time goes. The groups are the benchmark's
own child processes (each service with its process pools, the database server) and the RabbitMQ node.
"""
from __future__ import annotations

import os
from pathlib import Path

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float, int] | None:
    """(parent pid, user + system CPU seconds, nice) of a living process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
    return int(fields[1]), (int(fields[11]) + int(fields[12])) * TICK_S, int(fields[16])


def _name(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in argv if a]
    for word in words:
        if word.startswith("services.") and word.endswith(".main"):
            return word.split(".")[1]
    if any(Path(w).name in ("nx-27017", "nx_27017") for w in words):
        return "nx-27017"
    return Path(words[0]).name if words else "?"


def cpu_by_group(root_pid: int | None = None) -> dict[str, float]:
    """CPU seconds so far of every living descendant of ``root_pid`` (this process by default), summed by
    the service its top ancestor below the root runs (its process pools apart: "<service> pool", and
    "<service> low-priority pool" for a niced one), and of the RabbitMQ node (``beam.smp``)."""
    root_pid = os.getpid() if root_pid is None else root_pid
    stats: dict[int, tuple[int, float, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    totals: dict[str, float] = {}
    for pid, (_parent, cpu_s, nice) in stats.items():
        chain, cursor = [pid], pid
        while cursor in stats and stats[cursor][0] not in (0, 1, root_pid):
            cursor = stats[cursor][0]
            chain.append(cursor)
        top = chain[-1]
        if top in stats and stats[top][0] == root_pid:
            group = _name(top)
            if pid != top:
                group += " low-priority pool" if nice > stats[top][2] else " pool"
        elif _comm(pid) == "beam.smp":
            group = "rabbitmq"
        else:
            continue
        totals[group] = totals.get(group, 0.0) + cpu_s
    return totals


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def per_unit_ms(before: dict[str, float], after: dict[str, float], units: int) -> dict[str, float]:
    """Milliseconds of CPU per unit (an upload, say) of each group between two readings, largest first."""
    spent = {group: (after.get(group, 0.0) - before.get(group, 0.0)) * 1000.0 / max(units, 1) for group in after}
    return dict(sorted(((g, ms) for g, ms in spent.items() if ms > 0), key=lambda item: -item[1]))


def line(spent_ms: dict[str, float]) -> str:
    total = sum(spent_ms.values())
    parts = ", ".join(f"{group} {ms:.1f}" for group, ms in spent_ms.items())
    return f"{total:.1f} ms in all ({parts})"
