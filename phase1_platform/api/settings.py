"""Settings of the read API: which store, which live stream, who may call it from a browser.

``ApiSettings.create(...)`` checks every value once (one ``ConfigError`` line naming the
setting and the fix). The page-token key comes from ``PHASE1_API_TOKEN_KEY`` (any text; a
random key per process when unset, so tokens die with the process); it is never printed.
The response cache's bound comes from ``PHASE1_API_CACHE_MIB`` (MiB, default 64; 0: off).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..core.calendar import DEFAULT_CALENDAR
from ..core.errors import ConfigError
from ..storage import mask_url, resolve_url

TOKEN_KEY_ENV = "PHASE1_API_TOKEN_KEY"
CACHE_MIB_ENV = "PHASE1_API_CACHE_MIB"
DEFAULT_CACHE_MIB = 64


def check_stream_url(url: str | None) -> str | None:
    """``url`` when it is a ``ws://`` or ``wss://`` URL with a host (None stays None)."""
    if url is None or not str(url).strip():
        return None
    text = str(url).strip()
    try:
        parts = urlsplit(text)
        ok = parts.scheme in ("ws", "wss") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(f"--stream-url {text[:80]!r} is not a WebSocket URL: give the "
                          "ingestion broadcast, e.g. ws://127.0.0.1:8766/ws/bars")
    return text


def dashboard_origins(host: str, port: int) -> tuple[str, ...]:
    """The dashboard's browser origins: ``http://{host}:{port}`` and its loopback twins."""
    hosts = [host]
    if host in ("127.0.0.1", "localhost", "0.0.0.0", "::", "::1"):
        hosts += ["127.0.0.1", "localhost"]
    shown = [f"[{h}]" if ":" in h else h for h in dict.fromkeys(hosts)]
    return tuple(f"http://{h}:{port}" for h in shown)


def token_key_from_env() -> bytes:
    text = os.environ.get(TOKEN_KEY_ENV, "")
    return hashlib.sha256(text.encode()).digest() if text else secrets.token_bytes(32)


def cache_bytes_from_env() -> int:
    """The response cache's bound in bytes: ``PHASE1_API_CACHE_MIB`` MiB (default 64)."""
    text = os.environ.get(CACHE_MIB_ENV, "").strip()
    try:
        mib = float(text) if text else DEFAULT_CACHE_MIB
    except ValueError:
        mib = -1.0
    if not 0 <= mib < 1 << 20:
        raise ConfigError(f"{CACHE_MIB_ENV}={text[:40]!r} is not a size in MiB >= 0: set it "
                          f"to e.g. {DEFAULT_CACHE_MIB} (0 turns the response cache off) or "
                          "unset it")
    return int(mib * (1 << 20))


@dataclass(frozen=True)
class ApiSettings:
    database_url: str  # resolved (argument, DATABASE_URL or the default SQLite file)
    stream_url: str | None = None
    cors_origins: tuple[str, ...] = ()
    calendar: str = DEFAULT_CALENDAR
    token_key: bytes = field(default_factory=token_key_from_env, repr=False)
    cache_bytes: int = field(default_factory=cache_bytes_from_env)  # 0: no response cache

    @classmethod
    def create(cls, database_url: str | None = None, stream_url: str | None = None,
               cors_origins: tuple[str, ...] = (), calendar: str = DEFAULT_CALENDAR,
               token_key: bytes | None = None, cache_bytes: int | None = None
               ) -> ApiSettings:
        if cache_bytes is not None and cache_bytes < 0:
            raise ConfigError(f"response cache size {cache_bytes} is negative: give a "
                              "number of bytes >= 0 (0 turns the cache off)")
        return cls(resolve_url(database_url), check_stream_url(stream_url),
                   tuple(cors_origins), calendar, token_key or token_key_from_env(),
                   cache_bytes_from_env() if cache_bytes is None else cache_bytes)

    @property
    def masked_url(self) -> str:
        return mask_url(self.database_url)


__all__ = ["CACHE_MIB_ENV", "TOKEN_KEY_ENV", "ApiSettings", "cache_bytes_from_env",
           "check_stream_url", "dashboard_origins", "token_key_from_env"]
