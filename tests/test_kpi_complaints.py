"""Service KPIs and the complaint closed loop (issue 15), on a crafted transcripts input whose
truth is known by construction, on SQLite and on a real PostgreSQL server.

Agent A1 (all in 2026-11, queue 宽带):
  a1 u1 11-02 09:00 talk 100 hold 20 wrap 30, complains      -> AHT 150, repeated (a2 3 days later)
  a2 u1 11-05 09:00 talk 200 hold 0  wrap 10                  -> 210, attaches to u1's ticket
  a3 u2 11-02 10:00 talk 60 (no hold/wrap)                    -> 60, not repeated (a4 is 10 days later)
  a4 u2 11-12 10:00 talk 90  hold 10                          -> 100
  => calls 4, AHT 130, repeat 1/4, complaint 1/4, hold share 30/460
Agent A2:
  b1 caller 138-0013-8000 11-03 11:00 talk 50: complaint + lawyer/工信部 -> ticket 紧急, repeated by b3
  b2 no customer          11-04 11:00 talk 40
  b3 caller 13800138000   11-06 11:00 talk 30 (same number, other format) -> attaches to b1's ticket
  => calls 3, AHT 40, hold share — (no hold known), repeat 1/2 (b2 has no customer), complaint 1/3
"""
import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from qa_inspect.batch.inputs import read_input
from qa_inspect.cli import main
from qa_inspect.reports.kpi import kpi_table, render_text
from qa_inspect.store import open_store
from qa_inspect.workflow.complaints import get_ticket, list_tickets, step, timely_rate
from qa_inspect.workflow.db import WorkflowError
from test_store_contract import pg_server, store_url  # noqa: F401  (the throwaway PostgreSQL server, a fresh database on it)

CST = timezone(timedelta(hours=8))
NEUTRAL = "我想查一下这个月的话费"


def _call(cid, agent, when, talk, customer_text, **extra):
    turns = [{"role": "agent", "text": "您好，工号1234，请问有什么可以帮您", "start": 0, "end": 4},
             {"role": "customer", "text": customer_text, "start": 4, "end": talk}]
    return {"call_id": cid, "agent_id": agent, "team": "T1", "queue": "宽带", "started_at": when, "turns": turns,
            **extra}


CALLS = [
    _call("a1", "A1", "2026-11-02T09:00:00+08:00", 100, "我要投诉，网速太慢", customer_id="u1", hold_s=20, wrap_s=30),
    _call("a2", "A1", "2026-11-05T09:00:00+08:00", 200, NEUTRAL, customer_id="u1", hold_s=0, wrap_s=10),
    _call("a3", "A1", "2026-11-02T10:00:00+08:00", 60, NEUTRAL, customer_id="u2"),
    _call("a4", "A1", "2026-11-12T10:00:00+08:00", 90, NEUTRAL, customer_id="u2", hold_s=10),
    _call("b1", "A2", "2026-11-03T11:00:00+08:00", 50, "我要投诉，我要找律师，还要去工信部", caller="138-0013-8000"),
    _call("b2", "A2", "2026-11-04T11:00:00+08:00", 40, NEUTRAL),
    _call("b3", "A2", "2026-11-06T11:00:00+08:00", 30, NEUTRAL, caller="13800138000"),
]


@pytest.fixture
def db_url(store_url):
    """A fresh database, SQLite and PostgreSQL (the store contract's fixture)."""
    return store_url


