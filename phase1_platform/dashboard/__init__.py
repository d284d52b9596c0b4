"""The live bar dashboard (DESIGN section 10): a static single page served by Starlette.

`create_dashboard_app(api_url)` returns the ASGI app `phase1 serve` runs on
`--dashboard-port`. It serves `/` (the page), `/static/...` (its scripts, styles and the
vendored lightweight-charts build) and `/config.json`, which tells the page where the read
API lives. Every asset is a file in this package: the page works with no network.
"""

from phase1_platform.dashboard.app import STATIC_DIR, create_dashboard_app

__all__ = ["STATIC_DIR", "create_dashboard_app"]
