"""Scorecards: how rule results become a call's score.

A scorecard (YAML in ``rules/scorecard_*.yaml``) names rules of one rule pack and groups
them into weighted sections::

    scorecard: {id: telecom_zh_card, version: "1.0.0", pack: telecom_zh, base: 100}
    grades: [{min: 90, grade: A}, {min: 0, grade: D}]
    sections:
      - id: opening
        weight: 20            # the section's share of the score
        cap: 12               # at most this many of its item points can be lost
        items:
          - {rule: greeting, points: 8}
          - {rule: self_introduction}       # points default to the rule's deduction
    bonus: [{rule: courtesy, points: 3}]    # added when the (required) rule passes
    bonus_cap: 5
    fatal: [{rule: forbidden_phrase}]       # 一票否决: fails → the call scores 0
    unscored: [escalation_risk]             # pack rules this card deliberately leaves out

Scoring, for one call:

- An item *fails* when its rule's outcome is ``fail`` or ``hit``; it loses its points.
- An item whose rule is ``n/a`` (its ``when`` did not hold) is **excluded**: it is neither
  passed nor failed, and its points leave the section's possible points (``na: pass`` on the
  item counts it as passed instead). A section with no applicable item is excluded too.
- Section s keeps ``(possible - min(lost, cap)) / possible`` of its weight; the score is
  ``base × Σ kept weight / Σ weight of applicable sections``. So with nothing n/a and the
  weights equal to the item points, a failed item costs exactly its points.
- Bonus items add their points when their rule passes, at most ``bonus_cap`` in all, and
  never above ``max_score`` (default ``base``).
- A failed fatal item (or a rule the pack marks ``fatal``) sets the score to 0.

The breakdown (``Score.breakdown``) has one line per item with the points it actually cost
or added, so ``base + Σ points == score``; each line points at its evidence.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence


from qa_inspect.errors import RuleError
from qa_inspect.records import RuleResult, Score, ScoreItem
from qa_inspect.strict_yaml import ParseContext, YamlMap, check_keys, line_of, raise_problems, read_strict_mapping
from qa_inspect.rules.model import GradeBand, RulePack
from qa_inspect.scoring.default import evidence_ref, grade_for

TOP_KEYS = {"scorecard", "grades", "sections", "bonus", "bonus_cap", "fatal", "unscored"}
META_KEYS = {"id", "version", "title", "pack", "base", "max_score", "description"}
SECTION_KEYS = {"id", "title", "weight", "cap", "items"}
ITEM_KEYS = {"rule", "points", "title", "na"}
BONUS_KEYS = {"rule", "points", "title"}
FATAL_KEYS = {"rule", "title"}
NA_POLICIES = ("exclude", "pass")
FAILED = ("fail", "hit")
DEFAULT_GRADES = ((90.0, "A"), (80.0, "B"), (60.0, "C"), (0.0, "D"))


@dataclass(frozen=True)
class Item:
    rule: str
    points: float | None  # None: the rule's deduction in the pack (resolved by ``bind``)
    title: str = ""
    na: str = "exclude"  # exclude | pass
    line: int = 0


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    weight: float
    cap: float | None
    items: tuple[Item, ...]
    line: int = 0


@dataclass(frozen=True)
class Scorecard:
    id: str
    version: str
    title: str
    pack: str  # the rule pack id whose rules the items name
    base: float
    max_score: float
    grades: tuple[GradeBand, ...]
    sections: tuple[Section, ...]
    bonus: tuple[Item, ...] = ()
    bonus_cap: float | None = None
    fatal: tuple[Item, ...] = ()
    unscored: tuple[str, ...] = ()
    source: str = ""
    hash: str = ""

    def rule_ids(self) -> list[str]:
        """Every rule the card names, in file order."""
        return ([i.rule for s in self.sections for i in s.items] + [i.rule for i in self.bonus]
                + [i.rule for i in self.fatal] + list(self.unscored))

    def describe(self) -> str:
        return f"{self.id} {self.version}"


# --- loading ------------------------------------------------------------------------------

def _num(ctx: ParseContext, m: YamlMap, key: str, what: str, *, default: float | None = None,
         positive: bool = True) -> float | None:
    v = m.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        ctx.err(line_of(m, key), f"{what}: '{key}' must be a number, not {v!r}")
        return default
    if v < 0 or (positive and v == 0):
        ctx.err(line_of(m, key), f"{what}: '{key}' must be {'> 0' if positive else '≥ 0'}, not {v}")
        return default
    return float(v)


def _item(ctx: ParseContext, m: Any, what: str, line: int, allowed: set[str]) -> Item | None:
    if isinstance(m, str):  # shorthand: "- greeting"
        return Item(rule=m, points=None, line=line)
    if not isinstance(m, YamlMap):
        ctx.err(line, f"{what}: expected a mapping like {{rule: greeting, points: 5}}")
        return None
    check_keys(ctx, m, allowed, what)
    rule = m.get("rule")
    if not isinstance(rule, str) or not rule:
        ctx.err(m.line, f"{what}: 'rule' (a rule id of the pack) is required")
        return None
    na = m.get("na", "exclude")
    if na not in NA_POLICIES:
        ctx.err(line_of(m, "na"), f"{what}: 'na' must be one of {', '.join(NA_POLICIES)}, not {na!r}")
        na = "exclude"
    return Item(rule=rule, points=_num(ctx, m, "points", f"{what} '{rule}'"),
                title=str(m.get("title", "")), na=na, line=m.line)


def _items(ctx: ParseContext, seq: Any, what: str, line: int, allowed: set[str]) -> tuple[Item, ...]:
    if seq is None:
        return ()
    if not isinstance(seq, list):
        ctx.err(line, f"{what}: must be a list")
        return ()
    lines = getattr(seq, "item_lines", [line] * len(seq))
    out = []
    for i, (m, ln) in enumerate(zip(seq, lines)):
        it = _item(ctx, m, f"{what}[{i}]", ln, allowed)
        if it is not None:
            out.append(it)
    return tuple(out)


def _grades(ctx: ParseContext, doc: YamlMap) -> tuple[GradeBand, ...]:
    raw = doc.get("grades")
    if raw is None:
        return tuple(GradeBand(lo, g) for lo, g in DEFAULT_GRADES)
    if not isinstance(raw, list) or not raw:
        ctx.err(line_of(doc, "grades"), "'grades' must be a non-empty list of {min, grade}")
        return ()
    out = []
    for g, ln in zip(raw, getattr(raw, "item_lines", [line_of(doc, "grades")] * len(raw))):
        if not isinstance(g, dict) or set(g) != {"min", "grade"} or isinstance(g["min"], bool) \
                or not isinstance(g["min"], (int, float)):
            ctx.err(ln, "each grade band needs exactly 'min' (a number) and 'grade'")
            continue
        out.append(GradeBand(float(g["min"]), str(g["grade"])))
    return tuple(sorted(out, key=lambda b: -b.min))


def parse_scorecard(text: str, file: str = "<scorecard>") -> tuple[Scorecard | None, list[RuleError]]:
    """Parse and check one scorecard on its own; return it (None if unusable) and every problem."""
    doc, problems = read_strict_mapping(text, file, "a scorecard must be a mapping with 'scorecard' and 'sections'")
    if doc is None:
        return None, problems
    ctx = ParseContext(file=file, problems=[], variables={})
    check_keys(ctx, doc, TOP_KEYS, "scorecard file")
    meta = doc.get("scorecard")
    if not isinstance(meta, YamlMap):
        ctx.err(line_of(doc, "scorecard") or 1, "'scorecard:' with 'id', 'version' and 'pack' is required")
        meta = YamlMap()
        meta.line, meta.key_lines = 1, {}
    check_keys(ctx, meta, META_KEYS, "scorecard")
    if isinstance(doc.get("scorecard"), YamlMap):  # (a missing block is reported above)
        for k in ("id", "version", "pack"):
            if k not in meta:
                ctx.err(meta.line, f"scorecard: '{k}' is required")
    base = _num(ctx, meta, "base", "scorecard", default=100.0) or 100.0
    max_score = _num(ctx, meta, "max_score", "scorecard", default=base) or base
    if max_score < base:
        ctx.err(line_of(meta, "max_score"), f"scorecard: 'max_score' ({max_score:g}) is below 'base' ({base:g})")
    grades = _grades(ctx, doc)

    sections: list[Section] = []
    raw = doc.get("sections")
    if not isinstance(raw, list) or not raw:
        ctx.err(line_of(doc, "sections") or doc.line, "'sections' must be a non-empty list")
        raw = []
    seen_sections: dict[str, int] = {}
    for i, (m, ln) in enumerate(zip(raw, getattr(raw, "item_lines", []))):
        what = f"section[{i}]"
        if not isinstance(m, YamlMap):
            ctx.err(ln, f"{what}: expected a mapping with id, weight and items")
            continue
        check_keys(ctx, m, SECTION_KEYS, what)
        sid = m.get("id")
        if not isinstance(sid, str) or not sid:
            ctx.err(m.line, f"{what}: 'id' is required")
            continue
        what = f"section '{sid}'"
        if sid in seen_sections:
            ctx.err(m.line, f"{what}: duplicate section id (first at line {seen_sections[sid]})")
        seen_sections[sid] = m.line
        weight = _num(ctx, m, "weight", what)
        if weight is None and "weight" not in m:
            ctx.err(m.line, f"{what}: 'weight' is required")
        items = _items(ctx, m.get("items"), f"{what} items", line_of(m, "items"), ITEM_KEYS)
        if not items and "items" in m:
            ctx.err(line_of(m, "items"), f"{what}: 'items' must not be empty")
        elif "items" not in m:
            ctx.err(m.line, f"{what}: 'items' is required")
        sections.append(Section(id=sid, title=str(m.get("title", sid)), weight=weight or 0.0,
                                cap=_num(ctx, m, "cap", what), items=items, line=m.line))
    bonus = _items(ctx, doc.get("bonus"), "bonus", line_of(doc, "bonus"), BONUS_KEYS)
    for b in bonus:
        if b.points is None:
            ctx.err(b.line, f"bonus '{b.rule}': 'points' is required")
    fatal = _items(ctx, doc.get("fatal"), "fatal", line_of(doc, "fatal"), FATAL_KEYS)
    unscored_raw = doc.get("unscored") or []
    if not isinstance(unscored_raw, list) or not all(isinstance(x, str) for x in unscored_raw):
        ctx.err(line_of(doc, "unscored"), "'unscored' must be a list of rule ids")
        unscored_raw = []
    # a rule is scored in one place only: two places would count it twice
    first: dict[str, int] = {}
    unscored_line = line_of(doc, "unscored")
    for rid, ln in ([(i.rule, i.line) for s in sections for i in s.items] + [(i.rule, i.line) for i in bonus]
                    + [(i.rule, i.line) for i in fatal] + [(r, unscored_line) for r in unscored_raw]):
        if rid in first:
            ctx.err(ln, f"rule '{rid}' appears twice in the scorecard (first at line {first[rid]})")
        first.setdefault(rid, ln)
    if ctx.problems:
        return None, ctx.problems
    sc = Scorecard(id=str(meta["id"]), version=str(meta["version"]), title=str(meta.get("title", meta["id"])),
                   pack=str(meta["pack"]), base=base, max_score=max_score, grades=grades,
                   sections=tuple(sections), bonus=bonus,
                   bonus_cap=_num(ctx, doc, "bonus_cap", "scorecard", positive=False),
                   fatal=fatal, unscored=tuple(unscored_raw), source=file,
                   hash=hashlib.sha256(text.encode()).hexdigest()[:16])
    return sc, []


@dataclass(frozen=True)
class Finding:
    """A problem found when checking a scorecard against its rule pack."""

    severity: str  # error | warning
    error: RuleError

    def __str__(self) -> str:
        return f"{self.severity}: {self.error}"


def check_against_pack(sc: Scorecard, pack: RulePack) -> list[Finding]:
    """Unknown rule ids, a wrong pack, items without points, bonus on a non-required rule are
    errors; pack rules the card neither scores nor lists under ``unscored`` are warnings."""
    out: list[Finding] = []

    def err(line: int, msg: str, severity: str = "error") -> None:
        out.append(Finding(severity, RuleError(msg, f"{sc.source}:{line}")))

    if sc.pack != pack.id:
        err(1, f"scorecard is for pack '{sc.pack}', not '{pack.id}' ({pack.source})")
        return out
    rules = {r.id: r for r in pack.rules}
    import difflib

    def known(it: Item, where: str) -> bool:
        if it.rule in rules:
            return True
        close = difflib.get_close_matches(it.rule, sorted(rules), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        err(it.line, f"{where}: unknown rule id '{it.rule}' in pack '{pack.id}'{hint}")
        return False

    for s in sc.sections:
        for it in s.items:
            if known(it, f"section '{s.id}'") and it.points is None and not rules[it.rule].deduction:
                err(it.line, f"section '{s.id}': rule '{it.rule}' has no deduction in the pack; give 'points'")
    for it in sc.bonus:
        if known(it, "bonus") and rules[it.rule].kind != "required":
            err(it.line, f"bonus: rule '{it.rule}' is a {rules[it.rule].kind} rule; a bonus rewards a "
                         "required rule that passes")
    for it in sc.fatal:
        known(it, "fatal")
    for rid in sc.unscored:
        if rid not in rules:
            err(1, f"unscored: unknown rule id '{rid}' in pack '{pack.id}'")
    named = set(sc.rule_ids())
    for r in pack.rules:
        if r.id not in named:
            err(1, f"pack rule '{r.id}' is not in the scorecard (score it, or list it under 'unscored')",
                "warning")
    return out


def bind(sc: Scorecard, pack: RulePack) -> Scorecard:
    """The card with every item's points resolved from ``pack``; raises RuleError on errors."""
    errors = [f.error for f in check_against_pack(sc, pack) if f.severity == "error"]
    if errors:
        if len(errors) == 1:
            raise errors[0]
        raise RuleError(f"{len(errors)} problems:\n" + "\n".join(map(str, errors)), sc.source)
    ded = {r.id: r.deduction for r in pack.rules}

    def resolve(items: tuple[Item, ...]) -> tuple[Item, ...]:
        return tuple(it if it.points is not None else
                     Item(it.rule, float(ded[it.rule]), it.title, it.na, it.line) for it in items)

    return Scorecard(**{**{f.name: getattr(sc, f.name) for f in fields(Scorecard)},
                        "sections": tuple(Section(s.id, s.title, s.weight, s.cap, resolve(s.items), s.line)
                                          for s in sc.sections)})


