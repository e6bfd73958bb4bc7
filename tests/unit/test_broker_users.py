"""The broker's users as data: the intake user may publish only the intake routing keys and use only its own
server-named reply queues; the broker's guest is never redefined; the compose files load the same
definitions; ``cpcs up`` keeps one intake address per run directory and says so when it cannot make users."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from pathlib import Path

import pytest
import yaml

from services import local
from shared import broker_users
from shared.contracts import REGISTRY

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def defs(services: str = "cpcs", exchange: str = "cpcs") -> broker_users.BrokerDefinitions:
    return broker_users.definitions(exchange=exchange, vhost="/", services=broker_users.BrokerUser(services, "s"),
                                    intake=broker_users.BrokerUser("cpcs-intake", "i"))


def test_the_intake_user_may_write_only_the_intake_routing_keys_on_the_exchange():
    [topic] = defs().topic_permissions
    assert (topic.user, topic.exchange, topic.read) == ("cpcs-intake", "cpcs", "^$")
    assert all(re.search(topic.write, key) for key in ("upload.submitted.v1", "voevent.received.v1"))
    for key in [*REGISTRY, "upload.submitted.v1x", "xupload.submitted.v1", "upload.submitted.v2", "#"]:
        assert not re.search(topic.write, key), key  # every contract message is the services' alone
    intake = next(p for p in defs().permissions if p.user == "cpcs-intake")
    assert re.search(intake.write, "cpcs") and not re.search(intake.write, "cpcs.dlx")
    assert not re.search(intake.write, "amq.default") and not re.search(intake.write, "")
    for queue in ("cpcs.ingest.intake", "cpcs.lightcurve", "cpcs.dead-letter"):
        assert not re.search(intake.configure, queue) and not re.search(intake.read, queue)
    assert re.search(intake.read, "amq.gen-LFzXoyTkcLicH1TWC4VhNw")  # its reply queue


def test_the_services_user_has_everything_and_guest_is_left_as_the_broker_has_it():
    services = next(p for p in defs().permissions if p.user == "cpcs")
    assert (services.configure, services.write, services.read) == (".*", ".*", ".*")
    guest = defs(services="guest")
    assert [u.name for u in guest.users] == ["cpcs-intake"] and {p.user for p in guest.permissions} == {"cpcs-intake"}


def test_the_definitions_file_holds_rabbitmqs_sha256_password_hashes_and_no_password():
    written = broker_users.definitions_json(defs())
    assert "\"s\"" not in json.dumps(written) and "\"i\"" not in json.dumps(written)
    user = next(u for u in written["users"] if u["name"] == "cpcs-intake")
    raw = base64.b64decode(user["password_hash"])
    assert raw[4:] == hashlib.sha256(raw[:4] + b"i").digest()
    assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    assert written["topic_permissions"][0]["write"] == "^(upload\\.submitted\\.v1|voevent\\.received\\.v1)$"


def test_urls_give_the_users_and_refuse_a_shared_user_or_another_vhost():
    made = broker_users.from_urls(services_url="amqp://svc:p%40ss@rabbit:5672/prod",
                                  intake_url="amqp://obs:secret@broker.example.org:5672/prod", exchange="x")
    assert (made.vhost, made.user("svc").password, made.user("obs").password) == ("prod", "p@ss", "secret")
    with pytest.raises(ValueError, match="user of its own"):
        broker_users.from_urls(services_url="amqp://a:b@h/", intake_url="amqp://a:c@h/", exchange="x")
    with pytest.raises(ValueError, match="must be the same"):
        broker_users.from_urls(services_url="amqp://a:b@h/one", intake_url="amqp://c:d@h/two", exchange="x")
    url = broker_users.intake_url("amqp://guest:guest@127.0.0.1:5672/")
    parsed = broker_users.Credentials.from_url(url)
    assert (parsed.user, parsed.host, parsed.vhost) == ("cpcs-intake", "127.0.0.1", "/")
    assert len(parsed.password) >= 20


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.prod.yml"])
def test_the_compose_brokers_load_the_definitions_the_one_shot_writes(name):
    services = yaml.safe_load((DEPLOY / name).read_text())["services"]
    oneshot = services["broker-definitions"]
    assert oneshot["command"][:4] == ["python", "-m", "shared.broker_users", "write"]
    written_to = Path(oneshot["command"][4])
    volume = next(v.split(":")[0] for v in oneshot["volumes"] if v.endswith(str(written_to.parent)))
    conf = (DEPLOY / "rabbitmq" / "definitions.conf").read_text()
    loaded = Path(re.search(r"^load_definitions = (\S+)$", conf, re.M).group(1))
    brokers = [s for n, s in services.items() if n.startswith("rabbit")]
    assert brokers
    for broker in brokers:
        assert broker["depends_on"]["broker-definitions"]["condition"] == "service_completed_successfully"
        assert f"{volume}:{loaded.parent}:ro" in broker["volumes"] and loaded.name == written_to.name
        assert any(v.startswith("./rabbitmq/definitions.conf:/etc/rabbitmq/conf.d/") for v in broker["volumes"])
    env = {k: re.sub(r"\$\{([A-Z_]+)[:?-][^}]*\}", "x", v) for k, v in oneshot["environment"].items()}
    made = broker_users.from_environment(env)
    assert [u.name for u in made.users] == ["cpcs", "cpcs-intake"]
    assert "CPCS_INTAKE_AMQP_URL" in services["ingest"]["environment"]


def test_cpcs_up_keeps_one_intake_address_per_run_directory(tmp_path):
    first = local.intake_address(tmp_path, "amqp://guest:guest@127.0.0.1:5672/", {})
    again = local.intake_address(tmp_path, "amqp://guest:guest@127.0.0.1:5672/", {})
    assert first == again and first.startswith("amqp://cpcs-intake:")
    assert (tmp_path / local.INTAKE_FILE).stat().st_mode & 0o077 == 0  # the password: the owner's only
    chosen = local.intake_address(tmp_path, "amqp://guest:guest@127.0.0.1:5672/",
                                  {"CPCS_INTAKE_AMQP_URL": "amqp://obs:pw@127.0.0.1:5672/"})
    assert chosen == "amqp://obs:pw@127.0.0.1:5672/" and chosen in (tmp_path / local.INTAKE_FILE).read_text()


def test_cpcs_up_says_in_one_line_when_it_cannot_make_the_users(tmp_path, monkeypatch):
    url, line = local.ensure_broker_users(tmp_path, "amqp://cpcs:pw@rabbit.example.org:5672/", "cpcs", {})
    assert line.startswith("not created here: the broker at rabbit.example.org is not on this machine")
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without rabbitmqctl
    url, line = local.ensure_broker_users(tmp_path, "amqp://guest:guest@127.0.0.1:5672/", "cpcs", {})
    assert line.startswith("not created: rabbitmqctl is not installed here") and "\n" not in line
    assert url.startswith("amqp://cpcs-intake:")
    with pytest.raises(broker_users.BrokerUsersError, match="rabbitmqctl is not installed"):
        broker_users.apply(defs())
    assert os.environ["PATH"] == str(tmp_path)
