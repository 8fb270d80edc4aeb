"""Explaining a rule pack on one call, as text lines (``qa-inspect rules explain`` prints them):
per rule the outcome, whether it applied, what matched where (turn, role, mm:ss, the term marked
【like this】, matcher, confidence) and, when a rule did not fire, which turns were looked at."""
from __future__ import annotations

from qa_inspect.records import Evidence, RuleResult, Transcript
from qa_inspect.rules.engine import describe_condition, find, match_context, metric_evidence, scope_turns
from qa_inspect.rules.matching import PreparedTurn, prepare
from qa_inspect.rules.model import Condition, Rule, RulePack
from qa_inspect.text import normalize

__all__ = ["explain_call", "evidence_line", "scope_lines", "mark", "mmss"]


def mmss(t: float | None) -> str:
    """Seconds as mm:ss ("--:--" when unknown)."""
    return "--:--" if t is None else f"{int(t) // 60:02d}:{int(t) % 60:02d}"


def mark(text: str, terms: list[str]) -> str:
    """``text`` with each term (as matched on normalised text) wrapped in 【】 where it can be
    placed on the verbatim text."""
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


def evidence_line(e: Evidence) -> str:
    """One line: turn, role, mm:ss, the turn with the matched term marked, matcher, confidence."""
    if e.matcher == "regex":
        terms = [e.matched]
    elif e.matcher == "semantic":  # the whole turn is like the example: nothing to mark
        terms = []
    else:  # keyword a+b, pinyin/fuzzy phrase≈heard
        terms = [part.split("≈")[-1] for part in e.matched.split("+")]
    return (f"turn {e.turn} {e.role} {mmss(e.start)}  {mark(e.text, terms)}  "
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
