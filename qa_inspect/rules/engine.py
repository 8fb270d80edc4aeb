"""Evaluate a rule pack over a transcript. Works on transcripts only: no audio, no ASR.

Phrases and regexes are matched on the normalised text (Simplified, half width, lower case,
spoken digit runs as Arabic digits, no punctuation or spaces), so 工號一二三四 matches 工号\\d{4}.

ASR tolerance for ``any``/``all`` phrases, tried in order and only when the previous step
found nothing in the turn: exact (matcher "keyword", confidence 1.0), then with ``pinyin: true``
a span of the turn with the same toneless pinyin ("pinyin", 0.9), then with ``fuzzy: N`` a
window within N character edits ("fuzzy", 1 - edits/len(phrase)). A turn's pinyin is computed
once, lazily, and only for conditions that ask for it; it is read character by character
(each character's default reading, cached), on both the phrase and the turn side, and written
one character per syllable (``phonetics.sounds``), aligned with the text.

Semantic matching (``similar_to``) comes last, as an alternative to ``any``: a turn whose
sentence embedding (qa_inspect.enrich.embeddings, on the verbatim text) has cosine similarity ≥ the
condition's ``threshold`` to one of its example sentences matches ("semantic", confidence = the
similarity). A turn is embedded at most once per ``prepare`` (lazily, and only for conditions
that use ``similar_to``); a condition's examples are embedded once per condition object.

Speed: a condition's normalised phrases and compiled regexes are prepared once per condition
object (``matching.prep``); a pinyin search is skipped unless every syllable of the phrase occurs in the
turn (a set test before the substring search). ``evaluate`` goes further: every ``any`` phrase
of the pack goes into one Aho-Corasick automaton per pack (as sounds if any condition uses
pinyin: ``PackIndex``), the whole call is scanned once, and a condition with ``any`` phrases
only looks at the turns where one of its phrases (or, with ``fuzzy``, a piece of one) occurs or
sounds alike — the same results as testing every turn, since such a condition can match no
other turn (conditions with ``similar_to`` still look at every turn in scope).
"""
from __future__ import annotations

import re

from qa_inspect.records import Evidence, RuleResult, Transcript
from qa_inspect.text import normalize
from qa_inspect.rules.index import CallIndex, pack_index
from qa_inspect.rules.matching import PreparedTurn, built_record, condition_inputs, match_turn, prepare, turns_in_scope
from qa_inspect.rules.model import REPEAT_MIN_LEN, Condition, Context, Expr, Rule, RulePack

def context_turns(turns: list[PreparedTurn], ctx: Context, anchors: list[int]) -> set[int]:
    """The turn indexes a match with context ``ctx`` may look at, given the anchor turns (where
    the rule's ``when`` matched, in order): after/before the first anchor, or within N turns /
    S seconds after any anchor. No anchor, no turn. Turns without times pass a seconds test."""
    if not anchors:
        return set()
    first = anchors[0]
    if ctx.before:
        return {t.index for t in turns if t.index < first}
    if not (ctx.within_turns or ctx.within_seconds):  # after
        return {t.index for t in turns if t.index > first}
    out: set[int] = set()
    anchor_set = set(anchors)
    last: int | None = None  # the latest anchor before the current turn
    last_end: float | None = None
    for t in turns:
        if last is not None and t.index > last:
            ok = True
            if ctx.within_turns and t.index - last > ctx.within_turns:
                ok = False
            if ok and ctx.within_seconds and t.start is not None and last_end is not None:
                ok = t.start - last_end <= ctx.within_seconds
            if ok:
                out.add(t.index)
        if t.index in anchor_set:
            last = t.index
            end = t.end if t.end is not None else t.start
            last_end = end if last_end is None or end is None else max(last_end, end)
    return out


