"""Explain a mismatched bar from the ticks it came from: the group of special prints
(a condition, auction/official prints, zero-size prints) that accounts for the
difference, or a boundary print."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..calendar import sessions_between
from ..conditions import AUCTION_CONDITIONS
from ..engine import ensure_canonical
from ..rules import EligibilityRules, entry_matches
from ..schema import ts_ns
from ..timeframes import TIMEFRAMES
from .labels import (
    AUCTION_GROUP,
    AUCTION_REPORT_DELAY_NS,
    AUCTION_VOLUME,
    CLOSE_AUCTION_TOKENS,
    CLOSING_AUCTION,
    FIELDS,
    GENERIC_TOKENS,
    LAST_PRINT,
    OPEN_AUCTION_TOKENS,
    OPENING_AUCTION,
    PRICE_FIELDS,
    TOLERANCE_EPS,
    UNEXPLAINED,
    VENDOR_ONLY_VOLUME,
    ZERO_GROUP,
    ParityInputError,
    category_label,
    num,
    token_priority,
)

if TYPE_CHECKING:
    from .compare import BarComparator

SECOND_NS = 1_000_000_000  # how far outside a bar a boundary print is looked for
MAX_SPANS = 256  # more separate spans to explain than this: prepare every tick


@dataclass
class _Group:
    name: str  # AUCTION_GROUP, ZERO_GROUP, a token, or a rule-set entry
    member: np.ndarray  # bool per tick of the slice


class Categorizer:
    """Explains mismatched bars from the ticks and the rule set that built them."""

    def __init__(self, ticks: pd.DataFrame, rules: EligibilityRules, cmp: BarComparator,
                 explain: Iterable[tuple[str, int]] | None = None):
        """``explain``: the (timeframe, ts) of every bar the caller will explain. The
        categorizer then prepares only the ticks within reach of those bars (their
        interval, a second either side, the closing-auction report delay after): the
        explanations are the same as from all the ticks, at a cost that follows the
        mismatches instead of the day's tape."""
        missing = [c for c in ("ts", "symbol", "price", "size", "conditions")
                   if c not in ticks.columns]
        if missing:
            raise ParityInputError(
                f"ticks lack column(s) {', '.join(missing)}: give normalized ticks"
            )
        self.cmp = cmp
        self.sym_last_ts: dict[str, int] | None = None  # per symbol, when ticks are a subset
        if explain is not None and len(ticks):
            ticks = self._within_reach(ticks, explain)
        ticks = ensure_canonical(ticks) if len(ticks) else ticks
        self.rules = rules
        self.ts = ts_ns(ticks["ts"]) if len(ticks) else np.empty(0, dtype="int64")
        self.price = ticks["price"].to_numpy("float64")
        self.size = ticks["size"].to_numpy("float64")
        conditions = ticks["conditions"].astype("str").fillna("")
        self.pok, self.vok = rules.evaluate(conditions, self.size)
        self.codes, uniques = pd.factorize(conditions.to_numpy(dtype=object),
                                           use_na_sentinel=False)
        self.uniques = [str(u) for u in uniques]
        toks = sorted({t for u in self.uniques for t in u.split()}, key=token_priority)
        self.tokens = toks
        self.member = np.zeros((len(self.uniques), len(toks)), dtype=bool)
        index = {t: i for i, t in enumerate(toks)}
        for ui, u in enumerate(self.uniques):
            for t in u.split():
                self.member[ui, index[t]] = True
        # per distinct conditions string: its most specific condition (None: Regular only)
        self.specific = [
            next(iter(sorted((t for t in u.split() if t != "Regular"), key=token_priority)),
                 None)
            for u in self.uniques
        ]
        # rule-set entries that are conjunctions (plain names are covered by the tokens)
        entries = sorted(e for e in rules.exclude_from_price | rules.exclude_from_volume
                         if len(e.split()) > 1)
        self.entries = entries
        self.entry_member = np.array(
            [[entry_matches(e, frozenset(u.split())) for e in entries] for u in self.uniques],
            dtype=bool,
        ).reshape(len(self.uniques), len(entries))
        sym = ticks["symbol"].to_numpy(dtype=object)
        self.sym_range: dict[str, tuple[int, int]] = {}
        if len(sym):
            change = np.flatnonzero(np.r_[True, sym[1:] != sym[:-1]])
            ends = np.r_[change[1:], len(sym)]
            for a, b in zip(change, ends, strict=True):
                self.sym_range[str(sym[a])] = (int(a), int(b))

    def _within_reach(self, ticks: pd.DataFrame, explain: Iterable[tuple[str, int]]
                      ) -> pd.DataFrame:
        """The ticks any explanation of the ``explain`` bars can read; every tick of one
        timestamp is in or out together, so canonical order within the subset is the
        order of the whole. Each symbol's last timestamp in the whole data is recorded
        (``sym_last_ts``: ``LAST_PRINT`` asks whether a bar ends with the data's last
        print)."""
        spans = sorted(
            (start - SECOND_NS, end + max(end - start, AUCTION_REPORT_DELAY_NS, SECOND_NS))
            for start, end in {self.interval(tf, int(ts)) for tf, ts in explain})
        merged: list[list[int]] = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        if len(merged) > MAX_SPANS:  # mismatches everywhere: prepare all the ticks
            return ticks
        ts = ts_ns(ticks["ts"])
        keep = np.zeros(len(ts), dtype=bool)
        for lo, hi in merged:
            keep |= (ts >= lo) & (ts < hi)
        codes, symbols = pd.factorize(ticks["symbol"])
        last = pd.Series(ts).groupby(codes).max()
        self.sym_last_ts = {str(symbols[c]): int(t) for c, t in last.items() if c >= 0}
        return ticks[keep]

    # -- slices --------------------------------------------------------------------
    def interval(self, timeframe: str, ts: int) -> tuple[int, int]:
        tf = TIMEFRAMES[timeframe]
        if not tf.is_session:
            return ts, ts + tf.ns
        s = sessions_between(ts, ts, self.cmp.calendar)
        idx = np.flatnonzero(s.labels == ts)
        if len(idx) == 0:
            return ts, ts  # not a session of this calendar: empty interval
        return int(s.opens[idx[0]]), int(s.closes[idx[0]])

    def rows(self, symbol: str, start: int, end: int) -> np.ndarray:
        a, b = self.sym_range.get(symbol, (0, 0))
        lo = a + int(np.searchsorted(self.ts[a:b], start, side="left"))
        hi = a + int(np.searchsorted(self.ts[a:b], end, side="left"))
        return np.arange(lo, hi)

    def groups(self, rows: np.ndarray) -> list[_Group]:
        """Candidate groups of special prints in these rows, most specific first."""
        codes = self.codes[rows]
        mem = self.member[codes]
        present = mem.any(axis=0)
        out: list[_Group] = []
        auction_cols = [i for i, t in enumerate(self.tokens) if t in AUCTION_CONDITIONS
                        and present[i]]
        if len(rows) and (self.size[rows] == 0).any():
            out.append(_Group(ZERO_GROUP, self.size[rows] == 0))
        for i, t in enumerate(self.tokens):
            if present[i] and t == "Suspicious":
                out.append(_Group(t, mem[:, i]))
        if auction_cols:
            out.append(_Group(AUCTION_GROUP, mem[:, auction_cols].any(axis=1)))
        for j, e in enumerate(self.entries):
            em = self.entry_member[codes, j]
            if em.any():
                out.append(_Group(e, em))
        for i, t in enumerate(self.tokens):
            if present[i] and t not in ("Suspicious", "Regular"):
                out.append(_Group(t, mem[:, i]))
        return out

    def label(self, group: _Group, rows: np.ndarray, used: np.ndarray) -> str:
        if group.name == AUCTION_GROUP:
            toks = sorted({t for c in self.codes[rows][used] for t in self.uniques[c].split()
                           if t in AUCTION_CONDITIONS}, key=token_priority)
            return category_label(AUCTION_GROUP, toks)
        if len(group.name.split()) > 1:  # a rule-set entry "A !B"
            req = [w for w in group.name.split() if not w.startswith("!")]
            nots = [w[1:] for w in group.name.split() if w.startswith("!")]
            name = " ".join(req) + (f" (not {', '.join(nots)})" if nots else "")
            return category_label(name)
        return category_label(group.name)

    # -- recomputation -------------------------------------------------------------
    @staticmethod
    def value(f: str, price: np.ndarray, size: np.ndarray, pok: np.ndarray, vok: np.ndarray):
        if f in PRICE_FIELDS:
            idx = np.flatnonzero(pok)
            if len(idx) == 0:
                return None
            if f == "open":
                return price[idx[0]]
            if f == "close":
                return price[idx[-1]]
            return price[idx].max() if f == "high" else price[idx].min()
        if f == "volume":
            return float(size[vok].sum())
        if f == "trade_count":
            return float(vok.sum())
        if f == "vwap":
            v = size[vok].sum()
            return None if v == 0 else float((price[vok] * size[vok]).sum() / v)
        return None

    @staticmethod
    def variants(f: str, g: _Group, price, size, pok, vok, ref) -> list[tuple[str, np.ndarray]]:
        """(kind, new eligibility) pairs of one group for one field."""
        m = g.member
        out = []
        if f in PRICE_FIELDS:
            can_add = m & ~pok & ((size > 0) | (g.name == ZERO_GROUP))
            if (m & pok).any():
                out.append(("drop", pok & ~m))
                if f in ("high", "low"):
                    outside = (price > ref["high"]) | (price < ref["low"])
                    out.append(("drop", pok & ~(m & outside)))
            if can_add.any():
                out.append(("add", pok | can_add))
        else:
            if (m & vok).any():
                out.append(("drop", vok & ~m))
            add = m & ~vok & (size > 0)
            if add.any():
                out.append(("add", vok | add))
        return out

    def explain_bar(self, row) -> dict[str, str]:
        r = row._asdict()
        fields = r["fields"].split(",")
        start, end = self.interval(r["timeframe"], int(r["ts"]))
        rows = self.rows(r["symbol"], start, end)
        ref = {f: r["reference_" + f] for f in FIELDS}
        detail: dict[str, str] = {}
        if len(rows) == 0:
            return {f: "no ticks in the bar's interval" for f in fields}
        price, size = self.price[rows], self.size[rows]
        pok, vok = self.pok[rows], self.vok[rows]
        groups = self.groups(rows)
        specific = [g for g in groups if g.name not in GENERIC_TOKENS]
        generic = [g for g in groups if g.name in GENERIC_TOKENS]
        detail.update(self.auctions(r, rows, start, end, fields))
        for f in fields:
            if f in detail:
                continue
            found = self.by_groups(f, specific, rows, price, size, pok, vok, ref)
            if found is None and f in PRICE_FIELDS:
                found = self.by_cover(f, rows, price, pok, ref)
            if found is None:
                found = self.by_groups(f, generic, rows, price, size, pok, vok, ref)
            if found is not None:
                detail[f] = found
        rest = [f for f in fields if f not in detail]
        if rest:
            detail.update(self.boundary(r, rows, start, end, rest, groups))
        if "volume" in fields and "volume" not in detail:
            d = float(r["reference_volume"]) - float(self.size[rows][self.vok[rows]].sum())
            if d > 0:
                # more shares than every print of the interval that the rules leave in volume,
                # and no print left out or nearby accounts for them: the vendor's bar holds
                # prints its own tick data does not
                detail["volume"] = VENDOR_ONLY_VOLUME
        return {f: detail.get(f, UNEXPLAINED) for f in fields}

    # -- auction prints --------------------------------------------------------------
    def _with_token(self, rows: np.ndarray, tokens: tuple[str, ...]) -> np.ndarray:
        cols = [i for i, t in enumerate(self.tokens) if t in tokens]
        if not cols or len(rows) == 0:
            return rows[:0]
        return rows[self.member[self.codes[rows]][:, cols].any(axis=1) & (self.size[rows] > 0)]

    def auctions(self, r: dict, rows, start: int, end: int, fields: list[str]) -> dict[str, str]:
        """The listing market's auction prints where the vendor puts them.

        LEAN/AlgoSeek bars open the session at the opening auction price and close its
        last minute with the closing auction print, whose report comes seconds to a minute
        after the close; both count in the vendor's volume. Told from the data: an opening
        print of the bar at the vendor's open; a closing print reported within five minutes
        after the bar at the vendor's close.
        """
        out: dict[str, str] = {}
        gen_vol = float(self.size[rows][self.vok[rows]].sum())
        d = float(r["reference_volume"]) - gen_vol
        if "open" in fields:
            cand = self._with_token(rows, OPEN_AUCTION_TOKENS)
            cand = cand[self.cmp.price_ok(self.price[cand], r["reference_open"])]
            if len(cand):
                out["open"] = OPENING_AUCTION
        closing = rows[:0]
        if "close" in fields:
            nxt = self.rows(r["symbol"], end, end + max(end - start, AUCTION_REPORT_DELAY_NS))
            closing = self._with_token(nxt, CLOSE_AUCTION_TOKENS)
            closing = closing[self.cmp.price_ok(self.price[closing], r["reference_close"])]
            if len(closing):
                out["close"] = CLOSING_AUCTION
                for f in ("high", "low"):
                    if f in fields and bool(self.cmp.price_ok(self.price[closing[0]],
                                                              r["reference_" + f])):
                        out[f] = CLOSING_AUCTION
        if "volume" in fields and d > 0:
            # the closing print counted here, and/or one auction print of the bar the rules
            # leave out of volume that the vendor counts
            inside = self._with_token(rows, OPEN_AUCTION_TOKENS + CLOSE_AUCTION_TOKENS)
            inside = inside[~self.vok[inside]]
            c = np.r_[0.0, self.size[closing]]
            a = np.r_[0.0, self.size[inside]]
            fit = self.cmp.volume_ok(gen_vol + c[:, None] + a[None, :], r["reference_volume"])
            fit[0, 0] = False
            if fit.any():
                ci, ai = np.argwhere(fit)[0]
                out["volume"] = CLOSING_AUCTION if ai == 0 else AUCTION_VOLUME
        return out

    def by_groups(self, f, groups, rows, price, size, pok, vok, ref) -> str | None:
        """A group of prints whose removal (or addition) makes field ``f`` match."""
        base = pok if f in PRICE_FIELDS else vok
        for g in groups:
            for _kind, ok in self.variants(f, g, price, size, pok, vok, ref):
                v = self.value(f, price, size, ok if f in PRICE_FIELDS else pok,
                               ok if f not in PRICE_FIELDS else vok)
                if v is not None and bool(self.cmp.field_ok(f, v, ref[f])):
                    return self.label(g, rows, ok != base)
        return None

    def by_cover(self, f, rows, price, pok, ref) -> str | None:
        """The prints that stand between our value and the vendor's, when all are special.

        open: the eligible prints before the first one at the vendor's open; close: those
        after the last one at the vendor's close; high/low: those beyond the vendor's
        extreme. Each must carry a condition (Regular alone does not explain); the
        category names the most specific condition of each.
        """
        idx = np.flatnonzero(pok)
        if len(idx) == 0:
            return None
        at = idx[self.cmp.price_ok(price[idx], ref[f])]
        if f == "open":
            if len(at) == 0:
                return None
            drop = idx[idx < at[0]]
        elif f == "close":
            if len(at) == 0:
                return None
            drop = idx[idx > at[-1]]
        else:
            tol = self.cmp.price_tolerance + TOLERANCE_EPS
            beyond = price[idx] > ref[f] + tol if f == "high" else price[idx] < ref[f] - tol
            drop = idx[beyond]
            keep = idx[~beyond]
            if len(keep) == 0:
                return None
            v = price[keep].max() if f == "high" else price[keep].min()
            if not bool(self.cmp.price_ok(v, ref[f])):
                return None
        if len(drop) == 0:
            return None
        names = [ZERO_GROUP if z == 0 else self.specific[c]
                 for c, z in zip(self.codes[rows[drop]], self.size[rows[drop]], strict=True)]
        if any(n is None for n in names):
            return None
        ordered = sorted(set(names), key=token_priority)
        return " & ".join(category_label(n) for n in ordered)

    def boundary(self, r: dict, rows, start: int, end: int, fields: list[str],
                 groups: list[_Group]) -> dict[str, str]:
        """A print just outside the bar that the vendor counted in it; approximate volume.

        A print within a second of the bar's start or end explains a volume difference
        its size matches exactly; one whose price is also the vendor's close (open)
        explains the close (open) and, approximately, the volume it brings closer.
        """
        out: dict[str, str] = {}
        size = self.size[rows]
        pok, vok = self.pok[rows], self.vok[rows]
        gen_vol = float(size[vok].sum())
        ref_vol = float(r["reference_volume"])
        d = ref_vol - gen_vol  # > 0: the vendor has more volume
        for side, (a, b), edge_field in (("next", (end, end + SECOND_NS), "close"),
                                         ("previous", (start - SECOND_NS, start), "open")):
            near = self.rows(r["symbol"], a, b)
            near = near[self.size[near] > 0]
            for t in near:
                s, p = float(self.size[t]), float(self.price[t])
                text = self.boundary_label(t, side)
                vol_exact = d > 0 and bool(self.cmp.volume_ok(gen_vol + s, ref_vol))
                edge = edge_field in fields and bool(
                    self.cmp.price_ok(p, r["reference_" + edge_field]))
                if not (vol_exact or (edge and 0 < s < 2 * abs(d))):
                    continue
                if edge:
                    out[edge_field] = text
                for f in ("high", "low"):
                    if f in fields and bool(self.cmp.price_ok(p, r["reference_" + f])):
                        out[f] = text
                if "volume" in fields and d > 0:
                    res = d - s
                    out["volume"] = text if vol_exact else (
                        f"{text} (approximately: residual {num(res, signed=True)})")
                break
            if out:
                break
        if "volume" not in fields or "volume" in out:
            return out
        if d < 0:
            # the data's last print: the vendor's file ends before it
            if len(rows) and self.is_last_print(r["symbol"], rows[-1]) and self.vok[
                    rows[-1]] and bool(self.cmp.volume_ok(gen_vol - self.size[rows[-1]],
                                                          ref_vol)):
                out["volume"] = LAST_PRINT
                return out
            # identical prints repeated in one millisecond that the vendor counts once
            same = np.zeros(len(rows), dtype=bool)
            if len(rows) > 1:
                cond = self.codes[rows]
                same[1:] = ((self.ts[rows][1:] == self.ts[rows][:-1])
                            & (self.price[rows][1:] == self.price[rows][:-1])
                            & (size[1:] == size[:-1]) & (cond[1:] == cond[:-1]))
            same &= vok
            for k in np.flatnonzero(same):
                if bool(self.cmp.volume_ok(gen_vol - size[k], ref_vol)):
                    out["volume"] = (
                        "repeated identical print counted once by the vendor "
                        f"({num(size[k])} @ {num(self.price[rows[k]])}, "
                        f"{self.stamp(rows[k])})"
                    )
                    return out
        if d != 0:
            # the group that brings volume closest, if it explains nearly all of it
            best: tuple[float, str] | None = None
            for g in groups:
                for _kind, ok in self.variants("volume", g, self.price[rows], size, pok, vok,
                                               {}):
                    res = ref_vol - float(size[ok].sum())
                    if abs(res) <= 0.1 * abs(d) and (best is None or abs(res) < abs(best[0])):
                        best = (res, self.label(g, rows, ok != vok))
            if best is not None:
                out["volume"] = f"{best[1]} (approximately: residual {num(best[0], signed=True)})"
        return out

    def is_last_print(self, symbol: str, t: int) -> bool:
        """Whether row ``t`` is the symbol's last tick in the data (not only the subset)."""
        if t != self.sym_range.get(symbol, (0, 0))[1] - 1:
            return False
        return self.sym_last_ts is None or int(self.ts[t]) == self.sym_last_ts.get(symbol)

    def stamp(self, t: int) -> str:
        return pd.Timestamp(int(self.ts[t]), tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def boundary_label(self, t: int, side: str) -> str:
        cond = self.uniques[self.codes[t]] or "no condition"
        return (f"boundary print: the vendor counts a print of the {side} interval here "
                f"({cond}, {num(self.size[t])} @ {num(self.price[t])}, {self.stamp(t)})")

    # -- missing bars --------------------------------------------------------------
    def explain_missing_generated(self, row) -> str:
        start, end = self.interval(row.timeframe, int(row.ts))
        rows = self.rows(row.symbol, start, end)
        if len(rows) == 0:
            return "no ticks in the bar's interval"
        pok = self.pok[rows]
        for g in self.groups(rows):
            add = g.member & ~pok & ((self.size[rows] > 0) | (g.name == ZERO_GROUP))
            if add.any():
                return self.label(g, rows, add)
        return UNEXPLAINED

    def explain_missing_reference(self, row) -> str:
        start, end = self.interval(row.timeframe, int(row.ts))
        rows = self.rows(row.symbol, start, end)
        if len(rows) == 0:
            return UNEXPLAINED
        used = self.pok[rows]
        for g in self.groups(rows):
            if g.name in GENERIC_TOKENS:
                continue
            if (g.member | ~used).all() and (g.member & used).any():
                return self.label(g, rows, g.member & used)
        return UNEXPLAINED
