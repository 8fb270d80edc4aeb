"""The KPI page (trend charts) and the complaint ticket flow in the workspace, in Debian's
Chromium against a real `qa-inspect serve`: a supervisor reads the KPIs, assigns a ticket,
receives it and records the first handling; every step shows in the ticket's audit list.
Skipped when /usr/bin/chromium or playwright is missing."""
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from test_web_browser import CHROMIUM, Watch, _free_port, browser  # noqa: F401
from web_helpers import build_db

if not Path(CHROMIUM).exists():
    pytest.skip("Debian's Chromium is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory, root, samples):
    from qa_inspect.store import open_store
    from qa_inspect.workflow.complaints import process_calls

    tmp = tmp_path_factory.mktemp("websvc")
    db = str(build_db(tmp, root, samples))
    with open_store(db) as st:
        opened, _ = process_calls(st, list(st.results()))
    assert opened >= 1  # the 12315 sample call
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "qa_inspect.cli", "serve", "--db", db, "--port", str(port)],
                            env={**os.environ, "PYTHONPATH": str(root)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/login", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("serve exited: " + proc.stdout.read())
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_supervisor_reads_kpis_and_works_a_ticket(browser, server):
    w = Watch(browser, server)
    p = w.login("sup")
    p.click('nav a[href="/kpi"]')
    p.wait_for_url(server + "/kpi")
    assert p.locator("#kpi svg.chart").count() == 3
    box = p.locator("#kpi svg.chart").first.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 50
    assert p.locator("#kpi-table tbody tr").count() >= 1 and "重复来电率" in p.locator("#kpi-table thead").inner_text()
    p.click('nav a[href="/complaints"]')
    p.wait_for_url(server + "/complaints")
    t = p.locator(".ticket").first
    tid = t.get_attribute("data-ticket-id")
    assert t.get_attribute("data-status") == "open"
    t.locator('input[name="owner"]').fill("rev1")
    t.locator('button[value="assign"]').click()
    p.wait_for_url(f"{server}/complaints#t{tid}")
    t = p.locator(f"#t{tid}")
    assert t.get_attribute("data-status") == "assigned" and "负责人 rev1" in t.inner_text()
    t.locator('button[value="receive"]').click()
    p.wait_for_load_state()
    t = p.locator(f"#t{tid}")
    assert t.get_attribute("data-status") == "received"
    t.locator('input[name="note"]').fill("已致歉并安排核查")
    t.locator('button[value="handle"]').click()
    p.wait_for_load_state()
    t = p.locator(f"#t{tid}")
    assert t.get_attribute("data-status") == "handled"
    events = t.locator(".events").inner_text()
    assert "派单 sup" in events and "签收 sup" in events and "首次处理 sup 已致歉并安排核查" in events
    w.close()