def find(turns: list[PreparedTurn], cond: Condition, duration: float | None,
         allowed: set[int] | None = None, index: CallIndex | None = None, limit: int = 0) -> list[Evidence]:
    """Evidence for every turn in scope that matches (the condition holds if ≥ min_count);
    ``allowed`` (turn indexes, from ``context_turns``) narrows the scope further. With
    ``repeated`` the evidence is the turns of the most repeated sentence, if it repeats enough.
    ``index`` (from ``evaluate``) skips the turns that cannot match. ``limit`` > 0: stop at that
    many (enough to know a ``when`` holds: with ``limit=min_count`` the list is complete
    whenever the condition does not hold)."""
    if cond.repeated:
        return _find_repeated(turns, cond, duration, allowed)
    cand = index.candidates(cond) if index is not None else None
    prep = condition_inputs(cond)
    if cand is not None:
        if not cand:
            return []
        allowed = cand if allowed is None else allowed & cand
        if prep.windowless:  # the candidates are already of the condition's role
            scope = [turns[i] for i in sorted(allowed)]
        else:
            scope = [t for t in turns_in_scope(turns, cond, duration, index) if t.index in allowed]
        allowed = None
    else:
        scope = turns_in_scope(turns, cond, duration, index)
    out = []
    for t in scope:
        if allowed is not None and t.index not in allowed:
            continue
        hit = match_turn(t, cond, prep)
        if hit:
            out.append(built_record(Evidence, {"role": t.role, "turn": t.index, "start": t.start, "end": t.end,
                                         "text": t.text, "matcher": hit[0], "matched": hit[1],
                                         "confidence": hit[2], "heard": hit[3]}))
            if len(out) == limit:
                break
    return out


_SENTENCE_END = re.compile(r"[。！？.!?]+")


def _has_turn_test(cond: Condition) -> bool:
    return bool(cond.any or cond.all or cond.regex or cond.similar_to or cond.learned)


def _find_repeated(turns: list[PreparedTurn], cond: Condition, duration: float | None,
                   allowed: set[int] | None) -> list[Evidence]:
    """A sentence (a turn's normalised text, or a piece of it split on 。！？.!?) of at least
    REPEAT_MIN_LEN characters that occurs ≥ ``cond.repeated`` times over the turns in scope (those
    matching the condition's phrase tests, if it has any): one evidence per turn saying it."""
    counts: dict[str, int] = {}
    where: dict[str, list[PreparedTurn]] = {}
    for t in turns_in_scope(turns, cond, duration):
        if allowed is not None and t.index not in allowed:
            continue
        if _has_turn_test(cond) and match_turn(t, cond) is None:
            continue
        pieces = [n for p in _SENTENCE_END.split(t.text) if len(n := normalize(p, drop_fillers=True)) >= REPEAT_MIN_LEN]
        units = list(pieces)
        if len(pieces) != 1 and len(t.norm) >= REPEAT_MIN_LEN and t.norm not in units:
            units.append(t.norm)
        for u in units:
            counts[u] = counts.get(u, 0) + (pieces.count(u) if u in pieces else 1)
            if t not in where.setdefault(u, []):
                where[u].append(t)
    if not counts:
        return []
    best = max(counts, key=lambda u: counts[u])  # first seen wins a tie
    if counts[best] < cond.repeated:
        return []
    return [Evidence(role=t.role, turn=t.index, start=t.start, end=t.end, text=t.text, matcher="repeated",
                     matched=best, confidence=1.0, heard=(best,)) for t in where[best]]


_NOT_AVAILABLE = " not available"  # how a metric_evidence note ends when the call lacks the metric


def metric_evidence(cond: Condition, metrics: dict | None) -> tuple[list[Evidence], str]:
    """(evidence if the metric test holds, a note such as "metric X not available"). A missing
    metric makes a rule that tests it n/a (neither passed nor failed)."""
    mt = cond.metric
    assert mt is not None
    v = (metrics or {}).get(mt.name)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:  # missing, or NaN
        return [], f"metric {mt.name}{_NOT_AVAILABLE}"
    if not mt.test(float(v)):
        return [], f"{mt.name} = {v:g}, not {mt.describe().split(' ', 1)[1]}"
    text = f"{mt.name} = {v:g} {mt.describe().split(' ', 1)[1]}"
    return [Evidence(role="any", turn=-1, start=None, end=None, text=text, matcher="metric",
                     matched=text, confidence=1.0)], ""


def _holds(cond: Condition, ev: list[Evidence]) -> bool:
    return len(ev) >= cond.min_count


_DESCRIBED: dict[int, tuple[Condition, str]] = {}


def _describe(cond: Condition, anchors: list[int] | None = None) -> str:
    if anchors:
        return _describe_uncached(cond, anchors)
    got = _DESCRIBED.get(id(cond))  # a failing rule's reason is built for every call
    if got is not None and got[0] is cond:
        return got[1]
    text = _describe_uncached(cond)
    if len(_DESCRIBED) >= 4096:
        _DESCRIBED.clear()
    _DESCRIBED[id(cond)] = (cond, text)
    return text


