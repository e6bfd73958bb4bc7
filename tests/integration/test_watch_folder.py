"""``cpcs watch``: a folder's new files are uploaded once, across restarts of the watcher, and a file that
could not be sent (server unreachable) stays pending and goes out on a later run."""
from __future__ import annotations

import asyncio
import json

import pytest

from services.demo import DEMO_MJD
from services.watch import JOURNAL, Options, watch
from tests.support.catalogues import variant
from tests.support.flows import demo_system
from tests.support.servers import free_port

pytestmark = pytest.mark.integration


async def points_of(running) -> list[dict]:
    async with running.http.get(f"{running.url}/api/v1/events/{running.demo['event']}/lightcurve",
                                params={"hashtag": running.demo["token"]}) as response:
        return (await response.json())["points"]


async def test_each_file_is_uploaded_once_across_restarts(mongo_url, amqp_url, unique_name, tmp_path):
    folder = tmp_path / "incoming"
    folder.mkdir()
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        for n in range(3):
            (folder / f"frame{n}.cat").write_bytes(variant(running.catalogue, n))
        (folder / "notes.md").write_text("not a catalogue")
        options = Options(url=running.url, token=running.demo["token"], event=running.demo["event"], store=True,
                          mjd=DEMO_MJD, settle_s=0.0)
        lines: list[str] = []
        first = await asyncio.to_thread(watch, folder, options, once=True, echo=lines.append)
        assert (first.sent, first.refused, first.failed) == (3, 0, 0), lines
        assert sum("stored as point" in line for line in lines) == 3
        await running.probe.wait_count("lightcurve.updated.v1", lambda m: True, 3)
        assert len(await points_of(running)) == 3

        again = await asyncio.to_thread(watch, folder, options, once=True, echo=lines.append)  # a restart
        assert (again.sent, again.refused, again.failed) == (0, 0, 0)
        (folder / "frame3.cat").write_bytes(variant(running.catalogue, 3))
        more = await asyncio.to_thread(watch, folder, options, once=True, echo=lines.append)
        assert more.sent == 1
        journal = [json.loads(line) for line in (folder / JOURNAL).read_text().splitlines()]
        assert sorted(e["name"] for e in journal) == ["frame0.cat", "frame1.cat", "frame2.cat", "frame3.cat"]


async def test_an_unreachable_server_leaves_the_file_pending(mongo_url, amqp_url, unique_name, tmp_path):
    folder = tmp_path / "incoming"
    folder.mkdir()
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        (folder / "frame.cat").write_bytes(running.catalogue)
        waits: list[float] = []
        down = Options(url=f"http://127.0.0.1:{free_port()}", token=running.demo["token"],
                       event=running.demo["event"], mjd=DEMO_MJD, settle_s=0.0, retries=3, backoff_s=1.0)
        tally = await asyncio.to_thread(watch, folder, down, once=True, echo=lambda line: None, sleep=waits.append)
        assert tally.failed == 1 and waits == [1.0, 2.0, 4.0]  # backoff, doubling
        assert not (folder / JOURNAL).exists() or not (folder / JOURNAL).read_text()
        up = Options(url=running.url, token=running.demo["token"], event=running.demo["event"], mjd=DEMO_MJD,
                     settle_s=0.0)
        later = await asyncio.to_thread(watch, folder, up, once=True, echo=lambda line: None)
        assert later.sent == 1


async def test_a_refused_token_stops_the_watcher(mongo_url, amqp_url, unique_name, tmp_path):
    from services.watch import WatchStopped

    folder = tmp_path / "incoming"
    folder.mkdir()
    async with demo_system(mongo_url, amqp_url, unique_name, tmp_path) as running:
        (folder / "frame.cat").write_bytes(running.catalogue)
        options = Options(url=running.url, token="Nobody_00000000000000000000000000000000",
                          event=running.demo["event"], mjd=DEMO_MJD, settle_s=0.0)
        with pytest.raises(WatchStopped, match="refuses the token"):
            await asyncio.to_thread(watch, folder, options, once=True, echo=lambda line: None)
