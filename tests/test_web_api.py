"""The review workspace over HTTP (FastAPI's TestClient on the real app and a real results
database built by the batch): every security rule, reviews, conflicts, appeals, filters — on
SQLite and on a real PostgreSQL server."""
from datetime import datetime, timedelta, timezone

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from web_helpers import PHONE, XSS, build_db, copy_db, csrf_of, login  # noqa: E402

try:  # the throwaway PostgreSQL server of the store contract tests (unless conftest shares it)
    from test_store_contract import pg_server  # noqa: F401
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(scope="module")
def template(tmp_path_factory, root, samples):
    return build_db(tmp_path_factory.mktemp("webtpl"), root, samples)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, template, tmp_path):
    """A fresh copy of the batch's results with users of every role: a SQLite file, or a new
    database on the throwaway PostgreSQL server."""
    if request.param == "sqlite":
        url = copy_db(template, tmp_path)
    else:
        import uuid

        import psycopg

        admin = request.getfixturevalue("pg_server")
        name = "w_" + uuid.uuid4().hex[:12]
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        url = copy_db(template, admin.replace("/postgres?", f"/{name}?"))
    yield url


@pytest.fixture
def sqlite_db(template, tmp_path):
    return copy_db(template, tmp_path)


def app_for(url, **kw):
    from qa_inspect.web.app import create_app

    return create_app(url, appeal_window_days=kw.pop("appeal_window_days", 3650), **kw)


def client(url, name=None, **kw):
    c = TestClient(app_for(url, **kw))
    if name:
        c.headers["X-CSRF-Token"] = login(c, name)
    return c


def token(url, name):
    from qa_inspect.store import open_store
    from qa_inspect.workflow import accounts

    with open_store(url) as s:
        return accounts.make_token(s, name)


# --- authentication on every route ---------------------------------------------------------

def test_every_route_but_login_and_static_needs_a_session_or_token(sqlite_db):
    from qa_inspect.web import api, pages

    app = app_for(sqlite_db)
    c = TestClient(app)
    checked = 0
    for r in api.router.routes + pages.router.routes:  # every route the app serves
        if r.path == "/login":
            continue
        path = r.path.replace("{call_id}", "zh_no_greeting").replace("{appeal_id}", "1")
        for method in r.methods:
            resp = c.request(method, path, follow_redirects=False, json={})
            if path.startswith("/api/"):
                assert resp.status_code == 401, (method, path, resp.status_code)
                assert "error" in resp.json()
            else:
                assert resp.status_code == 303 and resp.headers["location"] == "/login", (method, path)
            checked += 1
    assert checked >= 14
    assert c.get("/static/app.css").status_code == 200 and c.get("/login").status_code == 200
    # a wrong token, a forged cookie: still 401
    assert c.get("/api/calls", headers={"Authorization": "Bearer qai_nope"}).status_code == 401
    c.cookies.set("qa_session", "eyJ1IjoiYm9zcyJ9.forged.sig")
    assert c.get("/api/calls").status_code == 401


def test_token_works_until_the_user_is_disabled(sqlite_db):
    from click.testing import CliRunner

    from qa_inspect.cli import main

    tok = token(sqlite_db, "rev1")
    c = TestClient(app_for(sqlite_db))
    auth = {"Authorization": f"Bearer {tok}"}
    r = c.get("/api/calls?per_page=5", headers=auth)
    assert r.status_code == 200 and r.json()["total"] == 14 and len(r.json()["calls"]) == 5
    res = CliRunner().invoke(main, ["users", "disable", "rev1", "--db", sqlite_db])
    assert res.exit_code == 0, res.output
    assert c.get("/api/calls", headers=auth).status_code == 401
    from qa_inspect.store import open_store
    from qa_inspect.store import workspace as ws

    with open_store(sqlite_db) as s:  # account changes are audited too (never the password)
        rows = [(r[2], r[3], r[5], r[6], r[7]) for r in ws.audit_rows(s) if r[5] == "rev1"]
    assert rows[-2][1] == "token_add" and rows[-1] == ("cli", "user_disable", "rev1", '{"disabled": false}',
                                                         '{"disabled": true}')
    assert not any("correct horse" in (r[3] or "") + (r[4] or "") for r in rows)


