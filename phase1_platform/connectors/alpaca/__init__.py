"""Alpaca market data (alpaca-py): trades, live polling and vendor bars.

``connector`` (AlpacaConnector: REST history and polling), ``stream``
(AlpacaStreamConnector: the data stream with cancels and corrections), ``client`` (the
SDK client with our rate-limit handling and error text), ``parsing`` (trade and bar JSON
-> frames). The names of the former ``connectors/alpaca.py`` are re-exported here.
"""

from __future__ import annotations

from .client import RateLimitAwareDataClient, api_error_text, reset_wait
from .connector import FEEDS, TIMEFRAMES, AlpacaConnector
from .parsing import RAW_TICK_COLUMNS, bars_frame, check_trades
from .stream import AlpacaStreamConnector

__all__ = [
    "FEEDS",
    "RAW_TICK_COLUMNS",
    "TIMEFRAMES",
    "AlpacaConnector",
    "AlpacaStreamConnector",
    "RateLimitAwareDataClient",
    "api_error_text",
    "bars_frame",
    "check_trades",
    "reset_wait",
]
