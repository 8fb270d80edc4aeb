"""QC workflow commands: scorecards, manual sampling, review import, appeals, calibration."""
from __future__ import annotations

import json
import sys

import click

from qa_inspect.cli.common import CONTEXT, fail, open_existing_store, store_errors
from qa_inspect.cli.config import config_option, lang_option
from qa_inspect.errors import QAError

DB_OPTION = click.option("--db", default="qa.db", show_default=True,
                         help="Results database written by `run`: a SQLite file or a postgresql:// URL.")


_fail = fail  # one error line and an exit code (cli_common)


def _open(db):
    return open_existing_store(db)  # a StoreError is one line, exit code 2


def _fmt(x, nd: int = 3) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


def register(main: click.Group) -> None:
    """Add this module's commands to the ``qa-inspect`` group."""
    main.add_command(scorecard)
    main.add_command(sample)
    main.add_command(review)
    main.add_command(appeal)
    main.add_command(calibrate)


# --- scorecard ----------------------------------------------------------------------------

@click.group(context_settings=CONTEXT)
def scorecard():
    """Scorecard tools: check a scorecard against its rule pack, show a call's breakdown."""


@scorecard.command("validate", context_settings=CONTEXT)
@click.argument("card", type=click.Path())
@click.option("--rules", "pack_path", required=True, type=click.Path(), help="The rule pack the card scores.")
def scorecard_validate(card, pack_path):
    """List every problem of scorecard CARD (file:line), checked against the rule pack:
    unknown rule ids and wrong types are errors, pack rules the card leaves out are warnings.

    Exit code 0 when usable (warnings allowed), 1 with errors."""
    from qa_inspect.rules import load_pack
    from qa_inspect.scoring.scorecard import check_against_pack, parse_scorecard

    try:
        pack = load_pack(pack_path)
        text = open(card, encoding="utf-8").read()
    except QAError as e:
        _fail(e)
    except OSError as e:
        _fail(QAError(f"cannot read scorecard ({e.strerror})", card))
    sc, problems = parse_scorecard(text, card)
    for e in problems:
        click.echo(f"error: {e}", err=True)
    if sc is None:
        sys.exit(1)
    findings = check_against_pack(sc, pack)
    for f in findings:
        click.echo(str(f), err=True)
    errors = sum(f.severity == "error" for f in findings)
    if not errors:
        n = sum(len(s.items) for s in sc.sections)
        click.echo(f"{card}: ok (scorecard {sc.id} {sc.version} for pack {pack.id}: {len(sc.sections)} sections, "
                   f"{n} items, {len(sc.bonus)} bonus, {len(sc.fatal)} fatal)")
    sys.exit(1 if errors else 0)


@scorecard.command("show", context_settings=CONTEXT)
@click.argument("call_id")
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the breakdown as JSON.")
def scorecard_show(call_id, db, as_json):
    """Show the stored score breakdown of CALL_ID: per item the outcome, the points it cost or
    added, why, and the evidence."""
    store = _open(db)
    with store_errors(db, store):
        res = store.get_result(call_id)
    if res is None or res.score is None:
        _fail(QAError(f"no scored call {call_id!r} in the results", db))
    sc = res.score
    if as_json:
        click.echo(json.dumps({"call_id": call_id, "score": sc.score, "grade": sc.grade, "fatal": sc.fatal,
                               "scorecard_id": sc.scorecard_id, "scorecard_version": sc.scorecard_version,
                               "breakdown": [b.to_dict() for b in sc.breakdown]}, ensure_ascii=False, indent=2))
        return
    card = f"scorecard {sc.scorecard_id} {sc.scorecard_version}" if sc.scorecard_id else "rule deductions"
    click.echo(f"{call_id}: {sc.score:g} {sc.grade}{' FATAL' if sc.fatal else ''} ({card})")
    for b in sc.breakdown:
        pts = f"{b.points:+.1f}" if b.points else "   0"
        click.echo(f"  {b.section:<12} {b.rule_id:<24} {b.outcome:<5} {pts:>6}  {b.note}")
        if b.evidence and (b.points or b.outcome in ("fail", "hit")):
            click.echo(f"  {'':<12} {b.evidence}")
            turns = res.transcript.turns if res.transcript else ()
            for i in b.turns[:3]:  # the breakdown points at turns; their words are in the transcript
                if 0 <= i < len(turns):
                    click.echo(f"  {'':<12}   {turns[i].role}: {turns[i].text}")


# --- sampling -----------------------------------------------------------------------------

@click.command(context_settings=CONTEXT)
@click.option("--db", default=None, help="Results database written by `run`: a SQLite file or a postgresql:// "
                                         "URL (default: the config's db, else qa.db).")
@click.option("--plan", "plan_path", default=None, type=click.Path(),
              help="Sampling plan YAML. Default: the config's plan, else the shipped rules/sampling_plan.yaml.")
