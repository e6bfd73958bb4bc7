"""The retry policy: which errors are outages (retried for as long as they last) and the backoff."""
import aiormq.exceptions as amqp
import pymongo.errors as mongo
import pytest

from shared.errors import PermanentError, TransientError, backoff_delay_s, is_infrastructure


@pytest.mark.parametrize("exc", [
    mongo.ServerSelectionTimeoutError("no servers"), mongo.AutoReconnect("gone"), mongo.NetworkTimeout("slow"),
    ConnectionRefusedError(111, "refused"), ConnectionResetError("reset"),
    amqp.AMQPConnectionError("broker gone"), amqp.ConnectionClosed(320, "shutdown"),
    amqp.ChannelInvalidStateError("closed"), amqp.ChannelClosed(None, "closed"),
])
def test_outages_of_the_database_and_the_broker_are_infrastructure(exc):
    assert is_infrastructure(exc)


@pytest.mark.parametrize("exc", [
    ValueError("bad"), RuntimeError("bug"), PermanentError("never"), TransientError("archive slow"),
    mongo.DuplicateKeyError("dup"), mongo.OperationFailure("bad query"),
    amqp.ChannelPreconditionFailed("other arguments"), amqp.ChannelNotFoundEntity("no exchange"),
    amqp.ChannelAccessRefused("no permission"), None,
])
def test_other_errors_are_not(exc):
    assert not is_infrastructure(exc)


def test_an_error_raised_from_an_outage_is_one():
    try:
        try:
            raise mongo.AutoReconnect("gone")
        except mongo.AutoReconnect as cause:
            raise TransientError("reference store unavailable") from cause
    except TransientError as wrapped:
        assert is_infrastructure(wrapped)


def test_the_backoff_doubles_and_is_capped():
    delays = [backoff_delay_s(n, base_s=0.5, max_s=30) for n in range(10)]
    assert delays[:7] == [0.5, 1, 2, 4, 8, 16, 30]
    assert delays[7:] == [30, 30, 30]
    assert backoff_delay_s(10_000, base_s=0.5, max_s=30) == 30


def test_the_backoff_refuses_a_negative_attempt():
    with pytest.raises(ValueError):
        backoff_delay_s(-1, base_s=1, max_s=2)


def test_times_in_headers_survive_the_amqp_table_codec():
    """AMQP tables carry a Python float as a 32-bit float; a time header goes as whole milliseconds."""
    from pamqp import decode, encode

    from shared.messaging import unix_ms_header, unix_s_of_header

    now_s = 1796282160.3171337
    _, table = decode.field_table(encode.field_table({"float": now_s, "ms": unix_ms_header(now_s)}))
    assert abs(table["float"] - now_s) > 1  # why: the float does not survive
    assert abs(unix_s_of_header(table["ms"]) - now_s) < 0.001
    assert unix_s_of_header(1796282112.5) == 1796282112.5  # seconds from an older sender still read
    assert unix_s_of_header(None) is None and unix_s_of_header("x") is None and unix_s_of_header(True) is None
