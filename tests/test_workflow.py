"""The QC cycle end to end on the samples: run (with scorecards) → sample → a reviewer fills the
worksheet → import → a second reviewer → appeals → calibrate; plus bad worksheets."""
import json
import sqlite3
import statistics
from collections import Counter

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from qa_inspect.cli import main
from qa_inspect.store import open_store
from qa_inspect.workflow import final_scores
from qa_inspect.workflow.sampling import draw_sample, load_plan
from qa_inspect.workflow.worksheet import CALL_ITEM, COLUMNS, header_key, outcome_key

PHONE = "13812345678"
EXTRA = {"call_id": "zh_extra_pii", "agent_id": "A006", "started_at": "2026-11-25T09:00:00+08:00",
         "language": "zh", "turns": [
             {"role": "agent", "text": "您好，工号5566为您服务，请问有什么可以帮您？", "start": 0.0, "end": 4.0},
             {"role": "customer", "text": f"我要投诉，我的手机号{PHONE}一直扣费。", "start": 4.5, "end": 9.0},
             {"role": "agent", "text": "非常抱歉，我马上为您查询。请问还有什么可以帮您？", "start": 9.5, "end": 14.0},
             {"role": "customer", "text": "没有了。", "start": 14.5, "end": 15.0},
             {"role": "agent", "text": "感谢来电，再见。", "start": 15.5, "end": 17.0}]}


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def batch(root, samples, tmp_path_factory):
    """The samples' reference transcripts plus one call with a phone number, run with scorecards."""
    d = tmp_path_factory.mktemp("qc")
    lines = (samples / "transcripts.jsonl").read_text(encoding="utf-8").splitlines()
    (d / "calls.jsonl").write_text("\n".join(lines + [json.dumps(EXTRA, ensure_ascii=False)]) + "\n",
                                   encoding="utf-8")
    r = cli("run", d / "calls.jsonl", "--db", d / "qa.db", "--out", d / "rep",
            "--scorecard", root / "rules/scorecard_telecom_zh.yaml",
            "--scorecard", root / "rules/scorecard_telecom_en.yaml")
    assert r.exit_code == 0, r.output
    return d


def sheet_rows(path):
    wb = load_workbook(path)
    ws = wb["复核"]  # Chinese by default; the columns found by their key (header_key)
    header = [header_key(c.value) for c in ws[1]]
    return wb, ws, {n: i + 1 for i, n in enumerate(header)}


def results(db):
    with open_store(db) as s:
        return {r.call.call_id: r for r in s.results()}


ZH_VERDICT = {"confirmed": "确认", "false_positive": "误报", "missed": "漏检"}


def fill(path, out, verdicts, scores, added=(), only=None):
    """As a reviewer would: a verdict per item row (``verdicts``: (call, item) → verdict, default
    confirmed), a manual score per call row, misses added at the bottom. ``only``: calls reviewed."""
    wb, ws, col = sheet_rows(path)
    filled = []
    for row in range(2, ws.max_row + 1):
        call, item = ws.cell(row, col["call_id"]).value, ws.cell(row, col["item"]).value
        if call is None or (only is not None and call not in only):
            continue
        if item == CALL_ITEM:
            if call in scores:
                ws.cell(row, col["manual_score"]).value = scores[call]
            continue
        v = verdicts.get((call, item), "confirmed")
        if v:
            # reviewers type the Chinese words (确认/误报/漏检) or the English ones: both import
            ws.cell(row, col["reviewer_verdict"]).value = ZH_VERDICT[v] if row % 2 else v
            filled.append((call, item, outcome_key(ws.cell(row, col["machine_verdict"]).value), v))
    r = ws.max_row + 1
    for call, item in added:
        ws.cell(r, col["call_id"]).value = call
        ws.cell(r, col["item"]).value = item
        ws.cell(r, col["reviewer_verdict"]).value = "漏检"
        filled.append((call, item, "absent", "missed"))
        r += 1
    wb.save(out)
    return filled


def labels(filled):
    """(call, item) → (machine flags, reviewer flags), by the definitions in the README."""
    out = {}
    for call, item, outcome, v in filled:
        m = outcome in ("fail", "hit")
        out[(call, item)] = (m, v == "missed" or (v == "confirmed" and m))
    return out


