"""An offline working directory for pipeline tests: its own store, drop and exports."""

from __future__ import annotations

from pathlib import Path


def offline_workdir(tmp_path: Path, monkeypatch) -> str:
    """chdir into tmp_path with a SQLite store and empty drop/export folders there.

    Returns the store URL. Live mode is off (INGESTION_MODE unset), so nothing reaches
    a vendor.
    """
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("PHASE1_DROP_DIR", str(tmp_path / "drop"))
    monkeypatch.setenv("PHASE1_EXPORT_DIR", str(tmp_path / "exports"))
    monkeypatch.delenv("INGESTION_MODE", raising=False)
    return url
