"""The command line's own pieces: the run file of ``cpcs up``, the upload fields and summary, one-line errors."""
from __future__ import annotations

import json
import os

import pytest

from services import runfile
from services.cli import main
from services.client import summary, upload_fields
from tests.support.servers import free_port


def test_run_file_round_trip_and_applies_only_while_its_stack_runs(tmp_path):
    runfile.write(tmp_path, {"CPCS_PUBLIC_URL": "http://127.0.0.1:18080", "CPCS_MONGO_URL": "mongodb://x:1"})
    assert oct((tmp_path / "settings.env").stat().st_mode & 0o777) == "0o600"
    assert runfile.read(tmp_path) == {"CPCS_PUBLIC_URL": "http://127.0.0.1:18080", "CPCS_MONGO_URL": "mongodb://x:1"}
    environ = {"CPCS_MONGO_URL": "mongodb://mine:2"}
    assert runfile.apply(tmp_path, environ) == {}  # no stack is running there
    (tmp_path / "pids").mkdir()
    (tmp_path / "pids" / "ingest.pid").write_text(str(os.getpid()))  # a live process stands for ingest
    assert runfile.apply(tmp_path, environ) == {"CPCS_PUBLIC_URL": "http://127.0.0.1:18080"}
    assert environ["CPCS_MONGO_URL"] == "mongodb://mine:2"  # a variable that is set wins over the file


def test_upload_fields_leave_out_what_the_server_reads_from_the_header_or_chooses():
    fields = upload_fields(event="ivo://X", token="t", mjd=None, exptime_s=None, match_dist_arcsec=None,
                           force_filter="no", dry_run=True)
    assert "MJD" not in fields and "expTime" not in fields and "matchDist" not in fields
    assert fields["dryRun"] == "1"
    given = upload_fields(event="ivo://X", token="t", mjd=60000.5, exptime_s=30, match_dist_arcsec=2,
                          force_filter="no", dry_run=False, declared_filter="r")
    assert (given["MJD"], given["expTime"], given["matchDist"], given["dryRun"], given["filter"]) == \
        ("60000.5", "30.0", "2.0", "0", "r")


def test_summary_says_plainly_whether_the_point_was_stored():
    answer = {"survey": "APASS", "filter": "r", "mag": 17.1901, "total_err": 0.0213, "zeropoint": -23.1,
              "npoints": 412, "is_limit": False, "dry_run": True, "followup_id": None,
              "match_radius_arcsec": 1.31, "match_radius_method": "auto"}
    line = summary(200, json.dumps(answer))
    assert line.startswith("APASS/r mag 17.190 +/- 0.021") and "NOT stored" in line and '1.31"' in line
    stored = summary(200, json.dumps(answer | {"dry_run": False, "followup_id": 17}))
    assert stored.endswith("stored as point 17")
    assert summary(401, "unknown or missing hashtag\n") == "refused (401): unknown or missing hashtag"


def test_errors_end_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CPCS_RUN_DIR", str(tmp_path / "run"))  # no running stack's settings
    with pytest.raises(SystemExit) as missing:
        main(["upload", str(tmp_path / "nothing.cat"), "--event", "ivo://X", "--token", "t"])
    assert missing.value.code == 1
    assert capsys.readouterr().err == f"cpcs: there is no file {tmp_path / 'nothing.cat'}\n"
    catalogue = tmp_path / "a.cat"
    catalogue.write_text("# 1 NUMBER\n1\n")
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SystemExit) as down:
        main(["upload", str(catalogue), "--event", "ivo://X", "--token", "t", "--url", closed])
    assert down.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"cpcs: the server at {closed} is not answering") and err.count("\n") == 1


def test_a_file_is_taken_only_once_it_has_stopped_changing(tmp_path):
    import time

    from services.watch import candidates

    path = tmp_path / "frame.cat"
    path.write_text("# 1 NUMBER\n")
    seen: dict = {}
    assert candidates(tmp_path, seen, time.time(), settle_s=60) == []  # just written: wait
    with path.open("a") as handle:
        handle.write("1\n")  # still growing
    assert candidates(tmp_path, seen, time.time(), settle_s=60) == []
    assert candidates(tmp_path, seen, time.time(), settle_s=60) == [path]  # unchanged since the last look
    (tmp_path / "readme.md").write_text("no")
    assert candidates(tmp_path, seen, time.time() + 120, settle_s=60) == [path]  # old enough; patterns only
