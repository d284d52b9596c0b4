"""Test only: a test's Celery workers import this (``celery worker -I``) to hold one step
mid-way, so the test can kill the worker that runs it at a known point.

When ``$PHASE1_TEST_HOLD_DIR/armed`` exists, the first ``bars`` step to finish its build
(the bars of every partition of the run are already written to the store) claims the hold
(``claimed``, created exclusively), writes its process id to ``held`` and sleeps: the
test then SIGKILLs that worker's process group. Any later execution of the step (the
redelivered one) finds the hold claimed and goes on. Nothing happens without the variable.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

HOLD_ENV = "PHASE1_TEST_HOLD_DIR"
HOLD_S = 120.0


def install() -> None:
    folder = os.environ.get(HOLD_ENV)
    if not folder:
        return
    hold = Path(folder)
    from phase1_platform.defs.bars import assets

    real = assets.build_run

    def build_run_then_hold(*args, **kwargs):
        built = real(*args, **kwargs)
        if not (hold / "armed").exists():
            return built
        try:
            fd = os.open(hold / "claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return built
        os.close(fd)
        tmp = hold / f"held.{os.getpid()}"
        tmp.write_text(str(os.getpid()))
        tmp.rename(hold / "held")
        end = time.monotonic() + HOLD_S
        while time.monotonic() < end:  # the test kills this process here
            time.sleep(0.1)
        return built

    assets.build_run = build_run_then_hold


install()
