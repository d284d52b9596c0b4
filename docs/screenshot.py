"""Take docs/dashboard.png: the dashboard showing SPY 1m of the fixture day with its panel.

Run from the repository root: ``.venv/bin/python docs/screenshot.py`` (Debian's Chromium at
/usr/bin/chromium). It fills a temporary store the way a user does (``phase1 replay`` of
the fixture SPY and AAPL ticks, then the Dagster pipeline on both partitions, which records
the parity and quality verdicts), starts ``phase1 serve`` on free loopback ports, opens
the dashboard at 1400x800 with the crosshair on a candle, and saves the PNG. With
``--database-url`` it shows that store instead (nothing is built).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from phase1_platform_tests.browser.harness import (  # noqa: E402
    AAPL_TICKS,
    DAY,
    SPY_TICKS,
    DashboardPage,
    ServeProcess,
    clean_env,
    run_command,
    run_phase1,
)

LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]


def build_store(work: Path) -> str:
    url = f"sqlite:///{work / 'store.sqlite'}"
    print("replaying the fixture ticks ...", flush=True)
    run_phase1(["replay", "--csv", str(SPY_TICKS), "--csv", str(AAPL_TICKS),
                "--output", str(work / "replay.csv"), "--database-url", url])
    for sub in ("dagster", "drop", "exports"):
        (work / sub).mkdir()
    print("running the pipeline (parity and quality verdicts) ...", flush=True)
    env = clean_env(DATABASE_URL=url, DAGSTER_HOME=str(work / "dagster"),
                    PHASE1_DROP_DIR=str(work / "drop"), PHASE1_EXPORT_DIR=str(work / "exports"))
    run_command([sys.executable, "-m", "phase1_platform.demo", f"{DAY}|SPY", f"{DAY}|AAPL"],
                env=env, cwd=work, timeout=600)
    return url


def shoot(url: str, output: Path, work: Path) -> None:
    from playwright.sync_api import sync_playwright

    server = ServeProcess(url, work / "serve.log", cwd=work).wait_ready()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                        args=LAUNCH_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 800})
            dashboard = DashboardPage(page, server).open(f"SPY/1m/{DAY}")
            dashboard.wait_panel(DAY, "SPY")
            candles = dashboard.candles()
            target = candles[len(candles) * 2 // 5]
            x = page.evaluate(f"() => window.__dashboard.coordinateOf({target['time']})")
            box = dashboard.testid("chart").bounding_box()
            page.mouse.move(box["x"] + x, box["y"] + box["height"] * 0.45)
            page.wait_for_timeout(300)
            page.screenshot(path=str(output))
            browser.close()
    finally:
        server.stop()
    print(f"saved {output} ({len(candles)} candles)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(ROOT / "docs" / "dashboard.png"))
    parser.add_argument("--database-url", help="show this store instead of building one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="phase1-shot-") as tmp:
        work = Path(tmp)
        url = args.database_url or build_store(work)
        shoot(url, Path(args.output).resolve(), work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
