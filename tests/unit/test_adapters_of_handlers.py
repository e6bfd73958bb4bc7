"""The real adapters have every method of the handler ports the unit tests fake, called the same way
(a fake and the adapter can drift apart only if this fails)."""
from __future__ import annotations

import inspect

import aio_pika
import pytest

from services.calibration import ports as calibration_ports
from services.calibration.store import CalibrationStore
from services.ingest import ports as ingest_ports
from services.ingest.results import ResultWaiters
from services.ingest.store import IngestStore
from services.ingest.usecases.uploads import Uploads
from services.ingest.voevents.log import PacketLog
from services.lightcurve import ports as lightcurve_ports
from services.lightcurve.alerts import AlertPointCollection
from services.lightcurve.events import EventCopies
from services.lightcurve.store import LightcurveStore
from shared.messaging import Broker
from shared.refcat.providers import ReferenceSource

PAIRS = [
    (calibration_ports.CalibrationStorage, CalibrationStore),
    (calibration_ports.ReferenceCone, ReferenceSource),
    (ingest_ports.StatusStore, IngestStore),
    (ingest_ports.ProductRecords, IngestStore),
    (ingest_ports.EventStore, IngestStore),
    (ingest_ports.PacketRecords, PacketLog),
    (ingest_ports.RecalibrationResults, IngestStore),
    (ingest_ports.AcceptUpload, Uploads),
    (ingest_ports.OutcomeWaiters, ResultWaiters),
    (ingest_ports.Reply, Broker),
    (lightcurve_ports.PointStore, LightcurveStore),
    (lightcurve_ports.EventCopyStore, EventCopies),
    (lightcurve_ports.AlertPointStore, AlertPointCollection),
]


def members(protocol) -> dict[str, object]:
    """The methods and properties a Protocol declares, its bases' included."""
    found: dict[str, object] = {}
    for cls in reversed(protocol.__mro__):
        if cls is object or not getattr(cls, "_is_protocol", False):
            continue
        found |= {name: value for name, value in vars(cls).items()
                  if not name.startswith("_") and (inspect.isfunction(value) or isinstance(value, property))}
    return found


def accepts(adapter_fn, port_fn) -> list[str]:
    """What a call made as the port declares it would get wrong with the adapter (empty: nothing)."""
    port, adapter = inspect.signature(port_fn), inspect.signature(adapter_fn)
    problems = []
    if inspect.iscoroutinefunction(port_fn) != inspect.iscoroutinefunction(adapter_fn):
        problems.append("async in one, not the other")
    for name, p in list(port.parameters.items())[1:]:
        a = adapter.parameters.get(name)
        if a is None:
            problems.append(f"no parameter {name}")
        elif a.kind != p.kind and not (a.kind == a.POSITIONAL_OR_KEYWORD and p.kind != p.VAR_KEYWORD):
            problems.append(f"{name} is {a.kind.description}, the port says {p.kind.description}")
    extra = [n for n, a in list(adapter.parameters.items())[1:]
             if n not in port.parameters and a.default is inspect.Parameter.empty
             and a.kind not in (a.VAR_POSITIONAL, a.VAR_KEYWORD)]
    problems += [f"the adapter also needs {n}" for n in extra]
    return problems


@pytest.mark.parametrize(("protocol", "adapter"), PAIRS, ids=lambda x: x.__name__)
def test_the_adapter_has_every_member_of_the_port(protocol, adapter):
    declared = members(protocol)
    assert declared, f"{protocol.__name__} declares nothing"
    for name, member in declared.items():
        if isinstance(member, property):  # set in the adapter's constructor
            assert f"self.{name} =" in inspect.getsource(adapter.__init__) or isinstance(
                getattr(adapter, name, None), property), f"{adapter.__name__} has no {name}"
            continue
        assert hasattr(adapter, name), f"{adapter.__name__} has no {name}"
        assert accepts(getattr(adapter, name), member) == [], f"{adapter.__name__}.{name}"


def test_the_broker_publishes_as_the_publish_port_calls_it():
    assert accepts(Broker.publish, ingest_ports.Publish.__call__) == []


def test_an_amqp_message_has_what_the_upload_intake_reads_of_a_delivery():
    message = aio_pika.Message(b"catalogue bytes", headers={"EventID": "ivo://Gaia16aye"}, correlation_id="c1",
                               reply_to="amq.gen-answers")
    for name in members(ingest_ports.UploadDelivery):
        assert hasattr(message, name), f"aio_pika messages have no {name}"
    assert (message.body, message.correlation_id, message.reply_to) == (b"catalogue bytes", "c1", "amq.gen-answers")
    assert message.headers == {"EventID": "ivo://Gaia16aye"}


def test_the_check_itself_sees_a_missing_parameter():
    class Port:
        async def find(self, observation_id: str, *, fresh: bool) -> dict | None: ...

    class Adapter:
        async def find(self, observation_id: str) -> dict | None: ...

    assert accepts(Adapter.find, Port.find) == ["no parameter fresh"]
