"""The ``cpcs`` command: run services, the whole local system, the reference store, the demo, uploads."""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import typer

from services import launcher, runfile
from shared.refcat.cli import app as refcat_app

app = typer.Typer(help="Open photometric calibration server (CPCS-compatible).", no_args_is_help=True,
                  pretty_exceptions_enable=False)
app.add_typer(refcat_app, name="refcat", help="The reference catalogue store: import, list, delete.")

RUN_DIR = Path(".run")
DEFAULT_URL = "http://127.0.0.1:8080"


def server_url() -> str:
    """Where the commands send requests: ``CPCS_URL``, else the running stack's (or the environment's)
    ``CPCS_PUBLIC_URL``, else the default port."""
    return os.environ.get("CPCS_URL") or os.environ.get("CPCS_PUBLIC_URL") or DEFAULT_URL


@app.command()
def run(service: str = typer.Argument(..., help=f"one of: {', '.join(launcher.SERVICES)}")) -> None:
    """Run one service in the foreground (settings from CPCS_* environment variables)."""
    if service not in launcher.SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; choose from {', '.join(launcher.SERVICES)}")
    importlib.import_module(f"services.{service}.main").main()


@app.command()
def up(mongo_port: int = 27017, ingest_port: int = 8080, lightcurve_port: int = 8081,
       adopt_database: bool = typer.Option(False, help="use a database server this run did not start"),
       metrics_port: int = typer.Option(9181, help="first of the three metrics ports of the services "
                                                    "without HTTP (calibration, astrometry, photometry); "
                                                    "replicas take the ports after them"),
       replicas: str = typer.Option("", envvar="CPCS_REPLICAS",
                                    help="more processes of a consumer, e.g. calibration=2 (competing for "
                                         "its queue); for astrometry, photometry and calibration"),
       run_dir: Path = typer.Option(RUN_DIR, envvar="CPCS_RUN_DIR")) -> None:
    """Start RabbitMQ (if needed), the embedded database and all five services; load the demo. Every URL
    follows the ports given; the effective settings go to RUN_DIR/settings.env for the other commands."""
    from services.launcher import parse_replicas
    from services.local import start_local

    start_local(run_dir=run_dir, mongo_port=mongo_port, ingest_port=ingest_port, lightcurve_port=lightcurve_port,
                adopt_database=adopt_database, metrics_base=metrics_port, replicas=parse_replicas(replicas))


@app.command()
def down(run_dir: Path = typer.Option(RUN_DIR, envvar="CPCS_RUN_DIR")) -> None:
    """Stop what ``cpcs up`` started (RabbitMQ is left running)."""
    from services.local import stop_local

    stop_local(run_dir=run_dir)


@app.command("demo")
def demo(out_dir: Path = RUN_DIR / "demo") -> None:
    """Load the demo event, observatory, tokens and synthetic reference field into the database."""
    import asyncio

    from services.demo import load_demo

    info = asyncio.run(load_demo(out_dir=out_dir))
    for key, value in info.items():
        typer.echo(f"{key}: {value}")


dead_letters_app = typer.Typer(help="The dead-letter queue: what is in it, and sending it again.",
                               no_args_is_help=True)
app.add_typer(dead_letters_app, name="dead-letters")


def _bus():
    from shared.messaging import Broker
    from shared.settings import BusSettings, load

    return Broker.from_settings(load(BusSettings))


@dead_letters_app.command("list")
def dead_letters_list(limit: int = typer.Option(100, help="at most this many, oldest first")) -> None:
    """The dead letters (routing key, reason, the queue it failed in, when), left in the queue."""
    import asyncio

    from shared.messaging import list_dead_letters

    async def listed():
        broker = _bus()
        await broker.start()
        try:
            return broker.dead_letter_queue, await list_dead_letters(broker, limit)
        finally:
            await broker.close()

    queue, letters = asyncio.run(listed())
    for i, letter in enumerate(letters, 1):
        when = letter.dead_lettered_at.isoformat(timespec="seconds") if letter.dead_lettered_at else "?"
        typer.echo(f"{i}\t{letter.routing_key}\t{letter.queue}\t{when}\t{letter.reason}")
    more = f" (the first {limit})" if len(letters) == limit else ""
    typer.echo(f"{len(letters)} dead letter(s) in {queue}{more}")