@click.option("--seed", default=None, type=int,
              help="Random seed: the same seed, plan and results draw the same sample. Default: a new "
                   "seed, printed and stored with the sample.")
@click.option("--out", default="worksheet.xlsx", show_default=True, type=click.Path(dir_okay=False),
              help="Review worksheet to write (XLSX).")
@click.option("--redact/--no-redact", default=True, show_default=True,
              help="Mask phone and ID numbers in the worksheet's evidence text.")
@click.option("--rules", "rules_paths", multiple=True, type=click.Path(),
              help="Rule packs whose alert levels the plan's include.alert_levels reads "
                   "(default: the config's packs, else the shipped packs).")
@config_option
@lang_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def sample(db, plan_path, seed, out, redact, rules_paths, config_path, lang, as_json):
    """Draw a reproducible manual-review sample (人工抽检) from the results by a sampling plan,
    record it in --db and write the review worksheet (one row per call and item).

    Exit code 0 on success, 1 when the sample is empty (nothing to review: a warning says
    why), 2 when the plan or database cannot be used."""
    import secrets

    from qa_inspect.cli.config import DEFAULT_PLAN, load_config, load_packs, report_options, resolve_path
    from qa_inspect.reports.alerts import collect_alerts
    from qa_inspect.workflow.review import create_sample
    from qa_inspect.workflow.sampling import load_plan

    try:
        conf = load_config(config_path)
        db = db or conf.db or "qa.db"
        plan = load_plan(resolve_path(plan_path or conf.plan or DEFAULT_PLAN))
        ropts = report_options(load_packs(rules_paths, config=conf), conf, lang) if plan.alert_levels else \
            {"alert_policies": {}, "lang": lang or conf.language}
    except QAError as e:
        _fail(e)
    if seed is None:
        seed = secrets.randbelow(1_000_000)  # printed and stored: the draw can be repeated
    store = _open(db)
    with store_errors(db, store):
        levels = {a.call_id: a.level for a in collect_alerts(list(store.results()), ropts["alert_policies"])} \
            if plan.alert_levels else None
        info = create_sample(store, plan, seed, out, redact=redact, alert_levels=levels, lang=ropts["lang"])
    s = info.summary()
    if as_json:
        click.echo(json.dumps({**s, "seed": seed, "plan": plan.source,
                               "calls": [{"call_id": d.call_id, "reason": d.reason} for d in info.draw.calls]},
                              ensure_ascii=False, indent=2))
    else:
        for d in info.draw.calls:
            click.echo(f"  {d.call_id:<28} {d.reason}")
        by = ", ".join(f"{k} {v}" for k, v in s["by_reason"].items()) or "none"
        ex = ", ".join(f"{k}: {v}" for k, v in s["excluded"].items())
        cap = ", ".join(f"{k}: {v}" for k, v in s["capped"].items())
        click.echo(f"sample {info.sample_id}{'' if info.new else ' (same as before)'}: {s['drawn']} of "
                   f"{s['considered']} call(s) ({by}){'; excluded ' + ex if ex else ''}"
                   f"{'; kept out by caps ' + cap if cap else ''}")
        if s["unknown_duration"]:
            click.echo(f"  {s['unknown_duration']} call(s) of unknown duration kept (no audio or turn times)")
        click.echo(f"plan {plan.id} {plan.version} ({plan.source}), seed {seed} (repeat with --seed {seed})")
        click.echo(f"worksheet: {info.worksheet} ({info.rows} rows)")
        if s.get("assigned"):
            click.echo("assigned (workspace queue): " + ", ".join(f"{k} {v}" for k, v in s["assigned"].items()))
    if not info.draw.calls:
        why = ", ".join(f"{k}: {v}" for k, v in s["excluded"].items()) or "no scored calls"
        click.echo(f"warning: the sample is empty ({s['considered']} call(s) considered; {why})", err=True)
        sys.exit(1)


# --- review -------------------------------------------------------------------------------

@click.group(context_settings=CONTEXT)
def review():
    """Manual review (复核): import filled worksheets, list final scores."""


@review.command("import", context_settings=CONTEXT)
@click.argument("worksheet", type=click.Path())
@DB_OPTION
@click.option("--reviewer", required=True, help="Who reviewed (recorded with every verdict).")
def review_import(worksheet, db, reviewer):
    """Record the verdicts and manual scores of a filled WORKSHEET. Bad rows are listed as
    `worksheet.xlsx:row N: reason` and skipped; every good row is recorded. Importing the
    same sheet again replaces that reviewer's verdicts (nothing is counted twice).

    Exit code 0 when every row was good, 1 when some rows were rejected, 2 when the sheet
    cannot be read at all."""
    from qa_inspect.workflow.review import import_worksheet

    store = _open(db)
    with store_errors(db, store):
        rep = import_worksheet(store, worksheet, reviewer)
    for e in rep.errors:
        click.echo(f"error: {e}", err=True)
    click.echo(f"imported {worksheet} for {reviewer}: {rep.items} item verdict(s), {rep.scores} manual "
               f"score(s) on {len(rep.calls)} call(s); {rep.not_reviewed} row(s) left blank, "
               f"{len(rep.errors)} row(s) rejected")
    sys.exit(1 if rep.errors else 0)