def _describe_uncached(cond: Condition, anchors: list[int] | None = None) -> str:
    if cond.metric is not None:
        return f"metric {cond.metric.describe()}"
    what = []
    if cond.any:
        what.append("any of " + "/".join(cond.any[:4]) + ("…" if len(cond.any) > 4 else ""))
    if cond.all:
        what.append("all of " + "+".join(cond.all))
    if cond.regex:
        what.append(f"/{cond.regex}/")
    if cond.similar_to:
        ex = "/".join(cond.similar_to[:2]) + ("…" if len(cond.similar_to) > 2 else "")
        what.append(f"similar to {ex} (≥ {cond.threshold:g})")
    if cond.learned is not None:
        what.append(f"learned model {cond.learned.describe()}")
    if cond.repeated:
        what.append(f"a sentence repeated ≥ {cond.repeated} times")
    tol = [x for x in ("pinyin" if cond.pinyin else "", f"fuzzy {cond.fuzzy}" if cond.fuzzy else "") if x]
    more = f" [{', '.join(tol)}]" if tol else ""
    count = f" in ≥ {cond.min_count} turns" if cond.min_count > 1 else ""
    where = f" {cond.context.describe(anchors or ())}" if cond.context else ""
    return f"{' and '.join(what)}{more}{count} in {cond.role} turns ({cond.window.describe()}){where}"


def _eval_expr(e: Expr, found: dict[str, tuple[bool, list[Evidence]]]) -> tuple[bool, list[Evidence]]:
    """(value, evidence of the conditions that make it true; a negated one gives none)."""
    if e.op == "name":
        return found[e.name]
    if e.op == "not":
        return not _eval_expr(e.items[0], found)[0], []
    vals = [_eval_expr(i, found) for i in e.items]
    ev = [x for ok, evs in vals if ok for x in evs]
    ok = {"and": all, "or": any}.get(e.op)
    value = ok(v for v, _ in vals) if ok else sum(v for v, _ in vals) >= e.n
    return value, ev if value else []


def _uniq(ev: list[Evidence]) -> list[Evidence]:
    seen, out = set(), []
    for e in ev:
        if e not in seen:
            seen.add(e)
            out.append(e)
    return out


def _evaluate_composed(rule: Rule, turns: list[PreparedTurn], duration: float | None,
                       metrics: dict | None, index: CallIndex | None = None) -> RuleResult:
    found: dict[str, tuple[bool, list[Evidence]]] = {}
    notes: dict[str, str] = {}
    for name, cond in rule.conditions:
        if cond.metric is not None:
            ev, notes[name] = metric_evidence(cond, metrics)
        else:
            ev = find(turns, cond, duration, index=index)
        found[name] = (_holds(cond, ev), ev)

    def status(expr: Expr) -> str:
        parts = []
        for name in sorted(expr.names()):
            ok, ev = found[name]
            extra = f": {notes[name]}" if notes.get(name) else ""
            parts.append(f"{name} {'found' if ok else 'not found'}{extra}")
        return "; ".join(parts)

    if rule.when_expr is not None:
        if not _eval_expr(rule.when_expr, found)[0]:
            holds, ev = _eval_expr(rule.match_expr, found)
            return _outcome(rule, holds, "n/a", _uniq(ev)[:3] if holds else [],
                            f"not applicable: when \"{rule.when_expr}\" is false ({status(rule.when_expr)})")
    elif rule.when is not None and not _holds(rule.when, find(turns, rule.when, duration, index=index,
                                                               limit=rule.when.min_count)):
        holds, ev = _eval_expr(rule.match_expr, found)
        return _outcome(rule, holds, "n/a", _uniq(ev)[:3] if holds else [],
                        f"not applicable: no {_describe(rule.when)}")
    unknown = [n for n in sorted(rule.match_expr.names()) if notes.get(n, "").endswith(_NOT_AVAILABLE)]
    if unknown and _undecided(rule.match_expr, found, unknown):
        # a call without the metric (e.g. a transcript without times) cannot be judged, unless
        # the rest decides ("words or metric" with the words found holds whatever the metric)
        return _outcome(rule, False, "n/a", [], f"not applicable: {'; '.join(notes[n] for n in unknown)}")
    holds, ev = _eval_expr(rule.match_expr, found)
    ev = _uniq(ev)
    expr, why = rule.match_expr, status(rule.match_expr)
    if rule.kind == "required":
        return _outcome(rule, holds, "pass" if holds else "fail", ev if holds else [],
                        f"{'satisfied' if holds else 'not satisfied'}: \"{expr}\" ({why})")
    return _outcome(rule, holds, "hit" if holds else "pass", ev if holds else [],
                    f"{'matched' if holds else 'not matched'}: \"{expr}\" ({why})")


