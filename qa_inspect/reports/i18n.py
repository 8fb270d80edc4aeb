"""One language per page: Simplified Chinese by default, English by option (issue 14).

Labels are written once, bilingual, as ``"中文 / English"`` (in the templates and in the
report code); ``tr`` keeps the side of the language being rendered, so a page never shows the
doubled "通话总数 / Calls". Templates get the same treatment when they are loaded
(``template_env(lang)``: the literal "中文 / English" pairs of a template's text are resolved
once per language), so no label is written twice.
"""
from __future__ import annotations

import contextvars
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

LANGS = ("zh", "en")
_LANG: contextvars.ContextVar[str] = contextvars.ContextVar("qa_inspect_report_lang", default="zh")
_TZ: contextvars.ContextVar[str] = contextvars.ContextVar("qa_inspect_report_tz", default="Asia/Shanghai")
_CJK = re.compile(r"[\u3400-\u9fff\uff08\uff1a]")
# "中文 / English": the Chinese side holds a CJK character; neither side crosses markup,
# a template tag, a quote, a "·" separator or another " / "
_PAIR = re.compile(r"(?P<zh>[^\s<>{}\"'·|/][^<>{}\"'·|/]*?) / (?P<en>[^\s<>{}\"'·|/][^<>{}\"'·|/]*?)"
                   r"(?=\s*(?:[<{\"·|]|\(|$)|\s*\n)", re.M)


def lang() -> str:
    return _LANG.get()


@contextmanager
def use_lang(value: str, tz: str | None = None) -> Iterator[None]:
    """Render everything inside in ``value`` (zh | en), times in ``tz`` (the team's zone)."""
    if value not in LANGS:
        raise ValueError(f"language must be one of {', '.join(LANGS)}, not {value!r}")
    token = _LANG.set(value)
    ttoken = _TZ.set(tz) if tz else None
    try:
        yield
    finally:
        _LANG.reset(token)
        if ttoken is not None:
            _TZ.reset(ttoken)


def local_time(started_at: str) -> str:
    """``2026-11-23T01:12:05Z`` → ``2026-11-23 09:12`` in the team's time zone; text that is
    not a date comes back unchanged, a time without zone is shown as written."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    try:
        d = datetime.fromisoformat((started_at or "").strip())
    except ValueError:
        return started_at or ""
    if d.tzinfo is not None:
        d = d.astimezone(ZoneInfo(_TZ.get()))
    return f"{d:%Y-%m-%d %H:%M}"


def _side(zh: str, en: str, which: str) -> str:
    m = _CJK.search(zh)
    if m is None:  # not a label pair (e.g. "3 / 5")
        return f"{zh} / {en}"
    prefix = zh[:m.start()]  # "(通过率" keeps its "(" in English too
    return zh if which == "zh" else prefix + en


def tr(label: str, which: str | None = None) -> str:
    """The side of a ``"中文 / English"`` label for the current language (``which`` overrides);
    a string that is not such a pair comes back unchanged."""
    which = which or _LANG.get()
    if not isinstance(label, str) or " / " not in label:
        return label
    zh, _, en = label.partition(" / ")
    if " / " in en or not _CJK.search(zh):
        return label
    return _side(zh, en, which)


def resolve_pairs(source: str, which: str) -> str:
    """A template's source with every literal "中文 / English" pair resolved to one side."""
    return _PAIR.sub(lambda m: _side(m["zh"], m["en"], which), source)


