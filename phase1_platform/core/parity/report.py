"""ParityReport: the result of a comparison, as numbers, a dict and a text."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..export import format_timestamps
from .labels import (
    KEY,
    num,
    plain,
)


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
            return [{k: plain(v) for k, v in r.items()} for r in recs]

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
                        f"{num(r['generated'])} reference {num(r['reference'])} "
                        f"diff {num(r['diff'], signed=True)}"
                    )
        if len(self.mismatches):
            lines.append(f"mismatched bars (first {min(len(self.mismatches), max_rows)}):")
            m = self.mismatches.head(max_rows)
            stamps = format_timestamps(m["ts"].to_numpy("int64"))
            for (_, r), stamp in zip(m.iterrows(), stamps, strict=True):
                parts = []
                for f in r["fields"].split(","):
                    parts.append(f"{f} {num(r['generated_' + f])}/{num(r['reference_' + f])}")
                lines.append(f"  {r['symbol']} {r['timeframe']} {stamp}  {'; '.join(parts)}")
                for f, c in r["detail"].items():
                    lines.append(f"      {f}: {c}")
        lines.append("result: " + ("PARITY" if self.is_parity else "MISMATCH"))
        return "\n".join(lines)
