"""The dashboard when there is nothing to show: an empty store tells the user what to run and
picks the bars up by itself once they are stored; an unreachable API says so."""

from __future__ import annotations

import pytest

from .harness import AAPL_TICKS, DAY, NEXT_DAY, DashboardPage, ServeProcess, run_phase1, wait_until


@pytest.fixture
def empty_server(chromium, tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    run_phase1(["db", "upgrade", "--database-url", url])
    server = ServeProcess(url, tmp_path / "serve.log", cwd=tmp_path).wait_ready()
    yield server, url
    server.stop()


def test_empty_store_says_what_to_run_then_shows_the_bars(page, empty_server, tmp_path):
    server, url = empty_server
    assert server.get("/v1/symbols")["symbols"] == []
    dashboard = DashboardPage(page, server).open()
    assert dashboard.state()["page"] == "empty"
    empty = dashboard.testid("empty-state")
    assert empty.is_visible()
    text = empty.inner_text()
    assert "make run" in text
    assert "phase1 replay" in text and "--database-url" in text
    assert server.api_url in text
    assert dashboard.candles() == []
    assert dashboard.testid("symbol-select").is_disabled()
    assert dashboard.testid("date-select").is_disabled()

    # fill the store the way the empty state says: the page notices without a reload
    run_phase1(["replay", "--csv", str(AAPL_TICKS), "--output", str(tmp_path / "aapl.csv"),
                "--database-url", url])
    wait_until(page, "() => document.body.dataset.state === 'ready' && "
               "window.__dashboard.state().loads > 0", timeout=30, what="the bars after replay")
    assert not empty.is_visible()
    state = dashboard.state()
    assert (state["symbol"], state["date"]) == ("AAPL", DAY)
    bars = server.all_bars("AAPL", state["timeframe"], DAY, NEXT_DAY)
    assert len(dashboard.candles()) == len(bars) > 0
    assert dashboard.options("date-select") == [DAY]

    # another day stored while the page is open: the date picker lists it, the view stays
    next_day = tmp_path / "AAPL_next_day.csv"
    next_day.write_text(AAPL_TICKS.read_text().replace(DAY, NEXT_DAY))
    run_phase1(["replay", "--csv", str(next_day), "--output", str(tmp_path / "next.csv"),
                "--database-url", url])
    wait_until(page, "() => document.querySelector('[data-testid=date-select]').options.length"
               " === 2", timeout=40, what="the new date in the picker")
    assert dashboard.options("date-select") == [NEXT_DAY, DAY]
    assert dashboard.state()["date"] == DAY
    assert len(dashboard.candles()) == len(bars)


def test_unreachable_api_is_one_clear_message(page, dashboard_without_api):
    url, dead = dashboard_without_api
    page.goto(url + "/")
    wait_until(page, "() => document.body.dataset.state === 'error'", timeout=20,
               what="the error state")
    error = page.get_by_test_id("error-state")
    assert error.is_visible()
    text = error.inner_text()
    assert "Cannot reach the read API" in text
    assert dead in text and "phase1 serve" in text
