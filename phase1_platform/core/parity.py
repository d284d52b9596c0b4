"""BarComparator: parity of generated bars against reference (vendor) bars.

Both inputs are canonical frames (``schema.CANONICAL_COLUMNS``; internal bar frames are
converted with ``to_canonical``). Bars are joined on (symbol, timeframe, ts) and compared
field by field: open, high, low, close and volume always; trade_count and vwap only where
both sides have a value (LEAN bars have neither).

Tolerances: prices (and vwap) within ``price_tolerance`` absolute price units; volume
(and trade_count) within ``volume_tolerance`` relative to the reference (0.01 = 1%).

With the ticks the bars came from (a normalized tick frame) and the rule set that built
them, every mismatched bar gets a category where the data tells why. For each mismatched
field the comparator recomputes the bar with a group of special prints taken out (or put
back in, when the rule set excluded them): the prints carrying one condition, the auction
and official open/close prints, the zero-size prints; a group that makes the field match
the reference explains it. A single print just outside the bar that the vendor counted
inside it (both its size and price fit) is a boundary print. A volume difference that a
group explains only for the most part is reported as approximate, with the residual.
Only mismatched bars are recomputed, each on its own slice of ticks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .calendar import DEFAULT_CALENDAR, sessions_between
from .conditions import AUCTION_CONDITIONS, LEAN_FLAGS
from .engine import ensure_canonical
from .export import format_timestamps, to_canonical
from .rules import DEFAULT_RULES, EligibilityRules, entry_matches, get_rules
from .schema import CANONICAL_COLUMNS, ts_ns
from .timeframes import TIMEFRAMES

PRICE_FIELDS = ("open", "high", "low", "close")
CORE_FIELDS = (*PRICE_FIELDS, "volume")
OPTIONAL_FIELDS = ("trade_count", "vwap")
FIELDS = (*CORE_FIELDS, *OPTIONAL_FIELDS)
KEY = ["symbol", "timeframe", "ts"]

UNEXPLAINED = "unexplained"
NO_TICKS = "unexplained (no ticks given)"
ZERO_SIZE = "zero-size print"
SUSPICIOUS = "suspicious print"
ODD_LOT = "odd lot"
AUCTION_GROUP = "auction"
ZERO_GROUP = "zero-size"
# generic tokens: tried last, they travel with more specific ones (a sweep is trade-through exempt)
_LAST = ("IntermarketSweep", "TradeThroughExempt", "Regular")
# too generic to explain a difference alone: tried after every other explanation
_GENERIC = frozenset({"TradeThroughExempt", "Regular"})
_TOLERANCE_EPS = 1e-9  # float noise of decimal prices printed and parsed back


class ParityInputError(ValueError):
    pass


def _token_priority(token: str) -> tuple[int, int, str]:
    flags = {name: bit for bit, name in LEAN_FLAGS.items()}
    if token == "Suspicious":
        return (0, 0, token)
    if token in AUCTION_CONDITIONS:
        return (1, flags.get(token, 99), token)
    if token == "OddLot":
        return (2, 0, token)
    if token in _LAST:
        return (4, _LAST.index(token), token)
    return (3, flags.get(token, 99), token)


def category_label(group: str, tokens: list[str] | None = None) -> str:
    """Human name of an explaining group of prints."""
    if group == AUCTION_GROUP:
        return f"auction/official open-close print ({', '.join(tokens or [])})"
    if group == ZERO_GROUP:
        return ZERO_SIZE
    if group == "Suspicious":
        return SUSPICIOUS
    if group == "OddLot":
        return ODD_LOT
    if group in AUCTION_CONDITIONS:
        return f"auction/official open-close print ({group})"
    return f"condition treated differently by vendor: {group}"


# ---------------------------------------------------------------------------------------
# the report


@dataclass
class ParityReport:
    price_tolerance: float
    volume_tolerance: float
    generated_bars: int
    reference_bars: int
    compared: int
    matched: int
    field_compared: dict[str, int]
    field_mismatched: dict[str, int]
    missing_in_generated: pd.DataFrame  # KEY + category
    missing_in_reference: pd.DataFrame  # KEY + category
    mismatches: pd.DataFrame  # KEY + fields, category, detail, generated_*/reference_*
    largest: dict[str, pd.DataFrame]  # per field: KEY + generated, reference, diff
    by_timeframe: dict[str, dict[str, int]]
    rules: str | None = None
    categorized: bool = False
    top: int = 5

    @property
    def mismatched(self) -> int:
        return self.compared - self.matched

    @property
    def field_matched(self) -> dict[str, int]:
        return {f: self.field_compared[f] - self.field_mismatched[f] for f in self.field_compared}

    @property
    def match_pct(self) -> float:
        """Matched bars as a share of every bar on either side (missing ones count)."""
        total = self.compared + len(self.missing_in_generated) + len(self.missing_in_reference)
        return 100.0 if total == 0 else 100.0 * self.matched / total

    @property
    def is_parity(self) -> bool:
        return (
            self.mismatched == 0
            and len(self.missing_in_generated) == 0
            and len(self.missing_in_reference) == 0
        )

    @property
    def category_counts(self) -> dict[str, int]:
        """Mismatched bars per category (a bar with two causes counts under each)."""
        counts: dict[str, int] = {}
        for cats in self.mismatches["categories"] if len(self.mismatches) else []:
            for c in cats:
                counts[c] = counts.get(c, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def field_category_counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for detail in self.mismatches["detail"] if len(self.mismatches) else []:
            for f, c in detail.items():
                out.setdefault(f, {}).setdefault(c, 0)
                out[f][c] += 1
        return {f: dict(sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))) for f, d in out.items()}

    def to_dict(self) -> dict:
        """JSON-able summary (plain ints, floats and strings only)."""

        def rows(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
            if len(frame) == 0:
                return []
            out = frame[columns].copy()
            out["ts"] = format_timestamps(frame["ts"].to_numpy("int64"))
            recs = out.to_dict(orient="records")
            return [{k: _plain(v) for k, v in r.items()} for r in recs]

        return {
            "is_parity": self.is_parity,
            "price_tolerance": self.price_tolerance,
            "volume_tolerance": self.volume_tolerance,
            "rules": self.rules,
            "categorized": self.categorized,
            "generated_bars": self.generated_bars,
            "reference_bars": self.reference_bars,
            "compared": self.compared,
            "matched": self.matched,
            "mismatched": self.mismatched,
            "match_pct": round(self.match_pct, 4),
            "fields": {
                f: {
                    "compared": self.field_compared[f],
                    "matched": self.field_matched[f],
                    "mismatched": self.field_mismatched[f],
                }
                for f in self.field_compared
            },
            "by_timeframe": self.by_timeframe,
            "missing_in_generated": len(self.missing_in_generated),
            "missing_in_reference": len(self.missing_in_reference),
            "missing_in_generated_bars": rows(self.missing_in_generated, KEY + ["category"]),
            "missing_in_reference_bars": rows(self.missing_in_reference, KEY + ["category"]),
            "categories": self.category_counts,
            "field_categories": self.field_category_counts(),
            "largest_differences": {
                f: rows(frame, KEY + ["generated", "reference", "diff"])
                for f, frame in self.largest.items()
            },
            "mismatches": [
                {**r, "detail": dict(d)}
                for r, d in zip(
                    rows(self.mismatches, KEY + ["fields", "category"]),
                    self.mismatches["detail"] if len(self.mismatches) else [],
                    strict=True,
                )
            ],
        }

    def to_text(self, max_rows: int = 20) -> str:
        lines = []
        lines.append(f"bars: generated {self.generated_bars}, reference {self.reference_bars}")
        per_tf = ", ".join(
            f"{tf} {v['matched']}/{v['compared']}" for tf, v in self.by_timeframe.items()
        )
        lines.append(f"compared: {self.compared}" + (f" (matched per timeframe: {per_tf})"
                                                     if per_tf else ""))
        lines.append(f"matched: {self.matched} ({self.match_pct:.2f}%)")
        lines.append(f"mismatched: {self.mismatched}")
        for f, n in self.field_compared.items():
            lines.append(
                f"  {f:<11} matched {self.field_matched[f]}/{n}, "
                f"mismatched {self.field_mismatched[f]}"
            )
        lines.append(f"missing in generated: {len(self.missing_in_generated)}")
        lines.append(f"missing in reference: {len(self.missing_in_reference)}")
        lines.append(
            f"tolerances: price {self.price_tolerance:g} (absolute), "
            f"volume {self.volume_tolerance:g} (relative)"
            + (f"; rule set: {self.rules}" if self.rules else "")
        )
        cats = self.category_counts
        if cats:
            lines.append("mismatch categories (bars):")
            lines += [f"  {n:>5}  {c}" for c, n in cats.items()]
            if not self.categorized:
                lines.append("  (give the ticks to categorize mismatches)")
        for title, frame in (("missing in generated", self.missing_in_generated),
                             ("missing in reference", self.missing_in_reference)):
            if len(frame):
                lines.append(f"{title} (first {min(len(frame), max_rows)}):")
                stamps = format_timestamps(frame["ts"].to_numpy("int64")[:max_rows])
                for (_, r), stamp in zip(frame.head(max_rows).iterrows(), stamps, strict=True):
                    lines.append(f"  {r['symbol']} {r['timeframe']} {stamp}  {r['category']}")
        if any(len(v) for v in self.largest.values()):
            lines.append("largest differences:")
            for f, frame in self.largest.items():
                if not len(frame):
                    continue
                stamps = format_timestamps(frame["ts"].to_numpy("int64"))
                for (_, r), stamp in zip(frame.iterrows(), stamps, strict=True):
                    lines.append(
                        f"  {f:<11} {r['symbol']} {r['timeframe']} {stamp}  generated "
                        f"{_num(r['generated'])} reference {_num(r['reference'])} "
                        f"diff {_num(r['diff'], signed=True)}"
                    )
        if len(self.mismatches):
            lines.append(f"mismatched bars (first {min(len(self.mismatches), max_rows)}):")
            m = self.mismatches.head(max_rows)
            stamps = format_timestamps(m["ts"].to_numpy("int64"))
            for (_, r), stamp in zip(m.iterrows(), stamps, strict=True):
                parts = []
                for f in r["fields"].split(","):
                    parts.append(f"{f} {_num(r['generated_' + f])}/{_num(r['reference_' + f])}")
                lines.append(f"  {r['symbol']} {r['timeframe']} {stamp}  {'; '.join(parts)}")
                for f, c in r["detail"].items():
                    lines.append(f"      {f}: {c}")
        lines.append("result: " + ("PARITY" if self.is_parity else "MISMATCH"))
        return "\n".join(lines)


def _plain(v):
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        v = float(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _num(v, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    s = f"{float(v):+.8f}" if signed else f"{float(v):.8f}"
    s = s.rstrip("0").rstrip(".")
    return s


# ---------------------------------------------------------------------------------------
# the comparator


def _as_canonical(frame: pd.DataFrame, side: str) -> pd.DataFrame:
    if "qty" in frame.columns:
        frame = to_canonical(frame)
    missing = [c for c in CANONICAL_COLUMNS if c not in frame.columns]
    if missing:
        raise ParityInputError(f"{side} bars lack column(s) {', '.join(missing)}")
    out = frame[list(CANONICAL_COLUMNS)].astype(CANONICAL_COLUMNS)
    dup = out.duplicated(subset=KEY)
    if dup.any():
        r = out[dup].iloc[0]
        stamp = format_timestamps(np.array([r["ts"]], dtype="int64"))[0]
        raise ParityInputError(
            f"{side} bars repeat the bar {r['symbol']} {r['timeframe']} {stamp}"
        )
    return out


@dataclass
class BarComparator:
    price_tolerance: float = 1e-9
    volume_tolerance: float = 0.0
    calendar: str = DEFAULT_CALENDAR
    top: int = 5

    def __post_init__(self) -> None:
        if not (self.price_tolerance >= 0 and math.isfinite(self.price_tolerance)):
            raise ParityInputError("price tolerance must be a number >= 0")
        if not (self.volume_tolerance >= 0 and math.isfinite(self.volume_tolerance)):
            raise ParityInputError("volume tolerance must be a number >= 0")

    # tolerance tests, shared with the categorizer
    def price_ok(self, g, r):
        return np.abs(np.asarray(g, dtype="float64") - np.asarray(r, dtype="float64")) <= (
            self.price_tolerance + _TOLERANCE_EPS
        )

    def volume_ok(self, g, r):
        g = np.asarray(g, dtype="float64")
        r = np.asarray(r, dtype="float64")
        return (g == r) | (np.abs(g - r) <= self.volume_tolerance * np.abs(r) + 1e-9)

    def field_ok(self, f: str, g, r):
        return self.price_ok(g, r) if f in PRICE_FIELDS or f == "vwap" else self.volume_ok(g, r)

    def compare(
        self,
        generated: pd.DataFrame,
        reference: pd.DataFrame,
        ticks: pd.DataFrame | None = None,
        rules: EligibilityRules | str | None = None,
    ) -> ParityReport:
        gen = _as_canonical(generated, "generated")
        ref = _as_canonical(reference, "reference")
        rule_set = get_rules(rules) if isinstance(rules, str) else (rules or DEFAULT_RULES)
        m = gen.merge(ref, on=KEY, how="outer", suffixes=("_g", "_r"), indicator=True)
        m = _sort(m)
        both = m[m["_merge"] == "both"].reset_index(drop=True)
        only_g = m.loc[m["_merge"] == "left_only", KEY].reset_index(drop=True)
        only_r = m.loc[m["_merge"] == "right_only", KEY].reset_index(drop=True)

        n = len(both)
        bad = np.zeros(n, dtype=bool)
        field_bad: dict[str, np.ndarray] = {}
        field_compared: dict[str, int] = {}
        field_mismatched: dict[str, int] = {}
        largest: dict[str, pd.DataFrame] = {}
        for f in FIELDS:
            g = both[f + "_g"].to_numpy("float64")
            r = both[f + "_r"].to_numpy("float64")
            have = ~np.isnan(g) & ~np.isnan(r)
            if f in CORE_FIELDS:
                # a NaN in a core field never matches (both NaN: equal)
                both_nan = np.isnan(g) & np.isnan(r)
                ok = np.where(have, self.field_ok(f, np.nan_to_num(g), np.nan_to_num(r)), both_nan)
                compared = np.ones(n, dtype=bool)
            else:
                if not have.any():
                    continue
                ok = np.where(have, self.field_ok(f, np.nan_to_num(g), np.nan_to_num(r)), True)
                compared = have
            fb = compared & ~ok
            field_bad[f] = fb
            field_compared[f] = int(compared.sum())
            field_mismatched[f] = int(fb.sum())
            bad |= fb
            if fb.any():
                diff = g - r
                order = np.argsort(-np.abs(np.where(fb, np.nan_to_num(diff, nan=np.inf), 0)),
                                   kind="stable")[: min(self.top, int(fb.sum()))]
                largest[f] = pd.DataFrame(
                    {
                        "symbol": both["symbol"].to_numpy()[order],
                        "timeframe": both["timeframe"].to_numpy()[order],
                        "ts": both["ts"].to_numpy("int64")[order],
                        "generated": g[order],
                        "reference": r[order],
                        "diff": diff[order],
                    }
                )

        by_tf: dict[str, dict[str, int]] = {}
        tf_col = both["timeframe"].to_numpy()
        for tf in sorted(set(tf_col), key=lambda t: TIMEFRAMES[t].ns if t in TIMEFRAMES else 0):
            sel = tf_col == tf
            by_tf[str(tf)] = {"compared": int(sel.sum()), "matched": int((sel & ~bad).sum())}

        mism = both[bad].reset_index(drop=True)
        fields_per_bar = [
            ",".join(f for f in FIELDS if f in field_bad and field_bad[f][i])
            for i in np.flatnonzero(bad)
        ]
        mismatches = pd.DataFrame(
            {
                "symbol": mism["symbol"].to_numpy(),
                "timeframe": mism["timeframe"].to_numpy(),
                "ts": mism["ts"].to_numpy("int64"),
                "fields": fields_per_bar,
            }
        )
        for f in FIELDS:
            mismatches["generated_" + f] = mism[f + "_g"].to_numpy("float64")
            mismatches["reference_" + f] = mism[f + "_r"].to_numpy("float64")

        categorized = ticks is not None
        if categorized and (len(mismatches) or len(only_g) or len(only_r)):
            cat = _Categorizer(ticks, rule_set, self)
            details = [cat.explain_bar(row) for row in mismatches.itertuples(index=False)]
            only_r = only_r.assign(category=[cat.explain_missing_generated(r)
                                             for r in only_r.itertuples(index=False)])
            only_g = only_g.assign(category=[cat.explain_missing_reference(r)
                                             for r in only_g.itertuples(index=False)])
        else:
            label = UNEXPLAINED if categorized else NO_TICKS
            details = [{f: label for f in fs.split(",")} for fs in fields_per_bar]
            only_r = only_r.assign(category=label)
            only_g = only_g.assign(category=label)
        mismatches["detail"] = details
        mismatches["categories"] = [
            list(dict.fromkeys(c for v in d.values() for c in v.split(" & "))) for d in details
        ]
        mismatches["category"] = ["; ".join(c) for c in mismatches["categories"]]

        return ParityReport(
            price_tolerance=self.price_tolerance,
            volume_tolerance=self.volume_tolerance,
            generated_bars=len(gen),
            reference_bars=len(ref),
            compared=n,
            matched=int(n - bad.sum()),
            field_compared=field_compared,
            field_mismatched=field_mismatched,
            missing_in_generated=only_r,
            missing_in_reference=only_g,
            mismatches=mismatches,
            largest=largest,
            by_timeframe=by_tf,
            rules=rule_set.name if (categorized or rules is not None) else None,
            categorized=categorized,
            top=self.top,
        )


def _sort(frame: pd.DataFrame) -> pd.DataFrame:
    if len(frame) == 0:
        return frame
    rank = frame["timeframe"].map(
        {n: i for i, n in enumerate(TIMEFRAMES)}
    ).fillna(len(TIMEFRAMES)).to_numpy()
    order = np.lexsort((frame["ts"].to_numpy("int64"), rank,
                        pd.factorize(frame["symbol"], sort=True)[0]))
    return frame.iloc[order]


# ---------------------------------------------------------------------------------------
# categorization


@dataclass
class _Group:
    name: str  # AUCTION_GROUP, ZERO_GROUP, a token, or a rule-set entry
    member: np.ndarray  # bool per tick of the slice


class _Categorizer:
    """Explains mismatched bars from the ticks and the rule set that built them."""

    def __init__(self, ticks: pd.DataFrame, rules: EligibilityRules, cmp: BarComparator):
        missing = [c for c in ("ts", "symbol", "price", "size", "conditions")
                   if c not in ticks.columns]
        if missing:
            raise ParityInputError(
                f"ticks lack column(s) {', '.join(missing)}: give normalized ticks"
            )
        ticks = ensure_canonical(ticks) if len(ticks) else ticks
        self.cmp = cmp
        self.rules = rules
        self.ts = ts_ns(ticks["ts"]) if len(ticks) else np.empty(0, dtype="int64")
        self.price = ticks["price"].to_numpy("float64")
        self.size = ticks["size"].to_numpy("float64")
        conditions = ticks["conditions"].astype("str").fillna("")
        self.pok, self.vok = rules.evaluate(conditions, self.size)
        self.codes, uniques = pd.factorize(conditions.to_numpy(dtype=object),
                                           use_na_sentinel=False)
        self.uniques = [str(u) for u in uniques]
        toks = sorted({t for u in self.uniques for t in u.split()}, key=_token_priority)
        self.tokens = toks
        self.member = np.zeros((len(self.uniques), len(toks)), dtype=bool)
        index = {t: i for i, t in enumerate(toks)}
        for ui, u in enumerate(self.uniques):
            for t in u.split():
                self.member[ui, index[t]] = True
        # per distinct conditions string: its most specific condition (None: Regular only)
        self.specific = [
            next(iter(sorted((t for t in u.split() if t != "Regular"), key=_token_priority)),
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
                           if t in AUCTION_CONDITIONS}, key=_token_priority)
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
        specific = [g for g in groups if g.name not in _GENERIC]
        generic = [g for g in groups if g.name in _GENERIC]
        for f in fields:
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
        return {f: detail.get(f, UNEXPLAINED) for f in fields}

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
            tol = self.cmp.price_tolerance + _TOLERANCE_EPS
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
        ordered = sorted(set(names), key=_token_priority)
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
        second = 1_000_000_000
        for side, (a, b), edge_field in (("next", (end, end + second), "close"),
                                         ("previous", (start - second, start), "open")):
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
                        f"{text} (approximately: residual {_num(res, signed=True)})")
                break
            if out:
                break
        if "volume" not in fields or "volume" in out:
            return out
        if d < 0:
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
                        f"({_num(size[k])} @ {_num(self.price[rows[k]])}, "
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
                out["volume"] = f"{best[1]} (approximately: residual {_num(best[0], signed=True)})"
        return out

    def stamp(self, t: int) -> str:
        return pd.Timestamp(int(self.ts[t]), tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def boundary_label(self, t: int, side: str) -> str:
        cond = self.uniques[self.codes[t]] or "no condition"
        return (f"boundary print: the vendor counts a print of the {side} interval here "
                f"({cond}, {_num(self.size[t])} @ {_num(self.price[t])}, {self.stamp(t)})")

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
            if g.name in _GENERIC:
                continue
            if (g.member | ~used).all() and (g.member & used).any():
                return self.label(g, rows, g.member & used)
        return UNEXPLAINED
