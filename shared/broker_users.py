"""Who may do what on the broker: the services' user and the external publishers' (intake) user.

The services connect with ``CPCS_AMQP_URL`` and may do everything on their virtual host. Observatories
and alert-feed bridges connect with ``CPCS_INTAKE_AMQP_URL``: that user may publish only the intake
messages (``upload.submitted.v1``, ``voevent.received.v1``) on the topic exchange, enforced by a RabbitMQ
topic permission on the routing key, and may declare, read and delete only server-named queues
(``amq.gen-...``, the exclusive reply queue of an AMQP upload). It cannot publish on the dead-letter or
the default exchange, declare, bind or read the services' queues, or change the exchange.

The definitions are data (:func:`definitions`); :func:`apply` puts them on a broker with ``rabbitmqctl``
(idempotent, no plugin needed), :func:`definitions_json` is the same in RabbitMQ's definitions file, which a
RabbitMQ container loads at boot (``load_definitions``, see ``deploy/``). ``python -m shared.broker_users
write PATH`` writes that file from the environment, ``python -m shared.broker_users apply`` applies it.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

#: The routing keys an external publisher may publish (the intake adapters of ingest).
INTAKE_ROUTING_KEYS = ("upload.submitted.v1", "voevent.received.v1")
#: Server-named queues (``amq.gen-...``): an intake publisher's own reply queue.
SERVER_NAMED_QUEUES = r"^amq\.gen-.*"
DEFAULT_INTAKE_USER = "cpcs-intake"
#: The broker's built-in user: never redefined here (its password, tags and permissions stay as they are).
BUILTIN_USERS = frozenset({"guest"})


@dataclass(frozen=True)
class BrokerUser:
    name: str
    password: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class VhostPermission:
    """``rabbitmqctl set_permissions``: regexps over the names of exchanges and queues."""

    user: str
    vhost: str
    configure: str
    write: str
    read: str


@dataclass(frozen=True)
class TopicPermission:
    """``rabbitmqctl set_topic_permissions``: regexps over the routing keys of one topic exchange."""

    user: str
    vhost: str
    exchange: str
    write: str
    read: str


@dataclass(frozen=True)
class BrokerDefinitions:
    vhost: str
    users: tuple[BrokerUser, ...]
    permissions: tuple[VhostPermission, ...]
    topic_permissions: tuple[TopicPermission, ...]

    def user(self, name: str) -> BrokerUser:
        return next(u for u in self.users if u.name == name)


@dataclass(frozen=True)
class Credentials:
    """The user, password, host, port and vhost of an ``amqp://`` URL."""

    user: str
    password: str
    host: str
    port: int
    vhost: str

    @classmethod
    def from_url(cls, url: str) -> Credentials:
        parts = urlsplit(url)
        if parts.scheme not in ("amqp", "amqps") or not parts.username:
            raise ValueError("an AMQP URL with a user is needed, e.g. amqp://user:password@host:5672/")
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        return cls(unquote(parts.username), unquote(parts.password or ""), parts.hostname or "127.0.0.1",
                   parts.port or 5672, unquote(path) if path else "/")

    def url(self) -> str:
        vhost = "" if self.vhost == "/" else quote(self.vhost, safe="")
        return (f"amqp://{quote(self.user, safe='')}:{quote(self.password, safe='')}@{self.host}:{self.port}/"
                f"{vhost}")


def one_of(names: tuple[str, ...] | list[str]) -> str:
    """An anchored regexp matching exactly these names."""
    return "^(" + "|".join(re.escape(n) for n in names) + ")$"


def definitions(*, exchange: str, vhost: str, services: BrokerUser, intake: BrokerUser) -> BrokerDefinitions:
    """The users and what each may do on ``vhost``: the services everything, the intake user only the
    intake routing keys on ``exchange`` and its own server-named reply queues. The services' user is
    left out when it is the broker's built-in one (``guest``), which is never redefined."""
    users, permissions = [intake], [VhostPermission(intake.name, vhost, configure=SERVER_NAMED_QUEUES,
                                                    write=f"^{re.escape(exchange)}$", read=SERVER_NAMED_QUEUES)]
    if services.name not in BUILTIN_USERS:
        users.insert(0, services)
        permissions.insert(0, VhostPermission(services.name, vhost, configure=".*", write=".*", read=".*"))
    topic = [TopicPermission(intake.name, vhost, exchange, write=one_of(INTAKE_ROUTING_KEYS), read="^$")]
    return BrokerDefinitions(vhost, tuple(users), tuple(permissions), tuple(topic))


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password))."""
    salt = salt if salt is not None else secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions_json(defs: BrokerDefinitions) -> dict:
    """The definitions in RabbitMQ's format (``rabbitmqctl import_definitions``, ``load_definitions``)."""
    return {
        "vhosts": [{"name": defs.vhost}],
        "users": [{"name": u.name, "password_hash": password_hash(u.password),
                   "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": list(u.tags)} for u in defs.users],
        "permissions": [{"user": p.user, "vhost": p.vhost, "configure": p.configure, "write": p.write,
                         "read": p.read} for p in defs.permissions],
        "topic_permissions": [{"user": t.user, "vhost": t.vhost, "exchange": t.exchange, "write": t.write,
                               "read": t.read} for t in defs.topic_permissions],
    }


class BrokerUsersError(RuntimeError):
    """The users could not be put on the broker; the message is one line."""


def rabbitmqctl() -> str | None:
    return shutil.which("rabbitmqctl")


