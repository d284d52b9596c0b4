"""A fake clock and a guarded asyncio runner for tests of timed, async code."""

from __future__ import annotations

import asyncio


class FakeClock:
    """``clock()`` returns ``now``; ``await clock.sleep(s)`` records ``s`` and advances."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def run(coro, timeout: float = 120):
    """``asyncio.run(coro)``, failing after ``timeout`` seconds instead of hanging."""

    async def guarded():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(guarded())