@dead_letters_app.command("replay")
def dead_letters_replay(count: int = typer.Argument(None, help="how many, oldest first"),
                        all_: bool = typer.Option(False, "--all", help="every dead letter there is now")) -> None:
    """Publish dead letters again to their original routing key (the oldest COUNT, or --all)."""
    import asyncio

    from shared.messaging import replay_dead_letters

    if (count is None) == (not all_):
        raise typer.BadParameter("give how many to replay (a number) or --all, not both")
    if count is not None and count < 1:
        raise typer.BadParameter("the number to replay is at least 1")

    async def replayed():
        broker = _bus()
        await broker.start()
        try:
            return await replay_dead_letters(broker, None if all_ else count)
        finally:
            await broker.close()

    letters = asyncio.run(replayed())
    for letter in letters:
        typer.echo(f"replayed {letter.routing_key} (failed in {letter.queue}: {letter.reason})")
    typer.echo(f"{len(letters)} dead letter(s) published again")


@app.command("republish-events")
def republish_events() -> None:
    """Publish event.created.v1 again for every stored event (a new or emptied lightcurve database
    fills its copy of the events from these; applying them twice changes nothing)."""
    import asyncio

    from services.ingest.event_messages import republish_all

    typer.echo(f"published event.created.v1 for {asyncio.run(republish_all())} events")


@app.command()
def upload(catalogue: Path, event: str = typer.Option(..., "--event", help="IVORN, e.g. ivo://Gaia16aye"),
           token: str = typer.Option(..., "--token", envvar="CPCS_TOKEN"),
           mjd: float = typer.Option(None, help="MJD of mid-exposure (default: from the file's header)"),
           exptime: float = typer.Option(None, help="exposure [s] (default: from the file's header)"),
           match_dist: float = typer.Option(None, help="matching radius [arcsec] (default: automatic)"),
           force_filter: str = "no", filter_name: str = typer.Option(None, "--filter", help="the observation's filter"),
           comment: str = "",
           store: bool = typer.Option(False, "--store/--dry-run", help="store the point (default: a dry run)"),
           json_out: bool = typer.Option(False, "--json", help="print the server's JSON answer"),
           url: str = typer.Option(None, help="the server (default: the running stack's)")) -> None:
    """Upload a catalogue or FITS image like the manual's curl line and say what came of it."""
    from services.client import post_upload, summary

    if not catalogue.is_file():
        raise FileNotFoundError(f"there is no file {catalogue}")
    status, text = post_upload(url or server_url(), catalogue, event=event, token=token, mjd=mjd, exptime_s=exptime,
                               match_dist_arcsec=match_dist, force_filter=force_filter, dry_run=not store,
                               declared_filter=filter_name, comment=comment)
    typer.echo(text if json_out else f"{catalogue.name}: {summary(status, text)}")
    raise typer.Exit(0 if status < 400 else 1)


@app.command()
def watch(folder: Path, event: str = typer.Option(..., "--event", help="IVORN of the event the files observe"),
          token: str = typer.Option(..., "--token", envvar="CPCS_TOKEN"),
          store: bool = typer.Option(False, "--store/--dry-run", help="store the points (default: dry runs)"),
          match_dist: float = typer.Option(None, help="matching radius [arcsec] (default: automatic)"),
          force_filter: str = "no", mjd: float = typer.Option(None, help="MJD for files without one in the header"),
          interval: float = typer.Option(5.0, help="seconds between looks at the folder"),
          once: bool = typer.Option(False, "--once", help="send what is there now, then stop"),
          url: str = typer.Option(None, help="the server (default: the running stack's)")) -> None:
    """Upload each new catalogue or image that appears in FOLDER, once (a journal in the folder remembers
    what was sent across restarts), retrying while the server is unreachable."""
    from services.watch import Options
    from services.watch import watch as watch_folder

    options = Options(url=url or server_url(), token=token, event=event, store=store, match_dist_arcsec=match_dist,
                      force_filter=force_filter, mjd=mjd)
    tally = watch_folder(folder, options, once=once, interval_s=interval, echo=typer.echo)
    raise typer.Exit(0 if tally.failed == 0 else 1)


