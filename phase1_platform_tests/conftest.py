"""Shared test fixtures: paths to the real data and the shipped fixtures; a store of
record on each tick backend (``backend``, ``store``)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from .support.stores import TICK_BACKENDS, make_url

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
SHARED_DATA = ROOT.parent / "shared" / "data"
LEAN = SHARED_DATA / "lean"


def shared_file(rel: str) -> Path:
    """A file under ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / rel
    if not path.exists():
        pytest.skip(f"real data not present: {path} (clone ../shared beside the project)")
    return path


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """No test may reach a vendor host: only loopback connections are allowed."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0") \
                and not host.startswith("/"):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(params=TICK_BACKENDS)
def backend(request, tmp_path):
    """(URL, migrated store) on each tick backend: SQLite, PostgreSQL, SQLite with Parquet
    ticks (``support.stores``); a service process under test gets the URL."""
    from phase1_platform.storage import Store

    url = make_url(request.param, tmp_path, request)
    s = Store.from_url(url)
    yield url, s
    s.dispose()


@pytest.fixture
def store(backend):
    """The migrated store of ``backend`` (a module may define its own ``store``)."""
    return backend[1]
