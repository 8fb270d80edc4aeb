"""Batch commands: run, rescore, transcribe, export."""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import click

from qa_inspect.cli.common import (CONTEXT, DB_HELP, check_out_dir, DEFAULT_PACK, DEFAULT_PACK_EN, close_quietly, fail,
                                   open_existing_store, shown_db, store_errors)
from qa_inspect.cli.config import config_option, lang_option
from qa_inspect.cli.main import main, worker_log_setup
from qa_inspect.errors import QAError

_fail = fail


def asr_options(f):
    f = click.option("--language", default="", help="Language code (zh, en); default: from manifest, else zh.")(f)
    f = click.option("--model", "model_path", default="", help="Local faster-whisper model dir (default: packaged base).")(f)
    f = click.option("--device", default="auto", type=click.Choice(["auto", "cpu", "cuda"]), help="Where ASR runs.")(f)
    f = click.option("--compute-type", default="auto", help="CTranslate2 compute type (default int8 on CPU, float16 on CUDA).")(f)
    f = click.option("--batch-size", default=0, type=int, help="Batched Whisper inference when > 0.")(f)
    return f


def _asr_config(language: str, model_path: str, device: str, compute_type: str, batch_size: int):
    from qa_inspect.speech.asr import ASRConfig

    return ASRConfig(model_path=model_path, device=device, compute_type=compute_type,
                     language=language or "zh", batch_size=batch_size)


@main.command(context_settings=CONTEXT)
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True))
@click.option("--rules", "rules_paths", multiple=True, type=click.Path(),
              help="Rule pack YAML; repeat for several languages (a call uses the pack of its "
                   f"language, else the first). Default: {DEFAULT_PACK} and {DEFAULT_PACK_EN}.")
@click.option("--db", default=None,
              help="Results database: a SQLite file, or postgresql://USER@HOST/DB (the postgres extra). "
                   "Default: the config's db, else qa.db.")
@click.option("--out", default=None, type=click.Path(),
              help="Report folder. Default: the config's out, else reports.")
@config_option
@lang_option
@click.option("--layout", default="stereo_agent_left", show_default=True,
              type=click.Choice(["stereo_agent_left", "stereo_agent_right", "mono"]),
              help="Channel layout for audio without a manifest row.")
@click.option("--force", is_flag=True, help="Re-process calls already done with the same config.")
@click.option("--scorecard", "scorecard_paths", multiple=True, type=click.Path(),
              help="Scorecard YAML scoring the pack it names; repeat for several packs. "
                   "Default: the pack's own scorecard (scorecard_<pack id>.yaml beside it).")
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="Processes that decode and transcribe in parallel (each loads the model once "
                   "and gets cores/N CPU threads). Local default: one per CPU core, as many as the "
                   "free memory holds at 1 GiB each; 1: everything in this process. "
                   "With --executor ray: Ray actors (default one per GPU, else one per CPU core).")
@click.option("--executor", default="local", show_default=True, type=click.Choice(["local", "ray"]),
              help="local: this process or a process pool; ray: Ray actors on a Ray cluster.")
@click.option("--ray-address", default=None, metavar="ADDRESS",
              help="Ray cluster to join with --executor ray: auto (the cluster `ray start` runs "
                   "on this machine), HOST:6379, or ray://HOST:10001. Default: a new local cluster.")