def test_login_is_rate_limited_and_wrong_passwords_fail(sqlite_db):
    c = TestClient(app_for(sqlite_db))
    import re

    def attempt(pw):
        tok = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        return c.post("/login", data={"username": "rev1", "password": pw, "csrf": tok}, follow_redirects=False)

    assert [attempt("wrong").status_code for _ in range(5)] == [401] * 5
    r = attempt("correct horse 12")  # right password, but too many failures just now
    assert r.status_code == 429 and "5 分钟" in r.text
    assert "qa_session" not in c.cookies


# --- roles ------------------------------------------------------------------------------------

def test_agent_sees_only_own_calls_redacted(db):
    c = client(db, "ag1")
    calls = c.get("/api/calls").json()
    assert calls["total"] >= 1 and {x["agent_id"] for x in calls["calls"]} == {"A001"}
    assert c.get("/api/calls?agent=A003").json()["calls"][0]["agent_id"] == "A001"  # filter cannot widen
    own = calls["calls"][0]["call_id"]
    assert c.get(f"/api/calls/{own}").status_code == 200
    for path in ("/api/calls/zh_forbidden_phrase", "/api/audio/zh_forbidden_phrase", "/calls/zh_forbidden_phrase"):
        assert c.get(path).status_code == 403, path
    assert c.post("/api/calls/zh_forbidden_phrase/appeals", json={"items": ["closing"], "reason": "x"}).status_code == 403
    assert c.get("/api/calls?q=投诉").status_code == 403  # text search would reveal redacted text
    assert c.post("/api/calls/zh_no_greeting/review", json={"items": {}, "version": 0}).status_code == 403
    # the agent of the phone-number call sees it redacted; a reviewer sees it whole
    from qa_inspect.store import open_store
    from qa_inspect.workflow import accounts

    with open_store(db) as s:
        accounts.add_user(s, "ag6", "agent", "correct horse 12", "A006")
    seen = client(db, "ag6").get("/api/calls/zh_extra_pii")
    text = " ".join(t["text"] for t in seen.json()["turns"])
    assert PHONE not in seen.text and "投诉" in text  # nowhere in the JSON: turns, evidence, reasons
    whole = " ".join(t["text"] for t in client(db, "rev1").get("/api/calls/zh_extra_pii").json()["turns"])
    assert PHONE in whole


def test_reviewer_cannot_decide_appeals_agent_cannot_read_others(db):
    ag = client(db, "ag3")
    a = ag.post("/api/calls/zh_forbidden_phrase/appeals",
                json={"items": ["forbidden_phrase"], "reason": "客户先辱骂，属正常回应"})
    assert a.status_code == 200, a.text
    aid = a.json()["id"]
    assert a.json()["items"] == ["forbidden_phrase"] and a.json()["status"] == "open"
    assert client(db, "ag1").get(f"/api/appeals/{aid}").status_code == 403
    assert ag.get(f"/api/appeals/{aid}").status_code == 200
    rev = client(db, "rev1")
    assert rev.post(f"/api/appeals/{aid}/decision", json={"upheld": True, "comment": "ok"}).status_code == 403
    assert ag.post(f"/api/appeals/{aid}/decision", json={"upheld": True, "comment": "ok"}).status_code == 403
    assert client(db, "sup").get("/appeals").status_code == 200 and rev.get("/appeals").status_code == 403


# --- CSRF, escaping, headers, the file system ---------------------------------------------------

