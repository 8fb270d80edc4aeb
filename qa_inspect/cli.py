"""The `qa-inspect` command line. The only place that parses options, configures logging
and turns domain errors into one clear line and an exit code. Heavy imports live inside
commands so `--help` is instant."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from .cli_common import CONTEXT, DB_HELP, fail, open_existing_store, store_errors
from .errors import QAError

DEFAULT_PACK = "rules/telecom_zh.yaml"
DEFAULT_PACK_EN = "rules/telecom_en.yaml"


_fail = fail  # one error line and an exit code (cli_common)


@click.group(context_settings=CONTEXT)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="qa-inspect")
def main(verbose: int) -> None:
    """qa_inspect: offline quality inspection (质检) of call-center recordings."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def asr_options(f):
    f = click.option("--language", default="", help="Language code (zh, en); default: from manifest, else zh.")(f)
    f = click.option("--model", "model_path", default="", help="Local faster-whisper model dir (default: packaged base).")(f)
    f = click.option("--device", default="auto", type=click.Choice(["auto", "cpu", "cuda"]), help="Where ASR runs.")(f)
    f = click.option("--compute-type", default="auto", help="CTranslate2 compute type (default int8 on CPU, float16 on CUDA).")(f)
    f = click.option("--batch-size", default=0, type=int, help="Batched Whisper inference when > 0.")(f)
    return f


def _asr_config(language: str, model_path: str, device: str, compute_type: str, batch_size: int):
    from .asr import ASRConfig

    return ASRConfig(model_path=model_path, device=device, compute_type=compute_type,
                     language=language or "zh", batch_size=batch_size)


@main.command(context_settings=CONTEXT)
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True))
@click.option("--rules", "rules_paths", multiple=True, type=click.Path(),
              help="Rule pack YAML; repeat for several languages (a call uses the pack of its "
                   f"language, else the first). Default: {DEFAULT_PACK} and {DEFAULT_PACK_EN}.")
@click.option("--db", default="qa.db", show_default=True,
              help="Results database: a SQLite file, or postgresql://USER@HOST/DB (the postgres extra).")
@click.option("--out", default="reports", show_default=True, type=click.Path(), help="Report folder.")
@click.option("--layout", default="stereo_agent_left", show_default=True,
              type=click.Choice(["stereo_agent_left", "stereo_agent_right", "mono"]),
              help="Channel layout for audio without a manifest row.")
@click.option("--force", is_flag=True, help="Re-process calls already done with the same config.")
@click.option("--scorecard", "scorecard_paths", multiple=True, type=click.Path(),
              help="Scorecard YAML (rules/scorecard_*.yaml) scoring the pack it names; repeat for "
                   "several packs. Default: each rule's own deduction.")
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="Processes that decode and transcribe in parallel (each loads the model once "
                   "and gets cores/N CPU threads). Local default 1: everything in this process. "
                   "With --executor ray: Ray actors (default one per GPU, else one per CPU core).")
@click.option("--executor", default="local", show_default=True, type=click.Choice(["local", "ray"]),
              help="local: this process or a process pool; ray: Ray actors on a Ray cluster.")
@click.option("--ray-address", default=None, metavar="ADDRESS",
              help="Ray cluster to join with --executor ray: auto (the cluster `ray start` runs "
                   "on this machine), HOST:6379, or ray://HOST:10001. Default: a new local cluster.")