def load_scorecard(path: str | Path, pack: RulePack | None = None) -> Scorecard:
    """Load a scorecard (bound to ``pack`` when given) or raise RuleError with file:line."""
    p = Path(path)
    if not p.exists():
        raise RuleError("scorecard not found", str(p))
    sc, problems = parse_scorecard(p.read_text(encoding="utf-8"), str(p))
    raise_problems(problems, str(p))
    assert sc is not None
    return bind(sc, pack) if pack is not None else sc


# --- scoring ------------------------------------------------------------------------------

def apply_scorecard(sc: Scorecard, results: Sequence[RuleResult]) -> Score:
    """Score one call's rule results with a bound scorecard (see the module doc)."""
    by_rule: Mapping[str, RuleResult] = {r.rule_id: r for r in results}
    base = sc.base
    lines: list[ScoreItem] = []

    # pass 1: per section, possible and lost item points (n/a items leave ``possible``)
    plan = []  # (section, possible, lost, raw_lost, [(item, result, state)])
    for s in sc.sections:
        rows = []
        possible = raw_lost = 0.0
        for it in s.items:
            r = by_rule.get(it.rule)
            pts = float(it.points or 0.0)
            if r is None:
                state = "missing"
            elif r.outcome == "n/a" and it.na == "exclude":
                state = "n/a"
            elif r.outcome in FAILED:
                state = "fail"
            else:
                state = "pass"
            if state in ("pass", "fail"):
                possible += pts
            if state == "fail":
                raw_lost += pts
            rows.append((it, r, state))
        lost = min(raw_lost, s.cap) if s.cap is not None else raw_lost
        plan.append((s, possible, lost, raw_lost, rows))
    weight = sum(s.weight for s, possible, *_ in plan if possible > 0)

    kept = 0.0
    for s, possible, lost, raw_lost, rows in plan:
        scale = base * s.weight / weight / possible if possible > 0 and weight > 0 else 0.0
        if possible > 0:
            kept += base * s.weight / weight * (possible - lost) / possible
        for it, r, state in rows:
            ev, turns = evidence_ref(r) if r is not None else ("", ())
            note, pts = "", 0.0
            if state == "missing":
                note = "no result for this rule: excluded"
            elif state == "n/a":
                note = "n/a: excluded" + ("" if possible > 0 else f"; section '{s.id}' excluded")
            elif state == "fail":
                share = lost / raw_lost if raw_lost else 0.0
                pts = -scale * float(it.points or 0.0) * share
                notes = []
                if share < 1:
                    notes.append(f"section cap {s.cap:g} reached ({raw_lost:g} points failed)")
                if abs(scale - 1.0) > 1e-9:  # n/a items or sections moved the weights
                    notes.append(f"1 point here = {scale:.3g} (n/a excluded)")
                note = "; ".join(notes)
            elif r is not None and r.outcome == "n/a":
                note = "n/a: counted as passed"
            lines.append(ScoreItem(rule_id=it.rule, section=s.id, outcome=r.outcome if r else "n/a",
                                   points=round(pts, 2), possible=float(it.points or 0.0), note=note,
                                   evidence=ev, turns=turns))
    score = kept if weight > 0 else base

    # bonus: only up to bonus_cap in all and up to max_score
    room = sc.max_score - score
    if sc.bonus_cap is not None:
        room = min(room, sc.bonus_cap)
    for it in sc.bonus:
        r = by_rule.get(it.rule)
        got = 0.0
        note = ""
        if r is not None and r.outcome == "pass":
            got = max(0.0, min(float(it.points or 0.0), room))
            room -= got
            if got < (it.points or 0.0):
                note = "bonus limited by bonus_cap / max_score"
        elif r is not None and r.outcome == "n/a":
            note = "n/a: no bonus"
        ev, turns = evidence_ref(r) if r is not None else ("", ())
        lines.append(ScoreItem(rule_id=it.rule, section="bonus", outcome=r.outcome if r else "n/a",
                               points=round(got, 2), possible=float(it.points or 0.0), note=note,
                               evidence=ev, turns=turns))
        score += got

    # fatal items (and rules the pack itself marks fatal): the call scores 0
    fatal_hits = []
    for it in sc.fatal:
        r = by_rule.get(it.rule)
        if r is not None and r.outcome in FAILED:
            fatal_hits.append((it.rule, r))
        ev, turns = evidence_ref(r) if r is not None else ("", ())
        lines.append(ScoreItem(rule_id=it.rule, section="fatal", outcome=r.outcome if r else "n/a",
                               points=0.0, note="", evidence=ev, turns=turns))
    named = {it.rule for it in sc.fatal}
    fatal_hits += [(r.rule_id, r) for r in results if r.fatal and r.rule_id not in named]
    fatal = bool(fatal_hits)
    if fatal:
        # one line carries the rest of the score away, so base + Σ points == score still holds
        rid, r = fatal_hits[0]
        ev, turns = evidence_ref(r)
        idx = next((i for i, ln in enumerate(lines) if ln.section == "fatal" and ln.rule_id == rid), None)
        who = ", ".join(x for x, _ in fatal_hits)
        fl = ScoreItem(rule_id=rid, section="fatal", outcome=r.outcome, points=round(-score, 2),
                       note=f"fatal ({who}): call scores 0", evidence=ev, turns=turns)
        if idx is None:
            lines.append(fl)
        else:
            lines[idx] = fl
        score = 0.0
    score = round(max(0.0, score), 1)
    deductions = tuple((ln.rule_id, -ln.points) for ln in lines if ln.points < 0)
    return Score(score=score, grade=grade_for(score, [(g.min, g.grade) for g in sc.grades]), fatal=fatal,
                 deductions=deductions, breakdown=tuple(lines), scorecard_id=sc.id,
                 scorecard_version=sc.version)
