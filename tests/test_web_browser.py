"""The workspace in a real browser: Debian's Chromium driven by Playwright against a real
`qa-inspect serve` (uvicorn) on 127.0.0.1. A reviewer works through their queue with the audio
playing; an agent appeals; a supervisor decides. No console error, no request leaves the server.
Skipped when /usr/bin/chromium or playwright is missing."""
import json
import os
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's Chromium (/usr/bin/chromium) is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

from web_helpers import PASSWORD, build_db, serving  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def server(tmp_path_factory, root, samples):
    """A results database from the batch, a sample assigned to rev1/rev2, and `qa-inspect serve`."""
    from click.testing import CliRunner

    from qa_inspect.cli import main

    tmp = tmp_path_factory.mktemp("webui")
    db = str(build_db(tmp, root, samples))
    r = CliRunner().invoke(main, ["sample", "--db", db, "--plan", str(root / "rules/sampling_plan.yaml"),
                                  "--seed", "3", "--out", str(tmp / "ws.xlsx"), "--json"])
    assert r.exit_code == 0, r.output
    sid = json.loads(r.output[r.output.index("{"):])["sample_id"]
    assert CliRunner().invoke(main, ["assign", sid, "--reviewers", "rev1,rev2", "--db", db]).exit_code == 0
    with serving(db, root, "--appeal-window-days", "365") as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def until(page, expr: str, timeout_ms: int = 5000) -> None:
    """Wait until the JavaScript expression is true (polled from here: the page's CSP forbids
    the string evaluation ``wait_for_function`` uses, as it should)."""
    end = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(expr):
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {expr}")
        time.sleep(0.05)


class Watch:
    """A browser context that refuses and records any request not to the server, and records
    console errors and page errors."""

    def __init__(self, browser, base):
        self.base, self.outside, self.errors = base, [], []
        self.ctx = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
        self.ctx.route("**/*", self._route)
        self.page = self.ctx.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _route(self, route):
        if route.request.url.startswith(self.base + "/"):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def login(self, name):
        p = self.page
        p.goto(self.base + "/")
        assert p.url.endswith("/login")
        p.fill('input[name="username"]', name)
        p.fill('input[name="password"]', PASSWORD)
        p.click('button[type="submit"]')
        p.wait_for_url(self.base + "/")
        return p

    def close(self):
        self.ctx.close()
        assert self.outside == [], self.outside
        assert self.errors == [], self.errors


def test_reviewer_listens_marks_items_and_moves_on(browser, server, tmp_path):
    w = Watch(browser, server)
    p = w.login("rev1")
    assert "待复核队列" in p.title() and p.locator("#my-queue .call-link").count() >= 1
    first = p.locator("#my-queue .call-link").first.inner_text()
    p.locator("#my-queue .call-link").first.click()
    p.wait_for_url(f"{server}/calls/{first}")
    assert p.locator("#call-id").inner_text() == first
    # the audio loads and plays
    until(p, "document.getElementById('player').readyState >= 2", 15000)
    p.evaluate("document.getElementById('player').play()")
    t0 = p.evaluate("document.getElementById('player').currentTime")
    until(p, f"document.getElementById('player').currentTime > {t0} + 0.3", 10000)
    # click a later turn: the player seeks to its start and highlights it
    turns = p.locator(".turn")
    target = turns.nth(min(2, turns.count() - 1))
    start = float(target.get_attribute("data-start"))
    target.click()
    until(p, f"Math.abs(document.getElementById('player').currentTime - {start}) < 1.0")
    until(p, "document.querySelector('.turn.current') !== null")
    assert p.locator(".turn.current").count() == 1
    # speed
    p.select_option("#speed", "1.5")
    assert p.evaluate("document.getElementById('player').playbackRate") == 1.5
    # mark a flagged item as a false hit (or a passed one as missed): the manual score changes live
    before = p.locator("#score-manual").inner_text()
    hit = p.locator('.item.is-hit:not(.is-fatal):not([data-points="0.0"]) .v-fp')
    if hit.count():
        hit.first.click()
    else:
        p.locator(".item.not-hit .v-missed").first.click()
    until(p, f"document.getElementById('score-manual').textContent.trim() !== {json.dumps(before)}")
    live = float(p.locator("#score-manual").inner_text())  # a number now, proposed in the input too
    assert float(p.locator("#manual-score").input_value()) == live
    p.screenshot(path=str(Path(os.environ.get("QA_WEB_SCREENSHOT_DIR", tmp_path)) / "call_page.png"), full_page=False)
    # keyboard: space pauses/plays, j selects the next hit's item and seeks there, c confirms it
    paused = p.evaluate("document.getElementById('player').paused")
    p.locator("body").press(" ")
    until(p, f"document.getElementById('player').paused === {'false' if paused else 'true'}")
    p.locator("body").press("j")
    assert p.locator(".item.selected").count() == 1
    p.locator("body").press("c")
    assert p.locator(".item.selected").get_attribute("data-verdict") == "confirmed"
    # submit → the next call of the queue
    p.click("#submit-review")
    p.wait_for_url(lambda u: f"/calls/{first}" not in u)
    assert "/calls/" in p.url or p.url.rstrip("/") == server
    w.page.goto(f"{server}/calls/{first}")
    assert "rev1" in p.locator("#history").inner_text()
    w.close()


def test_agent_appeals_and_supervisor_decides(browser, server):
    w = Watch(browser, server)
    p = w.login("ag3")
    assert p.locator("#all-calls .call-link").count() >= 1
    p.goto(f"{server}/calls/zh_forbidden_phrase")
    p.check('input[name="appeal-item"][value="forbidden_phrase"]')
    p.fill("#appeal-reason", "客户先辱骂，属正常回应")
    p.click('#appeal-form button[type="submit"]')
    p.wait_for_selector(".appeal .tag:has-text('申诉中')")
    assert p.goto(f"{server}/calls/zh_billing_12315").status == 403  # another agent's call
    w.errors.clear()  # the 403 page load itself is logged by the browser as a failed resource
    w.close()

    s = Watch(browser, server)
    p = s.login("sup")
    p.goto(f"{server}/appeals")
    p.click("text=zh_forbidden_phrase")
    p.fill('.decide-form textarea[name="comment"]', "录音核实，客户先辱骂")
    p.click('.decide-form button[value="1"]')
    p.wait_for_selector(".appeal .tag:has-text('申诉成立')")
    final = p.locator("#score-final").inner_text()
    assert final.startswith("63") and "申诉" in final
    s.close()