@asr_options
def run(input_path, rules_paths, db, out, layout, force, workers, executor, ray_address, language,
        model_path, device, compute_type, batch_size, scorecard_paths=()):
    """Run the nightly batch over INPUT: a folder of audio, a manifest (CSV/JSONL) or a
    transcripts JSONL. Writes results to --db and the report to --out.

    Exit code 0 when every call succeeded, 1 when some calls failed (see the report's
    error rows), 2 when nothing could run (bad rule pack, missing input)."""
    from .inputs import read_input
    from .pipeline import PackSet, results_for, run_batch
    from .reports.batch import write_batch_report
    from .rules import load_pack
    from .store import open_store

    try:
        paths = rules_paths or (DEFAULT_PACK, DEFAULT_PACK_EN)
        from .scorecard import load_scorecard

        packs = PackSet([load_pack(p) for p in paths],  # a bad pack fails before any audio is touched
                        [load_scorecard(p) for p in scorecard_paths])
        items = read_input(input_path, default_layout=layout, language=language or packs.language)
    except QAError as e:
        _fail(e)
    cfg = _asr_config(language or packs.language, model_path, device, compute_type, batch_size)
    holder: dict = {}

    def get_transcriber():
        if "t" not in holder:
            from .asr import WhisperTranscriber

            holder["t"] = WhisperTranscriber(cfg)
        return holder["t"]

    from .progress import BatchProgress, stream_is_tty

    bar = BatchProgress(len(items))  # live only when stderr is a terminal
    # while the bar is live on the terminal, per-call lines bound for the terminal go above it
    above = bar.live and stream_is_tty(sys.stdout)

    def show(res):
        if res.status == "ok":
            risk = ",".join(r.rule_id for r in res.risk_hits)
            line = (f"  {res.call.call_id:<28} {res.score.score:>5.1f} {res.score.grade:<2}"
                    f"{' FATAL' if res.score.fatal else ''}{'  risk:' + risk if risk else ''}")
            if above:
                bar.print(line)
            else:
                click.echo(line)
        else:
            line = f"  {res.call.call_id:<28} ERROR {res.error}"
            if bar.live:
                bar.print(line)
            else:
                click.echo(line, err=True)

    click.echo(f"qa-inspect: {len(items)} call(s) from {input_path}, rules {packs.describe()}")
    try:
        store = open_store(db)
    except QAError as e:  # e.g. a postgresql:// server that cannot be reached
        _fail(e)
    try:
        with bar:
            if executor == "ray":
                from .executors_ray import run_batch_ray

                summary = run_batch_ray(items, packs, store, cfg, workers or 0, address=ray_address,
                                        force=force, on_result=show,
                                        on_progress=lambda s, _item, _res: bar.update(s))
            elif (workers or 1) > 1:
                from .executors import run_batch_parallel

                summary = run_batch_parallel(items, packs, store, cfg, workers, force=force,
                                             on_result=show,
                                             on_progress=lambda s, _item, _res: bar.update(s))
            else:
                summary = run_batch(items, packs, store, get_transcriber, cfg.key(), force=force,
                                    on_result=show, on_progress=lambda s, _item, _res: bar.update(s))
        results = results_for(store, (it.call.call_id for it in items))
        html = write_batch_report(results, Path(out), summary={
            "rule packs": packs.describe(), "skipped (already done)": summary.skipped,
            "wall time": f"{summary.wall_s:.1f} s",
            "real-time factor (wall / audio)": summary.wall_rtf if summary.wall_rtf is not None else "—",
            "ASR real-time factor": summary.rtf if summary.rtf is not None else "—"})
    except QAError as e:
        _fail(e)
    finally:
        store.close()
    click.echo(_run_summary_line(summary))
    for reason, n in sorted(summary.error_reasons.items()):
        click.echo(f"  errors: {n} × {reason}")
    click.echo(f"report: {html}")
    click.echo(f"csv:    {html.with_suffix('.csv')}")
    sys.exit(1 if summary.errors else 0)


def _run_summary_line(s) -> str:
    """One line: counts, wall time, audio, real-time factor (wall / audio), ASR RTF, calls/s."""
    line = (f"done: {s.ok} ok, {s.errors} error(s), {s.skipped} already done in {s.wall_s:.1f} s wall; "
            f"audio {s.audio_s / 60:.1f} min")
    if s.wall_rtf is not None:
        line += f", real-time factor {s.wall_rtf}"
        if s.wall_rtf > 0:
            line += f" ({1 / s.wall_rtf:.1f}x real time)"
    else:
        line += ", real-time factor n/a (no audio processed)"
    if s.rtf is not None:
        line += f", ASR RTF {s.rtf}"
    if s.calls_per_s is not None:
        line += f", {s.calls_per_s} calls/s"
    return line


