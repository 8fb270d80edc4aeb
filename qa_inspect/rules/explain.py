"""Explaining a rule pack on one call, as text lines (``qa-inspect rules explain`` prints them):
per rule the outcome, whether it applied, what matched where (turn, role, mm:ss, the term marked
【like this】, matcher, confidence) and, when a rule did not fire, which turns were looked at."""
from __future__ import annotations

from qa_inspect.records import Evidence, RuleResult, Transcript
from qa_inspect.rules.engine import describe_condition, find, match_context, metric_evidence, scope_turns
from qa_inspect.rules.matching import PreparedTurn, prepare
from qa_inspect.rules.model import Condition, Rule, RulePack
from qa_inspect.rules.regex import compile_regex
from qa_inspect.text import highlight, mmss as text_mmss

__all__ = ["explain_call", "evidence_line", "evidence_terms", "scope_lines", "mark", "mmss"]


def mmss(t: float | None) -> str:
    """Seconds as mm:ss, "--:--" when unknown (``text.mmss``)."""
    return text_mmss(t, "--:--")


def mark(text: str, terms) -> str:
    """``text`` with each term wrapped in 【】 where ``text.highlight`` places it."""
    return "".join(f"【{seg}】" if hit else seg for seg, hit in highlight(text, terms))


def evidence_terms(e: Evidence) -> tuple[str, ...]:
    """What to mark in ``e.text``: ``e.heard``, or for a record stored before that field what
    its ``matched`` says (keyword "a+b", pinyin/fuzzy "phrase≈heard", a regex's match — or, in
    some hand-made records, the regex itself: searched with RE2, so it cannot hang a report)."""
    if e.heard or e.matcher in ("semantic", "metric"):
        return e.heard
    if e.matcher == "regex":
        if not e.matched or e.matched.lower() in e.text.lower():
            return (e.matched,)
        try:
            found = compile_regex(e.matched).search(e.text)
        except Exception:  # not a pattern RE2 can compile: nothing to mark
            return ()
        return (found,) if found else ()
    return tuple(part.split("≈")[-1] for part in e.matched.split("+"))


def evidence_line(e: Evidence) -> str:
    """One line: turn, role, mm:ss, the turn with the matched term marked, matcher, confidence."""
    return (f"turn {e.turn} {e.role} {mmss(e.start)}  {mark(e.text, evidence_terms(e))}  "
            f"[{e.matcher} {e.matched!r}, confidence {e.confidence:.2f}]")


def scope_lines(turns: list[PreparedTurn], cond: Condition) -> str:
    """Which turns ``cond`` looked at: a head line, then one indented line per turn."""
    idx = [t.index for t in turns]
    if not idx:
        return f"looked at no {cond.role} turns ({cond.window.describe()})"
    if idx == list(range(idx[0], idx[-1] + 1)) and len(idx) > 1:
        where = f"{idx[0]}–{idx[-1]}"
    else:
        where = ", ".join(map(str, idx))
    role = "" if cond.role == "any" else f"{cond.role} "
    head = f"looked at {role}turn{'s' if len(idx) > 1 else ''} {where} ({cond.window.describe()}):"
    return "\n      ".join([head] + [f"turn {t.index} {t.role} {mmss(t.start)}  {t.text}" for t in turns])


def _head(rule: Rule, res: RuleResult) -> list[str]:
    ded = f"  -{res.deduction:g}" if res.deduction else ""
    fatal = "  FATAL" if res.fatal else ""
    return ["", f"[{res.outcome.upper():<4}] {rule.id} {rule.title} ({rule.kind}, {rule.severity}){ded}{fatal}"]


def _plain(rule: Rule, res: RuleResult, tr: Transcript, turns: list[PreparedTurn]) -> list[str]:
    out = _head(rule, res)
    fired = res.outcome == "hit" or (rule.kind == "required" and res.outcome == "pass")
    if rule.when is None:
        out.append("  when:   always applies")
    else:
        wev = find(turns, rule.when, tr.duration)
        holds = len(wev) >= rule.when.min_count
        out.append(f"  when:   {'holds' if holds else 'does not hold'}: {describe_condition(rule.when)}")
        out += ["    " + evidence_line(e) for e in wev]
        if not holds:
            out.append("    " + scope_lines(scope_turns(tr, rule.when), rule.when))
    out.append(f"  match:  {describe_condition(rule.match)}")
    out.append(f"  reason: {res.reason}")
    out += ["    " + evidence_line(e) for e in res.evidence]
    if not fired and res.outcome != "n/a":  # why not: what was looked at, what was found
        out.append("    " + scope_lines(scope_turns(tr, rule.match, rule.when), rule.match))
        allowed = match_context(rule, turns, tr.duration)
        # below min_count: found, but too few
        out += ["    " + evidence_line(e) for e in find(turns, rule.match, tr.duration, allowed)]
    return out


def _composed(rule: Rule, res: RuleResult, tr: Transcript, turns: list[PreparedTurn],
              metrics: dict | None) -> list[str]:
    """A rule built from named conditions: the expressions, then each condition found or not,
    with its evidence, or the turns it looked at."""
    out = _head(rule, res)
    if rule.when_expr is not None:
        out.append(f"  when:   \"{rule.when_expr}\"")
    elif rule.when is not None:
        out.append(f"  when:   {describe_condition(rule.when)}")
    else:
        out.append("  when:   always applies")
    out.append(f"  match:  \"{rule.match_expr}\"")
    out.append(f"  reason: {res.reason}")
    for name, cond in rule.conditions:
        if cond.metric is not None:
            ev, note = metric_evidence(cond, metrics)
        else:
            ev, note = find(turns, cond, tr.duration), ""
        ok = len(ev) >= cond.min_count
        out.append(f"  {name}: {'found' if ok else 'not found'} — {describe_condition(cond)}"
                   + (f" ({note})" if note else ""))
        out += ["    " + evidence_line(e) for e in ev]
        if not ok and cond.metric is None:
            out.append("    " + scope_lines(scope_turns(tr, cond), cond))
    return out


def explain_call(pack: RulePack, tr: Transcript, results: tuple[RuleResult, ...],
                 metrics: dict | None = None) -> list[str]:
    """The explanation of ``results`` (``evaluate(pack, tr, metrics)``) as text lines: a header
    line for the call, then a block per rule (each block starts with an empty line)."""
    turns = prepare(tr)
    dur = f", {tr.duration:.1f} s" if tr.duration else ""
    out = [f"call {tr.call_id} ({len(tr.turns)} turns{dur}) — pack {pack.id} {pack.version}"]
    for rule, res in zip(pack.rules, results):
        if rule.match_expr is not None:
            out += _composed(rule, res, tr, turns, metrics)
        else:
            out += _plain(rule, res, tr, turns)
    return out
