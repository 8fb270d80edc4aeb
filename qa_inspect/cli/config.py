"""Where the CLI finds its rule packs, scorecards, sampling plan and defaults.

* Shipped packs (``rules/telecom_zh.yaml`` …) resolve from the installed package, not the
  current folder, so a cron job can run from any folder (issue 14).
* Every pack is scored by its scorecard: ``scorecard_<pack id>.yaml`` beside the pack file
  (an ``include:``d pack without its own card keeps its base pack's card). ``--scorecard``
  overrides it.
* ``qa-inspect.toml`` in the working folder (or ``--config FILE``) holds the nightly job's
  settings; command-line flags override it::

      db = "/data/qa/qa.db"
      out = "/data/qa/reports"          # report folder of `run`
      timezone = "Asia/Shanghai"        # times shown in reports and worksheets
      lang = "zh"                       # zh | en: language of pages and workbooks
      plan = "rules/sampling_plan.yaml" # the plan `sample` uses
      [packs]                           # rule pack per call language
      zh = "rules/telecom_zh.yaml"
      en = "rules/telecom_en.yaml"
      [scorecards]                      # optional: a card per pack id (default: beside the pack)
      telecom_zh = "my_cards/telecom_zh_2027.yaml"

  Relative paths in the file are relative to the file's folder.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from qa_inspect.errors import QAError

CONFIG_NAME = "qa-inspect.toml"
DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_PLAN = "rules/sampling_plan.yaml"
KEYS = {"db", "out", "timezone", "lang", "plan", "packs", "scorecards"}
LANGS = ("zh", "en")


def shipped_rules_dirs() -> list[Path]:
    """Folders that hold the shipped packs: the source checkout / editable install (``rules/``
    beside the package), then the wheel's data files (``<prefix>/share/qa-inspect/rules``)."""
    import qa_inspect

    out = [Path(qa_inspect.__file__).resolve().parents[1] / "rules",
           Path(sys.prefix) / "share" / "qa-inspect" / "rules"]
    return [d for d in out if d.is_dir()]


def resolve_path(p: str | Path) -> str:
    """``p`` when it exists; else a shipped file of that name when ``p`` is a bare name or
    ``rules/NAME`` (so the defaults work from any folder); else ``p`` unchanged (the loader
    then says "not found")."""
    path = Path(p)
    if path.exists() or path.is_absolute():
        return str(p)
    parts = path.parts
    if len(parts) == 1 or (len(parts) == 2 and parts[0] == "rules"):
        for d in shipped_rules_dirs():
            if (d / path.name).is_file():
                return str(d / path.name)
    return str(p)


DEFAULT_PACKS = ("rules/telecom_zh.yaml", "rules/telecom_en.yaml")


@dataclass(frozen=True)
class Config:
    """Settings of ``qa-inspect.toml``; every field None/empty when not set."""

    db: str | None = None
    out: str | None = None
    timezone: str | None = None
    lang: str | None = None
    plan: str | None = None
    packs: Mapping[str, str] = field(default_factory=dict)  # language -> pack path
    scorecards: Mapping[str, str] = field(default_factory=dict)  # pack id -> card path
    source: str = ""

    @property
    def tz(self) -> str:
        return self.timezone or DEFAULT_TIMEZONE

    @property
    def language(self) -> str:
        return self.lang or "zh"


def load_config(path: str | Path | None = None) -> Config:
    """``path`` (must exist), else ``./qa-inspect.toml`` when present, else the defaults.
    A bad file raises QAError naming the file and the problem."""
    import tomllib

    if path is None:
        p = Path(CONFIG_NAME)
        if not p.is_file():
            return Config()
    else:
        p = Path(path)
        if not p.is_file():
            raise QAError("config file not found", str(p))
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise QAError(f"not a valid TOML file ({e})", str(p)) from None
    unknown = sorted(set(doc) - KEYS)
    if unknown:
        raise QAError(f"unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(KEYS))})", str(p))
    base = p.resolve().parent

    def rel(v: Any, key: str) -> str:
        if not isinstance(v, str) or not v:
            raise QAError(f"'{key}' must be a non-empty string, not {v!r}", str(p))
        if "://" in v or Path(v).is_absolute():
            return v
        # shipped names ("rules/telecom_zh.yaml") still resolve when not beside the file
        local = base / v
        return str(local) if local.exists() or key in ("db", "out") else resolve_path(v)

    def table(key: str) -> dict[str, str]:
        t = doc.get(key, {})
        if not isinstance(t, dict):
            raise QAError(f"[{key}] must be a table of name = \"path\"", str(p))
        return {str(k): rel(v, f"{key}.{k}") for k, v in t.items()}

    tz = doc.get("timezone")
    if tz is not None:
        check_timezone(tz, str(p))
    lang = doc.get("lang")
    if lang is not None and lang not in LANGS:
        raise QAError(f"'lang' must be one of {', '.join(LANGS)}, not {lang!r}", str(p))
    return Config(db=rel(doc["db"], "db") if "db" in doc else None,
                  out=rel(doc["out"], "out") if "out" in doc else None,
                  timezone=tz, lang=lang, plan=rel(doc["plan"], "plan") if "plan" in doc else None,
                  packs=table("packs"), scorecards=table("scorecards"), source=str(p))