@app.command()
def recalibrate(point: list[int] = typer.Option([], "--point", help="follow-up id (repeatable)"),
                event: str = typer.Option(None, help="every point of this event (IVORN)"),
                observatory: int = typer.Option(None, help="every point of this observatory id"),
                mjd_min: float = typer.Option(None), mjd_max: float = typer.Option(None),
                param: list[str] = typer.Option([], "--param", help="calibration parameter NAME=VALUE (repeatable)"),
                apply: bool = typer.Option(False, "--apply", help="store the new calibrations (default: dry run)"),
                reason: str = typer.Option("", help="why, kept with the history"),
                token: str = typer.Option(..., "--token", envvar="CPCS_ADMIN_TOKEN"),
                url: str = typer.Option(None, help="the server (default: the running stack's)"),
                wait_s: float = typer.Option(120.0, help="how long to wait for the outcomes")) -> None:
    """Recalibrate stored points from their original uploads: a dry run first, --apply to store."""
    import time

    from services.client import admin_call

    overrides = dict(item.split("=", 1) for item in param if "=" in item)
    body = {"followup_ids": point, "event": event, "observatory_id": observatory, "mjd_min": mjd_min,
            "mjd_max": mjd_max, "params": overrides, "dry_run": not apply, "reason": reason}
    url = url or server_url()
    status, report = admin_call(url, token, "POST", "/api/v1/admin/recalibrations", body)
    if status >= 400:
        typer.echo(report.get("error", report), err=True)
        raise typer.Exit(2)
    path = f"/api/v1/admin/recalibrations/{report['recalibration_id']}"
    deadline = time.monotonic() + wait_s
    while report["finished"] < report["selected"] and time.monotonic() < deadline:
        time.sleep(0.5)
        _, report = admin_call(url, token, "GET", path)
    kind = "dry run" if report["dry_run"] else "applied"
    typer.echo(f"recalibration {report['recalibration_id']} ({kind}): {report['finished']}/{report['selected']} "
               f"finished, {report['outcomes']}")
    for row in report["points"]:
        delta = "" if row["delta_mag"] is None else f"{row['delta_mag']:+.4f}"
        typer.echo(f"  point {row['followup_id']:>6}  {row['outcome']:<9} {row['filter_before']} -> "
                   f"{row['filter_after']}  {row['mag_before']} -> {row['mag_after']}  {delta}  {row['reason'] or ''}")


@app.command()
def simulate(out: Path = typer.Option(Path("sim"), help="output prefix: OUT.fits, OUT.truth.json, OUT.reference.csv"),
             ra: float = 150.1, dec: float = 2.2, size_px: int = 2048, pixel_scale_arcsec: float = 0.4,
             seeing_arcsec: float = 1.2, transient_mag: float = typer.Option(None, help="omit for no transient"),
             wcs_offset_deg: float = 0.0, seed: int = 0) -> None:
    """Simulate a reduced frame of a synthetic field (and its reference catalogue and truth)."""
    import json
    import math

    from shared.simimage import make_reference_field, simulate_image

    radius = 1.2 * math.hypot(size_px, size_px) / 2 * pixel_scale_arcsec / 3600
    density_per_deg2 = 1500 / (2048 * 0.4 / 3600) ** 2
    reference = make_reference_field(ra_deg=ra, dec_deg=dec, radius_deg=radius, seed=seed,
                                     n_stars=int(density_per_deg2 * math.pi * radius**2))
    data, truth = simulate_image(reference=reference, size_px=size_px, pixel_scale_arcsec=pixel_scale_arcsec,
                                 seeing_arcsec=seeing_arcsec, centre_ra_deg=ra, centre_dec_deg=dec,
                                 wcs_offset_deg=wcs_offset_deg, transient_mag=transient_mag, filter_name="r",
                                 seed=seed)
    out.with_suffix(".fits").write_bytes(data)
    out.with_suffix(".truth.json").write_text(json.dumps(truth, indent=1))
    with out.with_suffix(".reference.csv").open("w") as handle:
        bands = sorted(reference.mags)
        handle.write(",".join(["RAJ2000", "DEJ2000", *[f"{b}mag,e_{b}mag" for b in bands]]) + "\n")
        for i in range(len(reference)):
            cells = [f"{reference.ra_deg[i]:.7f}", f"{reference.dec_deg[i]:.7f}"]
            for b in bands:
                cells += [f"{reference.mags[b][i]:.4f}", f"{reference.mag_errs[b][i]:.4f}"]
            handle.write(",".join(cells) + "\n")
    typer.echo(f"wrote {out.with_suffix('.fits')} ({size_px} x {size_px}), {out.with_suffix('.truth.json')}, "
               f"{out.with_suffix('.reference.csv')} ({len(reference)} synthetic stars; import with "
               f"cpcs refcat import {out.with_suffix('.reference.csv')} --survey Sim --columns "
               f"ra=RAJ2000,dec=DEJ2000,r=rmag,r_err=e_rmag --version synthetic-1); event at "
               f"RA {truth['event_ra_deg']:.6f}, Dec {truth['event_dec_deg']:.6f}")


def main(argv: list[str] | None = None) -> None:
    """Run a command; outside ``cpcs up`` the running stack's settings (``.run/settings.env``) apply, and
    an error ends in one line (``CPCS_DEBUG=1`` shows the traceback)."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "up":
        runfile.apply(runfile.run_dir())
    try:
        app(args=args, prog_name="cpcs")
    except SystemExit:
        raise
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as exc:
        if os.environ.get("CPCS_DEBUG"):
            raise
        print(f"cpcs: {one_line(exc)}", file=sys.stderr)
        raise SystemExit(1) from None


def one_line(exc: BaseException) -> str:
    """An error as one sentence: its message (the first line), or its kind when it has none."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


if __name__ == "__main__":
    main()