def apply(defs: BrokerDefinitions, *, command: str | None = None, node: str | None = None,
          timeout_s: float = 60) -> None:
    """Create or update the vhost, the users (passwords given on ``rabbitmqctl``'s standard input, never
    on its command line) and their permissions; a second run changes nothing. ``BrokerUsersError`` in one
    line when ``rabbitmqctl`` is missing or refuses (it needs root or the broker's Erlang cookie)."""
    command = command or rabbitmqctl()
    if command is None:
        raise BrokerUsersError("rabbitmqctl is not installed here: the broker's users were not created")
    ctl = [command, *(["-n", node] if node else [])]
    if defs.vhost != "/":
        _run([*ctl, "add_vhost", defs.vhost], timeout_s, exists_ok=True)
    for user in defs.users:
        if not _run([*ctl, "add_user", user.name], timeout_s, stdin=user.password, exists_ok=True):
            _run([*ctl, "change_password", user.name], timeout_s, stdin=user.password)
        _run([*ctl, "set_user_tags", user.name, *user.tags], timeout_s)
    for p in defs.permissions:
        _run([*ctl, "set_permissions", "-p", p.vhost, p.user, p.configure, p.write, p.read], timeout_s)
    for t in defs.topic_permissions:
        _run([*ctl, "set_topic_permissions", "-p", t.vhost, t.user, t.exchange, t.write, t.read], timeout_s)


def remove(defs: BrokerDefinitions, *, command: str | None = None, node: str | None = None,
           delete_vhost: bool = False, timeout_s: float = 60) -> None:
    """Delete the users of ``defs`` (and their vhost when asked): what a test made, it takes away."""
    ctl = [command or rabbitmqctl() or "rabbitmqctl", *(["-n", node] if node else [])]
    for user in defs.users:
        if user.name not in BUILTIN_USERS:
            _run([*ctl, "delete_user", user.name], timeout_s, missing_ok=True)
    if delete_vhost and defs.vhost != "/":
        _run([*ctl, "delete_vhost", defs.vhost], timeout_s, missing_ok=True)


def _run(argv: list[str], timeout_s: float, *, stdin: str | None = None, exists_ok: bool = False,
         missing_ok: bool = False) -> bool:
    """Run one ``rabbitmqctl`` command: True when it did it, False when it found the thing there already
    (``exists_ok``) or gone already (``missing_ok``)."""
    what = argv[3] if argv[1] == "-n" else argv[1]
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerUsersError(f"rabbitmqctl {what} did not run: {exc}") from None
    if done.returncode == 0:
        return True
    text = " ".join((done.stderr + " " + done.stdout).split())
    if exists_ok and "already exists" in text:
        return False
    if missing_ok and ("does not exist" in text or "not found" in text):
        return False
    last = (done.stderr or done.stdout).strip().splitlines()
    raise BrokerUsersError(f"rabbitmqctl {what} refused: {last[-1] if last else f'exit status {done.returncode}'}")


def intake_url(services_url: str, *, user: str = DEFAULT_INTAKE_USER, password: str | None = None) -> str:
    """An intake URL on the same broker as ``services_url`` (a new random password when none is given)."""
    base = Credentials.from_url(services_url)
    return Credentials(user, password or secrets.token_urlsafe(18), base.host, base.port, base.vhost).url()


def from_urls(*, services_url: str, intake_url: str, exchange: str) -> BrokerDefinitions:
    """The definitions of the two users named by their URLs (both must name the same vhost)."""
    services, intake = Credentials.from_url(services_url), Credentials.from_url(intake_url)
    if services.vhost != intake.vhost:
        raise ValueError(f"CPCS_INTAKE_AMQP_URL names vhost {intake.vhost!r}, CPCS_AMQP_URL {services.vhost!r}: "
                         f"they must be the same")
    if services.user == intake.user:
        raise ValueError("CPCS_INTAKE_AMQP_URL must name a user of its own, not the services' user")
    return definitions(exchange=exchange, vhost=services.vhost, services=BrokerUser(services.user, services.password),
                       intake=BrokerUser(intake.user, intake.password))


def from_environment(environ: dict[str, str] | None = None) -> BrokerDefinitions:
    """The definitions of ``CPCS_AMQP_URL``, ``CPCS_INTAKE_AMQP_URL`` and ``CPCS_EXCHANGE``."""
    env = os.environ if environ is None else environ
    services = env.get("CPCS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    if not env.get("CPCS_INTAKE_AMQP_URL"):
        raise ValueError("CPCS_INTAKE_AMQP_URL is not set: it names the external publishers' user and password")
    return from_urls(services_url=services, intake_url=env["CPCS_INTAKE_AMQP_URL"],
                     exchange=env.get("CPCS_EXCHANGE", "cpcs"))


def main(argv: list[str] | None = None) -> int:
    """``write PATH``: the definitions file of the environment's users; ``apply``: put them on the broker."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in ("write", "apply") or (args[0] == "write" and len(args) != 2):
        print("usage: python -m shared.broker_users write PATH | apply", file=sys.stderr)
        return 2
    try:
        defs = from_environment()
        if args[0] == "write":
            path = Path(args[1])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(definitions_json(defs), indent=2))
            path.chmod(0o644)  # the broker's container reads it as its own user
            print(f"broker definitions written to {path}: users {', '.join(u.name for u in defs.users)}")
        else:
            apply(defs)
            print(f"broker users created or updated: {', '.join(u.name for u in defs.users)}")
    except (ValueError, BrokerUsersError) as exc:
        print(f"broker users: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