def test_form_and_session_posts_without_csrf_are_refused(sqlite_db):
    c = client(sqlite_db, "rev1")
    good = c.headers.pop("X-CSRF-Token")
    assert c.post("/logout", data={}, follow_redirects=False).status_code == 403
    assert c.post("/settings", data={"lang": "en"}, follow_redirects=False).status_code == 403
    assert c.post("/settings", data={"lang": "en", "csrf": "forged"}, follow_redirects=False).status_code == 403
    assert c.post("/api/calls/zh_no_greeting/review", json={"items": {}, "version": 0}).status_code == 403
    r = c.post("/api/calls/zh_no_greeting/review", json={"items": {}, "version": 0}, headers={"X-CSRF-Token": "x"})
    assert r.status_code == 403
    fresh = TestClient(app_for(sqlite_db))
    r = fresh.post("/login", data={"username": "rev1", "password": "correct horse 12", "csrf": "x"})
    assert r.status_code == 403 and "qa_session" not in fresh.cookies
    # with the token: the language setting changes the UI to English
    assert c.post("/settings", data={"lang": "en", "csrf": good}, follow_redirects=False).status_code == 303
    assert "Review queue" in c.get("/").text
    # a bearer token needs no CSRF token (no cookie involved)
    tc = TestClient(app_for(sqlite_db))
    r = tc.post("/api/calls/zh_no_greeting/review", json={"items": {}, "version": 0},
                headers={"Authorization": f"Bearer {token(sqlite_db, 'rev2')}"})
    assert r.status_code == 200


def test_text_is_escaped_and_csp_forbids_inline_script(sqlite_db):
    c = client(sqlite_db, "rev1")
    page = c.get("/calls/zh_extra_pii")
    assert page.status_code == 200
    assert XSS not in page.text and "&lt;script&gt;alert(" in page.text
    assert "<script>" not in page.text.replace('<script type="application/json" id="call-data">', "")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    listing = c.get("/?team=三组")
    assert XSS not in listing.text and "zh_extra_pii" in listing.text
    cookie = login_cookie_flags(sqlite_db)
    assert "httponly" in cookie and "samesite=strict" in cookie


def login_cookie_flags(url):
    import re

    c = TestClient(app_for(url))
    tok = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
    r = c.post("/login", data={"username": "rev1", "password": "correct horse 12", "csrf": tok}, follow_redirects=False)
    return r.headers["set-cookie"].lower()


def test_audio_streams_with_range_and_only_the_registered_file(sqlite_db, samples):
    c = client(sqlite_db, "rev1")
    whole = (samples / "audio/zh_no_greeting.flac").read_bytes()
    r = c.get("/api/audio/zh_no_greeting", headers={"Range": "bytes=1000-1999"})
    assert r.status_code == 206 and r.content == whole[1000:2000]
    assert r.headers["content-range"] == f"bytes 1000-1999/{len(whole)}"
    assert c.get("/api/audio/zh_no_greeting").content == whole
    for bad in ("/api/audio/..%2F..%2F..%2Fetc%2Fpasswd", "/api/audio/%2Fetc%2Fpasswd", "/api/audio/zh_extra_pii",
                "/static/..%2F..%2Fcli%2Fweb.py", "/api/audio/zh_no_greeting/../../../etc/passwd"):
        r = c.get(bad)
        assert r.status_code == 404 and b"root:" not in r.content and b"import" not in r.content, bad


def test_serve_binds_loopback_by_default():
    from qa_inspect.cli.web import serve

    host = next(p for p in serve.params if p.name == "host")
    assert host.default == "127.0.0.1"


# --- reviews ------------------------------------------------------------------------------------