def kappa_by_hand(pairs):
    n = len(pairs)
    po = sum(a == b for a, b in pairs) / n
    pa, pb = sum(a for a, _ in pairs) / n, sum(b for _, b in pairs) / n
    pe = pa * pb + (1 - pa) * (1 - pb)
    return (po - pe) / (1 - pe)


def test_full_cycle(root, batch):
    db, plan = batch / "qa.db", root / "rules/sampling_plan.yaml"
    res = results(db)
    assert res["zh_forbidden_phrase"].score.fatal and res["zh_forbidden_phrase"].score.score == 0

    # --- sample: every fatal call and urgent alert, ≥ 2 per agent, reproducible by seed
    r = cli("sample", "--db", db, "--plan", plan, "--seed", 7, "--out", batch / "ws.xlsx", "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    drawn = {c["call_id"]: c["reason"] for c in info["calls"]}
    # escalation_risk is tagged alert:紧急 in the packs; a plain complaint (关注) is not mandatory
    mandatory = {cid for cid, x in res.items()
                 if x.score.fatal or any(h.rule_id == "escalation_risk" for h in x.risk_hits)}
    assert len(mandatory) >= 4 and mandatory <= set(drawn)
    assert drawn["zh_forbidden_phrase"] == "fatal" and drawn["zh_billing_12315"] == "alert:urgent"
    assert drawn["zh_extra_pii"].startswith("per_agent")  # A006's only call
    per_agent = Counter(res[c].call.agent_id for c in drawn)
    calls_of = Counter(x.call.agent_id for x in res.values())
    assert all(per_agent[a] >= min(2, calls_of[a]) for a in calls_of)
    again = json.loads(cli("sample", "--db", db, "--plan", plan, "--seed", 7, "--out", batch / "ws2.xlsx",
                           "--json").output)
    assert again["sample_id"] == info["sample_id"] and again["calls"] == info["calls"] and not again["new"]
    p = load_plan(plan)
    shuffled = sorted(res.values(), key=lambda x: x.call.call_id, reverse=True)
    assert draw_sample(shuffled, p, 7).calls == draw_sample(list(res.values()), p, 7).calls  # order-free
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM qc_sample_calls WHERE sample_id=?",
                           (info["sample_id"],)).fetchone()[0] == len(drawn)

    # --- the worksheet: header, one (call) row + one row per rule, hidden ids, dropdowns, redaction
    wb, ws, col = sheet_rows(batch / "ws.xlsx")
    assert list(col) == list(COLUMNS)
    assert ws.column_dimensions["A"].hidden and "说明" in wb.sheetnames
    assert [c.value for c in ws[1]][1:4] == ["通话ID", "坐席工号", "通话时间"]  # Chinese headers by default
    # the drop-down offers the QC team's words; the import takes them (and the English ones)
    assert any('"确认,误报,漏检"' == dv.formula1 for dv in ws.data_validations.dataValidation)
    assert ws.freeze_panes == "C2" and ws.auto_filter.ref.startswith("A1:")
    shown = {ws.cell(r, col["machine_verdict"]).value for r in range(2, ws.max_row + 1)
             if ws.cell(r, col["item"]).value not in (None, CALL_ITEM)}
    assert shown <= {"通过", "未通过", "命中", "不适用"} and "未通过" in shown  # the machine verdict in Chinese
    rows = Counter(ws.cell(r, col["call_id"]).value for r in range(2, ws.max_row + 1))
    assert rows.pop(None) == 50  # empty rows with the dropdowns, for misses the reviewer adds
    assert rows == {cid: 1 + len(res[cid].rules) for cid in drawn}
    ev = [ws.cell(r, col["evidence"]).value or "" for r in range(2, ws.max_row + 1)
          if ws.cell(r, col["call_id"]).value == "zh_extra_pii"]
    assert any("手机号" in e for e in ev) and not any(PHONE in e for e in ev)  # --redact is the default
    exported = cli("export", "--db", db, "--redact")  # the score breakdown holds no copy of the words
    assert exported.exit_code == 0 and "zh_extra_pii" in exported.output and PHONE not in exported.output
    raw = cli("sample", "--db", db, "--plan", plan, "--seed", 7, "--out", batch / "raw.xlsx", "--no-redact")
    assert raw.exit_code == 0
    _, ws_raw, _ = sheet_rows(batch / "raw.xlsx")
    assert any(PHONE in str(c.value) for row in ws_raw.iter_rows() for c in row)

    # --- reviewer alice: the 禁语 hit is a false positive, a missed closing, one added miss
    alice_scores = {cid: res[cid].score.score for cid in drawn}
    alice_scores.update(zh_forbidden_phrase=85, zh_no_greeting=20)
    alice = fill(batch / "ws.xlsx", batch / "alice.xlsx",
                 {("zh_forbidden_phrase", "forbidden_phrase"): "false_positive",
                  ("zh_network_fault", "closing"): "missed",
                  ("zh_no_greeting", "escalation_risk"): None},  # left blank: added below instead
                 alice_scores, added=[("zh_no_greeting", "escalation_risk")])
    r = cli("review", "import", batch / "alice.xlsx", "--db", db, "--reviewer", "alice")
    assert r.exit_code == 0, r.output
    assert f"{len(alice)} item verdict(s), {len(drawn)} manual score(s)" in r.output
    r = cli("review", "import", batch / "alice.xlsx", "--db", db, "--reviewer", "alice")  # again: no double count
    assert r.exit_code == 0
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM qc_review_items").fetchone()[0] == len(alice)
        assert con.execute("SELECT COUNT(*) FROM qc_reviews").fetchone()[0] == len(drawn)

    # --- reviewer bob re-reviews two calls and disagrees with alice on the 禁语
    two = {"zh_forbidden_phrase", "zh_no_greeting"}
    bob = fill(batch / "ws.xlsx", batch / "bob.xlsx", {("zh_no_greeting", "escalation_risk"): None},
               {"zh_forbidden_phrase": 0, "zh_no_greeting": 30}, only=two)
    assert cli("review", "import", batch / "bob.xlsx", "--db", db, "--reviewer", "bob").exit_code == 0

    # --- appeals: final = upheld appeal > latest manual review > machine
    r = cli("appeal", "open", "zh_no_greeting", "--db", db, "--reason", "客户要求直接办理，已口头问候", "--by", "A002")
    assert r.exit_code == 0 and "appeal #1 opened" in r.output
    assert "already has an open appeal" in cli("appeal", "open", "zh_no_greeting", "--db", db, "--reason", "x",
                                               "--by", "A002").output
    assert cli("appeal", "open", "zh_talk_over", "--db", db, "--reason", "不同意", "--by", "A005").exit_code == 0
    assert "open" in cli("appeal", "list", "--db", db, "--status", "open").output
    r = cli("appeal", "decide", 1, "--db", db, "--upheld", "--by", "组长", "--score", 60)
    assert r.exit_code == 0 and "upheld" in r.output and "score 60" in r.output
    assert cli("appeal", "decide", 2, "--db", db, "--rejected", "--by", "组长").exit_code == 0
    again = cli("appeal", "decide", 1, "--db", db, "--rejected", "--by", "x")
    assert again.exit_code == 2 and "already upheld" in again.output
    assert cli("appeal", "open", "nope", "--db", db, "--reason", "x", "--by", "y").exit_code == 2
    with open_store(db) as s:
        fs = final_scores(s)
    assert (fs["zh_no_greeting"].final, fs["zh_no_greeting"].source) == (60, "appeal")
    assert (fs["zh_forbidden_phrase"].final, fs["zh_forbidden_phrase"].source) == (0, "manual")  # bob, later
    assert fs["zh_talk_over"].source in ("manual", "machine") and fs["zh_talk_over"].final == res["zh_talk_over"].score.score
    if "zh_plan_change_verify" not in drawn:
        assert fs["zh_plan_change_verify"].source == "machine"
    r = cli("review", "scores", "--db", db, "--format", "jsonl")
    by = {d["call_id"]: d for d in map(json.loads, r.output.splitlines())}
    assert by["zh_no_greeting"]["final"] == 60 and by["zh_no_greeting"]["appeal"] == 60

    # --- calibrate, against numbers worked out here from what the reviewers wrote
    r = cli("calibrate", "--db", db, "--json")
    assert r.exit_code == 0, r.output
    c = json.loads(r.output)
    per_rule = {x["rule_id"]: x for x in c["rules"]}
    fp = per_rule["forbidden_phrase"]
    # alice: the one hit is a false positive; bob: a true positive; every other call: tn
    assert (fp["tp"], fp["fp"], fp["fn"]) == (1, 1, 0) and fp["precision"] == 0.5
    cl = per_rule["closing"]
    closing_failed = {cid for cid in drawn if any(x.rule_id == "closing" and x.outcome == "fail"
                                                  for x in res[cid].rules)}
    assert closing_failed == {"zh_forbidden_phrase", "zh_no_greeting"}
    # alice confirms 2, bob confirms the same 2, alice adds a miss on zh_network_fault
    assert (cl["tp"], cl["fp"], cl["fn"]) == (4, 0, 1) and cl["recall"] == pytest.approx(0.8)
    esc = per_rule["escalation_risk"]
    assert esc["fn"] == 1 and esc["recall"] == pytest.approx(esc["tp"] / (esc["tp"] + 1))
    assert c["fix_first"][0]["rule_id"] == "forbidden_phrase" and c["fix_first"][0]["fp_per_week"] == 1.0
    assert c["weeks"] == 1  # the sampled calls start 2026-11-23 … 25: one ISO week

    # item kappa machine vs reviewer: all (call, reviewer, rule) verdicts
    pairs = list(labels(alice).values()) + list(labels(bob).values())
    assert c["item_kappa"] == pytest.approx(kappa_by_hand(pairs))
    assert c["item_agreement"] == pytest.approx(sum(a == b for a, b in pairs) / len(pairs))
    # machine vs manual score over every (call, reviewer) score
    machine = [res[cid].score.score for cid in alice_scores] + [res["zh_forbidden_phrase"].score.score,
                                                               res["zh_no_greeting"].score.score]
    manual = list(alice_scores.values()) + [0, 30]
    assert c["score_pairs"] == len(drawn) + 2
    assert c["score_mad"] == pytest.approx(statistics.fmean(abs(a - b) for a, b in zip(machine, manual)))
    assert c["score_pearson"] == pytest.approx(statistics.correlation(machine, manual))
    # between reviewers: the two calls; they differ only on the 禁语 item
    a_l, b_l = labels(alice), labels(bob)
    shared = [(a_l[k][1], b_l[k][1]) for k in b_l if k in a_l]
    assert c["inter_calls"] == 2 and c["inter_item_pairs"] == len(shared)
    assert sum(x != y for x, y in shared) == 1
    assert c["inter_kappa"] == pytest.approx(kappa_by_hand(shared))
    assert c["inter_score_mad"] == pytest.approx((85 - 0 + 30 - 20) / 2)
    text = cli("calibrate", "--db", db)
    assert text.exit_code == 0 and "fix first" in text.output and "forbidden_phrase: 1/week" in text.output


