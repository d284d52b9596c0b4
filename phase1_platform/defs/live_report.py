"""What the live ingestion service stored, reported to Dagster without a run.

``DagsterLiveReporter`` is the ``on_bars_written`` callback ``phase1 ingest`` hands the
service when a Dagster instance is configured (``DAGSTER_HOME``): each flush tells it which
bars it stored per partition and timeframe; it records an ``AssetMaterialization`` of
``bars_<tf>`` for the partition with ``DagsterInstance.report_runless_asset_event``, so the
UI shows fresh bars while no run is launched (the sensor's ``live_bars`` runs then verify
them: ``defs.bars.live_check``).

Dagster's event writes never slow ingestion: the callback only merges the counts into a
pending map (a lock, no I/O) and a background thread reports, each partition at most once
every ``min_interval_s`` seconds; ``close()`` makes a final report of what is pending.
A reporting failure is logged (at most once a minute) and ingestion goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable

import pandas as pd

from .keys import BAR_ASSETS

log = logging.getLogger("phase1.ingest.dagster_report")

DEFAULT_INTERVAL_S = 5.0


def _iso(ts_ns: int) -> str:
    return pd.Timestamp(int(ts_ns), tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


class DagsterLiveReporter:
    """Throttled runless materializations of the bars the live path stored."""

    def __init__(self, instance_factory: Callable[[], object] | None = None,
                 min_interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self._factory = instance_factory or _default_instance
        self._owns_instance = instance_factory is None
        self._instance = None
        self.min_interval_s = float(min_interval_s)
        self._pending: dict[str, dict[str, dict[str, int]]] = {}
        self._last: dict[str, float] = {}  # partition -> monotonic time of its last report
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self.reported = 0  # materializations recorded
        self.errors = 0
        self._last_error_log = 0.0
        self._thread = threading.Thread(target=self._loop, name="dagster-live-report",
                                        daemon=True)
        self._thread.start()

    # -- the service's callback (worker thread): no I/O --------------------------------
    def __call__(self, written: dict[str, dict[str, dict[str, int]]]) -> None:
        with self._lock:
            for key, tfs in written.items():
                mine = self._pending.setdefault(key, {})
                for tf, info in tfs.items():
                    cur = mine.get(tf)
                    if cur is None:
                        mine[tf] = {"bars": int(info["bars"]), "last_ts": int(info["last_ts"]),
                                    "flushes": 1}
                    else:
                        cur["bars"] += int(info["bars"])
                        cur["last_ts"] = max(cur["last_ts"], int(info["last_ts"]))
                        cur["flushes"] += 1
        self._wake.set()

    # -- the reporting thread -----------------------------------------------------------
    def _loop(self) -> None:
        while not self._closing:
            self._wake.wait(timeout=max(0.05, self.min_interval_s / 4))
            self._wake.clear()
            if self._closing:
                return
            self._report(final=False)

    def _due(self, final: bool) -> dict[str, dict[str, dict[str, int]]]:
        now = time.monotonic()
        with self._lock:
            keys = [k for k in self._pending
                    if final or now - self._last.get(k, -1e18) >= self.min_interval_s]
            out = {k: self._pending.pop(k) for k in keys}
            for k in keys:
                self._last[k] = now
        return out

    def _report(self, final: bool) -> None:
        due = self._due(final)
        if not due:
            return
        try:
            import dagster as dg

            if self._instance is None:
                self._instance = self._factory()
            for key, tfs in sorted(due.items()):
                for tf, info in sorted(tfs.items()):
                    asset = BAR_ASSETS.get(tf)
                    if asset is None:  # a timeframe the asset graph does not have
                        continue
                    self._instance.report_runless_asset_event(dg.AssetMaterialization(
                        asset_key=asset, partition=key,
                        description="bars stored by the live ingestion service",
                        metadata={"path": "live ingestion service",
                                  "bars_written": info["bars"],
                                  "flushes": info["flushes"],
                                  "last_bar": _iso(info["last_ts"]),
                                  "verified_by": "the next live_bars run (live_equals_batch)"}))
                    self.reported += 1
        except Exception as exc:  # noqa: BLE001 - reporting never stops ingestion
            self.errors += 1
            now = time.monotonic()
            if now - self._last_error_log >= 60:
                self._last_error_log = now
                log.warning("dagster_report_failed", extra={"fields": {
                    "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                    if str(exc) else type(exc).__name__, "errors": self.errors}})

    def close(self, timeout: float = 30.0) -> None:
        """Stop the thread and report everything still pending."""
        self._closing = True
        self._wake.set()
        self._thread.join(timeout)
        self._report(final=True)
        if self._owns_instance and self._instance is not None:
            with contextlib.suppress(Exception):  # closing only
                self._instance.dispose()


def _default_instance():
    from .instance import get_instance

    return get_instance()


def reporter_from_env(mode: str = "auto", interval_s: float = DEFAULT_INTERVAL_S
                      ) -> DagsterLiveReporter | None:
    """The reporter ``phase1 ingest`` uses: ``on`` always (the default instance is created
    when ``DAGSTER_HOME`` is unset), ``off`` never, ``auto`` when ``DAGSTER_HOME`` is set."""
    if mode == "off" or (mode == "auto" and not os.environ.get("DAGSTER_HOME")):
        return None
    return DagsterLiveReporter(min_interval_s=interval_s)


__all__ = ["DEFAULT_INTERVAL_S", "DagsterLiveReporter", "reporter_from_env"]
