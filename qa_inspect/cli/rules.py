"""Rule pack tools for rule authors: validate, test, explain, eval."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from qa_inspect.cli.common import CONTEXT, DB_HELP, DEFAULT_PACK, DEFAULT_PACK_EN, fail, open_existing_store, store_errors
from qa_inspect.cli.main import main
from qa_inspect.errors import QAError

_fail = fail


@main.group(context_settings=CONTEXT)
def rules():
    """Rule pack tools for rule authors."""


def _expand(paths):
    """Each path; a folder stands for the rule packs in it (``*.yaml`` whose top level has
    ``pack:``), so scorecards and sampling plans beside the packs are skipped (said on stderr)."""
    import re

    for p in paths:
        path = Path(p)
        if not path.is_dir():
            yield p
            continue
        files = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml"))
        for f in files:
            text = f.read_text(encoding="utf-8", errors="replace")
            if re.search(r"^pack:", text, re.M):
                yield str(f)
            else:
                click.echo(f"{f}: skipped (not a rule pack: no top-level 'pack:')", err=True)


def _each_pack(paths):
    """Yield (path, pack) per rule pack file, printing its problems; pack is None if unusable."""
    from qa_inspect.rules.loader import parse_pack

    for p in _expand(paths):
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
    """List every problem in rule PACKS (files, or folders of packs), one line each with file:line."""
    bad = 0
    for p, pack in _each_pack(packs):
        if pack is None:
            bad += 1
            continue
        click.echo(f"{p}: ok ({len(pack.rules)} rules, pack {pack.id} {pack.version})")
    sys.exit(1 if bad else 0)


@rules.command("test", context_settings=CONTEXT)
@click.argument("packs", nargs=-1, required=True, type=click.Path())  # files or folders
@click.option("--junit", "junit_path", default=None, type=click.Path(dir_okay=False),
              help="Also write JUnit XML (one testcase per example).")
def rules_test(packs, junit_path):
    """Run every rule's examples (hit/miss/todo) in rule PACKS (files, or folders: the packs in
    them, scorecards and plans skipped); exit 1 if any fails."""
    from qa_inspect.rules.examples import junit_xml, run_examples

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
    from qa_inspect.errors import InputError
    from qa_inspect.rules import evaluate, explain_call, load_pack
    from qa_inspect.scoring import score_call

    if (db is None) == (transcript_path is None):
        _fail(InputError("give exactly one of --db (with --call) or --transcript"))
    try:
        pack = load_pack(pack_path)
        tr, metrics = _explain_transcript(db, transcript_path, call_id, pack.language)
    except QAError as e:
        _fail(e)
    results = evaluate(pack, tr, metrics)
    for line in explain_call(pack, tr, results, metrics):
        click.echo(line)
    total = sum(res.deduction for res in results)
    sc = score_call(results, [(g.min, g.grade) for g in pack.grades])
    click.echo("")
    click.echo(f"score {sc.score:g} {sc.grade}{' (fatal)' if sc.fatal else ''}, total deduction {total:g}")


def _explain_transcript(db, transcript_path, call_id, language):
    """(transcript, call metrics) of the one call to explain, from the results database (its
    stored metrics) or a transcripts JSONL (talk metrics and text enrichment worked out now)."""
    from qa_inspect.errors import InputError

    if db is not None:
        from qa_inspect.cli.common import close_quietly
        from qa_inspect.store import open_store

        if not call_id:
            raise InputError("--db needs --call ID")
        if "://" not in db and not Path(db).exists():
            raise InputError("results database not found", db)
        store = open_store(db, readonly=True)  # a StoreError is a QAError: one line
        try:
            res = store.get_result(call_id)
        finally:
            close_quietly(store)
        if res is None:
            raise InputError(f"no call {call_id!r} in the results", db)
        if res.transcript is None:
            raise InputError(f"call {call_id!r} has no stored transcript ({res.status}: {res.error})", db)
        return res.transcript, dict(res.metrics)
    from qa_inspect.batch.inputs import read_input

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
    from qa_inspect.enrich import call_metrics, enrich

    tr = enrich(found[0].transcript)
    return tr, call_metrics(tr)


@rules.command("eval", context_settings=CONTEXT)
@click.argument("pack_path", metavar="PACK", type=click.Path())
@click.option("--transcripts", "transcripts_path", default=None, type=click.Path(),
              help="Transcripts JSONL (call_id, turns with role/text).")
@click.option("--db", default=None, help="Or the calls as stored by `run` (a SQLite file or postgresql:// URL): "
              "with labels from `qa-inspect review labels`, a pack is measured against the reviewers.")
@click.option("--labels", "labels_path", required=True, type=click.Path(),
              help="Labels JSONL: one call a line, its id (call_id or id) and item: true|false fields.")
@click.option("--map", "item_map", multiple=True, metavar="LABEL=RULE",
              help="Read label item LABEL as rule RULE (repeatable), e.g. opening_greeting=greeting.")
@click.option("--show-errors", is_flag=True, help="List the false-positive and false-negative call ids per rule.")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON instead of a table.")
def rules_eval(pack_path, transcripts_path, db, labels_path, item_map, show_errors, as_json):
    """Measure rule PACK against labelled calls: per rule (predicted = the rule's condition was
    found) n, tp, fp, fn, precision, recall, F1, and the macro F1 over the rules. The calls come
    from a transcripts JSONL (enriched now) or, with --db, from the results database (the stored
    transcripts and metrics, sentiment widened if the pack reads more of it).

    Exit code 0 on success, 2 when the pack, transcripts or labels cannot be read or share no
    call or rule."""
    from qa_inspect.errors import InputError
    from qa_inspect.rules import load_pack
    from qa_inspect.rules.evaluation import evaluate_pack_against_labels, macro_f1, read_labels

    try:
        mapping = {}
        for m in item_map:
            label, sep, rule = m.partition("=")
            if not sep or not label.strip() or not rule.strip():
                raise InputError(f"--map {m!r}: expected LABEL=RULE")
            mapping[label.strip()] = rule.strip()
        pack = load_pack(pack_path)
        labels = read_labels(labels_path, mapping)
        calls = labelled_transcripts(transcripts_path, db, labels, pack.language)
    except QAError as e:
        _fail(e)
    if db is None:
        from qa_inspect.enrich import call_metrics, enrich

        for cid, (t, _m) in calls.items():
            tr = enrich(t)  # metric: rules (sentiment) need it
            calls[cid] = (tr, call_metrics(tr))
    else:
        calls = {cid: widened(t, m, pack.metric_names) for cid, (t, m) in calls.items()}
    transcripts = [tr for tr, _m in calls.values()]
    rule_ids = {r.id for r in pack.rules}
    label_items = sorted({k for lab in labels.values() for k in lab})
    unused = [k for k in label_items if k not in rule_ids]
    if unused:
        click.echo(f"note: label item(s) with no rule of that id, not scored: {', '.join(unused)}", err=True)
    scores = evaluate_pack_against_labels(pack, transcripts, labels, {cid: m for cid, (_t, m) in calls.items()})
    if not scores:
        _fail(InputError("no rule of the pack has labels (use --map LABEL=RULE)", labels_path))
    if as_json:
        measured = [s for s in scores if s.tp + s.fn > 0]
        click.echo(json.dumps({"pack": pack.id, "calls": len(transcripts), "macro_f1": macro_f1(measured),
                               "without_positives": [s.item for s in scores if s.tp + s.fn == 0],
                               "items": [{**s.to_dict(), "positives": s.tp + s.fn} for s in scores]},
                              ensure_ascii=False, indent=2))
        return
    w = max(len("rule"), *(len(s.item) for s in scores))
    click.echo(f"pack {pack.id} {pack.version}: {len(transcripts)} labelled call(s)")
    click.echo(f"{'rule':<{w}}  {'n':>4} {'tp':>4} {'fp':>4} {'fn':>4}  {'precision':>9} {'recall':>6} {'F1':>6}")
    for s in scores:
        if s.tp + s.fn == 0:  # nothing labelled to find: recall and F1 say nothing
            click.echo(f"{s.item:<{w}}  {s.n:>4} {s.tp:>4} {s.fp:>4} {s.fn:>4}  "
                       f"no positives in the labels ({s.fp} false positive(s))")
            continue
        click.echo(f"{s.item:<{w}}  {s.n:>4} {s.tp:>4} {s.fp:>4} {s.fn:>4}  {s.precision:>9.3f} "
                   f"{s.recall:>6.3f} {s.f1:>6.3f}")
    measured = [s for s in scores if s.tp + s.fn > 0]
    skipped = len(scores) - len(measured)
    click.echo(f"macro F1 {macro_f1(measured):.3f} over {len(measured)} rule(s) with positives"
               + (f"; {skipped} rule(s) without positives left out" if skipped else ""))
    if show_errors:
        for s in scores:
            if s.false_positives:
                click.echo(f"{s.item} false positives: {' '.join(s.false_positives)}")
            if s.false_negatives:
                click.echo(f"{s.item} false negatives: {' '.join(s.false_negatives)}")


def labelled_transcripts(transcripts_path, db, labels, language: str = "") -> dict:
    """``{call id: (transcript, stored metrics or None)}`` of the labelled calls, from a
    transcripts JSONL or (``db``) the results database; warnings for what is missing go to
    standard error. Raises InputError when neither or both are given or no call is found."""
    from qa_inspect.errors import InputError

    if (transcripts_path is None) == (db is None):
        raise InputError("give exactly one of --transcripts FILE or --db RESULTS")
    out: dict = {}
    if db is not None:
        from qa_inspect.cli.common import close_quietly

        store = open_existing_store(db, readonly=True)  # missing, damaged, unreachable: one line, exit 2
        other: set[str] = set()
        try:
            for res in store.results_of(sorted(labels)):
                if res.status != "ok" or res.transcript is None:
                    continue
                if language and res.transcript.language and res.transcript.language != language:
                    other.add(res.call.call_id)  # another language's pack scores it
                else:
                    out[res.call.call_id] = (res.transcript, dict(res.metrics))
        finally:
            close_quietly(store)
        if other:
            click.echo(f"note: {len(other)} labelled call(s) in another language than the pack ({language}) "
                       "left out", err=True)
            labels = {k: v for k, v in labels.items() if k not in other}
        where = db
    else:
        from qa_inspect.batch.inputs import read_input

        items = read_input(transcripts_path, language=language)
        bad = [it.error for it in items if it.error]
        for err in bad[:5]:
            click.echo(f"warning: skipped {err}", err=True)
        if len(bad) > 5:
            click.echo(f"warning: … and {len(bad) - 5} more bad transcript line(s)", err=True)
        out = {it.call.call_id: (it.transcript, None) for it in items
               if it.transcript is not None and it.call.call_id in labels}
        where = transcripts_path
    missing = len(set(labels) - set(out))
    if missing:
        click.echo(f"warning: {missing} labelled call(s) have no {'stored result' if db else 'transcript'}", err=True)
    if not out:
        raise InputError("no labelled call has a " + ("stored transcript" if db else "transcript")
                         + " (do the ids line up?)", where)
    return out


def widened(tr, metrics: dict, names) -> tuple:
    """A stored call's (transcript, metrics) with the sentiment scope the pack's ``metric:``
    conditions read (``enrich.widen_sentiment``: text only, no ASR), the stored run-time
    metrics kept."""
    from qa_inspect.enrich import RUN_METRICS, call_metrics, widen_sentiment

    wide = widen_sentiment(tr, names)
    if wide is None:
        return tr, metrics
    tr = wide[0]
    return tr, call_metrics(tr, {k: metrics[k] for k in RUN_METRICS if k in metrics})
