"""``cpcs watch FOLDER``: an observatory's unattended client. Each new catalogue or image that appears in
the folder is uploaded once, with retries while the server is unreachable or busy, and a line per file.

A file is taken when its size and modification time have not changed for ``settle_s`` (so a file still
being written is not sent half). What was sent is kept in a journal (``.cpcs-watch.jsonl`` in the folder,
one JSON line per file: its sha256, name, outcome), so a restarted watcher sends nothing twice. A refusal
(4xx: a bad file, a duplicate) is journaled and not retried; an unreachable server, a 5xx or a 202 still
calibrating are retried with exponential backoff. An unknown token stops the watcher: nothing would pass.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from services.client import ServerUnreachable, post_upload, summary

JOURNAL = ".cpcs-watch.jsonl"
#: What the server reads: SExtractor/ASCII catalogues, FITS_LDAC and FITS images (plain or compressed).
PATTERNS = ("*.cat", "*.txt", "*.ascii", "*.ldac", "*.fits", "*.fit", "*.fts", "*.fits.gz", "*.fits.fz", "*.fz")


class WatchStopped(RuntimeError):
    """The watcher cannot go on (the server refuses the token); the message says why, in one line."""


@dataclass
class Journal:
    """The files already handled, by sha256, kept as JSON lines beside them."""

    path: Path
    done: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def open(cls, folder: Path) -> Journal:
        journal = cls(folder / JOURNAL)
        if journal.path.exists():
            for line in journal.path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash: that file is sent again, once
                journal.done[entry["sha256"]] = entry
        return journal

    def record(self, entry: dict) -> None:
        self.done[entry["sha256"]] = entry
        with self.path.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()


@dataclass
class Options:
    url: str
    token: str
    event: str
    store: bool = False
    match_dist_arcsec: float | None = None
    force_filter: str = "no"
    mjd: float | None = None
    settle_s: float = 2.0
    retries: int = 8
    backoff_s: float = 2.0
    backoff_max_s: float = 120.0


@dataclass
class Tally:
    sent: int = 0
    refused: int = 0
    failed: int = 0

    def line(self) -> str:
        return f"{self.sent} sent, {self.refused} refused, {self.failed} not sent (will retry)"


def candidates(folder: Path, seen_stat: dict[Path, tuple[int, int]], now_s: float, settle_s: float) -> list[Path]:
    """Files matching ``PATTERNS`` whose size and mtime have been still for ``settle_s``."""
    found = sorted({p for pattern in PATTERNS for p in folder.glob(pattern) if p.is_file()})
    ready = []
    for path in found:
        stat = path.stat()
        key = (stat.st_size, stat.st_mtime_ns)
        if seen_stat.get(path) == key or now_s - stat.st_mtime >= settle_s:
            ready.append(path)
        seen_stat[path] = key
    return ready


def send_one(path: Path, options: Options, *, sleep: Callable[[float], None] = time.sleep,
             echo: Callable[[str], None] = print) -> tuple[str, int | None, str]:
    """Upload one file with retries: (outcome, HTTP status, summary line); outcome is ``sent``,
    ``refused`` or ``failed`` (retries used up)."""
    delay = options.backoff_s
    last = ""
    for attempt in range(options.retries + 1):
        try:
            status, text = post_upload(options.url, path, event=options.event, token=options.token, mjd=options.mjd,
                                       match_dist_arcsec=options.match_dist_arcsec, force_filter=options.force_filter,
                                       dry_run=not options.store)
        except ServerUnreachable as exc:
            status, text, last = None, "", str(exc)
        else:
            last = summary(status, text)
            if status == 401:
                raise WatchStopped(f"the server refuses the token: {last}")
            if status < 300 and status != 202:
                return "sent", status, last
            if 400 <= status < 500:
                return "refused", status, last
        if attempt < options.retries:
            echo(f"{path.name}: {last}; trying again in {delay:.0f} s")
            sleep(delay)
            delay = min(delay * 2, options.backoff_max_s)
    return "failed", status, last


def scan_once(folder: Path, journal: Journal, options: Options, tally: Tally, seen_stat: dict,
              *, echo: Callable[[str], None] = print, sleep: Callable[[float], None] = time.sleep) -> int:
    """Handle every settled file not in the journal; how many were handled."""
    handled = 0
    for path in candidates(folder, seen_stat, time.time(), options.settle_s):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in journal.done:
            continue
        outcome, status, line = send_one(path, options, sleep=sleep, echo=echo)
        if outcome == "failed":
            tally.failed += 1
            echo(f"{path.name}: not sent ({line}); it stays pending")
            continue
        setattr(tally, outcome, getattr(tally, outcome) + 1)
        journal.record({"sha256": digest, "name": path.name, "outcome": outcome, "status": status, "summary": line,
                        "at_unix": time.time()})
        echo(f"{path.name}: {line}")
        handled += 1
    return handled


def watch(folder: Path, options: Options, *, once: bool = False, interval_s: float = 5.0,
          echo: Callable[[str], None] = print, sleep: Callable[[float], None] = time.sleep) -> Tally:
    """Upload what appears in ``folder`` until interrupted (``once``: the files there now, then stop)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"there is no folder {folder}")
    journal, tally, seen_stat = Journal.open(folder), Tally(), {}
    echo(f"watching {folder} for {', '.join(PATTERNS)}: uploads to {options.url} for {options.event} "
         f"({'stored' if options.store else 'dry runs'}); {len(journal.done)} files already in the journal")
    while True:
        scan_once(folder, journal, options, tally, seen_stat, echo=echo, sleep=sleep)
        if once:
            echo(f"done: {tally.line()}")
            return tally
        sleep(interval_s)
