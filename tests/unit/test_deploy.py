"""The compose files say what docs/DEPLOY.md promises: a replica set, quorum queues on a cluster, health
checks and limits on every service; ``docker compose config`` accepts them where the command exists."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SERVICES = ("ingest", "lightcurve", "calibration", "astrometry", "photometry")


def compose(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def test_production_profile_has_a_replica_set_and_quorum_queues_on_a_cluster():
    prod = compose("docker-compose.prod.yml")
    services = prod["services"]
    for member in ("mongo1", "mongo2", "mongo3"):
        assert services[member]["command"][:3] == ["mongod", "--replSet", "rs0"]
    init = (DEPLOY / "mongo" / "init-replica-set.js").read_text()
    assert all(f"mongo{i}:27017" in init for i in (1, 2, 3))
    conf = (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text()
    assert all(f"rabbit@rabbit{i}" in conf for i in (1, 2, 3))
    assert all(f"server rabbit{i} rabbit{i}:5672" in (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
               for i in (1, 2, 3))
    for name in SERVICES:
        env = services[name]["environment"]
        assert env["CPCS_QUEUE_TYPE"] == "quorum", name
        assert env["CPCS_MONGO_URL"].endswith("?replicaSet=rs0") and env["CPCS_MONGO_URL"].count(":27017") == 3
        assert "/readyz" in " ".join(services[name]["healthcheck"]["test"]), name
        assert services[name]["deploy"]["resources"]["limits"]["memory"], name
    assert services["calibration"]["deploy"]["replicas"] >= 2
    for name in ("calibration", "astrometry", "photometry"):
        assert services[name]["environment"]["CPCS_METRICS_PORT"] == "9100"
    scraped = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert {job["job_name"] for job in scraped["scrape_configs"]} == set(SERVICES)


def test_every_setting_the_compose_files_give_is_one_the_services_read():
    from services.launcher import SETTINGS_MODELS, settings_model

    known = {f"CPCS_{field.upper()}" for name in SETTINGS_MODELS for field in settings_model(name).model_fields}
    for name in ("docker-compose.yml", "docker-compose.prod.yml"):
        for service, spec in compose(name)["services"].items():
            if service in SERVICES:
                assert set(spec["environment"]) <= known, (name, service, set(spec["environment"]) - known)


def compose_command() -> list[str] | None:
    """``docker compose`` (the plugin) or ``docker-compose`` (the standalone, Debian's package), whichever runs."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True,
                                                 check=False).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


@pytest.mark.skipif(compose_command() is None, reason="neither docker compose nor docker-compose is installed "
                                                      "(.ci/run installs Debian's docker-compose)")
@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.prod.yml"])
def test_docker_compose_accepts_the_files(name):
    env = {"CPCS_RABBIT_PASSWORD": "x", "CPCS_RABBIT_COOKIE": "y", "CPCS_SESSION_SECRET": "z",
           "CPCS_INTAKE_PASSWORD": "w", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([*compose_command(), "-f", str(DEPLOY / name), "config", "-q"], env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