@main.command(context_settings=CONTEXT)
@click.option("--db", default="qa.db", show_default=True, help=DB_HELP)
@click.option("--rules", "rules_paths", multiple=True, type=click.Path(),
              help="Rule pack YAML; repeat for several languages (a call uses the pack of its "
                   f"language, else the first). Default: {DEFAULT_PACK} and {DEFAULT_PACK_EN}.")
@click.option("--out", default=None, type=click.Path(),
              help="Rewrite the batch report (report.html, report.csv) in this folder.")
@click.option("--scorecard", "scorecard_paths", multiple=True, type=click.Path(),
              help="Scorecard YAML (rules/scorecard_*.yaml) scoring the pack it names; repeat for "
                   "several packs. Default: each rule's own deduction.")
def rescore(db, rules_paths, out, scorecard_paths=()):
    """Re-score every stored ok call from its stored transcript with the given rule packs,
    without audio or ASR (after a rule change). Results are written back a chunk of calls per
    transaction (a killed re-score leaves each call old or new, never half); error rows are
    left for `run` to retry.

    Exit code 0 when every call was re-scored, 1 when some could not be (they keep their
    stored result), 2 when nothing could run (bad rule pack, unreadable database)."""
    from .pipeline import PackSet
    from .pipeline import rescore as rescore_calls
    from .rules import load_pack

    try:
        paths = rules_paths or (DEFAULT_PACK, DEFAULT_PACK_EN)
        from .scorecard import load_scorecard

        packs = PackSet([load_pack(p) for p in paths],  # a bad pack fails before the db is touched
                        [load_scorecard(p) for p in scorecard_paths])
    except QAError as e:
        _fail(e)
    store = open_existing_store(db)
    html = None
    with store_errors(db, store):
        click.echo(f"qa-inspect rescore: {db}, rules {packs.describe()}")
        summary = rescore_calls(store, packs)
        if out is not None:
            html = _write_report(store, out, {
                "rule packs": packs.describe(), "re-scored (no ASR)": summary.rescored,
                "changed score": summary.changed})
    for c in summary.changes:
        old = f"{c.old_score:5.1f} {c.old_grade or '':<2}" if c.old_score is not None else "   —    "
        click.echo(f"  {c.call_id:<28} {old} -> {c.new_score:5.1f} {c.new_grade:<2}{' FATAL' if c.fatal else ''}")
    for cid, reason in summary.failures.items():
        click.echo(f"  {cid:<28} NOT RE-SCORED {reason}", err=True)
    rate = f"{summary.calls_per_s} calls/s" if summary.calls_per_s is not None else "— calls/s"
    click.echo(f"rescored: {summary.rescored} call(s), {summary.changed} changed score, "
               f"{summary.failed} failed, {summary.skipped} without transcript; "
               f"{summary.wall_s:.2f} s, {rate}")
    if html is not None:
        click.echo(f"report: {html}")
        click.echo(f"csv:    {html.with_suffix('.csv')}")
    sys.exit(1 if summary.failed else 0)


def _write_report(store, out, summary: dict):
    from .reports.batch import write_batch_report

    return write_batch_report(list(store.results()), Path(out), summary=summary)


