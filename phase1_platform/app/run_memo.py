"""What the steps of one run hand each other in process, instead of re-reading the store.

A Dagster run executes its steps one after the other in one process (the in-process
executor, the default): ``raw_ticks`` lands the ticks it read, ``normalized_ticks`` reads
them, ``bars`` builds them. ``RunMemo`` keeps what a step made for a later step of the same
*scope* (the run id): one scope at a time, so memory holds one run's data at most and
nothing outlives the run that made it. A step that finds nothing (another process, a
re-executed step, the multiprocess executor) reads the store instead: the memo is only
ever a shortcut to the same values.
"""

from __future__ import annotations

from collections.abc import Hashable


class RunMemo:
    """Values of one scope, each taken at most once."""

    def __init__(self) -> None:
        self._scope: Hashable | None = None
        self._values: dict[Hashable, object] = {}

    def put(self, scope: Hashable, key: Hashable, value: object) -> None:
        if scope != self._scope:  # a new run: forget the previous one's values
            self._values.clear()
            self._scope = scope
        self._values[key] = value

    def take(self, scope: Hashable, key: Hashable) -> object | None:
        if scope != self._scope:
            return None
        return self._values.pop(key, None)


MEMO = RunMemo()

__all__ = ["MEMO", "RunMemo"]