def test_bad_worksheets_give_row_level_errors_and_keep_good_rows(root, batch):
    db = batch / "bad.db"
    db.write_bytes((batch / "qa.db").read_bytes())
    r = cli("sample", "--db", db, "--plan", root / "rules/sampling_plan.yaml", "--seed", 3, "--out", batch / "b.xlsx")
    assert r.exit_code == 0, r.output
    wb, ws, col = sheet_rows(batch / "b.xlsx")
    rows = {(ws.cell(r, col["call_id"]).value, ws.cell(r, col["item"]).value): r for r in range(2, ws.max_row + 1)}
    for (call, item), r in rows.items():
        if call and item != CALL_ITEM:
            ws.cell(r, col["reviewer_verdict"]).value = "confirmed"
    bad = {}
    r = rows[("zh_forbidden_phrase", "greeting")]
    ws.cell(r, col["evidence"]).value = "坐席没有问候"  # an edited machine column
    bad[r] = "machine column(s) edited: evidence"
    r = rows[("zh_forbidden_phrase", "closing")]
    ws.cell(r, col["machine_verdict"]).value = "pass"
    bad[r] = "machine column(s) edited: machine_verdict"
    r = rows[("zh_forbidden_phrase", "self_introduction")]
    ws.cell(r, col["row_id"]).value = ws.cell(r, col["row_id"]).value.replace("zh_forbidden_phrase", "zh_ghost")
    bad[r] = "unknown call 'zh_ghost'"
    r = rows[("zh_forbidden_phrase", "offer_help")]
    ws.cell(r, col["reviewer_verdict"]).value = "yes"
    bad[r] = "reviewer_verdict 'yes' is not one of"
    r = rows[("zh_forbidden_phrase", "courtesy")]
    ws.cell(r, col["reviewer_verdict"]).value = "false_positive"  # the machine passed it
    bad[r] = "false_positive on an item the machine did not flag (pass)"
    r = rows[("zh_forbidden_phrase", CALL_ITEM)]
    ws.cell(r, col["manual_score"]).value = 150
    bad[r] = "manual_score 150 is outside 0–100"
    r = rows[("zh_no_greeting", CALL_ITEM)]
    ws.cell(r, col["manual_score"]).value = "good"
    bad[r] = "manual_score 'good' is not a number"
    end = ws.max_row + 1
    ws.cell(end, col["call_id"]).value = "no_such_call"
    ws.cell(end, col["item"]).value = "closing"
    ws.cell(end, col["reviewer_verdict"]).value = "missed"
    bad[end] = "unknown call 'no_such_call'"
    wb.save(batch / "b_bad.xlsx")

    out = cli("review", "import", batch / "b_bad.xlsx", "--db", db, "--reviewer", "carol")
    assert out.exit_code == 1
    errors = [ln for ln in out.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == len(bad), out.output
    for row, why in bad.items():
        assert any(f"b_bad.xlsx:row {row}: " in e and why in e for e in errors), (row, why, errors)
    good = sum(1 for (call, item) in rows if call and item != CALL_ITEM) - 5  # 5 bad item rows
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM qc_review_items WHERE reviewer='carol'").fetchone()[0] == good
        # the call rows with a bad score recorded no manual score
        assert con.execute("SELECT COUNT(*) FROM qc_reviews WHERE reviewer='carol' AND manual_score IS NOT NULL"
                           ).fetchone()[0] == 0

    # wrong columns: the whole sheet is refused with the header row named
    wb, ws, col = sheet_rows(batch / "b.xlsx")
    ws.cell(1, col["reviewer_verdict"]).value = "verdict"
    wb.save(batch / "b_cols.xlsx")
    out = cli("review", "import", batch / "b_cols.xlsx", "--db", db, "--reviewer", "carol")
    assert out.exit_code == 2 and "b_cols.xlsx:row 1: missing column(s) reviewer_verdict" in out.output
    # not a worksheet at all
    (batch / "junk.xlsx").write_text("not a spreadsheet")
    out = cli("review", "import", batch / "junk.xlsx", "--db", db, "--reviewer", "carol")
    assert out.exit_code == 2 and "cannot read worksheet" in out.output
    # a sheet from another database: its sample is unknown there
    other = batch / "other.db"
    other.write_bytes(db.read_bytes())
    with sqlite3.connect(other) as con:
        con.execute("DELETE FROM qc_samples")
    out = cli("review", "import", batch / "b.xlsx", "--db", other, "--reviewer", "carol")
    assert out.exit_code == 1 and "unknown sample" in out.output


def test_sampling_plan_filters_shares_and_strict_loading(root, batch, tmp_path):
    from qa_inspect.errors import RuleError
    from qa_inspect.workflow.sampling import call_duration, parse_plan

    res = results(batch / "qa.db")
    plan = parse_plan("plan: {id: t}\ninclude: {fatal: false, risk: false}\nrandom_share: 1.0\n"
                      "filters:\n  min_duration_s: 30\n  exclude_agents: [A001]\n  exclude_calls: [zh_long_hold]\n",
                      "p.yaml")
    d = draw_sample(list(res.values()), plan, 1)
    want = {cid for cid, r in res.items() if r.call.agent_id != "A001" and cid != "zh_long_hold"
            and call_duration(r) >= 30}
    assert set(d.ids) == want and want and {c.reason for c in d.calls} == {"random"}
    assert sum(d.excluded.values()) == len(res) - len(want)
    half = draw_sample(list(res.values()), parse_plan("plan: {id: t}\ninclude: {fatal: false, risk: false}\n"
                                                      "random_share: 0.5\n", "p.yaml"), 1)
    assert len(half.calls) == round(len(res) / 2)
    for bad, line, words in [("plan: {id: t}\nper_agent: {n: 2, stratfy_by: grade}\n", 2, "did you mean 'stratify_by'"),
                             ("plan: {id: t}\nrandom_share: 1.5\n", 2, "'random_share' must be a number 0…1"),
                             ("plan: {id: t}\ninclude: {fatal: yes please}\n", 2, "must be true or false")]:
        with pytest.raises(RuleError) as e:
            parse_plan(bad, "p.yaml")
        assert f"p.yaml:{line}" in str(e.value) and words in str(e.value)
    r = cli("sample", "--db", batch / "qa.db", "--plan", tmp_path / "none.yaml", "--seed", 1)
    assert r.exit_code == 2 and "sampling plan not found" in r.output
