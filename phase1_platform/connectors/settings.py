"""Connector settings: API keys and vendor URLs from the environment or ``keys.env``.

DESIGN section 9. Keys are ``SecretStr``: they never appear in a repr, a log line or
an error message; every loaded key is also registered with ``net.register_secret``, so
text a vendor echoes back is masked too. In live mode a missing key is one clear
error naming the variable and the fix; in mock mode nothing is required.

Base URLs are settings, not test-only branches: tests point the same production code
path at local fakes by setting ``ALPACA_DATA_URL`` and friends.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .base import ConnectorError
from .net import register_secret

SECRET_FIELDS = ("FINNHUB_API_KEY", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY")


class ConnectorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file="keys.env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=True,
        hide_input_in_errors=True,
    )

    INGESTION_MODE: Literal["live", "mock"] = "live"

    FINNHUB_API_KEY: SecretStr | None = None
    APCA_API_KEY_ID: SecretStr | None = None
    APCA_API_SECRET_KEY: SecretStr | None = None

    FINNHUB_WS_URL: str = "wss://ws.finnhub.io"
    FINNHUB_REST_URL: str = "https://finnhub.io/api/v1"
    ALPACA_DATA_URL: str | None = Field(
        default=None, description="replaces https://data.alpaca.markets (None = SDK default)"
    )
    ALPACA_STREAM_URL: str | None = Field(
        default=None, description="replaces wss://stream.data.alpaca.markets/v2/<feed> "
        "(None = SDK default)"
    )
    ALPACA_FEED: Literal["iex", "sip", "delayed_sip"] = "iex"
    YAHOO_BASE_URL: str | None = Field(
        default=None, description="http(s)://host:port that replaces every *.yahoo.com host"
    )

    @property
    def live(self) -> bool:
        return self.INGESTION_MODE == "live"

    def require(self, name: str) -> str:
        """The secret's plain value; ConnectorError naming the variable when it is missing."""
        if name not in SECRET_FIELDS:
            raise KeyError(name)
        value: SecretStr | None = getattr(self, name)
        if value is None or not value.get_secret_value().strip():
            mode = "" if self.live else f" (INGESTION_MODE={self.INGESTION_MODE})"
            raise ConnectorError(
                f"missing API key {name}{mode} (give it in the environment or in keys.env), "
                f"or run with INGESTION_MODE=mock"
            )
        return value.get_secret_value().strip()

    def optional(self, name: str) -> str | None:
        value: SecretStr | None = getattr(self, name)
        return value.get_secret_value().strip() if value is not None else None

    def require_live(self, *names: str) -> None:
        """In live mode, check every named key is present (first missing one is the error)."""
        if self.live:
            for name in names:
                self.require(name)


def load_settings(env_file: str | None = "keys.env", **overrides) -> ConnectorSettings:
    """Settings from the environment, then ``env_file``; one clear error if a value is bad.

    The validation message never echoes the input (``hide_input_in_errors``), so a key
    pasted into the wrong variable does not leak.
    """
    try:
        settings = ConnectorSettings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        fields = ", ".join(
            ".".join(str(p) for p in err["loc"]) + f" ({err['msg']})" for err in exc.errors()
        )
        raise ConnectorError(f"bad connector setting: {fields}") from None
    for name in SECRET_FIELDS:  # masked in every message from now on
        register_secret(settings.optional(name))
    return settings


def resolve_key(given: str | None, variable: str,
                settings: ConnectorSettings | None = None) -> str:
    """The key (or secret) ``variable`` names: ``given`` unless it is None, else the
    setting from ``settings`` (loaded from the environment and ``keys.env`` when None).

    The credential prelude of every keyed connector's constructor, in one place: the key
    comes back stripped and registered with ``net.register_secret`` (masked in every
    message from now on, wherever it came from); a missing or blank key is a
    ``ConnectorError`` naming the variable and the fix, never showing a value.
    """
    if given is None:
        key = (settings or load_settings()).require(variable)
    else:
        key = given.strip()
        if not key:
            raise ConnectorError(f"missing API key {variable}: set it or pass the key")
    register_secret(key)
    return key
