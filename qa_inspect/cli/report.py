"""Supervisor and trainer commands: agent scorecards, risk alerts, example library."""
from __future__ import annotations

from pathlib import Path

import click

from qa_inspect.cli.common import CONTEXT, check_out_dir, fail, open_existing_store, store_errors
from qa_inspect.cli.config import config_option, lang_option
from qa_inspect.errors import QAError



_fail = fail  # one error line and an exit code (cli_common)


def _open(db):
    return open_existing_store(db, readonly=True)  # reports only read: the file is never written


def register(main: click.Group) -> None:
    """Add this module's commands to the ``qa-inspect`` group."""

    @main.group(context_settings=CONTEXT)
    def report():
        """Reports for supervisors: per-agent and per-team scorecards."""

    @report.command("agents", context_settings=CONTEXT)
    @click.option("--db", default=None,
                  help="Results database written by `run`: a SQLite file or a postgresql:// URL "
                       "(default: the config's db, else qa.db).")
    @click.option("--from", "date_from", default=None, metavar="DATE",
                  help="First call date (YYYY-MM-DD, the date in started_at), inclusive. Default: earliest.")
    @click.option("--to", "date_to", default=None, metavar="DATE",
                  help="Last call date, inclusive. Default: latest.")
    @click.option("--team", default=None, help="Only this team.")
    @click.option("--out", default="scorecards", show_default=True, type=click.Path(file_okay=False),
                  help="Folder for index.html, team-*.html, agent-*.html and scorecards.xlsx.")
    @click.option("--period", default="auto", show_default=True, type=click.Choice(["auto", "day", "week"]),
                  help="Trend buckets (auto: days up to 31 days, else ISO weeks).")
    @click.option("--redact/--no-redact", default=True, show_default=True,
                  help="Hide personal data (numbers, names, addresses) in evidence text.")
    @config_option
    @lang_option
    def report_agents(db, date_from, date_to, team, out, period, redact, config_path=None, lang=None):
        """Per-agent and per-team scorecards: calls, mean score, grade distribution, each item's
        pass rate against the team, top failed items with their evidence, trend, talk metrics,
        ranking within the team, manual review scores beside machine scores (when reviews
        exist). HTML pages open offline; the XLSX has sheets Summary, Agents, Items, Trend, Calls.

        Exit code 0 on success, 2 when nothing can be reported (bad date, no calls in range)."""
        from qa_inspect.reports.agents import manual_scores, parse_date, select, write_agent_reports

        from qa_inspect.cli.config import check_timezone, load_config

        try:
            d0, d1 = parse_date(date_from, "--from"), parse_date(date_to, "--to")
            conf = load_config(config_path)
            check_timezone(conf.tz, conf.source)
            check_out_dir(out)
        except QAError as e:
            _fail(e)
        db = db or conf.db or "qa.db"
        store = _open(db)
        with store_errors(db, store):
            results = select(store.results(), date_from=d0, date_to=d1, team=team)
            manual = manual_scores(store)
            from qa_inspect.reports.kpi import kpi_table

            kpis = {r["key"]: r for r in kpi_table(store.kpi_rows("agent", "all"))}  # service KPIs, in SQL
            paths = write_agent_reports(results, Path(out), period=period, manual=manual, redact=redact,
                                        date_from=d0, date_to=d1, lang=lang or conf.language, tz=conf.tz,
                                        service_kpis=kpis)
        pages = [p for p in paths if p.suffix == ".html"]
        click.echo(f"scorecards: {len(results)} calls, {len(pages) - 1} pages"
                   f"{'' if manual else ' (no manual review scores found)'}")
        click.echo(f"index: {paths[0]}")
        click.echo(f"xlsx:  {paths[-1]}")

    @main.command("examples", context_settings=CONTEXT)
    @click.option("--db", default=None,
                  help="Results database written by `run`: a SQLite file or a postgresql:// URL "
                       "(default: the config's db, else qa.db).")
    @click.option("--rule", "rule_id", required=True, help="Rule id, e.g. forbidden_phrase.")
    @click.option("--kind", default="violation", show_default=True, type=click.Choice(["violation", "best"]),
                  help="violation: calls that failed/hit the rule; best: calls that passed it cleanly.")
    @click.option("--n", "n", default=10, show_default=True, type=click.IntRange(min=1), help="How many examples.")
    @click.option("--out", default=None, type=click.Path(file_okay=False),
                  help="Gallery folder (examples.html + clips/). Default: examples/RULE-KIND.")
    @click.option("--context", default=3.0, show_default=True, type=click.FloatRange(min=0),
                  help="Seconds of audio kept before and after the evidence.")
    @click.option("--rules", "rules_paths", multiple=True, type=click.Path(),
                  help="Rule packs to read the rule's description from (default: the shipped packs).")
    @click.option("--redact/--no-redact", default=True, show_default=True,
                  help="Hide personal data in the excerpts and beep it in the clips.")
    @config_option
    @lang_option
    def examples(db, rule_id, kind, n, out, context, rules_paths, redact, config_path=None, lang=None):
        """Example library for trainers: pick the strongest calls for one rule (clear evidence,
        high confidence, spread over agents), cut an audio clip around each piece of evidence
        and write a gallery page with players and highlighted transcript excerpts.

        Exit code 0 on success (also when no call fits: the page says so), 2 when the rule id
        is unknown or the database cannot be read."""
        from qa_inspect.reports.examples import write_gallery

        from qa_inspect.cli.config import load_config

        try:
            conf = load_config(config_path)
            if out is not None:
                check_out_dir(out)
        except QAError as e:
            _fail(e)
        db = db or conf.db or "qa.db"
        title, description, to_end = _rule_info(rule_id, rules_paths or tuple(conf.packs.values()))
        store = _open(db)
        with store_errors(db, store):
            results = list(store.results())
            page, picked = write_gallery(
                results, rule_id, Path(out or f"examples/{rule_id}-{kind}"), kind=kind, n=n,
                redact=redact, context=context, rule_title=title, rule_description=description,
                scoped_to_end=to_end, base_dir=None if "://" in db else Path(db).resolve().parent,
                lang=lang or conf.language)
        clips = sum(1 for e in picked if e.clip_file)
        click.echo(f"examples: {len(picked)} {kind} example(s) of {rule_id}, {clips} audio clip(s)")
        for e in picked:
            if e.clip_error:
                click.echo(f"  {e.result.call.call_id}: no clip ({e.clip_error})", err=True)
        click.echo(f"gallery: {page}")


def _rule_info(rule_id: str, paths) -> tuple[str, str, bool]:
    """(title, description, scoped to the end of the call) of ``rule_id`` from the rule packs;
    empty when no pack has it (the gallery then uses the stored title)."""
    from qa_inspect.cli.config import DEFAULT_PACKS, resolve_path
    from qa_inspect.rules import load_pack

    for p in paths or DEFAULT_PACKS:
        try:
            pack = load_pack(resolve_path(p))
        except (QAError, OSError):
            continue  # the description is a nicety; a missing pack must not stop the gallery
        for r in pack.rules:
            if r.id == rule_id:
                w = r.match.window
                to_end = any(getattr(w, a, None) for a in ("last_turns", "last_seconds", "last_share"))
                return r.title, r.description, to_end
    return "", "", False
