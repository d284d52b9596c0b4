"""Bar timeframes: intraday ones align to UTC epoch multiples, ``1d`` is a trading session."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

NS_PER_MINUTE = 60 * 10**9


@dataclass(frozen=True, order=True)
class Timeframe:
    ns: int  # duration; sorting by it orders timeframes by duration
    name: str

    @property
    def is_session(self) -> bool:
        return self.name == "1d"

    def __str__(self) -> str:
        return self.name


_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "1d": 1440}
TIMEFRAMES: dict[str, Timeframe] = {
    name: Timeframe(ns=minutes * NS_PER_MINUTE, name=name) for name, minutes in _MINUTES.items()
}
DEFAULT_TIMEFRAMES = ("1m", "5m", "15m", "1h", "1d")


class TimeframeError(ConfigError):
    pass


def parse_timeframes(spec: str | list[str] | tuple[str, ...]) -> list[Timeframe]:
    """Parse ``"1m,5m,1h"`` (or a list) into unique timeframes ordered by duration."""
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    names = [n for n in names if n]
    unknown = [n for n in names if n not in TIMEFRAMES]
    if unknown or not names:
        raise TimeframeError(
            f"unknown timeframe {', '.join(unknown) or '(none given)'}: "
            f"choose from {','.join(TIMEFRAMES)}"
        )
    return sorted({TIMEFRAMES[n] for n in names})


def timeframe_rank(name: str) -> int:
    """Position of a timeframe name in duration order (for canonical sorting)."""
    return list(TIMEFRAMES).index(name)