def _undecided(expr: Expr, found: dict, unknown: list[str]) -> bool:
    """Whether ``expr`` comes out differently as the ``unknown`` conditions hold or not."""
    return (_eval_expr(expr, {**found, **{n: (True, []) for n in unknown}})[0]
            != _eval_expr(expr, {**found, **{n: (False, []) for n in unknown}})[0])


# rule results without evidence, by (id(rule), matched, outcome, reason); the rule is kept
# alive with its entry so that its id stays its own
_NO_EVIDENCE: dict[tuple, tuple[Rule, RuleResult]] = {}


def _result(rule: Rule, matched: bool, outcome: str, evidence: tuple[Evidence, ...], reason: str) -> RuleResult:
    deduct = rule.deduction if outcome in ("fail", "hit") else 0.0
    return built_record(RuleResult, {"rule_id": rule.id, "title": rule.title, "category": rule.category,
                               "severity": rule.severity, "matched": matched, "outcome": outcome,
                               "deduction": deduct, "fatal": rule.fatal and outcome in ("fail", "hit"),
                               "kind": rule.kind, "evidence": evidence, "reason": reason})


def _outcome(rule: Rule, matched: bool, outcome: str, evidence: list[Evidence], reason: str) -> RuleResult:
    """The rule's result; one without evidence (most rules on most calls: the same result every
    time) is built once and reused."""
    if evidence:
        return _result(rule, matched, outcome, tuple(evidence), reason)
    key = (id(rule), matched, outcome, reason)
    got = _NO_EVIDENCE.get(key)
    if got is not None and got[0] is rule:
        return got[1]
    if len(_NO_EVIDENCE) >= 65536:
        _NO_EVIDENCE.clear()
    _NO_EVIDENCE[key] = (rule, _result(rule, matched, outcome, (), reason))
    return _NO_EVIDENCE[key][1]


def evaluate_rule(rule: Rule, turns: list[PreparedTurn], duration: float | None,
                  metrics: dict | None = None, index: CallIndex | None = None) -> RuleResult:
    if rule.match_expr is not None:
        return _evaluate_composed(rule, turns, duration, metrics, index)
    if rule.match.metric is not None or (rule.when is not None and rule.when.metric is not None):
        return _evaluate_metric(rule, turns, duration, metrics, index)
    ctx = rule.match.context
    anchored = rule.when is not None and bool(ctx)  # the match looks relative to the when turns
    wev = [] if rule.when is None else find(turns, rule.when, duration, index=index,
                                            limit=0 if anchored else rule.when.min_count)
    anchors: list[int] = []
    if anchored:  # anchor turns worked out once per rule and call
        anchors = [e.turn for e in wev]
        ev = find(turns, rule.match, duration, context_turns(turns, ctx, anchors), index)
    else:
        ev = find(turns, rule.match, duration, index=index)
    where = f" ({ctx.describe(anchors)})" if anchored else ""
    holds = _holds(rule.match, ev)
    need = rule.match.min_count
    if rule.when is not None:
        if not _holds(rule.when, wev):
            # not applicable, but still say whether the thing was found ("matched" is a fact)
            short = f" (found in {len(wev)} turn(s))" if wev else ""
            return _outcome(rule, holds, "n/a", ev[:3] if holds else [],
                            f"not applicable: no {_describe(rule.when)}{short}")
    if rule.kind == "required":
        if holds:
            best = sorted(ev, key=lambda e: -e.confidence)[:3]  # stable: exact hits first, then by turn
            count = f" in {len(ev)} turns (≥ {need} required)" if need > 1 else ""
            return _outcome(rule, True, "pass", best, f"found {best[0].matched!r} at turn {best[0].turn}{count}{where}")
        if ev:
            return _outcome(rule, False, "fail", [], f"found in only {len(ev)} turn(s), needs ≥ {need}: "
                            f"{_describe(rule.match, anchors)}")
        return _outcome(rule, False, "fail", [], f"missing: {_describe(rule.match, anchors)}")
    if holds:
        count = f" (≥ {need} required)" if need > 1 else ""
        return _outcome(rule, True, "hit", ev, f"{len(ev)} hit(s){count}{where}: "
                        f"{', '.join(sorted({e.matched for e in ev}))}")
    if ev:
        return _outcome(rule, False, "pass", [], f"only {len(ev)} hit(s), below min_count {need}{where}: "
                        f"{', '.join(sorted({e.matched for e in ev}))}")
    return _outcome(rule, False, "pass", [], f"none of {_describe(rule.match, anchors)}")


