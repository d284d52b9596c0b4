"""Each connector class satisfies the protocols it claims (connectors/protocols.py), and
only those: callers choose by ``isinstance``, never by name or ``hasattr``."""

from __future__ import annotations

import inspect

import pytest

from phase1_platform.connectors.alpaca import AlpacaConnector
from phase1_platform.connectors.base import BaseConnector, ConnectorError
from phase1_platform.connectors.finnhub import FinnhubConnector
from phase1_platform.connectors.mock import MockConnector
from phase1_platform.connectors.protocols import BarHistory, LiveTicks, TickHistory
from phase1_platform.connectors.yfinance_source import YFinanceConnector
from phase1_platform.core.errors import UserError, VendorError

PROTOCOLS = (LiveTicks, TickHistory, BarHistory)
CLAIMS = {
    MockConnector: (LiveTicks, TickHistory),
    FinnhubConnector: (LiveTicks, TickHistory),
    AlpacaConnector: (LiveTicks, TickHistory, BarHistory),
    YFinanceConnector: (BarHistory,),
}


def instance(cls):
    if cls is MockConnector:
        return MockConnector()
    if cls is FinnhubConnector:
        return FinnhubConnector("proto-token-1", ws_url="ws://127.0.0.1:9",
                                rest_url="http://127.0.0.1:9")
    if cls is AlpacaConnector:
        return AlpacaConnector("PKPROTO0001", "proto-secret-1", base_url="http://127.0.0.1:9")
    return YFinanceConnector(base_url="http://127.0.0.1:9")


def members(proto) -> list[str]:
    return [n for n, v in vars(proto).items() if inspect.isfunction(v) and not n.startswith("_")]


def kind(fn) -> str:
    if inspect.isasyncgenfunction(fn):
        return "async-iterator"
    if inspect.iscoroutinefunction(fn):
        return "coroutine"
    return "sync"


def expected_kind(proto, name: str) -> set[str]:
    fn = vars(proto)[name]
    if kind(fn) == "coroutine":
        return {"coroutine"}
    if "AsyncIterator" in str(inspect.signature(fn).return_annotation):
        return {"async-iterator"}
    return {"sync"}


@pytest.mark.parametrize("cls", list(CLAIMS), ids=lambda c: c.__name__)
def test_connector_satisfies_the_protocols_it_claims(cls):
    for proto in CLAIMS[cls]:
        for name in members(proto):
            impl = getattr(cls, name, None)
            assert impl is not None, f"{cls.__name__} lacks {proto.__name__}.{name}"
            assert kind(impl) in expected_kind(proto, name), (cls.__name__, name, kind(impl))
            # the protocol's call shape is accepted: same parameters, by position and name
            want = inspect.signature(vars(proto)[name])
            got = inspect.signature(impl)
            args = [object()] * (len(want.parameters))
            got.bind(*args)
            got.bind(args[0], **{p: object() for p in list(want.parameters)[1:]})
    conn = instance(cls)
    for proto in PROTOCOLS:
        assert isinstance(conn, proto) == (proto in CLAIMS[cls]), (cls.__name__, proto.__name__)
    assert isinstance(conn.name, str) and conn.name != "base"


def test_every_live_connector_takes_a_stop_when_connecting():
    for cls, claims in CLAIMS.items():
        if LiveTicks in claims:
            assert "stop" in inspect.signature(cls.connect).parameters, cls.__name__
            assert list(inspect.signature(cls.run).parameters) == ["self", "stop"], cls.__name__


def test_connector_error_is_the_vendor_user_error():
    err = ConnectorError("Alpaca said no")
    assert isinstance(err, VendorError) and isinstance(err, UserError)
    assert isinstance(err, RuntimeError)  # old callers catching RuntimeError keep working
    assert err.one_line() == "Alpaca said no"
    assert issubclass(MockConnector, BaseConnector)