@review.command("labels", context_settings=CONTEXT)
@DB_OPTION
@click.option("--out", "out_path", default="-", show_default=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Labels JSONL to write (-: standard output).")
@click.option("--since", default="", metavar="DATE",
              help="Only verdicts recorded at or after DATE (ISO date or time; a date is midnight UTC): "
                   "e.g. the reviews made after a pack or model was frozen, to measure it on calls it never saw.")
@click.option("--rule", "rule_ids", multiple=True, metavar="RULE", help="Only this rule (repeatable).")
def review_labels(db, out_path, since, rule_ids):
    """Write the reviewers' verdicts (复核结论) as labels for `rules eval --db` and
    `rules learn --db`: one line per reviewed call with `RULE: true|false` (whether the rule's
    condition is present: a 禁语 hit confirmed or 漏检 is true, a 误报 false; a greeting the
    machine found and the reviewer confirmed is true, one marked 漏检 false) and the evidence
    turns the machine found. Several reviewers of one item: the majority; a tie gives no label.
    A summary per rule goes to standard error.

    Exit code 0 on success, 2 when the database cannot be read or holds no verdict."""
    from qa_inspect.errors import InputError
    from qa_inspect.workflow.labels import review_labels as gather, since_utc

    try:
        since_at = since_utc(since)
    except QAError as e:
        _fail(e)
    store = _open(db)
    with store_errors(db, store):
        lab = gather(store, since_at, rule_ids or None)
    if not lab.records:
        _fail(InputError("no reviewer verdict to turn into labels" + (f" since {since_at}" if since_at else "")
                         + " (review calls in the workspace or import worksheets first)", db))
    if out_path == "-":
        click.echo(lab.jsonl(), nl=False)
    else:
        from qa_inspect.reports.cells import write_text

        try:
            write_text(out_path, lab.jsonl())
        except OSError as e:
            _fail(InputError(f"cannot write the labels ({e.strerror or e})", out_path))
    click.echo(f"labels: {len(lab.records)} call(s) from {lab.verdicts} verdict(s) of {lab.reviewers} reviewer(s)"
               + (f" since {since_at}" if since_at else ""), err=True)
    for rule, c in lab.rules.items():
        click.echo(f"  {rule}: {c.positives} present, {c.negatives} absent"
                   + (f", {c.ties} tie(s) between reviewers left out" if c.ties else ""), err=True)
    if lab.not_stored:
        click.echo(f"note: {len(lab.not_stored)} reviewed call(s) have no stored result and give no label", err=True)


@review.command("scores", context_settings=CONTEXT)
@DB_OPTION
@click.option("--format", "fmt", default="text", type=click.Choice(["text", "csv", "jsonl"]), show_default=True)
def review_scores(db, fmt):
    """Final score of every call: upheld appeal > manual review > machine, with its source."""
    import csv as csv_mod

    from qa_inspect.workflow import final_scores

    store = _open(db)
    with store_errors(db, store):
        rows = list(final_scores(store).values())
    if fmt == "jsonl":
        for r in rows:
            click.echo(json.dumps(r.to_dict(), ensure_ascii=False))
    elif fmt == "csv":
        w = csv_mod.writer(sys.stdout)
        w.writerow(["call_id", "agent_id", "machine", "manual", "appeal", "final", "source"])
        from qa_inspect.reports.cells import safe_cell

        for r in rows:
            w.writerow([safe_cell(v) for v in (r.call_id, r.agent_id, r.machine, r.manual, r.appeal, r.final,
                                               r.source)])
    else:
        click.echo(f"{'call':<28} {'agent':<8} {'machine':>7} {'manual':>7} {'appeal':>7} {'final':>7}  source")
        for r in rows:
            click.echo(f"{r.call_id:<28} {r.agent_id:<8} {_fmt(r.machine, 1):>7} {_fmt(r.manual, 1):>7} "
                       f"{_fmt(r.appeal, 1):>7} {_fmt(r.final, 1):>7}  {r.source}")


# --- appeals ------------------------------------------------------------------------------

@click.group(context_settings=CONTEXT)
def appeal():
    """Agents' appeals (申诉) against a call's result, and their decisions."""


def _show_appeal(a) -> str:
    s = f"#{a.appeal_id} {a.call_id} {a.status} (opened by {a.opened_by} {a.opened_at}: {a.reason})"
    if a.status != "open":
        s += f" decided by {a.decided_by} {a.decided_at}"
        if a.decided_score is not None:
            s += f", score {a.decided_score:g}"
        if a.decision_note:
            s += f": {a.decision_note}"
    return s


@appeal.command("open", context_settings=CONTEXT)
@click.argument("call_id")
@DB_OPTION
@click.option("--reason", required=True, help="Why the agent disputes the result.")
@click.option("--by", "by", required=True, help="Who appeals (the agent).")
def appeal_open(call_id, db, reason, by):
    """Open an appeal against CALL_ID's result; prints the appeal id."""
    from qa_inspect.workflow import open_appeal

    store = _open(db)
    with store_errors(db, store):
        a = open_appeal(store, call_id, reason, by)
    click.echo(f"appeal #{a.appeal_id} opened: {_show_appeal(a)}")


@appeal.command("decide", context_settings=CONTEXT)
@click.argument("appeal_id", type=int)
@DB_OPTION
@click.option("--upheld/--rejected", "upheld", required=True, help="The decision.")
@click.option("--by", "by", required=True, help="Who decides.")
@click.option("--score", type=float, default=None, help="The corrected score (with --upheld): the call's final score.")
@click.option("--note", default="", help="Why.")
def appeal_decide(appeal_id, db, upheld, by, score, note):
    """Decide open appeal APPEAL_ID: --upheld --score X sets the call's final score to X;
    --rejected keeps it."""
    from qa_inspect.workflow import decide_appeal

    store = _open(db)
    with store_errors(db, store):
        a = decide_appeal(store, appeal_id, upheld, by, score=score, note=note)
    click.echo(_show_appeal(a))


@appeal.command("list", context_settings=CONTEXT)
@DB_OPTION
@click.option("--status", type=click.Choice(["open", "upheld", "rejected"]), default=None)
@click.option("--json", "as_json", is_flag=True)
def appeal_list(db, status, as_json):
    """List appeals (all, or by --status)."""
    from qa_inspect.workflow import list_appeals

    store = _open(db)
    with store_errors(db, store):
        rows = list_appeals(store, status)
    for a in rows:
        click.echo(json.dumps(a.to_dict(), ensure_ascii=False) if as_json else _show_appeal(a))
    if not as_json:
        click.echo(f"{len(rows)} appeal(s)")


# --- calibration --------------------------------------------------------------------------

@click.command(context_settings=CONTEXT)
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
def calibrate(db, as_json):
    """Machine vs reviewers over all imported reviews: per-rule precision / recall, machine vs
    manual score (Pearson r, mean absolute difference), Cohen's kappa on violation yes/no per
    item, agreement between reviewers on calls reviewed twice, and the rules to fix first
    (most false positives per week)."""
    from qa_inspect.workflow.calibration import calibrate as run_calibration

    store = _open(db)
    with store_errors(db, store):
        c = run_calibration(store)
    if as_json:
        click.echo(json.dumps(c.to_dict(), ensure_ascii=False, indent=2))
        return
    click.echo(f"{c.calls} reviewed call(s), {c.reviews} review(s), {c.weeks} week(s)")
    if c.rules:
        w = max(len("rule"), *(len(r) for r in c.rules))
        click.echo(f"{'rule':<{w}}  {'n':>4} {'tp':>4} {'fp':>4} {'fn':>4} {'tn':>4}  {'precision':>9} "
                   f"{'recall':>6}  fp/week")
        for s in c.rules.values():
            click.echo(f"{s.rule_id:<{w}}  {s.n:>4} {s.tp:>4} {s.fp:>4} {s.fn:>4} {s.tn:>4}  "
                       f"{_fmt(s.precision):>9} {_fmt(s.recall):>6}  {s.fp_per_week:g}")
    click.echo(f"machine vs manual score: {c.score_pairs} pair(s), Pearson r {_fmt(c.score_pearson)}, "
               f"mean abs diff {_fmt(c.score_mad, 1)}")
    click.echo(f"machine vs reviewer per item: kappa {_fmt(c.item_kappa)}, agreement {_fmt(c.item_agreement)}")
    click.echo(f"between reviewers: {c.inter_calls} call(s) reviewed twice, {c.inter_item_pairs} item pair(s), "
               f"kappa {_fmt(c.inter_kappa)}, agreement {_fmt(c.inter_agreement)}, "
               f"score mean abs diff {_fmt(c.inter_score_mad, 1)}")
    if c.fix_first:
        click.echo("fix first (false positives per week):")
        for s in c.fix_first:
            click.echo(f"  {s.rule_id}: {s.fp_per_week:g}/week, precision {_fmt(s.precision)} "
                       f"(calls: {', '.join(s.false_positive_calls[:5])})")