@pytest.fixture
def loaded(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("QA_INSPECT_CUSTOMER_KEY", "test-key")
    src = tmp_path / "t.jsonl"
    src.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in CALLS), encoding="utf-8")
    r = CliRunner().invoke(main, ["run", str(src), "--db", db_url, "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert "2 opened, 2 repeat call(s) attached" in r.output
    return db_url, tmp_path


def _by_agent(url):
    with open_store(url) as st:
        return {r["key"]: r for r in kpi_table(st.kpi_rows("agent", "month"))}


def test_kpis_per_agent_exactly_as_constructed(loaded):
    url, _ = loaded
    k = _by_agent(url)
    a1, a2 = k["A1"], k["A2"]
    assert (a1["calls"], a2["calls"]) == (4, 3)
    assert a1["period"] == "2026-11"
    assert a1["aht_s"] == pytest.approx(130.0)
    assert a2["aht_s"] == pytest.approx(40.0)
    assert a1["repeat_rate"] == pytest.approx(0.25)
    assert a1["fcr"] == pytest.approx(0.75)
    assert a2["repeat_rate"] == pytest.approx(0.5)
    assert a1["complaint_rate"] == pytest.approx(0.25)
    assert a2["complaint_rate"] == pytest.approx(1 / 3)
    assert a1["hold_share"] == pytest.approx(30 / 460)
    assert a2["hold_share"] is None  # no hold time given for A2: "—", never 0
    line = [ln for ln in render_text([a2]).splitlines() if ln.startswith("A2")][0]
    assert "—" in line and "90.0%" in line  # the FCR target beside the figure


def test_repeat_window_is_a_parameter(loaded):
    url, _ = loaded
    with open_store(url) as st:
        rows = {r["key"]: r for r in kpi_table(st.kpi_rows("agent", "month", repeat_days=11))}
    assert rows["A1"]["repeat_rate"] == pytest.approx(0.5)  # a3 -> a4 (10 days) now counts


def test_day_periods_and_queue(loaded):
    url, _ = loaded
    with open_store(url) as st:
        days = kpi_table(st.kpi_rows("agent", "day"))
        queues = kpi_table(st.kpi_rows("queue", "week"))
    assert [(r["key"], r["period"], r["calls"]) for r in days][:2] == [("A1", "2026-11-02", 2), ("A2", "2026-11-03", 1)]
    assert sum(r["calls"] for r in queues) == 7 and {r["key"] for r in queues} == {"宽带"}


def test_caller_number_is_stored_only_as_a_keyed_hash(loaded):
    url, _ = loaded
    with open_store(url) as st:
        b1, b3 = st.get_result("b1").call, st.get_result("b3").call
    assert b1.customer_id == b3.customer_id and b1.customer_id.startswith("h:")
    if not url.startswith("postgresql://"):
        raw = open(url, "rb").read()
        assert b"13800138000" not in raw and b"138-0013-8000" not in raw


def test_tickets_one_per_customer_repeat_attached_and_graded(loaded):
    url, _ = loaded
    with open_store(url) as st:
        ts = sorted(list_tickets(st, now=datetime(2026, 11, 1, tzinfo=CST)), key=lambda t: t.opened_ts)
        assert [(t.first_call_id, t.calls) for t in ts] == [("a1", 2), ("b1", 2)]
        assert st.ticket_calls(ts[0].ticket_id) == ["a1", "a2"]
        assert st.ticket_calls(ts[1].ticket_id) == ["b1", "b3"]
        assert ts[1].grade == "紧急"  # lawyer / regulator threat
        assert ts[0].grade in ("普通", "重大")
        # a re-run opens nothing and attaches nothing
    r = CliRunner().invoke(main, ["run", str(loaded[1] / "t.jsonl"), "--db", url, "--out", str(loaded[1] / "o2")])
    assert "opened" not in r.output, r.output
    with open_store(url) as st:
        assert len(list_tickets(st)) == 2


def test_overdue_exactly_when_a_clock_passes_and_the_loop(loaded):
    url, _ = loaded
    opened = datetime(2026, 11, 2, 9, 0, tzinfo=CST)
    with open_store(url) as st:
        t1 = [t for t in list_tickets(st) if t.first_call_id == "a1"][0]
        tid = t1.ticket_id
        just_before, just_after = opened + timedelta(hours=2), opened + timedelta(hours=2, seconds=1)
        assert t1.overdue(just_before.timestamp()) == []
        assert t1.overdue(just_after.timestamp()) == [("签收", 1.0)]
        assert [t.ticket_id for t in list_tickets(st, now=just_after, overdue_only=True)] == [tid]
        with pytest.raises(WorkflowError):
            step(st, tid, "close", by="王主管", now=opened)  # no callback yet
        step(st, tid, "assign", by="王主管", owner="李处理", now=opened + timedelta(minutes=30))
        step(st, tid, "receive", by="李处理", now=opened + timedelta(hours=1))
        assert get_ticket(st, tid).overdue((opened + timedelta(hours=47)).timestamp()) == []
        assert get_ticket(st, tid).overdue((opened + timedelta(hours=48, seconds=5)).timestamp()) == [("首次处理", 5.0)]
        step(st, tid, "handle", by="李处理", note="已派单维修，带宽恢复", now=opened + timedelta(hours=30))
        step(st, tid, "callback", by="李处理", outcome="满意", now=opened + timedelta(hours=50))
        t = step(st, tid, "close", by="李处理", now=opened + timedelta(hours=51))
        assert t.status == "closed" and t.callback_outcome == "满意" and t.timely(0) is True
        events = st.ticket_events(tid)
        assert [e[1] for e in events] == ["opened", "attached", "assign", "receive", "handle", "callback", "close"]
        assert events[-1][3] == (opened + timedelta(hours=51)).timestamp()
        assert ("receive", "李处理") in [(e[1], e[2]) for e in events]
        # the 紧急 ticket is received 3 h after its call: late, so the rate is 1 of 2
        t2 = [t for t in list_tickets(st) if t.first_call_id == "b1"][0]
        b1 = datetime(2026, 11, 3, 11, 0, tzinfo=CST)
        step(st, t2.ticket_id, "receive", by="赵", now=b1 + timedelta(hours=3))
        step(st, t2.ticket_id, "handle", by="赵", note="已致歉", now=b1 + timedelta(hours=4))
        rate, n = timely_rate(list_tickets(st), now=b1 + timedelta(days=30))
        assert (rate, n) == (0.5, 2)


def test_complaints_command_lists_overdue_first_with_how_late(loaded):
    url, _ = loaded
    r = CliRunner().invoke(main, ["complaints", "--db", url, "--overdue", "--now", "2026-11-03T12:00:00+08:00"])
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip().startswith("#")]
    assert len(lines) == 1 and "紧急" not in lines[0]  # b1's 2 h clock runs to 13:00: not yet late
    assert "签收超 25.0 小时" in lines[0]
    r = CliRunner().invoke(main, ["complaints", "--db", url, "--now", "2026-11-03T13:30:00+08:00"])
    lines = [ln for ln in r.output.splitlines() if ln.strip().startswith("#")]
    assert "签收超 26.5 小时" in lines[0] and "签收超 0.5 小时" in lines[1]  # the latest first
    r = CliRunner().invoke(main, ["complaints", "assign", "999", "--db", url, "--by", "x", "--owner", "y"])
    assert r.exit_code == 2 and "no complaint ticket 999" in r.output and "Traceback" not in r.output


def test_kpi_command_formats(loaded):
    url, tmp = loaded
    r = CliRunner().invoke(main, ["kpi", "--db", url, "--by", "agent", "--period", "month"])
    assert r.exit_code == 0 and "重复来电率" in r.output and "平均处理时长" in r.output, r.output
    out = tmp / "k.csv"
    r = CliRunner().invoke(main, ["kpi", "--db", url, "--format", "csv", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    pytest.importorskip("openpyxl")
    from openpyxl import load_workbook

    x = tmp / "k.xlsx"
    assert CliRunner().invoke(main, ["kpi", "--db", url, "--format", "xlsx", "--out", str(x)]).exit_code == 0
    ws = load_workbook(x).active
    assert ws.cell(1, 1).value == "对象" and ws.max_row >= 3


def test_report_lists_overdue_tickets(loaded):
    _, tmp = loaded
    html = (tmp / "out" / "report.html").read_text(encoding="utf-8")
    assert 'id="complaints"' in html and html.index('id="complaints"') < html.index('id="risk"')


def test_bad_service_fields_are_error_rows(tmp_path, monkeypatch):
    monkeypatch.delenv("QA_INSPECT_CUSTOMER_KEY", raising=False)
    m = tmp_path / "m.csv"
    (tmp_path / "x.wav").write_bytes(b"RIFF")
    m.write_text("call_id,path,hold_s,wrap_s,direction,caller\n"
                 "ok,x.wav,12.5,,呼入,\n"
                 "h,x.wav,-3,,,\n"
                 "w,x.wav,,abc,,\n"
                 "d,x.wav,,,sideways,\n"
                 "c,x.wav,,,,13800138000\n", encoding="utf-8")
    items = {i.call.call_id: i for i in read_input(m)}
    assert items["ok"].error == "" and items["ok"].call.hold_s == 12.5 and items["ok"].call.direction == "inbound"
    assert items["ok"].call.wrap_s is None
    assert "hold_s" in items["h"].error and "wrap_s 'abc'" in items["w"].error
    assert "direction 'sideways'" in items["d"].error
    assert "QA_INSPECT_CUSTOMER_KEY" in items["c"].error
    keyed = {i.call.call_id: i for i in read_input(m, customer_key=b"k")}
    assert keyed["c"].error == "" and keyed["c"].call.customer_id.startswith("h:")
    assert "13800138000" not in keyed["c"].call.customer_id


def test_old_database_gets_its_facts(tmp_path):
    from qa_inspect.records import CallInput, CallResult, Score

    db = tmp_path / "old.db"
    with open_store(db) as st:
        st.put_result(CallResult(call=CallInput(call_id="x", agent_id="A", started_at="2026-11-02T09:00:00+08:00"),
                                 status="ok", score=Score(score=90, grade="A", fatal=False), metrics={"duration_s": 10}))
        st.db.executescript("DROP TABLE call_facts; DROP TABLE call_hits;")  # as before issue 15
    with open_store(db) as st:
        rows = kpi_table(st.kpi_rows("agent", "day"))
    assert [(r["key"], r["calls"], r["aht_s"], r["repeat_rate"]) for r in rows] == [("A", 1, 10.0, None)]


def test_whole_range_kpis_and_the_agent_scorecard_shows_them(loaded):
    """`all` gives one row per agent (on both databases); `report agents` shows each agent's
    service KPIs, with the targets beside them."""
    url, tmp = loaded
    with open_store(url) as st:
        rows = {r["key"]: r for r in kpi_table(st.kpi_rows("agent", "all"))}
    assert set(rows) == {"A1", "A2"} and rows["A1"]["calls"] == 4 and rows["A1"]["aht_s"] == pytest.approx(130.0)
    r = CliRunner().invoke(main, ["report", "agents", "--db", url, "--out", str(tmp / "cards")])
    assert r.exit_code == 0, r.output
    page = next(p for p in (tmp / "cards").glob("agent-*.html") if "A1" in p.read_text(encoding="utf-8"))
    html = page.read_text(encoding="utf-8")
    assert 'id="service-kpis"' in html
    section = html[html.index('id="service-kpis"'):html.index("</section>", html.index('id="service-kpis"'))]
    assert "平均处理时长" in section and "130.0" in section and "重复来电率" in section and "25.0%" in section
    assert "90.0%" in section  # the FCR target beside the figure
