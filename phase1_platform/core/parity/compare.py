"""BarComparator: join generated and reference bars, compare field by field, and hand
every mismatched bar to the explainer."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..calendar import DEFAULT_CALENDAR
from ..export import format_timestamps, to_canonical
from ..rules import DEFAULT_RULES, EligibilityRules, get_rules
from ..schema import CANONICAL_COLUMNS
from ..timeframes import TIMEFRAMES
from .explain import Categorizer
from .labels import (
    CORE_FIELDS,
    FIELDS,
    KEY,
    NO_TICKS,
    PRICE_FIELDS,
    TOLERANCE_EPS,
    UNEXPLAINED,
    ParityInputError,
)
from .report import ParityReport


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
            self.price_tolerance + TOLERANCE_EPS
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
            explain = [(tf, int(ts)) for frame in (mismatches, only_r, only_g)
                       for tf, ts in zip(frame["timeframe"], frame["ts"], strict=True)]
            cat = Categorizer(ticks, rule_set, self, explain=explain)
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
