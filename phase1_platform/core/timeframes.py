"""Bar timeframes, the one home of timeframe names.

Two families:

- time bars (DESIGN section 4): intraday ones (``1m`` .. ``4h``) align to UTC epoch
  multiples, ``1d`` is a trading session;
- information-driven bars (``core.info_bars``), one name per threshold: ``t<N>`` closes
  every N trades, ``v<V>`` every V shares, ``d<X>`` every X of notional (price x size),
  within one trading session (the ``1d`` one), e.g. ``t1000``, ``v50000``, ``d1000000``.

``parse_timeframe`` / ``parse_timeframes`` accept both and refuse anything else with a
``TimeframeError`` (a ``ConfigError``) that names the bad name and the accepted forms.
Timeframes order time bars first (by duration), then information-driven bars by kind
(``t``, ``v``, ``d``) and threshold: the canonical order of bars (``bar_frames.sort_bars``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .errors import ConfigError

NS_PER_MINUTE = 60 * 10**9

TIME, SESSION, TICKS, VOLUME, VALUE = "time", "session", "ticks", "volume", "value"
INFO_KINDS = {"t": TICKS, "v": VOLUME, "d": VALUE}  # name prefix -> kind
_INFO_RANK = {TICKS: 0, VOLUME: 1, VALUE: 2}
# largest thresholds whose exact integer units fit int64 (``schema``: qty 1e-8, notional 1e-6)
MAX_THRESHOLD = {TICKS: 10**15, VOLUME: 92_233_720_368, VALUE: 9_223_372_036_854}
_INFO_NAME = re.compile(r"([tvd])([0-9]+)")
INFO_FORMS = "t<N> (every N trades), v<V> (every V shares), d<X> (every X of price x size)"


@dataclass(frozen=True)
class Timeframe:
    name: str
    kind: str  # TIME, SESSION, TICKS, VOLUME or VALUE
    ns: int = 0  # duration of a time bar (0 for information-driven bars)
    threshold: int = 0  # trades, shares or notional per information-driven bar

    @property
    def is_session(self) -> bool:
        return self.kind == SESSION

    @property
    def is_intraday(self) -> bool:
        """A time bar aligned to UTC epoch multiples (``1m`` .. ``4h``)."""
        return self.kind == TIME

    @property
    def is_info(self) -> bool:
        """An information-driven bar (``t<N>``, ``v<V>``, ``d<X>``)."""
        return self.kind in _INFO_RANK

    @property
    def sort_key(self) -> tuple[int, int, int]:
        """Time bars by duration first, then information-driven bars by kind, threshold."""
        if self.is_info:
            return (1, _INFO_RANK[self.kind], self.threshold)
        return (0, self.ns, 0)

    def __lt__(self, other: Timeframe) -> bool:
        return self.sort_key < other.sort_key

    def __str__(self) -> str:
        return self.name


_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "1d": 1440}
TIMEFRAMES: dict[str, Timeframe] = {
    name: Timeframe(name=name, kind=SESSION if name == "1d" else TIME,
                    ns=minutes * NS_PER_MINUTE) for name, minutes in _MINUTES.items()
}
DEFAULT_TIMEFRAMES = ("1m", "5m", "15m", "1h", "1d")


class TimeframeError(ConfigError):
    pass


def _hint() -> str:
    return f"choose from {','.join(TIMEFRAMES)} or {INFO_FORMS}"


@lru_cache(maxsize=1024)
def parse_timeframe(name: str) -> Timeframe:
    """The timeframe named ``name`` (a time bar or ``t<N>``/``v<V>``/``d<X>``)."""
    text = str(name).strip()
    tf = TIMEFRAMES.get(text)
    if tf is not None:
        return tf
    m = _INFO_NAME.fullmatch(text)
    if m is None:
        shown = text[:40] or "(empty)"
        if text[:1] in INFO_KINDS:
            raise TimeframeError(f"timeframe {shown}: the threshold after {text[0]!r} must "
                                 f"be a whole number >= 1 (e.g. {text[0]}1000); {_hint()}")
        raise TimeframeError(f"unknown timeframe {shown}: {_hint()}")
    kind, digits = INFO_KINDS[m.group(1)], m.group(2)
    threshold = int(digits)
    if threshold < 1 or digits[0] == "0":
        raise TimeframeError(f"timeframe {text}: the threshold must be a whole number >= 1 "
                             f"without leading zeros (e.g. {m.group(1)}1000)")
    if threshold > MAX_THRESHOLD[kind]:
        raise TimeframeError(f"timeframe {text}: the threshold is above "
                             f"{MAX_THRESHOLD[kind]:,}, the most a bar's exact total holds")
    return Timeframe(name=text, kind=kind, threshold=threshold)


def is_timeframe(name: str) -> bool:
    """Whether ``name`` names a timeframe (``parse_timeframe`` accepts it)."""
    try:
        parse_timeframe(name)
    except TimeframeError:
        return False
    return True


def parse_timeframes(spec: str | list[str] | tuple[str, ...]) -> list[Timeframe]:
    """Parse ``"1m,5m,1h,t1000"`` (or a list) into unique timeframes in canonical order."""
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [
        str(s).strip() for s in spec]
    names = [n for n in names if n]
    if not names:
        raise TimeframeError(f"no timeframe given: {_hint()}")
    return sorted({parse_timeframe(n) for n in names})


def timeframe_sort_key(name: str) -> tuple[int, int, int]:
    """Canonical position of a timeframe name (for sorting bars); unknown names last."""
    try:
        return parse_timeframe(name).sort_key
    except TimeframeError:
        return (2, 0, 0)
