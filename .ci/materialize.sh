#!/usr/bin/env bash
# CI: materialize the fixture partitions through the real Dagster CLI, offline, with every
# check, on a throwaway Dagster instance and SQLite store (called by .ci/run after the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
WORK=$(mktemp -d "${TMPDIR:-/tmp}/phase1-ci-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export DAGSTER_HOME="$WORK/dagster_home"
export DATABASE_URL="sqlite:///$WORK/phase1.sqlite"
export PHASE1_DROP_DIR="$WORK/drop"          # empty: the fixtures are used
export PHASE1_EXPORT_DIR="$WORK/exports"
"$BIN/phase1" symbols add SPY AAPL
for PARTITION in '2013-10-07|SPY' '2013-10-07|AAPL'; do
  echo "== dagster asset materialize --partition $PARTITION"
  "$BIN/dagster" asset materialize -m phase1_platform.definitions --select '*' \
    --partition "$PARTITION" \
    --config-json '{"loggers": {"console": {"config": {"log_level": "WARNING"}}}}'
done
for F in "$WORK"/exports/2013-10-07/SPY.csv "$WORK"/exports/2013-10-07/AAPL.csv; do
  test -s "$F" || { echo "missing export $F" >&2; exit 1; }
  echo "$F sha256:$(sha256sum "$F" | cut -d' ' -f1)"
done
