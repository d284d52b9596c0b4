"""Fixtures of the read API tests: one filled store per backend (SQLite file, PostgreSQL
schema of its own) and one ``phase1 serve`` on it, shared by every test of the package that
only reads (each backend is filled once per session: the real LEAN days take seconds)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ..support.stores import BACKENDS, make_url
from .harness import Served, fill_store, serve


@dataclass(frozen=True)
class Filled:
    backend: str
    url: str
    symbols: list[str]
    workdir: Path


@pytest.fixture(scope="session", params=BACKENDS)
def filled(request, tmp_path_factory) -> Filled:
    workdir = tmp_path_factory.mktemp(f"api-{request.param}")
    url = make_url(request.param, workdir, request)
    return Filled(request.param, url, fill_store(url, workdir), workdir)


@pytest.fixture(scope="session")
def served(filled) -> Served:
    server = serve(filled.url)
    yield server
    code, _, err = server.stop()
    assert code == 0, err[-2000:]


@pytest.fixture
def client(served):
    with served.client() as c:
        yield c