def _evaluate_metric(rule: Rule, turns: list[PreparedTurn], duration: float | None,
                     metrics: dict | None, index: CallIndex | None = None) -> RuleResult:
    """A plain rule whose match or when is a ``metric:`` test (no turn context applies)."""
    def test(cond: Condition) -> tuple[bool, list[Evidence], str]:
        if cond.metric is not None:
            ev, note = metric_evidence(cond, metrics)
            return bool(ev), ev, note
        ev = find(turns, cond, duration, index=index)
        return _holds(cond, ev), ev, ""

    holds, ev, note = test(rule.match)
    if rule.when is not None:
        wok, _, wnote = test(rule.when)
        if not wok:
            return _outcome(rule, holds, "n/a", ev[:3] if holds else [],
                            f"not applicable: {wnote or 'no ' + _describe(rule.when)}")
    if note.endswith(_NOT_AVAILABLE):  # no metric, no verdict: n/a, not passed (issue 14)
        return _outcome(rule, False, "n/a", [], f"not applicable: {note}")
    if rule.kind == "required":
        if holds:
            return _outcome(rule, True, "pass", ev[:3], f"found {ev[0].matched!r}")
        return _outcome(rule, False, "fail", [], note or f"missing: {_describe(rule.match)}")
    if holds:
        return _outcome(rule, True, "hit", ev, f"{len(ev)} hit(s): {', '.join(sorted({e.matched for e in ev}))}")
    return _outcome(rule, False, "pass", [], note or f"none of {_describe(rule.match)}")


def evaluate(pack: RulePack, transcript: Transcript, metrics: dict | None = None) -> tuple[RuleResult, ...]:
    """``metrics``: the call's metrics (talk, acoustic, sentiment) for ``metric:`` conditions."""
    turns = prepare(transcript)
    pidx = pack_index(pack)
    index = CallIndex(turns, pidx)
    out = []
    for r in pack.rules:
        if (id(r) in pidx.plain and not index.candidates(r.match)
                and (r.when is None or not index.candidates(r.when))):
            # nothing it looks for occurs in the call: the rule's no-evidence result (fail /
            # pass, or n/a when it has a ``when``), as evaluate_rule builds it on any call
            # without those phrases; worked out once
            res = pidx.plain[id(r)]
            if res is None:
                res = pidx.plain[id(r)] = evaluate_rule(r, [], None)
            out.append(res)
        else:
            out.append(evaluate_rule(r, turns, transcript.duration, metrics, index))
    return tuple(out)


def match_context(rule: Rule, turns: list[PreparedTurn], duration: float | None) -> set[int] | None:
    """The turn indexes the rule's ``match`` may look at given its context (None: no context)."""
    if not rule.match.context or rule.when is None:
        return None
    return context_turns(turns, rule.match.context, [e.turn for e in find(turns, rule.when, duration)])


def scope_turns(transcript: Transcript, cond: Condition, when: Condition | None = None) -> list[PreparedTurn]:
    """The turns ``cond`` looks at in ``transcript`` (its role and window, and its context
    relative to ``when`` if it has one), for explaining a result."""
    turns = prepare(transcript)
    sel = turns_in_scope(turns, cond, transcript.duration)
    if cond.context and when is not None:
        allowed = context_turns(turns, cond.context, [e.turn for e in find(turns, when, transcript.duration)])
        sel = [t for t in sel if t.index in allowed]
    return sel


def describe_condition(cond: Condition) -> str:
    """One line: what ``cond`` looks for and where (as used in RuleResult.reason)."""
    return _describe(cond)
