"""Keep the process's long-lived objects out of the cyclic garbage collector's way.

A ``phase1`` command or a Dagster process starts by importing pandas, SQLAlchemy,
exchange_calendars and Dagster, building the exchange calendar and (for Dagster) the
definitions: a few hundred thousand objects that live as long as the process. CPython's
generational collector re-scans every one of them in each full collection: while they are
being created (the heap grows by a quarter between full collections, so loading walks it
several times over) and again whenever the run's own allocations (DataFrames, events,
records) trigger one. Measured on the SPY day (250,601 ticks, ``gc.callbacks``): 0.55 s of
a ``dagster asset materialize`` and 0.21 s of a ``phase1 replay`` were spent in the
collector.

:func:`loading` runs a block of startup work (the definitions' imports and loading; the
``phase1`` command's subcommand imports) with the collector off, then freezes every object
that exists (``gc.freeze``: moved to a permanent generation that collections skip) and
turns the collector back on, so a long-lived service still reclaims the cycles it makes
later. It does not collect before freezing, as the ``gc.freeze`` documentation's own
pattern (disable, freeze, enable) does not: after the definitions load, a full collection
costs 0.13 s and finds 40 unreachable objects. Those few stay, as do the modules'
objects, which live as long as the process anyway.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def loading() -> Iterator[None]:
    """Run a process's startup work with the collector off, then freeze what it left.
    Nested in another ``loading`` (or with the collector already off) it leaves the
    collector as it found it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
