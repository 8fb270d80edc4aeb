"""Loading rule packs: strict YAML (qa_inspect.strict_yaml: line numbers, duplicate and unknown
keys rejected, size/depth/alias/tag limits) validated into the records of rules.model."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from qa_inspect.errors import RuleError
from qa_inspect.rules.learned import learned_condition, model_hashes
from qa_inspect.rules.expressions import parse_expression
from qa_inspect.rules.regex import regex_problem
from qa_inspect.strict_yaml import ParseContext, YamlMap, check_keys, limit, line_of, raise_problems, read_strict_mapping
from qa_inspect.text import normalize
from qa_inspect.rules.model import (CONDITION_KEYS, CONTEXT_KEYS, EXAMPLE_KINDS, EXPR_KEYWORDS, FUZZY_MIN_LEN, KINDS, METRIC_KEYS,
                    METRIC_OPS, METRICS, ROLES, RULE_KEYS, SEMANTIC_THRESHOLD, SEVERITIES, STATUSES, WINDOW_KEYS,
                    WITHIN_KEYS, Condition, Context, Example, Expr, GradeBand, Metric, Rule, RulePack, Window)

PACK_KEYS = {"pack", "variables", "grades", "rules", "include"}
PACK_META_KEYS = {"id", "version", "title", "language", "description"}


_VAR = re.compile(r"\$\{(\w+)\}")


def _subst(ctx: ParseContext, s: str, line: int) -> str:
    def rep(m: re.Match) -> str:
        name = m.group(1)
        if name not in ctx.variables:
            ctx.err(line, f"unknown variable ${{{name}}} (define it under 'variables:')")
            return m.group(0)
        return str(ctx.variables[name])

    return _VAR.sub(rep, s)


def _str_list(ctx: ParseContext, m: YamlMap, key: str, what: str) -> tuple[str, ...]:
    v = m.get(key)
    if v is None:
        return ()
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, (str, int)) for x in v):
        ctx.err(line_of(m, key), f"{what}: '{key}' must be a list of phrases")
        return ()
    return tuple(_subst(ctx, str(x), line_of(m, key)) for x in v)


def _regex(ctx: ParseContext, m: YamlMap, key: str, what: str) -> str:
    v = m.get(key)
    if v is None:
        return ""
    if not isinstance(v, str):
        ctx.err(line_of(m, key), f"{what}: '{key}' must be a string")
        return ""
    pat = _subst(ctx, v, line_of(m, key))
    problem = regex_problem(pat)
    if problem:
        ctx.err(line_of(m, key), f"{what}: bad regex in '{key}': {problem}")
        return ""
    return pat


def _window(ctx: ParseContext, m: Any, what: str, line: int) -> Window:
    if m is None:
        return Window()
    if not isinstance(m, YamlMap):
        ctx.err(line, f"{what}: 'window' must be a mapping like {{first_turns: 3}}")
        return Window()
    check_keys(ctx, m, WINDOW_KEYS, f"{what} window")
    vals = {}
    for k in WINDOW_KEYS:
        if k in m:
            v = m[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                ctx.err(line_of(m, k), f"{what}: window '{k}' must be a positive number, got {v!r}")
                continue
            if k.endswith("_share") and v > 1:
                ctx.err(line_of(m, k), f"{what}: window '{k}' is a share of the call: 0 < x ≤ 1, got {v!r}")
                continue
            vals[k] = v
    if any(k.startswith("first_") for k in vals) and any(k.startswith("last_") for k in vals):
        ctx.err(m.line, f"{what}: a window cannot be both first_* and last_* (impossible window)")
    return Window(**vals)


def _positive_int(ctx: ParseContext, m: YamlMap, key: str, what: str, default: int) -> int:
    if key not in m:
        return default
    v = m[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        ctx.err(line_of(m, key), f"{what}: '{key}' must be an integer ≥ 1, got {v!r}")
        return default
    return v


def _tolerance(ctx: ParseContext, m: YamlMap, what: str, phrases: tuple[str, ...]) -> tuple[bool, int]:
    """Validate ``pinyin``/``fuzzy`` against the condition's any/all phrases."""
    pinyin = m.get("pinyin", False)
    if not isinstance(pinyin, bool):
        ctx.err(line_of(m, "pinyin"), f"{what}: 'pinyin' must be true or false, got {pinyin!r}")
        pinyin = False
    if pinyin and not phrases:
        ctx.err(line_of(m, "pinyin"), f"{what}: 'pinyin' applies to any/all phrases and this condition has none")
    fuzzy = _positive_int(ctx, m, "fuzzy", what, 0)
    if fuzzy:
        long_enough = [p for p in phrases if len(normalize(p)) >= FUZZY_MIN_LEN]
        if not long_enough:
            ctx.err(line_of(m, "fuzzy"), f"{what}: 'fuzzy' applies to any/all phrases of ≥ {FUZZY_MIN_LEN} "
                                       "characters and this condition has none")
        for p in long_enough:
            if fuzzy * 2 >= len(normalize(p)):
                ctx.err(line_of(m, "fuzzy"), f"{what}: fuzzy budget too large for phrase '{p}' "
                                           f"({fuzzy} edits; must be < half its {len(normalize(p))} characters)")
    return pinyin, fuzzy