def test_two_reviewers_save_the_same_call_one_gets_409_nothing_lost(db):
    r1, r2 = client(db, "rev1"), client(db, "rev2")
    v1 = r1.get("/api/calls/zh_no_greeting").json()
    v2 = r2.get("/api/calls/zh_no_greeting").json()
    assert v1["version"] == v2["version"] == 0 and v1["scores"]["machine"] == 30.0
    closing = next(i for i in v1["items"] if i["rule_id"] == "closing")
    assert closing["hit"] and closing["points"] == -40.0 and closing["title"] == "标准结束语"
    first = r1.post("/api/calls/zh_no_greeting/review",
                    json={"items": {"closing": "false_positive", "greeting": "confirmed"}, "version": 0,
                          "comment": "结束语被转写漏掉"})
    assert first.status_code == 200, first.text
    assert first.json()["scores"]["manual"] == 70.0 and first.json()["scores"]["final"] == 70.0
    late = r2.post("/api/calls/zh_no_greeting/review", json={"items": {"closing": "confirmed"}, "version": 0})
    assert late.status_code == 409 and "someone else" in late.json()["error"]
    now = r2.get("/api/calls/zh_no_greeting").json()
    assert now["version"] == 1 and now["scores"]["manual"] == 70.0  # rev1's review is intact
    assert [h["by"] for h in now["history"]] == ["rev1"]
    assert now["history"][0]["after"]["items"] == {"closing": "false_positive", "greeting": "confirmed"}
    again = r2.post("/api/calls/zh_no_greeting/review", json={"items": {"closing": "confirmed"}, "version": 1,
                                                               "manual_score": 35})
    assert again.status_code == 200 and again.json()["version"] == 2
    assert {(r["reviewer"], r["manual_score"]) for r in again.json()["reviews"]} == {("rev1", 70.0), ("rev2", 35.0)}
    assert {(v["reviewer"], v["rule_id"], v["verdict"]) for v in again.json()["verdicts"]} == {
        ("rev1", "closing", "false_positive"), ("rev1", "greeting", "confirmed"), ("rev2", "closing", "confirmed")}
    page = r1.get("/calls/zh_no_greeting").text  # the review history on the call page
    assert "rev1" in page and "rev2" in page and "误报" in page


def test_review_rules_fatal_needs_comment_and_bad_input_is_one_line(db):
    c = client(db, "rev1")
    url = "/api/calls/zh_forbidden_phrase/review"
    r = c.post(url, json={"items": {"forbidden_phrase": "false_positive"}, "version": 0})
    assert r.status_code == 400 and "一票否决" in r.json()["error"]
    assert c.post(url, json={"items": {"greeting": "false_positive"}, "version": 0}).status_code == 400
    assert c.post(url, json={"items": {"nope": "confirmed"}, "version": 0}).status_code == 400
    assert c.post(url, json={"items": {"greeting": "确认"}, "version": 0}).status_code == 422
    assert c.post(url, json={"items": {}, "version": 0, "manual_score": 130}).status_code == 400
    assert c.post("/api/calls/no_such_call/review", json={"items": {}, "version": 0}).status_code == 404
    assert c.get("/calls/no_such_call").status_code == 404
    ok = c.post(url, json={"items": {"forbidden_phrase": "false_positive"}, "version": 0, "comment": "客户先辱骂"})
    assert ok.status_code == 200 and ok.json()["scores"]["manual"] == 63.0  # 100 − 40 (closing) + 3 (bonus)


def test_browser_review_is_the_same_record_as_a_worksheet_review(sqlite_db):
    from qa_inspect.store import open_store
    from qa_inspect.workflow import final_scores

    c = client(sqlite_db, "rev1")
    assert c.post("/api/calls/zh_no_greeting/review",
                  json={"items": {"closing": "false_positive"}, "version": 0}).status_code == 200
    with open_store(sqlite_db) as s:
        fs = final_scores(s)["zh_no_greeting"]
        items = s.db.execute("SELECT reviewer, rule_id, machine_outcome, verdict FROM qc_review_items").fetchall()
    assert (fs.manual, fs.final, fs.source, fs.reviewer) == (70.0, 70.0, "manual", "rev1")
    assert items == [("rev1", "closing", "fail", "false_positive")]
    from click.testing import CliRunner

    from qa_inspect.cli import main

    out = CliRunner().invoke(main, ["calibrate", "--db", sqlite_db]).output  # calibration counts it
    closing = next(line.split() for line in out.splitlines() if line.startswith("closing "))
    assert closing[1:4] == ["1", "0", "1"] and "closing: 1/week" in out  # n, tp, fp


# --- appeals ------------------------------------------------------------------------------------