@main.command(context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", default="text", type=click.Choice(["text", "jsonl"]), show_default=True)
@click.option("--layout", default="stereo_agent_left", show_default=True,
              type=click.Choice(["stereo_agent_left", "stereo_agent_right", "mono"]),
              help="How channels map to roles (mono files are always mono).")
@asr_options
def transcribe(files, fmt, layout, language, model_path, device, compute_type, batch_size):
    """Print transcripts of audio FILES with role, start and end (to check the ASR by ear)."""
    from .asr import WhisperTranscriber
    from .audio import decode

    try:
        t = WhisperTranscriber(_asr_config(language, model_path, device, compute_type, batch_size))
    except QAError as e:
        _fail(e)
    failed = 0
    for f in files:
        try:
            tr = t.transcribe(Path(f).stem, decode(f), layout, language or None)
        except QAError as e:
            click.echo(f"error: {e}", err=True)
            failed += 1
            continue
        if fmt == "jsonl":
            click.echo(json.dumps(tr.to_dict(), ensure_ascii=False))
        else:
            click.echo(f"# {f} ({tr.duration:.1f} s, roles by {tr.role_method})")
            for turn in tr.turns:
                click.echo(f"[{turn.start:7.2f} – {turn.end:7.2f}] {turn.role:<8} {turn.text}")
    sys.exit(1 if failed else 0)


@main.command(context_settings=CONTEXT)
@click.option("--db", default="qa.db", show_default=True, help=DB_HELP)
@click.option("--format", "fmt", default="jsonl", type=click.Choice(["jsonl", "csv"]), show_default=True)
@click.option("-o", "--output", default="-", type=click.Path(), help="File to write (default stdout).")
@click.option("--redact/--no-redact", default=False, show_default=True,
              help="Replace personal data (phone/ID/bank numbers, names, addresses) in transcripts "
                   "and evidence with labels such as [手机号]; use for exports meant for trainers.")
def export(db, fmt, output, redact):
    """Export one record per call (the public format: call_id, agent_id, status, error, score,
    grade, fatal, rules[{rule_id, matched, outcome, deduction, evidence}], metrics)."""
    import csv as csv_mod

    from .redact import redact_call_dict

    def record(r):
        return redact_call_dict(r.to_dict()) if redact else r.to_dict()

    store = open_existing_store(db)
    fh = sys.stdout if output == "-" else open(output, "w", encoding="utf-8", newline="")
    try:
        if fmt == "jsonl":
            for r in store.results():
                fh.write(json.dumps(record(r), ensure_ascii=False) + "\n")
        else:
            w = csv_mod.writer(fh)
            w.writerow(["call_id", "agent_id", "status", "error", "score", "grade", "fatal", "rules", "metrics"])
            for r in store.results():
                d = record(r)
                w.writerow([d["call_id"], d["agent_id"], d["status"], d["error"], d["score"], d["grade"],
                            d["fatal"], json.dumps(d["rules"], ensure_ascii=False),
                            json.dumps(d["metrics"], ensure_ascii=False)])
    finally:
        store.close()
        if fh is not sys.stdout:
            fh.close()


@main.group(context_settings=CONTEXT)
def rules():
    """Rule pack tools for rule authors."""


def _each_pack(paths):
    """Yield (path, pack) per rule pack file, printing its problems; pack is None if unusable."""
    from .rules.loader import parse_pack

    for p in paths:
        path = Path(p)
        if not path.exists():
            click.echo(f"{p}: rule pack not found", err=True)
            yield p, None
            continue
        pack, problems = parse_pack(path.read_text(encoding="utf-8"), str(path))
        for e in problems:
            click.echo(str(e), err=True)
        yield p, pack


@rules.command("validate", context_settings=CONTEXT)
@click.argument("packs", nargs=-1, required=True, type=click.Path())
def rules_validate(packs):
    """List every problem in rule PACKS, one line each with file:line."""
    bad = 0
    for p, pack in _each_pack(packs):
        if pack is None:
            bad += 1
            continue
        click.echo(f"{p}: ok ({len(pack.rules)} rules, pack {pack.id} {pack.version})")
    sys.exit(1 if bad else 0)


@rules.command("test", context_settings=CONTEXT)
@click.argument("packs", nargs=-1, required=True, type=click.Path())
@click.option("--junit", "junit_path", default=None, type=click.Path(dir_okay=False),
              help="Also write JUnit XML (one testcase per example).")
def rules_test(packs, junit_path):
    """Run every rule's examples (hit/miss/todo) in rule PACKS; exit 1 if any fails."""
    from .rules.examples import junit_xml, run_examples

    bad = 0
    results = []
    for p, pack in _each_pack(packs):
        if pack is None:
            bad += 1
            continue
        by_rule = run_examples(pack)
        results.append((pack, by_rule))
        click.echo(f"{p} (pack {pack.id} {pack.version})")
        click.echo(f"  {'rule':<24} {'hits':>6} {'misses':>7} {'todo':>5}  status")
        failed, warnings = [], []
        for rule in pack.rules:
            outs = by_rule[rule.id]
            if not outs:
                warnings.append(f"warning: {rule.source or pack.source}:{rule.line}: rule '{rule.id}': no examples")
                click.echo(f"  {rule.id:<24} {'-':>6} {'-':>7} {'-':>5}  no examples")
                continue
            hits = [o for o in outs if o.example.kind == "hit"]
            misses = [o for o in outs if o.example.kind == "miss"]
            todo = [o for o in outs if o.example.kind == "todo"]
            rule_failed = [o for o in outs if o.status == "fail"]
            failed += rule_failed
            ok_h = sum(o.status == "pass" for o in hits)
            ok_m = sum(o.status == "pass" for o in misses)
            status = "FAIL" if rule_failed else "ok"
            click.echo(f"  {rule.id:<24} {f'{ok_h}/{len(hits)}':>6} {f'{ok_m}/{len(misses)}':>7} "
                       f"{len(todo):>5}  {status}")
        for o in failed:
            want = "match" if o.example.kind == "hit" else "no match"
            click.echo(f"FAIL {o.where}: rule '{o.rule_id}' {o.name} expected {want}: "
                       f"{o.example.describe()}\n     reason: {o.reason}")
        for o in (o for outs in by_rule.values() for o in outs if o.status == "todo-passes"):
            click.echo(f"note {o.where}: rule '{o.rule_id}' {o.name}: todo now passes — move it to hit")
        for w in warnings:
            click.echo(w, err=True)
        bad += bool(failed)
    if junit_path:
        Path(junit_path).write_bytes(junit_xml(results))
    sys.exit(1 if bad else 0)


@rules.command("explain", context_settings=CONTEXT)
@click.argument("pack_path", metavar="PACK", type=click.Path())
@click.option("--call", "call_id", default="", help="Call id (required with --db; picks one call of --transcript).")
@click.option("--db", default=None, type=click.Path(), help="SQLite results file written by `run`.")
@click.option("--transcript", "transcript_path", default=None, type=click.Path(),
              help="Transcripts JSONL (as for `run`); with several calls, pick one with --call.")
def rules_explain(pack_path, call_id, db, transcript_path):
    """Explain rule PACK on one call: per rule the outcome, deduction, whether it applied
    (`when`), what matched where (turn, role, mm:ss, the term marked 【like this】, matcher,
    confidence) and, when a rule did not fire, why and which turns were looked at.

    Exit code 0 on success, 2 when the pack or the call cannot be read."""
    from .errors import InputError
    from .rules import load_pack
    from .rules.engine import describe_condition, evaluate, find, match_context, prepare, scope_turns
    from .scoring import score_call

    if (db is None) == (transcript_path is None):
        _fail(InputError("give exactly one of --db (with --call) or --transcript"))
    try:
        pack = load_pack(pack_path)
        tr, metrics = _explain_transcript(db, transcript_path, call_id, pack.language)
    except QAError as e:
        _fail(e)
    turns = prepare(tr)
    dur = f", {tr.duration:.1f} s" if tr.duration else ""
    click.echo(f"call {tr.call_id} ({len(tr.turns)} turns{dur}) — pack {pack.id} {pack.version}")
    total = 0.0
    results = evaluate(pack, tr, metrics)
    for rule, res in zip(pack.rules, results):
        if rule.match_expr is not None:
            total += res.deduction
            _explain_composed(rule, res, tr, turns, metrics)
            continue
        total += res.deduction
        fired = res.outcome == "hit" or (rule.kind == "required" and res.outcome == "pass")
        ded = f"  -{res.deduction:g}" if res.deduction else ""
        fatal = "  FATAL" if res.fatal else ""
        click.echo("")
        click.echo(f"[{res.outcome.upper():<4}] {rule.id} {rule.title} ({rule.kind}, {rule.severity}){ded}{fatal}")
        if rule.when is None:
            click.echo("  when:   always applies")
        else:
            wev = find(turns, rule.when, tr.duration)
            holds = len(wev) >= rule.when.min_count
            click.echo(f"  when:   {'holds' if holds else 'does not hold'}: {describe_condition(rule.when)}")
            for e in wev:
                click.echo("    " + _explain_evidence(e))
            if not holds:
                click.echo("    " + _explain_scope(scope_turns(tr, rule.when), rule.when))
        click.echo(f"  match:  {describe_condition(rule.match)}")
        click.echo(f"  reason: {res.reason}")
        for e in res.evidence:
            click.echo("    " + _explain_evidence(e))
        if not fired and res.outcome != "n/a":  # why not: what was looked at, what was found
            click.echo("    " + _explain_scope(scope_turns(tr, rule.match, rule.when), rule.match))
            allowed = match_context(rule, turns, tr.duration)
            for e in find(turns, rule.match, tr.duration, allowed):  # below min_count: found, but too few
                click.echo("    " + _explain_evidence(e))
    sc = score_call(results, [(g.min, g.grade) for g in pack.grades])
    click.echo("")
    click.echo(f"score {sc.score:g} {sc.grade}{' (fatal)' if sc.fatal else ''}, total deduction {total:g}")


def _explain_composed(rule, res, tr, turns, metrics) -> None:
    """A rule built from named conditions: the expressions, then each condition found or not,
    with its evidence, or the turns it looked at."""
    from .rules.engine import _metric_evidence, describe_condition, find, scope_turns

    ded = f"  -{res.deduction:g}" if res.deduction else ""
    fatal = "  FATAL" if res.fatal else ""
    click.echo("")
    click.echo(f"[{res.outcome.upper():<4}] {rule.id} {rule.title} ({rule.kind}, {rule.severity}){ded}{fatal}")
    if rule.when_expr is not None:
        click.echo(f"  when:   \"{rule.when_expr}\"")
    elif rule.when is not None:
        click.echo(f"  when:   {describe_condition(rule.when)}")
    else:
        click.echo("  when:   always applies")
    click.echo(f"  match:  \"{rule.match_expr}\"")
    click.echo(f"  reason: {res.reason}")
    for name, cond in rule.conditions:
        if cond.metric is not None:
            ev, note = _metric_evidence(cond, metrics)
        else:
            ev, note = find(turns, cond, tr.duration), ""
        ok = len(ev) >= cond.min_count
        click.echo(f"  {name}: {'found' if ok else 'not found'} — {describe_condition(cond)}"
                   + (f" ({note})" if note else ""))
        for e in ev:
            click.echo("    " + _explain_evidence(e))
        if not ok and cond.metric is None:
            click.echo("    " + _explain_scope(scope_turns(tr, cond), cond))


def _explain_transcript(db, transcript_path, call_id, language):
    """(transcript, call metrics) of the one call to explain, from the results database (its
    stored metrics) or a transcripts JSONL (talk metrics and text enrichment worked out now)."""
    from .errors import InputError

    if db is not None:
        import sqlite3

        from .store import open_store

        if not call_id:
            raise InputError("--db needs --call ID")
        if not Path(db).is_file():
            raise InputError("results database not found", db)
        try:
            store = open_store(db)
        except sqlite3.Error as e:
            raise InputError(f"cannot open results database ({e})", db)
        try:
            res = store.get_result(call_id)
        except sqlite3.DatabaseError as e:
            raise InputError(str(e), db)
        finally:
            store.close()
        if res is None:
            raise InputError(f"no call {call_id!r} in the results", db)
        if res.transcript is None:
            raise InputError(f"call {call_id!r} has no stored transcript ({res.status}: {res.error})", db)
        return res.transcript, dict(res.metrics)
    from .inputs import read_input

    items = read_input(transcript_path, language=language)
    found = [it for it in items if it.transcript is not None and (not call_id or it.call.call_id == call_id)]
    if call_id and not found:
        bad = next((it.error for it in items if it.call.call_id == call_id and it.error), "")
        raise InputError(bad or f"no call {call_id!r} with a transcript", transcript_path)
    if not found:
        raise InputError("no readable transcript", transcript_path)
    if len(found) > 1:
        ids = ", ".join(it.call.call_id for it in found[:8]) + (" …" if len(found) > 8 else "")
        raise InputError(f"{len(found)} calls, pick one with --call ({ids})", transcript_path)
    from .enrich import enrich
    from .metrics import talk_metrics

    tr = enrich(found[0].transcript)
    return tr, {**talk_metrics(tr), **tr.metrics}


def _mmss(t) -> str:
    return "--:--" if t is None else f"{int(t) // 60:02d}:{int(t) % 60:02d}"


def _mark(text: str, terms: list[str]) -> str:
    """``text`` with each term (as matched on normalised text) wrapped in 【】 where it can be
    placed on the verbatim text."""
    from .text import normalize

    # norm_len[i]: length of the normalised form of text[:i]; maps normalised offsets back
    norm_len = [len(normalize(text[:i], drop_fillers=True)) for i in range(len(text) + 1)]
    norm = normalize(text, drop_fillers=True)
    spans = []
    for term in terms:
        if not term:
            continue
        i = text.find(term)
        if i >= 0:
            spans.append((i, i + len(term)))
            continue
        nt = normalize(term, drop_fillers=True) or term
        j = norm.find(nt)
        if j < 0:
            continue
        a = next(i for i in range(len(text)) if norm_len[i + 1] > j)
        b = next(i for i in range(a, len(text) + 1) if norm_len[i] >= j + len(nt))
        spans.append((a, b))
    out, last = [], 0
    for a, b in sorted(spans):
        if a < last:  # overlapping spans: keep the first
            continue
        out += [text[last:a], "【", text[a:b], "】"]
        last = b
    return "".join(out) + text[last:]


def _explain_evidence(e) -> str:
    if e.matcher == "regex":
        terms = [e.matched]
    elif e.matcher == "semantic":  # the whole turn is like the example: nothing to mark
        terms = []
    else:  # keyword a+b, pinyin/fuzzy phrase≈heard
        terms = [part.split("≈")[-1] for part in e.matched.split("+")]
    return (f"turn {e.turn} {e.role} {_mmss(e.start)}  {_mark(e.text, terms)}  "
            f"[{e.matcher} {e.matched!r}, confidence {e.confidence:.2f}]")


def _explain_scope(turns, cond) -> str:
    idx = [t.index for t in turns]
    if not idx:
        return f"looked at no {cond.role} turns ({cond.window.describe()})"
    if idx == list(range(idx[0], idx[-1] + 1)) and len(idx) > 1:
        where = f"{idx[0]}–{idx[-1]}"
    else:
        where = ", ".join(map(str, idx))
    role = "" if cond.role == "any" else f"{cond.role} "
    head = f"looked at {role}turn{'s' if len(idx) > 1 else ''} {where} ({cond.window.describe()}):"
    return "\n      ".join([head] + [f"turn {t.index} {t.role} {_mmss(t.start)}  {t.text}" for t in turns])


@rules.command("eval", context_settings=CONTEXT)
@click.argument("pack_path", metavar="PACK", type=click.Path())
@click.option("--transcripts", "transcripts_path", required=True, type=click.Path(),
              help="Transcripts JSONL (call_id, turns with role/text).")
@click.option("--labels", "labels_path", required=True, type=click.Path(),
              help="Labels JSONL: one call a line, its id (call_id or id) and item: true|false fields.")
@click.option("--map", "item_map", multiple=True, metavar="LABEL=RULE",
              help="Read label item LABEL as rule RULE (repeatable), e.g. opening_greeting=greeting.")
@click.option("--show-errors", is_flag=True, help="List the false-positive and false-negative call ids per rule.")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON instead of a table.")
def rules_eval(pack_path, transcripts_path, labels_path, item_map, show_errors, as_json):
    """Measure rule PACK against labelled calls: per rule (predicted = the rule's condition was
    found) n, tp, fp, fn, precision, recall, F1, and the macro F1 over the rules.

    Exit code 0 on success, 2 when the pack, transcripts or labels cannot be read or share no
    call or rule."""
    from .errors import InputError
    from .inputs import read_input
    from .rules import load_pack
    from .rules.evaluation import evaluate_pack_against_labels, macro_f1, read_labels

    try:
        mapping = {}
        for m in item_map:
            label, sep, rule = m.partition("=")
            if not sep or not label.strip() or not rule.strip():
                raise InputError(f"--map {m!r}: expected LABEL=RULE")
            mapping[label.strip()] = rule.strip()
        pack = load_pack(pack_path)
        labels = read_labels(labels_path, mapping)
        items = read_input(transcripts_path, language=pack.language)
    except QAError as e:
        _fail(e)
    bad = [it.error for it in items if it.error]
    for err in bad[:5]:
        click.echo(f"warning: skipped {err}", err=True)
    if len(bad) > 5:
        click.echo(f"warning: … and {len(bad) - 5} more bad transcript line(s)", err=True)
    transcripts = [it.transcript for it in items if it.transcript is not None and it.call.call_id in labels]
    missing = len(labels) - len(transcripts)
    if missing:
        click.echo(f"warning: {missing} labelled call(s) have no transcript", err=True)
    if not transcripts:
        _fail(InputError("no labelled call has a transcript (do the ids line up?)", transcripts_path))
    rule_ids = {r.id for r in pack.rules}
    label_items = sorted({k for lab in labels.values() for k in lab})
    unused = [k for k in label_items if k not in rule_ids]
    if unused:
        click.echo(f"note: label item(s) with no rule of that id, not scored: {', '.join(unused)}", err=True)
    scores = evaluate_pack_against_labels(pack, transcripts, labels)
    if not scores:
        _fail(InputError("no rule of the pack has labels (use --map LABEL=RULE)", labels_path))
    if as_json:
        click.echo(json.dumps({"pack": pack.id, "calls": len(transcripts), "macro_f1": macro_f1(scores),
                               "items": [s.to_dict() for s in scores]}, ensure_ascii=False, indent=2))
        return
    w = max(len("rule"), *(len(s.item) for s in scores))
    click.echo(f"pack {pack.id} {pack.version}: {len(transcripts)} labelled call(s)")
    click.echo(f"{'rule':<{w}}  {'n':>4} {'tp':>4} {'fp':>4} {'fn':>4}  {'precision':>9} {'recall':>6} {'F1':>6}")
    for s in scores:
        click.echo(f"{s.item:<{w}}  {s.n:>4} {s.tp:>4} {s.fp:>4} {s.fn:>4}  {s.precision:>9.3f} "
                   f"{s.recall:>6.3f} {s.f1:>6.3f}")
    click.echo(f"macro F1 {macro_f1(scores):.3f} over {len(scores)} rule(s)")
    if show_errors:
        for s in scores:
            if s.false_positives:
                click.echo(f"{s.item} false positives: {' '.join(s.false_positives)}")
            if s.false_negatives:
                click.echo(f"{s.item} false negatives: {' '.join(s.false_negatives)}")


# Command groups that live in their own modules (one module per group): each module's
# ``register(main)`` adds its commands; its heavy imports stay inside the commands.
from . import cli_report, cli_review  # noqa: E402

cli_review.register(main)
cli_report.register(main)

if __name__ == "__main__":
    main()