def check_timezone(tz: Any, where: str = "") -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        raise QAError(f"unknown time zone {tz!r} (e.g. Asia/Shanghai)", where) from None


# --- packs and their scorecards -------------------------------------------------------------

def default_scorecard(pack) -> Any | None:
    """The scorecard beside ``pack``'s file (``scorecard_<id>.yaml``), else the card of the
    pack it ``include:``s (bound to this pack's id: the included rules are the card's rules);
    None when there is none."""
    from qa_inspect.rules import load_pack
    from qa_inspect.scoring.scorecard import load_scorecard

    if not pack.source:
        return None
    own = Path(pack.source).parent / f"scorecard_{pack.id}.yaml"
    if own.is_file():
        return load_scorecard(own)
    seen: list[str] = []
    for r in pack.rules:
        if r.source and r.source != pack.source and r.source not in seen:
            seen.append(r.source)
    for src in seen:
        try:
            base = load_pack(src)
        except QAError:
            continue
        card = default_scorecard(base)
        if card is not None:
            return dataclasses.replace(card, pack=pack.id)
    return None


def load_packs(rules_paths: Sequence[str], scorecard_paths: Sequence[str] = (), *,
               config: Config | None = None, default_cards: bool = True):
    """The PackSet a command runs with: ``rules_paths`` (else the config's packs, else the
    shipped packs), each scored by ``scorecard_paths`` / the config's card / its own card."""
    from qa_inspect.batch.score import PackSet
    from qa_inspect.rules import load_pack
    from qa_inspect.scoring.scorecard import load_scorecard

    config = config or Config()
    paths = list(rules_paths) or list(config.packs.values()) or list(DEFAULT_PACKS)
    packs = [load_pack(resolve_path(p)) for p in paths]
    cards = [load_scorecard(resolve_path(p)) for p in scorecard_paths]
    named = {c.pack for c in cards}
    for pid, cp in config.scorecards.items():
        if pid not in named and any(p.id == pid for p in packs):
            cards.append(load_scorecard(cp))
            named.add(pid)
    if default_cards:
        for p in packs:
            if p.id not in named:
                c = default_scorecard(p)
                if c is not None:
                    cards.append(c)
                    named.add(p.id)
    return PackSet(packs, cards)


def report_options(packs, config: Config | None = None, lang: str | None = None,
                   tz: str | None = None) -> dict[str, Any]:
    """Keyword arguments for the report writers: the packs' alert levels, the language
    (flag > config > zh) and the team's time zone (flag > config > Asia/Shanghai)."""
    from qa_inspect.reports.alerts import alert_policy

    config = config or Config()
    tz = tz or config.tz
    check_timezone(tz, "--timezone")
    return {"alert_policies": {p.id: alert_policy(p) for p in packs.packs},
            "lang": lang or config.language, "tz": tz,
            # what a missed item should have been: shown instead of the engine's pattern
            "rule_descriptions": {(p.id, r.id): r.description for p in packs.packs for r in p.rules
                                  if r.description}}


def lang_option(f):
    import click

    return click.option("--lang", type=click.Choice(LANGS), default=None,
                        help="Language of pages and workbooks: zh (default) or en; or `lang` in the config.")(f)


def config_option(f):
    import click

    return click.option("--config", "config_path", default=None, type=click.Path(),
                        help="Settings file (default: ./qa-inspect.toml when present); flags override it.")(f)