def _semantic(ctx: ParseContext, m: YamlMap, what: str) -> tuple[tuple[str, ...], float]:
    """``similar_to: [example sentences]`` and its ``threshold`` (a float in (0, 1])."""
    examples: tuple[str, ...] = ()
    if "similar_to" in m:
        v = m["similar_to"]
        if not isinstance(v, list) or not v or \
                not all(isinstance(x, (str, int)) and not isinstance(x, bool) and str(x).strip() for x in v):
            ctx.err(line_of(m, "similar_to"), f"{what}: 'similar_to' must be a non-empty list of example "
                                            f"sentences, got {v!r}")
        else:
            examples = tuple(_subst(ctx, str(x).strip(), line_of(m, "similar_to")) for x in v)
    threshold = SEMANTIC_THRESHOLD
    if "threshold" in m:
        t = m["threshold"]
        if "similar_to" not in m:
            ctx.err(line_of(m, "threshold"), f"{what}: 'threshold' applies to 'similar_to' and this "
                                           "condition has none")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= 1:
            ctx.err(line_of(m, "threshold"), f"{what}: 'threshold' must be a number in (0, 1], got {t!r}")
        else:
            threshold = float(t)
    return examples, threshold


def _context(ctx: ParseContext, m: YamlMap, what: str, has_when: bool) -> Context:
    """``after: when`` / ``before: when`` / ``within: {turns: N} | {seconds: S}`` on a match."""
    present = [k for k in ("after", "before", "within") if k in m]
    if not present:
        return Context()
    if not has_when:
        for k in present:
            ctx.err(line_of(m, k), f"{what}: '{k}' is relative to the rule's 'when' and this rule has none")
        return Context()
    vals: dict[str, Any] = {}
    for k in ("after", "before"):
        if k in m:
            if m[k] != "when":
                ctx.err(line_of(m, k), f"{what}: '{k}' must be 'when' (as in '{k}: when'), got {m[k]!r}")
            else:
                vals[k] = True
    if "within" in m:
        w = m["within"]
        if not isinstance(w, YamlMap) or not w:
            ctx.err(line_of(m, "within"), f"{what}: 'within' must be a mapping like {{turns: 2}} or {{seconds: 30}}")
        else:
            check_keys(ctx, w, WITHIN_KEYS, f"{what} within")
            if "turns" in w:
                v = w["turns"]
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    ctx.err(line_of(w, "turns"), f"{what}: within 'turns' must be an integer ≥ 1, got {v!r}")
                else:
                    vals["within_turns"] = v
            if "seconds" in w:
                v = w["seconds"]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                    ctx.err(line_of(w, "seconds"), f"{what}: within 'seconds' must be a positive number, got {v!r}")
                else:
                    vals["within_seconds"] = float(v)
            if "turns" in w and "seconds" in w:
                ctx.err(w.line, f"{what}: 'within' takes turns or seconds, not both")
    if "before" in m and "after" in m:
        ctx.err(line_of(m, "after"), f"{what}: 'before' and 'after' contradict each other (nothing can be both)")
    if "before" in m and "within" in m:
        ctx.err(line_of(m, "within"), f"{what}: 'within' looks after the 'when' turn and contradicts 'before'")
    return Context(**vals)