def test_appeal_window_limit_decision_and_final_score(db):
    ag, sup = client(db, "ag3"), client(db, "sup")
    body = {"items": ["forbidden_phrase"], "reason": "客户先辱骂"}
    closed = client(db, "ag3", appeal_window_days=7)  # the sample calls are from 2026-11-23
    started = datetime.fromisoformat("2026-11-23T14:33:09+08:00")
    r = closed.post("/api/calls/zh_forbidden_phrase/appeals", json=body)
    if datetime.now(timezone.utc) - started > timedelta(days=7):
        assert r.status_code == 400 and "7 days" in r.json()["error"]
    assert ag.post("/api/calls/zh_forbidden_phrase/appeals", json={"items": ["greeting"], "reason": "x"}).status_code == 400
    a = ag.post("/api/calls/zh_forbidden_phrase/appeals", json=body).json()
    assert ag.post("/api/calls/zh_forbidden_phrase/appeals", json=body).status_code == 409  # one open at a time
    assert sup.post(f"/api/appeals/{a['id']}/decision", json={"upheld": True, "comment": ""}).status_code == 422
    d = sup.post(f"/api/appeals/{a['id']}/decision", json={"upheld": True, "comment": "录音核实，属实"})
    assert d.status_code == 200 and d.json()["status"] == "upheld" and d.json()["decided_score"] == 63.0
    again = sup.post(f"/api/appeals/{a['id']}/decision", json={"upheld": False, "comment": "改判"})
    assert again.status_code == 409  # decided appeals are final
    view = ag.get("/api/calls/zh_forbidden_phrase").json()
    assert view["scores"]["final"] == 63.0 and view["scores"]["source"] == "appeal"
    assert [h["action"] for h in view["history"]] == ["appeal", "appeal_decision"]
    b = ag.post("/api/calls/zh_forbidden_phrase/appeals", json={"items": ["closing"], "reason": "再次申诉"}).json()
    sup.post(f"/api/appeals/{b['id']}/decision", json={"upheld": False, "comment": "驳回"})
    third = ag.post("/api/calls/zh_forbidden_phrase/appeals", json=body)
    assert third.status_code == 400 and "limit of 2" in third.json()["error"]
    assert ag.get("/api/calls/zh_forbidden_phrase").json()["scores"]["final"] == 63.0  # a rejection keeps it


# --- the queue ----------------------------------------------------------------------------------

def test_filters_and_paging(db):
    c = client(db, "rev1")

    def ids(q):
        r = c.get("/api/calls?" + q)
        assert r.status_code == 200, r.text
        return {x["call_id"] for x in r.json()["calls"]}

    assert ids("fatal=1") == {"zh_forbidden_phrase"}
    assert ids("agent=A003") >= {"zh_forbidden_phrase"} and all(
        x["agent_id"] == "A003" for x in c.get("/api/calls?agent=A003").json()["calls"])
    assert ids("rule=closing") >= {"zh_no_greeting", "zh_forbidden_phrase"}
    assert ids("q=12315") == {"zh_billing_12315"}
    assert ids("rule=forbidden_phrase") == {"zh_forbidden_phrase"}  # '_' is a letter here, not a wildcard
    assert ids("rule=forbidden%25") == set() and ids("q=%25") == set() and ids("q=_") == set()
    assert ids("team=三组") == {"zh_extra_pii"}
    assert ids("score_min=0&score_max=30") >= {"zh_no_greeting", "zh_forbidden_phrase"}
    assert all(x["score"] <= 30 for x in c.get("/api/calls?score_max=30").json()["calls"])
    assert ids("date_from=2026-11-25&date_to=2026-11-25") >= {"zh_extra_pii"}
    assert ids("grade=D") >= {"zh_no_greeting"}
    c.post("/api/calls/zh_no_greeting/review", json={"items": {}, "version": 0})
    assert ids("reviewed=1") == {"zh_no_greeting"} and "zh_no_greeting" not in ids("reviewed=0")
    p1, p2 = c.get("/api/calls?per_page=5&page=1").json(), c.get("/api/calls?per_page=5&page=3").json()
    assert p1["total"] == 14 and len(p1["calls"]) == 5 and len(p2["calls"]) == 4
    assert c.get("/api/calls?score_min=abc").status_code == 422


