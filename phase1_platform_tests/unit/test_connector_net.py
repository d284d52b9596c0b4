"""connectors.net: one home for backoff, rate-limit headers, stop-aware sleeps and the
masking of every configured secret in every message."""

from __future__ import annotations

import json
import logging
import threading
import time
from urllib.parse import quote

import pytest

from phase1_platform.connectors import net
from phase1_platform.connectors.base import ConnectorError
from phase1_platform.connectors.net import (
    Interrupt,
    mask_secret,
    rate_limit_reset_wait,
    register_secret,
)

ENV_SECRET = "env-configured-SECRET/with+chars"


@pytest.fixture
def configured(monkeypatch):
    monkeypatch.setenv("APCA_API_SECRET_KEY", ENV_SECRET)
    monkeypatch.setenv("FINNHUB_API_KEY", "fh-env-key-987")
    return ENV_SECRET


def test_every_configured_secret_is_masked_in_every_form(configured):
    text = (f"raw {ENV_SECRET} url {quote(ENV_SECRET, safe='')} json {json.dumps(ENV_SECRET)} "
            "finnhub fh-env-key-987 end")
    out = mask_secret(text)
    assert ENV_SECRET not in out and quote(ENV_SECRET, safe="") not in out
    assert "fh-env-key-987" not in out and "SECRET" not in out
    assert out.startswith("raw *** url *** json ") and out.endswith("finnhub *** end")


def test_registered_secrets_and_extra_ones_are_masked():
    register_secret("registered-key-1234")
    assert mask_secret("a registered-key-1234 b") == "a *** b"
    assert mask_secret("x given-one-555 y", "given-one-555", None) == "x *** y"
    register_secret("ab")  # too short to be a key: not masked (would rewrite every text)
    assert mask_secret("ab cab") == "ab cab"


def test_auth_headers_and_url_tokens_are_masked_whatever_their_value():
    text = ('{"APCA-API-KEY-ID": "PKUNKNOWN", "APCA-API-SECRET-KEY":"zzz-unknown"} '
            "X-Finnhub-Token: tok123 Authorization: Bearer abc.def "
            "wss://ws.finnhub.io/?token=abc123&x=1")
    out = mask_secret(text)
    for value in ("PKUNKNOWN", "zzz-unknown", "tok123", "abc.def", "abc123"):
        assert value not in out
    assert "token=***&x=1" in out
    # our own hints name the variables without being mistaken for a header
    hint = "check APCA_API_KEY_ID and APCA_API_SECRET_KEY (and the feed)"
    assert mask_secret(hint) == hint


def test_every_log_record_is_masked_whichever_logger(configured, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("phase1.anything", "urllib3.connectionpool", "websockets.client", "root"):
        logging.getLogger(name).warning("sent %s", {"key": ENV_SECRET})
    try:
        raise RuntimeError(f"boom {ENV_SECRET}")
    except RuntimeError:
        logging.getLogger("phase1.x").exception("failed")
    assert "sent" in caplog.text and "boom" in caplog.text
    assert ENV_SECRET not in caplog.text


def test_connector_error_masks_its_message(configured):
    err = ConnectorError(f"vendor echoed {ENV_SECRET}")
    assert ENV_SECRET not in str(err) and ENV_SECRET not in repr(err)
    assert not err.retryable and ConnectorError("x", retryable=True).retryable


def test_rate_limit_reset_wait():
    assert rate_limit_reset_wait({"X-RateLimit-Reset": "1000"}, now=970.0) == pytest.approx(30.25)
    assert rate_limit_reset_wait({"X-RateLimit-Reset": "nan"}, now=970.0) == 3.0
    assert rate_limit_reset_wait(None, now=0.0) == 3.0


def test_interrupt_ends_a_blocking_sleep_from_another_thread():
    stop = Interrupt()
    threading.Timer(0.1, stop.set).start()
    t0 = time.monotonic()
    assert stop.sleep(30.0) is True
    assert time.monotonic() - t0 < 10.0
    stop.clear()
    assert stop.sleep(0.0) is False


def test_one_home_for_the_helpers():
    from phase1_platform.connectors import finnhub

    for name in ("Backoff", "RateLimiter", "backoff_delay", "mask_secret", "masked_logger",
                 "retry_after_seconds"):
        assert getattr(finnhub, name) is getattr(net, name)