def _condition(ctx: ParseContext, m: Any, what: str, line: int, has_when: bool | None = None) -> Condition | None:
    """``has_when`` None: a ``when`` condition (no context keys); else a ``match`` condition."""
    if m is None:
        return None
    if not isinstance(m, YamlMap):
        ctx.err(line, f"{what}: must be a mapping with keys like role/any/regex")
        return None
    check_keys(ctx, m, CONDITION_KEYS | (CONTEXT_KEYS if has_when is not None else set()), what)
    role = m.get("role", "any")
    if role not in ("agent", "customer", "any"):
        ctx.err(line_of(m, "role"), f"{what}: role must be agent, customer or any, got {role!r}")
    any_ = _str_list(ctx, m, "any", what)
    all_ = _str_list(ctx, m, "all", what)
    pinyin, fuzzy = _tolerance(ctx, m, what, any_ + all_)
    similar_to, threshold = _semantic(ctx, m, what)
    metric = _metric(ctx, m, what)
    learned = learned_condition(ctx, m, what) if "learned" in m else None
    cond = Condition(
        role=role if role in ("agent", "customer", "any") else "any",
        any=any_, all=all_,
        none=_str_list(ctx, m, "none", what), regex=_regex(ctx, m, "regex", what),
        exclude_regex=_regex(ctx, m, "exclude_regex", what),
        window=_window(ctx, m.get("window"), what, line_of(m, "window")),
        pinyin=pinyin, fuzzy=fuzzy, min_count=_positive_int(ctx, m, "min_count", what, 1),
        similar_to=similar_to, threshold=threshold,
        context=_context(ctx, m, what, bool(has_when)) if has_when is not None else Context(),
        repeated=_repeated(ctx, m, what), metric=metric, learned=learned,
    )
    if not (cond.any or cond.all or cond.regex or cond.similar_to or "similar_to" in m or "learned" in m
            or "repeated" in m or "metric" in m):
        ctx.err(m.line, f"{what}: needs at least one of any/all/regex/similar_to/repeated/metric "
                        "(a condition that can never match)")
    return cond


def _repeated(ctx: ParseContext, m: YamlMap, what: str) -> int:
    if "repeated" not in m:
        return 0
    v = m["repeated"]
    if isinstance(v, bool) or not isinstance(v, int) or v < 2:
        ctx.err(line_of(m, "repeated"), f"{what}: 'repeated' must be an integer ≥ 2, got {v!r}")
        return 0
    if "min_count" in m:
        ctx.err(line_of(m, "min_count"), f"{what}: 'min_count' does not apply with 'repeated' "
                                       "(repeated: N already counts occurrences)")
    return v


def _metric(ctx: ParseContext, m: YamlMap, what: str) -> Metric | None:
    """``metric: {name, op, value}``; a metric condition has no other keys."""
    if "metric" not in m:
        return None
    line = line_of(m, "metric")
    others = sorted(str(k) for k in m if k != "metric")
    if others:
        ctx.err(line, f"{what}: 'metric' is a call-level test and cannot be combined with "
                      f"{', '.join(others)}")
    v = m["metric"]
    if not isinstance(v, YamlMap):
        ctx.err(line, f"{what}: 'metric' must be a mapping like {{name: max_silence_s, op: gt, value: 10}}")
        return None
    check_keys(ctx, v, METRIC_KEYS, f"{what} metric")
    ok = True
    name, op, value = v.get("name"), v.get("op"), v.get("value")
    if name not in METRICS:
        ctx.err(line_of(v, "name"), f"{what}: unknown metric {name!r} (allowed: {', '.join(METRICS)})")
        ok = False
    if op not in METRIC_OPS:
        ctx.err(line_of(v, "op"), f"{what}: metric 'op' must be one of {', '.join(METRIC_OPS)}, got {op!r}")
        ok = False
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        ctx.err(line_of(v, "value"), f"{what}: metric 'value' must be a number, got {value!r}")
        ok = False
    return Metric(name=name, op=op, value=float(value)) if ok else None