@asr_options
def run(input_path, rules_paths, db, out, layout, force, workers, executor, ray_address, language,
        model_path, device, compute_type, batch_size, scorecard_paths=(), config_path=None, lang=None):
    """Run the nightly batch over INPUT: a folder of audio, a manifest (CSV/JSONL) or a
    transcripts JSONL. Writes results to --db and the report to --out.

    Exit code 0 when every call succeeded, 1 when some calls failed (see the report's
    error rows), 2 when nothing could run (bad rule pack, missing input)."""
    from qa_inspect.batch.inputs import customer_key, read_input_segments
    from qa_inspect.batch.pipeline import BatchSummary, run_batch
    from qa_inspect.store import open_store

    from qa_inspect.cli.config import load_config, load_packs, report_options

    try:
        conf = load_config(config_path)
        db = db or conf.db or "qa.db"
        out = out or conf.out or "reports"
        check_out_dir(out)
        # a bad pack fails before any audio is touched
        packs = load_packs(rules_paths, scorecard_paths, config=conf)
        ropts = report_options(packs, conf, lang)  # bad alert tags / time zone: before any audio
        # a transcripts JSONL comes a segment at a time (inputs.SEGMENT_CALLS): the driver never
        # holds the whole night's text; other inputs are one segment
        total, segments = read_input_segments(input_path, default_layout=layout,
                                              language=language or packs.language,
                                              customer_key=lambda: customer_key(db))
    except QAError as e:
        _fail(e)
    cfg = _asr_config(language or packs.language, model_path, device, compute_type, batch_size)
    holder: dict = {}

    def get_transcriber():
        if "t" not in holder:
            from qa_inspect.speech.asr import WhisperTranscriber

            holder["t"] = WhisperTranscriber(cfg)
        return holder["t"]

    from qa_inspect.cli.progress import BatchProgress, stream_is_tty

    bar = BatchProgress(total)  # live only when stderr is a terminal
    # while the bar is live on the terminal, per-call lines bound for the terminal go above it
    above = bar.live and stream_is_tty(sys.stdout)

    stored = []

    def show(res):
        stored.append(res.call.call_id)
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

    click.echo(f"qa-inspect: {total} call(s) from {input_path}, rules {packs.describe()}")
    try:
        store = open_store(db)
    except QAError as e:  # e.g. a postgresql:// server that cannot be reached
        _fail(e)
    old_term = None
    if threading.current_thread() is threading.main_thread():
        old_term = signal.signal(signal.SIGTERM, _interrupt)  # `kill`, a scheduler's stop: as Ctrl-C
    if executor == "local" and not workers:
        from qa_inspect.batch.pool import auto_workers

        workers = auto_workers()  # one per core, as memory allows; 1 = in this process
    call_ids: list[str] = []  # every call of the input, for the report (ids only)
    summary = BatchSummary(total=total)
    t_run = time.perf_counter()
    try:
        with bar:
            for seg in segments:
                items = _without_pack_as_errors(seg, packs)
                call_ids += (it.call.call_id for it in items)
                before = summary

                def progress(s, _item, _res, before=before):
                    bar.update(before.plus(s))

                if executor == "ray":
                    from qa_inspect.batch.ray_actors import run_batch_ray

                    done = run_batch_ray(items, packs, store, cfg, workers or 0, address=ray_address,
                                         log_setup=worker_log_setup(),
                                         force=force, on_result=show, on_progress=progress)
                elif workers > 1:
                    from qa_inspect.batch.pool import run_batch_parallel

                    done = run_batch_parallel(items, packs, store, cfg, workers, force=force,
                                              log_setup=worker_log_setup(),
                                              on_result=show, on_progress=progress)
                else:
                    done = run_batch(items, packs, store, get_transcriber, cfg.key(), force=force,
                                     on_result=show, on_progress=progress)
                summary = summary.plus(done)
                del items, seg  # the next segment is read only now
        # the run's wall time: every segment's reading (the input is parsed as it is taken) and batch
        summary.wall_s = time.perf_counter() - t_run
        # one pass over this run's stored results, a page at a time: report, alerts, complaint facts
        report, complaint_calls = _gather(store, call_ids, ropts)
        zh = ropts["lang"] == "zh"
        tickets = _complaint_tickets(store, complaint_calls)
        html = report.write(Path(out), lang=ropts["lang"], tz=ropts["tz"], tickets=tickets, summary={
            "规则包" if zh else "rule packs": packs.describe(),
            "已处理过（跳过）" if zh else "skipped (already done)": summary.skipped,
            "耗时" if zh else "wall time": f"{summary.wall_s:.1f} s",
            "实时率（耗时/音频）" if zh else "real-time factor (wall / audio)":
                summary.wall_rtf if summary.wall_rtf is not None else "—",
            "识别实时率" if zh else "ASR real-time factor": summary.rtf if summary.rtf is not None else "—"})
        alert_line = _alert_line(report, ropts)
    except QAError as e:
        _fail(e)
    except KeyboardInterrupt:
        store.close()
        click.echo(f"中断 / interrupted: {len(stored)} call(s) finished and stored in this run; run the "
                   "same command again to resume (stored calls are skipped, none is counted twice)", err=True)
        if executor == "ray" or (workers or 1) > 1:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)  # now: pool workers die with this process, nothing waits for their calls
        sys.exit(130)
    finally:
        store.close()
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    click.echo(_run_summary_line(summary))
    for reason, n in sorted(summary.error_reasons.items()):
        click.echo(f"  errors: {n} × {reason}")
    click.echo(alert_line)
    click.echo(f"report: {html}")
    click.echo(f"csv:    {html.with_suffix('.csv')}")
    sys.exit(1 if summary.errors else 0)


