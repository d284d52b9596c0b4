"""Connectors bring ticks (or vendor bars) from sources into the core's raw tick frame.

The vendor connectors are imported on first use (``from phase1_platform.connectors
import AlpacaConnector``): their SDKs (alpaca-py, yfinance, httpx/websockets) take
seconds to import, which a user of one connector should not pay for the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .base import BaseConnector, ConnectorError, TickCallback

if TYPE_CHECKING:
    from .alpaca import AlpacaConnector
    from .finnhub import FinnhubConnector
    from .mock import MockConnector
    from .settings import ConnectorSettings, load_settings
    from .yfinance_source import YFinanceConnector

_LAZY = {
    "AlpacaConnector": "alpaca",
    "ConnectorSettings": "settings",
    "FinnhubConnector": "finnhub",
    "MockConnector": "mock",
    "YFinanceConnector": "yfinance_source",
    "load_settings": "settings",
}

__all__ = [
    "AlpacaConnector",
    "BaseConnector",
    "ConnectorError",
    "ConnectorSettings",
    "FinnhubConnector",
    "MockConnector",
    "TickCallback",
    "YFinanceConnector",
    "load_settings",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