def _expression(ctx: ParseContext, text: str, what: str, line: int, names: set[str]) -> Expr | None:
    try:
        e = parse_expression(text)
    except ValueError as err:
        ctx.err(line, f"{what}: bad expression {text!r}: {err}")
        return None
    for n in sorted(e.names() - names):
        ctx.err(line, f"{what}: unknown condition {n!r} in {text!r} "
                      f"(defined: {', '.join(sorted(names)) or 'none'})")
    return e


def _composition(ctx: ParseContext, m: YamlMap, what: str) -> tuple[tuple[tuple[str, Condition], ...],
                                                           Expr | None, Expr | None, bool]:
    """``conditions:`` + string ``match``/``when``: (named conditions, match expr, when expr, ok)."""
    raw = m.get("conditions")
    match_s, when_s = isinstance(m.get("match"), str), isinstance(m.get("when"), str)
    if raw is None:
        for key, is_s in (("match", match_s), ("when", when_s)):
            if is_s:
                ctx.err(line_of(m, key), f"{what}: a string '{key}' is an expression over named "
                                       "'conditions:' and this rule defines none")
        return (), None, None, not (match_s or when_s)
    line = line_of(m, "conditions")
    if not isinstance(raw, YamlMap) or not raw:
        ctx.err(line, f"{what}: 'conditions' must be a mapping of name: condition")
        return (), None, None, False
    if "match" in m and not match_s:
        ctx.err(line_of(m, "match"), f"{what}: with 'conditions:' the 'match' must be an expression "
                                   "string like \"a and not b\", not condition keys")
    named: list[tuple[str, Condition]] = []
    for name, body in raw.items():
        nline = line_of(raw, str(name))
        if not isinstance(name, str) or not re.fullmatch(r"[a-z_][a-z0-9_]*", name) or name in EXPR_KEYWORDS:
            ctx.err(nline, f"{what}: condition name {name!r} must be lower_snake_case and not one of "
                           f"{', '.join(EXPR_KEYWORDS)}")
            continue
        if body is not None and not isinstance(body, YamlMap):
            ctx.err(nline, f"{what} condition '{name}': must be a mapping with keys like role/any/regex")
            continue
        c = _condition(ctx, body, f"{what} condition '{name}'", nline)
        if c is not None:
            named.append((name, c))
    names = {str(k) for k in raw}
    mexpr = _expression(ctx, m["match"], f"{what} match", line_of(m, "match"), names) if match_s else None
    wexpr = _expression(ctx, m["when"], f"{what} when", line_of(m, "when"), names) if when_s else None
    used = (mexpr.names() if mexpr else set()) | (wexpr.names() if wexpr else set())
    if mexpr is not None:
        for name in raw:
            if name not in used and (wexpr is not None or not when_s):
                ctx.err(line_of(raw, str(name)), f"{what}: condition '{name}' is defined but not used")
    return tuple(named), mexpr, wexpr, True


_ROLE_PREFIX = re.compile(r"^\s*(\w+)\s*[:：]\s*(.*)$", re.S)


def _example_turn(ctx: ParseContext, item: Any, line: int, what: str, default_role: str | None) -> tuple[str, str] | None:
    """One turn: "role: text", {role: text}, or (single-string examples only) bare text."""
    if isinstance(item, YamlMap) and len(item) == 1:
        role, text = next(iter(item.items()))
    elif isinstance(item, (str, int, float)) and not isinstance(item, bool):
        m = _ROLE_PREFIX.match(str(item))
        if m and m.group(1) in ROLES:
            role, text = m.group(1), m.group(2)
        elif default_role is not None:
            role, text = default_role, str(item)
        else:
            shown = m.group(1) if m else str(item)[:20]
            ctx.err(line, f"{what}: each turn must start with a role prefix 'agent:' or 'customer:', "
                          f"got {shown!r}")
            return None
    else:
        ctx.err(line, f"{what}: a turn must be a string like 'agent: 您好'")
        return None
    if role not in ROLES:
        ctx.err(line, f"{what}: bad role prefix {role!r} (allowed: agent, customer)")
        return None
    if not isinstance(text, (str, int, float)) or not str(text).strip():
        ctx.err(line, f"{what}: empty turn text")
        return None
    return str(role), str(text).strip()


