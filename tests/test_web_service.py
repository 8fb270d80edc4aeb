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
        yield Served(base, db)


class Served(str):
    """The server's base URL (a str), with the path of the database it serves."""

    def __new__(cls, base: str, db: str):
        s = super().__new__(cls, base)
        s.db = db
        return s


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
    assert agent.get("/calibration").status_code == 403 and agent.get("/calibration/labels.jsonl").status_code == 403
    assert agent.get("/api/calibration").status_code == 403
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


def test_calibration_page_and_review_labels(browser, server, tmp_path):
    """A reviewer's 误报 in the workspace shows on the 规则校准 page (precision, fix first) and in
    the labels a supervisor downloads for `rules eval` / `rules learn`; English by the setting."""
    import json

    w0 = Watch(browser, server)  # the reviewer saves through the workspace's API, as call.js does
    page = w0.login("rev1")
    page.goto(server + "/calls/zh_forbidden_phrase")
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    view = page.request.get(server + "/api/calls/zh_forbidden_phrase").json()
    assert next(i for i in view["items"] if i["rule_id"] == "forbidden_phrase")["hit"]
    r = page.request.post(server + "/api/calls/zh_forbidden_phrase/review", headers={"X-CSRF-Token": csrf},
                          data={"items": {"forbidden_phrase": "false_positive", "greeting": "confirmed"},
                                "comment": "客户先说的", "version": view["version"]})
    assert r.status == 200, r.text()
    w0.close()
    w = Watch(browser, server)
    p = w.login("sup")
    p.click('nav a[href="/calibration"]')
    p.wait_for_url(server + "/calibration")
    row = p.locator('#cal-rules tr[data-rule="forbidden_phrase"]')
    cells = row.locator("td").all_inner_texts()
    assert cells[1:6] == ["1", "0", "1", "0", "0"] and cells[6] == "0.00"  # n, 确认命中, 误报, 漏检, 确认未命中
    assert "误报" in p.locator("#cal-rules thead").inner_text() and "漏检" in p.locator("#cal-rules thead").inner_text()
    assert "zh_forbidden_phrase" in p.locator("#fix-first").inner_text()
    r = p.request.get(server + "/calibration/labels.jsonl")
    assert r.status == 200 and "attachment" in r.headers["content-disposition"]
    labels = {d["call_id"]: d for d in map(json.loads, r.text().splitlines())}
    assert labels["zh_forbidden_phrase"]["forbidden_phrase"] is False  # 误报: the 禁语 is not there
    assert labels["zh_forbidden_phrase"]["greeting"] is True and labels["zh_forbidden_phrase"]["evidence"]["greeting"]
    assert "text" not in r.text() and "turns" not in r.text()  # ids, verdicts and turn indexes only
    assert p.request.get(server + "/calibration/labels.jsonl?since=2999-01-01").text() == ""
    assert p.request.get(server + "/calibration/labels.jsonl?since=soon").status == 400
    p.select_option('select[name="lang"]', "en")
    p.click('form[action="/settings"] button')
    p.wait_for_load_state()
    p.goto(server + "/calibration")
    assert p.locator("#calibration h1").inner_text() == "Rule calibration"
    assert "False hits" in p.locator("#cal-rules thead").inner_text()
    p.select_option('select[name="lang"]', "zh")
    p.click('form[action="/settings"] button')
    p.wait_for_load_state()
    p.goto(server + "/calibration")
    assert p.locator("#calibration h1").inner_text() == "规则校准"
    assert not w.outside and not w.errors
    w.close()
    w2 = Watch(browser, server)
    rev = w2.login("rev1")
    assert rev.request.get(server + "/calibration").status == 200
    api = rev.request.get(server + "/api/calibration").json()  # what `calibrate --json` prints
    fp = next(r for r in api["rules"] if r["rule_id"] == "forbidden_phrase")
    assert (fp["fp"], fp["precision"]) == (1, 0.0) and api["fix_first"][0]["rule_id"] == "forbidden_phrase"
    assert rev.request.get(server + "/calibration/labels.jsonl").status == 403  # export: supervisors
    w2.close()
