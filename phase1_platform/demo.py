"""`make run`: the fixture partitions through the Dagster pipeline, on SQLite.

Materializes ``2013-10-07|SPY`` (LEAN tick slice, checked against LEAN's own minute bars)
and ``2013-10-07|AAPL`` (the DESIGN tick CSV fixture, no reference) with every asset and
check, in the Dagster instance of ``DAGSTER_HOME`` (default ``./.dagster_home``), so the
runs, the lineage and the check results are in the UI afterwards. Prints the parity
summary and where the exports are; exit 1 if a check failed.
"""

from __future__ import annotations

import sys
import time

PARTITIONS = ("2013-10-07|SPY", "2013-10-07|AAPL")
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def main(argv: list[str] | None = None) -> int:
    from .cli.materialize import parse_key
    from .core.errors import UserError, one_line

    keys = list(argv if argv is not None else sys.argv[1:]) or list(PARTITIONS)
    try:  # a bad key is one line naming the fix, before Dagster sees it
        parts = [parse_key(k) for k in keys]
    except UserError as exc:
        print(f"phase1 demo: error: {one_line(exc)}", file=sys.stderr)
        return 2
    from .defs.instance import ensure_dagster_home

    home = ensure_dagster_home()
    import dagster as dg

    from .definitions import defs
    from .defs.partitions import SYMBOLS_PARTITION, date_partitions
    from .defs.resources import FileDropResource, PipelineSettings
    from .storage.store import mask_url, resolve_url

    outside = [p.key for p in parts if not date_partitions.has_partition_key(p.date)]
    if outside:
        print(f"phase1 demo: error: {', '.join(outside)}: outside the date partitions "
              "(PHASE1_FIRST_DATE to the next session): choose a trading day in that range",
              file=sys.stderr)
        return 2
    print(f"Dagster instance: {home}")
    print(f"store: {mask_url(resolve_url())}")
    print(f"file drop: {FileDropResource().describe()} (fixtures are used when the drop is empty)")
    ok_all = True
    with dg.DagsterInstance.get() as instance:
        symbols = sorted({p.symbol for p in parts})
        known = set(instance.get_dynamic_partitions(SYMBOLS_PARTITION))
        new = [s for s in symbols if s not in known]
        if new:
            instance.add_dynamic_partitions(SYMBOLS_PARTITION, new)
        job = defs.resolve_job_def("bars_pipeline")
        for part in parts:
            t0 = time.perf_counter()
            result = job.execute_in_process(partition_key=part.key, instance=instance,
                                            run_config=QUIET, raise_on_error=False)
            elapsed = time.perf_counter() - t0
            ok_all &= print_partition(part.key, result, elapsed)
    settings = PipelineSettings()
    print()
    print(f"exports: {settings.export_path().resolve()}/<date>/<SYMBOL>.csv")
    print("open the UI: `make ui` (or: DAGSTER_HOME=" + str(home)
          + " .venv/bin/dagster dev) and browse http://127.0.0.1:3000 -> Assets")
    print("all checks passed" if ok_all else "SOME CHECKS FAILED (details above and in the UI)")
    return 0 if ok_all else 1


def _value(md, key, default=None):
    v = md.get(key)
    return default if v is None else v.value


def print_partition(pk: str, result, elapsed: float) -> bool:
    print()
    print(f"== {pk}: run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED'} "
          f"in {elapsed:.1f} s")
    checks = result.get_asset_check_evaluations()
    failed = [c for c in checks if not c.passed]
    print(f"   checks: {len(checks) - len(failed)}/{len(checks)} passed"
          + (": failed " + ", ".join(c.check_name for c in failed) if failed else ""))
    for c in checks:
        if c.check_name == "parity_1m":
            md = c.metadata
            if _value(md, "compared"):
                print(f"   parity 1m vs vendor ({_value(md, 'rule_set')}): "
                      f"{_value(md, 'match_pct')}% of bars match "
                      f"({_value(md, 'bars_matched')}/{_value(md, 'bars_compared')} compared, "
                      f"missing generated {_value(md, 'missing_in_generated')}, "
                      f"missing reference {_value(md, 'missing_in_reference')})")
                cats = _value(md, "mismatched_by_category", {})
                if cats:
                    print("   mismatches by category: "
                          + ", ".join(f"{k}={v}" for k, v in cats.items()))
            else:
                print(f"   parity: {_value(md, 'reference')}")
        if c.check_name == "rejected_ratio":
            reasons = _value(c.metadata, "rejected_by_reason", {})
            detail = ", ".join(f"{k}: {v}" for k, v in reasons.items()) or "none"
            print(f"   rejected ticks: {_value(c.metadata, 'rejected')} of "
                  f"{_value(c.metadata, 'rows')} ({detail})")
    for e in result.get_asset_materialization_events():
        if e.asset_key.path[-1] == "canonical_export":
            md = e.materialization.metadata
            print(f"   export: {_value(md, 'path')} ({_value(md, 'rows')} bars "
                  f"{_value(md, 'bars_by_timeframe')})")
            print(f"   {_value(md, 'hash')}")
            break
    else:
        print("   export: not written (blocked by a failed check or step)")
    return bool(result.success) and not failed


if __name__ == "__main__":
    sys.exit(main())
