"""The KPI page (trend charts) and the complaint ticket flow in the workspace, in Debian's
Chromium against a real `qa-inspect serve`: a supervisor reads the KPIs, assigns a ticket,
receives it and records the first handling; every step shows in the ticket's audit list.
Skipped when /usr/bin/chromium or playwright is missing."""
from pathlib import Path

import pytest

from test_web_browser import CHROMIUM, Watch, browser  # noqa: F401
from web_helpers import build_db, serving

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
    with serving(db, root) as base:
        yield base


def test_home_page_leads_with_overdue_tickets(browser, server):
    """The sample calls are weeks old: their tickets missed both clocks, and the home page (the
    queue) lists them first, for reviewers and supervisors; an agent does not see them."""
    w = Watch(browser, server)
    p = w.login("sup")
    card = p.locator("#overdue-tickets")
    assert card.count() == 1 and "超时投诉工单" in card.inner_text()
    assert "签收超" in card.inner_text() and "首次处理超" in card.inner_text()
    first_card = p.locator("main section.card").first
    assert first_card.get_attribute("id") == "overdue-tickets"
    w.close()
    w2 = Watch(browser, server)
    assert w2.login("ag1").locator("#overdue-tickets").count() == 0
    w2.close()


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


def test_roles_csrf_and_order_are_checked(tmp_path, root, samples):
    from fastapi.testclient import TestClient

    from qa_inspect.store import open_store
    from qa_inspect.web.app import create_app
    from qa_inspect.workflow.complaints import list_tickets, process_calls
    from web_helpers import login

    db = str(build_db(tmp_path, root, samples))
    with open_store(db) as st:
        process_calls(st, list(st.results()))
        tid = list_tickets(st)[0].ticket_id
    agent = TestClient(create_app(db))
    login(agent, "ag1")
    assert agent.get("/kpi").status_code == 403 and agent.get("/complaints").status_code == 403
    rev = TestClient(create_app(db))
    csrf = login(rev, "rev1")
    assert rev.post(f"/complaints/{tid}/receive", data={}).status_code == 403  # no CSRF token
    assert rev.post(f"/complaints/{tid}/assign", data={"csrf": csrf, "owner": "rev1"}).status_code == 403
    r = rev.post(f"/complaints/{tid}/handle", data={"csrf": csrf, "note": "x"}, follow_redirects=False)
    assert r.status_code >= 400 and "签收" in r.text  # handle before receive: one clear message
    r = rev.post(f"/complaints/{tid}/receive", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    with open_store(db) as st:
        t = [x for x in list_tickets(st) if x.ticket_id == tid][0]
        assert t.status == "received" and t.owner == "rev1"
        assert [e[1:3] for e in st.ticket_events(tid)][-1] == ("receive", "rev1")