def _examples(ctx: ParseContext, m: Any, what: str, line: int, match_role: str) -> tuple[Example, ...]:
    if m is None:
        return ()
    if not isinstance(m, YamlMap):
        ctx.err(line, f"{what}: 'examples' must be a mapping with hit/miss/todo lists")
        return ()
    check_keys(ctx, m, set(EXAMPLE_KINDS), f"{what} examples")
    default_role = match_role if match_role in ROLES else "agent"
    out: list[Example] = []
    for kind in EXAMPLE_KINDS:
        entries = m.get(kind)
        if entries is None:
            continue
        kline = line_of(m, kind)
        if isinstance(entries, str) or not isinstance(entries, list):
            ctx.err(kline, f"{what} examples: '{kind}' must be a list of examples")
            continue
        lines = getattr(entries, "item_lines", [kline] * len(entries))
        for i, entry in enumerate(entries):
            eline = lines[i] if i < len(lines) else kline
            ewhat = f"{what} examples.{kind}[{i}]"
            if isinstance(entry, list):  # a dialogue: every turn carries its role
                if not entry:
                    ctx.err(eline, f"{ewhat}: empty dialogue")
                    continue
                tl = getattr(entry, "item_lines", [eline] * len(entry))
                turns = [_example_turn(ctx, t, tl[j] if j < len(tl) else eline, ewhat, None)
                         for j, t in enumerate(entry)]
            else:  # a single turn; the role prefix is optional
                turns = [_example_turn(ctx, entry, eline, ewhat, default_role)]
            if all(t is not None for t in turns):
                out.append(Example(kind=kind, turns=tuple(turns), line=eline, index=i))  # type: ignore[arg-type]
    return tuple(out)


