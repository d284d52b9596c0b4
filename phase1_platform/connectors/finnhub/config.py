"""Finnhub settings: the API key and the two base URLs (stream and REST)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

DEFAULT_WS_URL = "wss://ws.finnhub.io"
DEFAULT_REST_URL = "https://finnhub.io/api/v1"
KEY_VARIABLE = "FINNHUB_API_KEY"


@dataclass(frozen=True)
class FinnhubConfig:
    api_key: str = field(repr=False)
    ws_url: str
    rest_url: str


def load_finnhub_config() -> FinnhubConfig:
    """Key and URLs from the connector settings (environment or ``keys.env``)."""
    from ..settings import load_settings, resolve_key

    settings = load_settings()
    key = resolve_key(None, KEY_VARIABLE, settings)
    return FinnhubConfig(key, settings.FINNHUB_WS_URL, settings.FINNHUB_REST_URL)


def with_token(url: str, token: str) -> str:
    """``url`` with ``token=...`` as its (one) token query parameter."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "token"] + [("token", token)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
