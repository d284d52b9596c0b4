"""Wall time per stage of a run (read, normalize, build, store bars...), for benchmarks.

``prepare_builds`` / ``build_all`` (``app.run_build``) take an optional ``StageClock`` and
time their stages with it; without one they time nothing (``NO_CLOCK``).
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator


class StageClock:
    """Seconds per named stage, summed over every ``with clock("stage"):`` block."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start


class _NoClock(StageClock):
    def __call__(self, stage: str):  # noqa: ARG002 - times nothing
        return contextlib.nullcontext()


NO_CLOCK: StageClock = _NoClock()

__all__ = ["NO_CLOCK", "StageClock"]