def template_env(template_dir: Path, which: str):
    """A Jinja environment whose templates are in language ``which``."""
    import jinja2

    class _Loader(jinja2.FileSystemLoader):
        def get_source(self, environment, template):
            src, filename, uptodate = super().get_source(environment, template)
            return resolve_pairs(src, which), filename, uptodate

    env = jinja2.Environment(loader=_Loader(str(template_dir)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals["tr"] = lambda label: tr(label, which)
    env.globals["L"] = lambda zh, en: zh if which == "zh" else en  # for labels with their own " / "
    env.globals["lang"] = which
    return env


# --- the engine's reasons, as a QC reviewer reads them ------------------------------------
# The rule engine writes one technical line per result ("missing: /工号\d+/ in agent turns",
# "found '您好' at turn 0"); pages, worksheets and alerts show plain words instead: for a miss
# the rule's description (what should have been said), never a regex.
_FOUND = re.compile(r"^found '(?P<t>.*)' at turn (?P<n>\d+)$")
_HITS = re.compile(r"^(?P<n>\d+) hit\(s\): (?P<t>.*)$")
_METRIC_NOT = re.compile(r"^(?P<m>[a-z_]+) = (?P<v>[-\d.]+), not (?P<op>\S+) (?P<x>[-\d.]+)$")


# Talk metrics shown in the batch report (per call) and the agent scorecards (per agent/team
# means). Keys come from CallResult.metrics (filled by the enrichment and metrics stages); a key
# that is absent is shown as "—" — older results and text-only inputs simply lack some of them.
TALK_METRICS: tuple[tuple[str, str, str], ...] = (
    # (key, label, format)  format: "num" | "pct" (a 0..1 share) | "int" | "sent" (-1..1) | "s" | "ratio"
    ("speech_rate_agent", "坐席语速 / Agent speech rate", "num"),
    ("max_silence_s", "最长静音 / Longest silence (s)", "s"),
    ("silence_share", "静音占比 / Silence share", "pct"),
    ("agent_interruptions", "坐席抢话 / Agent interruptions", "int"),
    ("customer_interruptions", "客户插话 / Customer interruptions", "int"),
    ("talk_ratio", "坐席/客户说话比 / Agent:customer talk time", "ratio"),
    # the end, not the low point: run computes customer sentiment only where it is read (the end
    # window, unless a pack reads more; enrich.sentiment.SCOPES), and the end is what alerts use
    ("customer_sentiment_end", "客户结束情绪 / Customer sentiment (end)", "sent"),
    ("agent_sentiment_mean", "坐席平均情绪 / Agent sentiment (mean)", "sent"),
)


def _metric_label(name: str) -> str:
    labels = {k: label.split(" / ")[0] for k, label, _ in TALK_METRICS}
    labels.setdefault("speech_rate_cpm", "语速")
    labels.setdefault("duration_s", "通话时长")
    return labels.get(name, name)


def reason_text(outcome: str, reason: str, *, title: str = "", description: str = "",
                kind: str = "", which: str | None = None) -> str:
    """The engine's ``reason`` for a rule result in plain words of the language ``which``."""
    which = which or _LANG.get()
    what = (description or title or "").strip()
    zh = which == "zh"
    if outcome == "fail" and reason.startswith("missing"):
        return (f"未找到：{what}" if zh else f"not found: {what}") if what else reason
    if outcome == "n/a" and reason.startswith("not applicable"):
        return "不适用：本通电话未出现该项的前提条件" if zh else "not applicable: the item's condition did not occur"
    m = _HITS.match(reason)
    if m:
        terms = m["t"].split(", ")
        if zh:  # a metric hit: "agent_interruptions = 3 ≥ 2" → "坐席抢话 = 3 ≥ 2"
            terms = [re.sub(r"^([a-z_]+) = ", lambda x: f"{_metric_label(x[1])} = ", t) for t in terms]
        return (f"命中 {m['n']} 处：" + "、".join(terms)) if zh else f"{m['n']} hit(s): {', '.join(terms)}"
    m = _FOUND.match(reason)
    if m:
        return (f"已说到“{m['t']}”（#{m['n']}）" if zh else f"said '{m['t']}' (#{m['n']})")
    m = _METRIC_NOT.match(reason)
    if m:
        return (f"{_metric_label(m['m'])} {m['v']}（阈值 {m['op']} {m['x']}，未触发）" if zh else reason)
    if reason.startswith("none of"):
        return ("未出现" + (f"：{title}" if title else "相关用语")) if zh else reason
    return reason