def _gather(store, call_ids, ropts):
    """The run's batch report (``reports.batch.BatchReport``) and its calls' complaint facts,
    from one pass over its stored results, read a page at a time: a batch of any size."""
    from qa_inspect.reports.batch import BatchReport
    from qa_inspect.workflow.complaints import complaint_call

    report = BatchReport(alert_policies=ropts["alert_policies"], rule_descriptions=ropts["rule_descriptions"])
    policies, calls, now = ropts["alert_policies"] or {}, [], time.time()
    for r in store.results_of(call_ids):
        alert = report.add(r)  # worked out once, for the report and the complaint loop
        if r.status == "ok":
            calls.append(complaint_call(r, policies.get(r.pack_id), now=now, alert=alert))
    return report, calls


def _complaint_tickets(store, complaint_calls) -> list[dict]:
    """Open or attach complaint tickets for this run's calls (issue 15); the open tickets as
    report rows, overdue first."""
    from qa_inspect.workflow.complaints import STATUS_LABELS, fmt_late, list_tickets, process_complaint_calls

    opened, attached = process_complaint_calls(store, complaint_calls)
    if opened or attached:
        click.echo(f"投诉工单 / complaint tickets: {opened} opened, {attached} repeat call(s) attached")
    now = time.time()
    return [{"id": t.ticket_id, "grade": t.grade, "status": STATUS_LABELS.get(t.status, t.status),
             "customer": t.customer[:18], "opened_at": t.opened_at, "owner": t.owner or "—",
             "late": "，".join(f"{c}超 {fmt_late(s)}" for c, s in t.overdue(now))}
            for t in list_tickets(store, now=now) if t.status != "closed"]


def _alert_line(report, ropts) -> str:
    """"alerts: 8 of 13 calls (61.5%): 紧急 2, 高 1, 关注 5"."""
    from qa_inspect.reports.alerts import LEVEL_LABELS, alert_counts

    ok, alerts = report.counts["ok"], report.alerts
    share = f" ({len(alerts) / ok:.1%})" if ok else ""
    labels = LEVEL_LABELS[ropts["lang"]]
    return (f"alerts: {len(alerts)} of {ok} call(s){share}: "
            + ", ".join(f"{labels[lv]} {n}" for lv, n in alert_counts(alerts).items()))


def _without_pack_as_errors(items, packs):
    """A call whose language has no loaded pack becomes an error row: it is never scored with
    another language's pack (issue 14)."""
    from dataclasses import replace

    have = {p.language for p in packs.packs}
    out = []
    for it in items:
        lang = it.call.language
        if not it.error and lang and lang not in have:
            src = it.call.source_line or it.call.path or it.call.call_id
            it = replace(it, error=f"{src}: no rule pack for language '{lang}' (loaded: "
                                   f"{', '.join(sorted(have))}); add one with --rules or [packs] in the config")
        out.append(it)
    return out


