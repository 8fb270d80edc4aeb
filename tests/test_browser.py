"""The pages people open, checked in a real headless Chromium: they load with no console
errors and no request beyond the page's own files, charts render, the audio players play.

Skips (with the reason) when no Chromium is installed; .ci/run installs Debian's chromium.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from chromium_cdp import Chromium, find_chromium
from qa_inspect.reports.agents import write_agent_reports
from qa_inspect.reports.batch import write_batch_report
from qa_inspect.reports.examples import write_gallery
from qa_inspect.store import open_store
from report_fixtures import build_db

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")

CHART_SIZES = """JSON.stringify(Array.from(document.querySelectorAll("svg.chart")).map(
  e => { const r = e.getBoundingClientRect(); return [r.width, r.height,
         e.querySelectorAll("rect,path,circle").length]; }))"""

PLAY = """(async () => {
  const a = document.querySelector("audio");
  if (a.readyState < 1) await new Promise((ok, no) => {
    a.addEventListener("loadedmetadata", ok);
    a.addEventListener("error", () => no(new Error("media error " + (a.error && a.error.code))));
    setTimeout(() => no(new Error("metadata timeout")), 10000); });
  const duration = a.duration;
  await a.play();
  const t0 = a.currentTime;
  await new Promise(r => setTimeout(r, 600));
  const t1 = a.currentTime;
  a.pause();
  return {duration, t0, t1, readyState: a.readyState, players: document.querySelectorAll("audio").length};
})()"""


@pytest.fixture(scope="module")
def pages(root, samples, tmp_path_factory):
    out = tmp_path_factory.mktemp("browser")
    db = build_db(root, samples, out / "qa.db")
    with open_store(db) as s:
        results = list(s.results())
    ok = [r for r in results if r.status == "ok"]
    batch = write_batch_report(results, out / "batch")
    scorecards = write_agent_reports(ok, out / "scorecards")
    gallery, _ = write_gallery(ok, "escalation_risk", out / "gallery")
    return {"batch": batch, "index": scorecards[0],
            "team": next(p for p in scorecards if p.name.startswith("team-")),
            "agent": out / "scorecards" / "agent-A002.html", "gallery": gallery}


@pytest.fixture(scope="module")
def browser():
    b = Chromium(CHROMIUM)
    yield b
    b.close()


def _check_loaded(page, path: Path):
    log = page.log()
    assert log.console_errors == []
    assert log.failed_requests == []
    folder = path.parent.resolve().as_uri() + "/"
    # nothing leaves the machine: only the page itself, files beside it, inline data
    stray = [u for u in log.requests if not (u.startswith("data:") or u.startswith(folder))]
    assert stray == []
    assert page.eval("document.readyState") == "complete"


@pytest.mark.parametrize("name", ["batch", "index", "team", "agent", "gallery"])
def test_page_loads_offline_without_errors(browser, pages, name):
    page = browser.open(pages[name])
    try:
        _check_loaded(page, pages[name])
        assert page.eval("document.body.innerText.length") > 200
    finally:
        page.close()


@pytest.mark.parametrize("name,min_charts", [("agent", 3), ("team", 3)])
def test_charts_render(browser, pages, name, min_charts):
    import json

    page = browser.open(pages[name])
    try:
        charts = json.loads(page.eval(CHART_SIZES))
        assert len(charts) >= min_charts
        assert all(w > 100 and h > 100 and shapes > 0 for w, h, shapes in charts)
    finally:
        page.close()


def test_batch_report_alerts_first_and_metrics(browser, pages):
    page = browser.open(pages["batch"])
    try:
        first = page.eval('document.querySelector("section").id')
        assert first == "risk"
        ids = page.eval('Array.from(document.querySelectorAll(".alert")).map(a => a.dataset.callId)')
        assert {"zh_billing_12315", "zh_media_threat"} <= set(ids)
        # the negative customer ending from the enrichment metric is an alert too
        assert "zh_media_threat" in ids
        assert page.eval('document.querySelectorAll("[data-metric=speech_rate_agent]").length') > 0
        # urgent alerts are on screen; the 关注 (watch) level is folded until opened
        visible = page.eval('Array.from(document.querySelectorAll(".alert")).filter('
                            'a => a.checkVisibility()).map(a => a.dataset.level)')
        assert visible and "watch" not in visible and visible[0] == "urgent"
        if page.eval('!!document.querySelector("details#watch")'):
            assert page.eval('document.querySelector("details#watch").open') is False
        # one language on the page: no doubled "中文 / English" labels
        text = page.eval("document.body.innerText")
        assert "风险预警" in text and "Risk alerts" not in text and "通话总数" in text
    finally:
        page.close()


def test_audio_player_plays_a_clip(browser, pages):
    page = browser.open(pages["gallery"])
    try:
        r = page.eval(PLAY, await_promise=True)
        assert r["players"] >= 1 and r["duration"] > 1.0 and r["readyState"] >= 2
        assert r["t1"] > r["t0"]  # playback advanced
        _check_loaded(page, pages["gallery"])
    finally:
        page.close()


def test_the_checks_catch_errors_and_outside_requests(browser, tmp_path):
    # the harness itself: a page that phones home and logs an error must fail the checks
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="http://192.0.2.1/x.png">'
                   '<script>console.error("boom")</script></body></html>', encoding="utf-8")
    page = browser.open(bad)
    try:
        log = page.log()
        assert any("boom" in e for e in log.console_errors)
        assert "http://192.0.2.1/x.png" in log.requests
        with pytest.raises(AssertionError):
            _check_loaded(page, bad)
    finally:
        page.close()
