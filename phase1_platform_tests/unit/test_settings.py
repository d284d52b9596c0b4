"""Connector settings: environment and keys.env, one clear error per missing key,
secrets never in reprs, errors or logs."""

from __future__ import annotations

import logging

import pytest

from phase1_platform.connectors.base import ConnectorError
from phase1_platform.connectors.settings import SECRET_FIELDS, ConnectorSettings, load_settings

SECRETS = {
    "FINNHUB_API_KEY": "fh-SECRET-1234567890",
    "APCA_API_KEY_ID": "PK-SECRET-ABCDEFGHIJ",
    "APCA_API_SECRET_KEY": "apca-SECRET-zyxwvutsrq",
}
ALL_VARS = (*SECRET_FIELDS, "INGESTION_MODE", "FINNHUB_WS_URL", "FINNHUB_REST_URL",
            "ALPACA_DATA_URL", "ALPACA_FEED", "YAHOO_BASE_URL")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ALL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # keys.env is looked up in the working directory


def test_keys_from_environment(monkeypatch):
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    assert s.live
    assert {k: s.require(k) for k in SECRETS} == SECRETS


def test_keys_from_keys_env_file_and_environment_wins(monkeypatch, tmp_path):
    (tmp_path / "keys.env").write_text(
        "FINNHUB_API_KEY=from-file\nAPCA_API_KEY_ID=file-id\n"
        "APCA_API_SECRET_KEY=file-secret\nALPACA_DATA_URL=http://127.0.0.1:5999\n"
    )
    monkeypatch.setenv("APCA_API_KEY_ID", "env-id")
    s = load_settings()
    assert s.require("FINNHUB_API_KEY") == "from-file"
    assert s.require("APCA_API_KEY_ID") == "env-id"
    assert s.require("APCA_API_SECRET_KEY") == "file-secret"
    assert s.ALPACA_DATA_URL == "http://127.0.0.1:5999"


def test_defaults_point_at_the_vendors():
    s = load_settings()
    assert s.INGESTION_MODE == "live"
    assert s.FINNHUB_WS_URL == "wss://ws.finnhub.io"
    assert s.FINNHUB_REST_URL == "https://finnhub.io/api/v1"
    assert s.ALPACA_DATA_URL is None and s.YAHOO_BASE_URL is None
    assert s.ALPACA_FEED == "iex"


@pytest.mark.parametrize("name", SECRET_FIELDS)
def test_missing_key_in_live_mode_is_one_error_naming_it(name, monkeypatch):
    for k, v in SECRETS.items():
        if k != name:
            monkeypatch.setenv(k, v)
    s = load_settings()
    with pytest.raises(ConnectorError) as err:
        s.require_live(*SECRET_FIELDS)
    text = str(err.value)
    assert name in text and "keys.env" in text and "\n" not in text
    assert not any(v in text for v in SECRETS.values())
    assert "***" not in text  # the fix it names is not masked as if it were a key


def test_blank_key_counts_as_missing(monkeypatch):
    monkeypatch.setenv("FINNHUB_API_KEY", "   ")
    with pytest.raises(ConnectorError, match="FINNHUB_API_KEY"):
        load_settings().require("FINNHUB_API_KEY")


def test_mock_mode_requires_nothing(monkeypatch):
    monkeypatch.setenv("INGESTION_MODE", "mock")
    s = load_settings()
    assert not s.live
    s.require_live(*SECRET_FIELDS)  # no error in mock mode
    assert s.optional("FINNHUB_API_KEY") is None


def test_bad_mode_is_clear_error(monkeypatch):
    monkeypatch.setenv("INGESTION_MODE", "production")
    with pytest.raises(ConnectorError, match="INGESTION_MODE") as err:
        load_settings()
    assert "production" not in str(err.value)  # input values are never echoed


def test_secrets_never_in_repr_str_dump_or_logs(monkeypatch, caplog):
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    caplog.set_level(logging.DEBUG)
    logging.getLogger("phase1").info("settings: %s %r", s, s)
    shown = " ".join([repr(s), str(s), str(s.model_dump()), s.model_dump_json(), caplog.text])
    for v in SECRETS.values():
        assert v not in shown
    assert "**********" in repr(s)


def test_secret_in_wrong_field_not_echoed_by_validation(monkeypatch):
    # a key pasted into a typed field must not leak through the validation error
    monkeypatch.setenv("ALPACA_FEED", SECRETS["APCA_API_SECRET_KEY"])
    with pytest.raises(ConnectorError) as err:
        load_settings()
    assert SECRETS["APCA_API_SECRET_KEY"] not in str(err.value)
    assert "ALPACA_FEED" in str(err.value)


def test_require_rejects_non_secret_names():
    with pytest.raises(KeyError):
        ConnectorSettings(_env_file=None).require("DATABASE_URL")


def test_keys_from_keys_env_are_masked_in_any_text(tmp_path):
    (tmp_path / "keys.env").write_text("APCA_API_SECRET_KEY=file-only-secret-value-77\n")
    load_settings()
    from phase1_platform.connectors.net import mask_secret

    assert mask_secret("echo file-only-secret-value-77 back") == "echo *** back"