def _interrupt(signum, _frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


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
@click.option("--db", default=None, help=DB_HELP + " Default: the config's db, else qa.db.")
@click.option("--rules", "rules_paths", multiple=True, type=click.Path(),
              help="Rule pack YAML; repeat for several languages (a call uses the pack of its "
                   f"language). Default: the config's packs, else {DEFAULT_PACK} and {DEFAULT_PACK_EN}.")
@click.option("--out", default=None, type=click.Path(),
              help="Rewrite the batch report (report.html, report.csv) in this folder.")
@click.option("--scorecard", "scorecard_paths", multiple=True, type=click.Path(),
              help="Scorecard YAML scoring the pack it names; repeat for several packs. "
                   "Default: the pack's own scorecard (scorecard_<pack id>.yaml beside it).")
@config_option
@lang_option
def rescore(db, rules_paths, out, scorecard_paths=(), config_path=None, lang=None):
    """Re-score every stored ok call from its stored transcript with the given rule packs,
    without audio or ASR (after a rule change). Results are written back a chunk of calls per
    transaction (a killed re-score leaves each call old or new, never half); error rows are
    left for `run` to retry.

    Exit code 0 when every call was re-scored, 1 when some could not be (they keep their
    stored result), 2 when nothing could run (bad rule pack, unreadable database)."""
    from qa_inspect.batch.rescore import rescore as rescore_calls
    from qa_inspect.cli.config import load_config, load_packs, report_options

    try:
        conf = load_config(config_path)
        db = db or conf.db or "qa.db"
        packs = load_packs(rules_paths, scorecard_paths, config=conf)  # before the db is touched
        if out is not None:
            check_out_dir(out)
        ropts = report_options(packs, conf, lang)
    except QAError as e:
        _fail(e)
    store = open_existing_store(db)
    html = None
    with store_errors(db, store):
        click.echo(f"qa-inspect rescore: {shown_db(db)}, rules {packs.describe()}")
        summary = rescore_calls(store, packs)
        if out is not None:
            zh = ropts["lang"] == "zh"
            html = _write_report(store, out, ropts, {
                "规则包" if zh else "rule packs": packs.describe(),
                "重新评分（未重新转写）" if zh else "re-scored (no ASR)": summary.rescored,
                "分数有变化" if zh else "changed score": summary.changed})
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


def _write_report(store, out, ropts: dict, summary: dict):
    from qa_inspect.reports.batch import write_batch_report

    return write_batch_report(store.results(), Path(out), summary=summary, **ropts)  # streamed: any size


@main.command(context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", default="text", type=click.Choice(["text", "jsonl"]), show_default=True)
@click.option("--layout", default="stereo_agent_left", show_default=True,
              type=click.Choice(["stereo_agent_left", "stereo_agent_right", "mono"]),
              help="How channels map to roles (mono files are always mono).")
@asr_options
def transcribe(files, fmt, layout, language, model_path, device, compute_type, batch_size):
    """Print transcripts of audio FILES with role, start and end (to check the ASR by ear)."""
    from qa_inspect.speech.asr import WhisperTranscriber
    from qa_inspect.speech.decode import decode

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

    from qa_inspect.redact import redact_call_dict

    def record(r):
        return redact_call_dict(r.to_dict()) if redact else r.to_dict()

    from qa_inspect.reports.cells import safe_cell

    store = open_existing_store(db, readonly=True)
    # a CSV file gets a UTF-8 BOM so Excel reads the Chinese; stdout stays plain UTF-8
    enc = "utf-8-sig" if fmt == "csv" and output != "-" else "utf-8"
    fh = sys.stdout if output == "-" else open(output, "w", encoding=enc, newline="")
    try:
        if fmt == "jsonl":
            for r in store.results():
                fh.write(json.dumps(record(r), ensure_ascii=False) + "\n")
        else:
            w = csv_mod.writer(fh)
            w.writerow(["call_id", "agent_id", "status", "error", "score", "grade", "fatal", "rules", "metrics"])
            for r in store.results():
                d = record(r)
                # every cell through the one formula guard (issue 17), ids included
                w.writerow([safe_cell(v) for v in (
                    d["call_id"], d["agent_id"], d["status"], d["error"], d["score"], d["grade"], d["fatal"],
                    json.dumps(d["rules"], ensure_ascii=False), json.dumps(d["metrics"], ensure_ascii=False))])
    except QAError as e:  # a StoreError while reading (a damaged page …): one line, exit 2
        _fail(e)
    finally:
        close_quietly(store)
        if fh is not sys.stdout:
            fh.close()
