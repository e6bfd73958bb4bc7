"""The small chaos run: 100 distinct uploads from 4 clients while calibration is killed with SIGKILL and the
database stops for 20 s; every acknowledged upload reaches the light curve once (``tests/support/chaos.py``;
the big run is ``bench/chaos.py``)."""
import shutil

import pytest

from tests.support.chaos import Chaos, workdir

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(900)
async def test_nothing_is_lost_or_doubled_under_a_kill_and_a_database_stop(amqp_url):
    folder = workdir()
    chaos = Chaos(folder, amqp_url, uploads=100, clients=4, log=lambda line: None)
    try:
        await chaos.start()
        tally = await chaos.run([(3.0, lambda: chaos.kill("calibration")),
                                 (8.0, lambda: chaos.stop_database(20.0))], settle_s=300)
    finally:
        chaos.close()
        await chaos.delete_topology()
    print(tally.line(), f"({chaos.restarts} restarts by the supervisor)")
    for log in sorted((folder / "logs").glob("*.log")) if tally.on_curve != tally.sent else ():
        print(log.name, log.read_text(errors="replace")[-1500:])
    if tally.on_curve == tally.acknowledged == tally.sent:
        shutil.rmtree(folder, ignore_errors=True)  # kept (with the services' logs) when the run failed
    assert tally.refused == []
    assert (tally.sent, tally.acknowledged, tally.on_curve, tally.lost, tally.duplicated, tally.stuck) == (
        100, 100, 100, 0, 0, 0), tally.line()
