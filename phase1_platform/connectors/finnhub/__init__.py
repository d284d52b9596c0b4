"""Finnhub: trade WebSocket (``stream``, loop in ``session``), REST (``rest``), parsing.

The public names of the former ``connectors/finnhub.py`` are re-exported here, so
``from phase1_platform.connectors.finnhub import FinnhubConnector, mask_secret`` works
as before; the network helpers themselves live in ``connectors.net``.
"""

from __future__ import annotations

from ..net import (
    Backoff,
    MaskTokenFilter,
    RateLimiter,
    SecretMaskFilter,
    backoff_delay,
    mask_secret,
    masked_logger,
    retry_after_seconds,
)
from .config import (
    DEFAULT_REST_URL,
    DEFAULT_WS_URL,
    KEY_VARIABLE,
    FinnhubConfig,
    load_finnhub_config,
    with_token,
)
from .delivery import ErrorCallback, QuarantineCallback, QuoteCallback, StreamStats
from .parsing import Reason, decode, trade_frame
from .rest import FinnhubRestClient
from .stream import FinnhubConnector, xnys_open

__all__ = [
    "DEFAULT_REST_URL",
    "DEFAULT_WS_URL",
    "KEY_VARIABLE",
    "Backoff",
    "ErrorCallback",
    "FinnhubConfig",
    "FinnhubConnector",
    "FinnhubRestClient",
    "MaskTokenFilter",
    "QuarantineCallback",
    "QuoteCallback",
    "RateLimiter",
    "Reason",
    "SecretMaskFilter",
    "StreamStats",
    "backoff_delay",
    "decode",
    "load_finnhub_config",
    "mask_secret",
    "masked_logger",
    "retry_after_seconds",
    "trade_frame",
    "with_token",
    "xnys_open",
]