def test_assigned_queue_round_robin(sqlite_db, root, tmp_path):
    from click.testing import CliRunner

    from qa_inspect.cli import main

    run = CliRunner().invoke
    r = run(main, ["sample", "--db", sqlite_db, "--plan", str(root / "rules/sampling_plan.yaml"), "--seed", "3",
                   "--out", str(tmp_path / "ws.xlsx"), "--json"])
    assert r.exit_code == 0, r.output
    import json

    sid = json.loads(r.output[r.output.index("{"):])["sample_id"]
    r = run(main, ["assign", sid, "--reviewers", "rev1,rev2", "--db", sqlite_db])
    assert r.exit_code == 0, r.output
    pairs = [line.split("\t") for line in r.output.strip().splitlines()]
    assert {w for _, w in pairs} == {"rev1", "rev2"} and len(pairs) >= 2
    mine = [cid for cid, w in pairs if w == "rev1"]
    c = client(sqlite_db, "rev1")
    q = c.get("/api/queue").json()["calls"]
    assert [x["call_id"] for x in q] == sorted(mine, key=lambda cid: next(x["started_at"] for x in q
                                                                          if x["call_id"] == cid))
    done = c.post(f"/api/calls/{mine[0]}/review", json={"items": {}, "version": 0}).json()
    assert mine[0] not in [x["call_id"] for x in c.get("/api/queue").json()["calls"]]
    assert done["next_call"] == (mine[1] if len(mine) > 1 else done["next_call"])
    assert run(main, ["assign", sid, "--reviewers", "ag1", "--db", sqlite_db]).exit_code == 2


def test_sample_assigns_round_robin_to_the_plans_reviewers(sqlite_db, root, tmp_path):
    from click.testing import CliRunner

    from qa_inspect.cli import main

    plan = tmp_path / "plan.yaml"
    plan.write_text((root / "rules/sampling_plan.yaml").read_text(encoding="utf-8")
                    + "reviewers: [rev1, rev2]\n", encoding="utf-8")
    r = CliRunner().invoke(main, ["sample", "--db", sqlite_db, "--plan", str(plan), "--seed", "3",
                                  "--out", str(tmp_path / "ws.xlsx")])
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if x.startswith("assigned"))
    n1, n2 = (int(x.split()[1]) for x in line.split(": ", 1)[1].split(", "))
    assert abs(n1 - n2) <= 1 and n1 + n2 >= 2
    q1 = client(sqlite_db, "rev1").get("/api/queue").json()["calls"]
    q2 = client(sqlite_db, "rev2").get("/api/queue").json()["calls"]
    assert (len(q1), len(q2)) == (n1, n2) and not {c["call_id"] for c in q1} & {c["call_id"] for c in q2}


def test_calls_written_while_serving_reach_the_queue(sqlite_db):
    import dataclasses
    import time

    from qa_inspect.store import open_store

    with TestClient(app_for(sqlite_db, index_every_s=0.2)) as c:  # as a context: the indexer thread runs
        c.headers["X-CSRF-Token"] = login(c, "rev1")
        assert c.get("/api/calls?team=九组").json()["total"] == 0
        with open_store(sqlite_db) as s:  # a batch writes a call meanwhile
            r = s.get_result("zh_no_greeting")
            s.put_result(dataclasses.replace(r, call=dataclasses.replace(r.call, call_id="zh_late", team="九组")))
        for _ in range(50):
            if c.get("/api/calls?team=九组").json()["total"] == 1:
                break
            time.sleep(0.1)
        assert [x["call_id"] for x in c.get("/api/calls?team=九组").json()["calls"]] == ["zh_late"]


def test_second_level_appeal_needs_another_supervisor(db):
    ag = client(db, "ag3")
    a = ag.post("/api/calls/zh_no_greeting/appeals", json={"items": ["closing"], "reason": "x"})
    assert a.status_code == 403  # zh_no_greeting is A002's call
    a = ag.post("/api/calls/zh_forbidden_phrase/appeals", json={"items": ["closing"], "reason": "结束语已说"}).json()
    sup, boss = client(db, "sup", appeal_levels=2), client(db, "boss", appeal_levels=2)
    first = sup.post(f"/api/appeals/{a['id']}/decision", json={"upheld": True, "score": 40, "comment": "建议改判"})
    assert first.status_code == 200 and first.json()["status"] == "open"
    assert [s["level"] for s in first.json()["steps"]] == [1]
    assert ag.get("/api/calls/zh_forbidden_phrase").json()["scores"]["final"] == 0.0  # not yet final
    again = sup.post(f"/api/appeals/{a['id']}/decision", json={"upheld": True, "comment": "再次"})
    assert again.status_code == 400 and "另一位主管" in again.json()["error"]
    final = boss.post(f"/api/appeals/{a['id']}/decision", json={"upheld": False, "comment": "录音中无结束语，驳回"})
    assert final.status_code == 200 and final.json()["status"] == "rejected"
    assert [(s["level"], s["upheld"], s["by"]) for s in final.json()["steps"]] == [(1, True, "sup"), (2, False, "boss")]
    view = ag.get("/api/calls/zh_forbidden_phrase").json()
    assert view["scores"]["final"] == 0.0 and [h["action"] for h in view["history"]] == [
        "appeal", "appeal_level1", "appeal_decision"]
    assert "第 1 级" in client(db, "sup", appeal_levels=2).get("/calls/zh_forbidden_phrase").text