def _rule(ctx: ParseContext, m: Any, index: int) -> Rule | None:
    if not isinstance(m, YamlMap):
        ctx.err(0, f"rules[{index}] must be a mapping")
        return None
    rid = m.get("id")
    what = f"rule '{rid}'" if rid else f"rules[{index}]"
    check_keys(ctx, m, RULE_KEYS, what)
    if not isinstance(rid, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", rid or ""):
        ctx.err(m.line, f"{what}: 'id' is required: lower_snake_case like 'greeting'")
        return None
    kind = m.get("kind", "required")
    if kind not in KINDS:
        ctx.err(line_of(m, "kind"), f"{what}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    sev = m.get("severity", "minor")
    if sev not in SEVERITIES:
        ctx.err(line_of(m, "severity"), f"{what}: severity must be one of {', '.join(SEVERITIES)}, got {sev!r}")
    ded = m.get("deduction", 0)
    if isinstance(ded, bool) or not isinstance(ded, (int, float)) or ded < 0:
        ctx.err(line_of(m, "deduction"), f"{what}: deduction must be a number ≥ 0, got {ded!r}")
        ded = 0
    fatal = m.get("fatal", False)
    if not isinstance(fatal, bool):
        ctx.err(line_of(m, "fatal"), f"{what}: fatal must be true or false")
        fatal = False
    if "match" not in m:
        ctx.err(m.line, f"{what}: 'match' is required")
    conditions, match_expr, when_expr, plain = _composition(ctx, m, what)
    if "conditions" in m or not plain:  # composed (errors, if any, are already recorded)
        by_name = dict(conditions)
        first = next((n for n in _order(match_expr) if n in by_name), None) if match_expr else None
        match = by_name.get(first) if first else None
        if match is None:
            return None
    else:
        match = _condition(ctx, m.get("match"), f"{what} match", line_of(m, "match"),
                           has_when=m.get("when") is not None)
    when = None if isinstance(m.get("when"), str) else _condition(ctx, m.get("when"), f"{what} when",
                                                                  line_of(m, "when"))
    status = m.get("status", "stable")
    if status not in STATUSES:
        ctx.err(line_of(m, "status"), f"{what}: status must be one of {', '.join(STATUSES)}, got {status!r}")
        status = "stable"
    tags = m.get("tags", [])
    if isinstance(tags, str) or not isinstance(tags, list) or \
            not all(isinstance(t, str) and t.strip() for t in tags):
        ctx.err(line_of(m, "tags"), f"{what}: 'tags' must be a list of non-empty strings, got {tags!r}")
        tags = []
    owner = m.get("owner", "")
    if not isinstance(owner, str):
        ctx.err(line_of(m, "owner"), f"{what}: 'owner' must be a string, got {owner!r}")
        owner = ""
    if match is None:
        return None
    examples = _examples(ctx, m.get("examples"), what, line_of(m, "examples"), match.role)
    return Rule(id=rid, title=str(m.get("title", rid)), description=str(m.get("description", "")),
                category=str(m.get("category", "")), kind=kind if kind in KINDS else "required",
                severity=sev if sev in SEVERITIES else "minor", deduction=float(ded), fatal=fatal,
                match=match, when=when, line=m.line, examples=examples, status=status,
                tags=tuple(t.strip() for t in tags), owner=owner, source=ctx.file,
                conditions=conditions, match_expr=match_expr, when_expr=when_expr)


def _order(e: Expr) -> list[str]:
    """The names in ``e`` in written order."""
    if e.op == "name":
        return [e.name]
    return [n for i in e.items for n in _order(i)]


def _key(file: str) -> str:
    try:
        return str(Path(file).resolve())
    except OSError:
        return file


MAX_INCLUDE_DEPTH = 8  # packs in one include chain (shipped packs: 2)
MAX_INCLUDE_FILES = 64  # pack files read for one load, includes counted each time they are read


def _includes(ctx: ParseContext, doc: YamlMap, stack: tuple[str, ...], budget: dict) -> list[RulePack]:
    """Parse the packs named under ``include:`` (paths relative to this file), with this pack's
    variables overriding theirs; a cycle or a missing file is an error at the include's line.
    A chain deeper than MAX_INCLUDE_DEPTH, or more than MAX_INCLUDE_FILES files read for one
    load (a diamond of includes doubles them per level), stops the load: ``budget["over"]``
    holds that one error."""
    raw = doc.get("include")
    if raw is None:
        return []
    if isinstance(raw, str):
        raw, lines = [raw], [line_of(doc, "include")]
    elif isinstance(raw, list):
        lines = getattr(raw, "item_lines", [line_of(doc, "include")] * len(raw))
    else:
        ctx.err(line_of(doc, "include"), "'include' must be a list of pack files, e.g. [telecom_zh.yaml]")
        return []
    out = []
    base = Path(ctx.file).parent
    for item, line in zip(raw, lines):
        if not isinstance(item, str) or not item.strip():
            ctx.err(line, f"include: each entry must be a file path, got {item!r}")
            continue
        path = base / item
        key = _key(str(path))
        if key in stack:
            chain = " → ".join([*(Path(k).name for k in stack[stack.index(key):]), path.name])
            ctx.err(line, f"include cycle: {chain}")
            continue
        if budget["over"]:  # the limit is already reported (once) for this load
            return out
        if len(stack) >= MAX_INCLUDE_DEPTH:
            budget["over"] = RuleError(f"includes nested deeper than {MAX_INCLUDE_DEPTH} packs "
                          f"({Path(stack[0]).name} → … → {Path(stack[-1]).name} → {path.name})", f"{ctx.file}:{line}")
            return out
        budget["files"] += 1
        if budget["files"] > MAX_INCLUDE_FILES:
            budget["over"] = RuleError(f"more than {MAX_INCLUDE_FILES} included pack files read for one pack "
                                       "(the same file included along several paths counts each time)",
                                       f"{ctx.file}:{line}")
            return out
        if not path.is_file():
            ctx.err(line, f"included pack not found: {path}")
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            ctx.err(line, f"cannot read included pack {path}: {e}")
            continue
        pack, problems = parse_pack(text, str(path), _stack=stack, _variables=ctx.variables, _budget=budget)
        ctx.problems.extend(problems)
        if pack is not None:
            out.append(pack)
    return out


def parse_pack(text: str, file: str = "<pack>", *, _stack: tuple[str, ...] = (),
               _variables: dict[str, str] | None = None,
               _budget: dict | None = None) -> tuple[RulePack | None, list[RuleError]]:
    """Parse and validate; return the pack (None if unusable) and every problem found.

    ``include:`` names other packs (relative to ``file``): their rules come first, a rule here
    with the same id replaces the included one, and variables here override theirs."""
    doc, problems = read_strict_mapping(text, file, "a rule pack must be a mapping with 'pack' and 'rules'")
    if doc is None:
        return None, problems
    ctx = ParseContext(file=file, problems=[], variables={})
    check_keys(ctx, doc, PACK_KEYS, "pack file")
    meta = doc.get("pack")
    if not isinstance(meta, YamlMap) or "id" not in meta:
        ctx.err(line_of(doc, "pack"), "'pack:' with at least an 'id' is required")
        meta = YamlMap()
        meta.line, meta.key_lines = 0, {}
    check_keys(ctx, meta, PACK_META_KEYS, "pack")
    variables = doc.get("variables") or {}
    if not isinstance(variables, dict):
        ctx.err(line_of(doc, "variables"), "'variables' must be a mapping of name: value")
        variables = {}
    ctx.variables = {str(k): str(v) for k, v in variables.items()}
    ctx.variables.update(_variables or {})  # an including pack's variables win
    budget = {"files": 0, "over": None} if _budget is None else _budget
    included = _includes(ctx, doc, (*_stack, _key(file)), budget)
    if budget["over"] is not None:  # an include limit: that one line is the whole answer
        return None, [budget["over"]] if _budget is None else []
    grades = []
    default_grades = included[0].grades if included else None
    for g in doc.get("grades") or ([] if default_grades else
                                   [{"min": 90, "grade": "A"}, {"min": 80, "grade": "B"},
                                    {"min": 60, "grade": "C"}, {"min": 0, "grade": "D"}]):
        if not isinstance(g, dict) or set(g) != {"min", "grade"}:
            ctx.err(line_of(doc, "grades"), "each grade band needs exactly 'min' and 'grade'")
            continue
        grades.append(GradeBand(min=float(g["min"]), grade=str(g["grade"])))
    grades.sort(key=lambda b: -b.min)
    if not doc.get("grades") and default_grades:
        grades = list(default_grades)
    raw_rules = doc.get("rules")
    if "include" in doc and (raw_rules is None or raw_rules == []):
        raw_rules = []  # a pack may only include others (and override variables)
    elif not isinstance(raw_rules, list) or not raw_rules:
        ctx.err(line_of(doc, "rules"), "'rules' must be a non-empty list")
        raw_rules = []
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for i, r in enumerate(raw_rules):
        rule = _rule(ctx, r, i)
        if rule is None:
            continue
        if rule.id in seen:
            ctx.err(rule.line, f"duplicate rule id '{rule.id}' (first at line {seen[rule.id]})")
            continue
        seen[rule.id] = rule.line
        rules.append(rule)
    if included:
        merged: dict[str, Rule] = {}
        origin: dict[str, str] = {}
        for inc in included:
            for r in inc.rules:
                if r.id in merged:
                    ctx.err(line_of(doc, "include"), f"rule id '{r.id}' is included twice "
                                                   f"({origin[r.id]} and {inc.source})")
                    continue
                merged[r.id], origin[r.id] = r, inc.source
        for r in rules:
            merged[r.id] = r  # overrides in place, or appended after the included rules
        rules = list(merged.values())
    if ctx.problems:
        return None, ctx.problems
    digest = hashlib.sha256(text.encode())
    for inc in included:  # the hash covers the included files' text (through their hashes)
        digest.update(f"\0{inc.hash}".encode())
    for h in model_hashes(rules):  # ... and every learned model it uses
        digest.update(f"\0{h}".encode())
    language = meta.get("language", included[0].language if included else "zh")
    pack = RulePack(id=str(meta.get("id")), version=str(meta.get("version", "0")),
                    title=str(meta.get("title", meta.get("id"))), language=str(language),
                    rules=tuple(rules), grades=tuple(grades), source=file,
                    hash=digest.hexdigest()[:16])
    return pack, []


def load_pack(path: str | Path) -> RulePack:
    """Load a pack or raise RuleError listing every problem, one per line with file:line."""
    p = Path(path)
    if not p.exists():
        raise RuleError("rule pack not found", str(p))
    if p.is_file() and p.stat().st_size > 4 * limit("MAX_DOCUMENT_CHARS"):  # do not read gigabytes
        raise RuleError(f"rule pack too large ({p.stat().st_size:,} bytes)", f"{p}:1")
    pack, problems = parse_pack(p.read_text(encoding="utf-8"), str(p))
    raise_problems(problems, str(p))
    assert pack is not None
    return pack