def test_worksheet_verdicts_in_chinese_land_next_to_browser_reviews(sqlite_db, root, tmp_path):
    """One truth: a worksheet filled in with 确认/误报 and a browser review of the same sample
    end up in the same tables, and the call page shows both."""
    import json

    from click.testing import CliRunner
    from openpyxl import load_workbook

    from qa_inspect.cli import main

    run = CliRunner().invoke
    r = run(main, ["sample", "--db", sqlite_db, "--plan", str(root / "rules/sampling_plan.yaml"), "--seed", "3",
                   "--out", str(tmp_path / "ws.xlsx"), "--json", "--lang", "en"])
    assert r.exit_code == 0, r.output
    assert "zh_forbidden_phrase" in [c["call_id"] for c in json.loads(r.output[r.output.index("{"):])["calls"]]
    wb = load_workbook(tmp_path / "ws.xlsx")
    ws = wb["review"]
    col = {c.value: i + 1 for i, c in enumerate(ws[1])}
    for row in range(2, ws.max_row + 1):
        if ws.cell(row, col["call_id"]).value == "zh_forbidden_phrase":
            item = ws.cell(row, col["item"]).value
            if item == "forbidden_phrase":
                ws.cell(row, col["reviewer_verdict"]).value = "误报"
            elif item == "closing":
                ws.cell(row, col["reviewer_verdict"]).value = "确认"
    wb.save(tmp_path / "filled.xlsx")
    r = run(main, ["review", "import", str(tmp_path / "filled.xlsx"), "--db", sqlite_db, "--reviewer", "alice"])
    assert r.exit_code == 0, r.output
    c = client(sqlite_db, "rev1")
    c.post("/api/calls/zh_forbidden_phrase/review",
           json={"items": {"forbidden_phrase": "confirmed"}, "version": 0}).raise_for_status()
    view = c.get("/api/calls/zh_forbidden_phrase").json()
    assert {(v["reviewer"], v["rule_id"], v["verdict"]) for v in view["verdicts"]} == {
        ("alice", "forbidden_phrase", "false_positive"), ("alice", "closing", "confirmed"),
        ("rev1", "forbidden_phrase", "confirmed")}
    assert {r["sample_id"] for r in view["reviews"]} == {view["reviews"][0]["sample_id"]} != "(web)"


def test_users_and_assign_take_the_db_from_the_config_file(sqlite_db, tmp_path, monkeypatch):
    import shutil

    from click.testing import CliRunner

    from qa_inspect.cli import main

    work = tmp_path / "team"
    work.mkdir()
    shutil.copy(sqlite_db, work / "shared.db")
    (work / "qa-inspect.toml").write_text('db = "shared.db"\n', encoding="utf-8")
    monkeypatch.chdir(work)
    r = CliRunner().invoke(main, ["users", "list"])
    assert r.exit_code == 0 and "rev1\treviewer" in r.output, r.output
    r = CliRunner().invoke(main, ["users", "add", "li", "--role", "reviewer", "--password-stdin"],
                           input="a-long-password\n")
    assert r.exit_code == 0 and "created li" in r.output
    r = CliRunner().invoke(main, ["users", "list", "--db", str(tmp_path / "none.db")])
    assert r.exit_code == 2 and "none.db" in r.output and "Traceback" not in r.output
