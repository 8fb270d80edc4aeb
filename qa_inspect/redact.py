"""Personal-data redaction for everything trainers and supervisors export.

What is redacted (replaced by a bracketed label such as ``[手机号]``):

* numbers that identify a person — mobile (11 digits starting with 1), ID card (15/18 digits,
  trailing X/x/叉 included), bank card (16–19 digits), any other run of 7+ digits (landlines,
  account numbers) — whether written as Arabic digits (full or half width), read out digit by
  digit in Chinese (一二三 幺 两 零 〇), in English words (one two oh ...), or mixed, with or
  without spaces/dashes between groups (``138 0013 8000``, ``一三八-零零一三-八零零零``);
  groups joined by commas (``一三八，零零一三，八零零零``) are joined only when the result has the
  exact shape of a mobile, ID or bank number, so ``12315，12345`` is left alone;
* shorter numbers (3+ digits) right after a personal-number cue: 身份证/卡号/尾号/后四位/
  验证码/密码/账号 (``身份证后四位是3321``), but never public service numbers (110, 10086,
  12315, 95588, 400-/800- hotlines), which risk alerts must keep readable;
* addresses after a cue (地址是…, 住在…, 寄到…) up to the end of the clause, and street or
  building addresses with a house number even without a cue (和平路二十八号, 阳光小区三号楼);
* names after a cue (我叫X, 名字是X, 机主叫X, 姓名是X, 我姓X, my name is X); e-mail addresses.

What is deliberately NOT redacted, because it is not personal data and reports need it:
4-digit agent ids (工号1234 — the agent's staff number; agents are named in the reports anyway),
short service numbers (12315, 10086, 95588), prices and quantities (58元, 一百二十块, 3GB),
dates and times (2026-11-23, 09:12), ticket numbers under 7 digits (工单号6015).

``redact_spans(turn)`` gives the seconds of each redacted span from the turn's word timestamps
so an audio clip can beep it; without word timestamps it falls back to spreading the turn's
time evenly over its characters (marked ``approximate``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from qa_inspect.records import Transcript, Turn, Word

LABELS = {"mobile": "[手机号]", "id_card": "[身份证号]", "bank_card": "[银行卡号]",
          "number": "[号码]", "address": "[地址]", "name": "[姓名]", "email": "[邮箱]"}

_ZH_DIGITS = {"零": "0", "〇": "0", "一": "1", "幺": "1", "二": "2", "两": "2", "三": "3",
              "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
_EN_DIGITS = {"zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4",
              "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}
_TOKEN = (r"(?:[0-9０-９" + "".join(_ZH_DIGITS) + r"]"
          r"|(?<![A-Za-z])(?:" + "|".join(_EN_DIGITS) + r")(?![A-Za-z]))")
_WS = r"[ \t\u3000]"
# digits joined by nothing, spaces or a dash belong to one number as read out
_GROUP = re.compile(f"{_TOKEN}(?:(?:{_WS}*[-－–—_]{_WS}*|{_WS}+)?{_TOKEN})*", re.IGNORECASE)
_COMMA_GAP = re.compile(f"^{_WS}*[,，、.]{_WS}*$")
_ID_X = re.compile(f"^{_WS}*([Xx×叉])")
# a number followed by a unit is a quantity or a price, not an identifier
_UNIT_AFTER = re.compile(f"^{_WS}*(?:元|块|万|亿|角|毛|分钟|个|次|条|兆|%|％|[GMK]B?\\b|秒|小时|天|年|月|岁|米|公里)",
                         re.IGNORECASE)
_MONEY_BEFORE = re.compile(r"[¥￥$]\s*$")
_DATE = re.compile(r"\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?|\d{1,2}:\d{2}(?::\d{2})?")
# cues that make even a short number personal (the last digits of an ID or card, a code);
# not 电话/号码: "打电话12315" names a service number, which must stay readable in risk alerts
_CUE = re.compile(r"(身份证|证件号|卡号|银行卡|尾号|后[四六八]位|验证码|密码|账号|帐号|"
                  r"card|account|last (?:four|4|six|6) digits|code)[^。！？!?]{0,8}$", re.IGNORECASE)
# public service numbers (10086, 12315, 95588, 110 ...) are never personal
_SERVICE = re.compile(r"1[12]\d|1\d{4}|9[56]\d{3,4}|[48]00\d{7}")

_NAME_CUE = re.compile(r"(?:我叫|名叫|名字叫|名字是|姓名是|姓名叫|机主叫|机主是|机主姓名是|联系人是|联系人叫|"
                       r"户主是|户主叫|我姓)\s*([\u4e00-\u9fff]{1,3})")
_NAME_STOP = set("的了想要是在呢啊吧我你他她们有就说请先和跟，。、")
_EN_NAME = re.compile(r"(?:my name is|my name's|this is|i am|i'm)\s+([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)")
_EN_NAME_STOP = {"Sorry", "Calling", "Here", "Very", "Not", "So", "Just", "Really", "Afraid"}
_ADDR_CUE = re.compile(r"(?:地址是|地址在|地址为|住址是|住址在|住在|家住|家在|寄到|送到|收货地址)[:：]?\s*"
                       r"([^。！？!?，,]{2,40})")
_NUMERAL = r"[0-9０-９零〇一二两三四五六七八九十百千]+"
_STREET = re.compile(r"[\u4e00-\u9fff]{2,5}?(?:路|街|大道|巷|胡同|弄)" + _NUMERAL + r"(?:号|弄)"
                     r"(?:" + _NUMERAL + r"(?:号楼|栋|幢|单元|楼|室|号))*")
_ESTATE = re.compile(r"[\u4e00-\u9fff]{2,5}?(?:小区|花园|公寓|大厦|新村|家园|苑)"
                     r"(?:" + _NUMERAL + r"(?:号楼|栋|幢|单元|楼|室|号))+")
_LEAD_TRIM = "在住是到于从我家"  # not 和: 和平路 is a street
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


@dataclass(frozen=True)
class Span:
    """Characters ``start:end`` of a text hold personal data of ``kind`` (a key of LABELS)."""

    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class TimeSpan:
    """Seconds of audio to beep for one redacted span."""

    start: float
    end: float
    kind: str
    approximate: bool = False


def _digits(s: str) -> str:
    out = []
    for m in re.finditer(_TOKEN, s, re.IGNORECASE):
        t = m.group().lower()
        out.append(_ZH_DIGITS.get(t) or _EN_DIGITS.get(t) or str(int(t) if t.isdigit() else t))
    return "".join(out)


def _shape(d: str, x: bool) -> str | None:
    """Kind of personal number by its digits alone, or None."""
    n = len(d)
    if x and n in (14, 17):
        return "id_card"
    if n == 11 and d[0] == "1":
        return "mobile"
    if n == 18 and d[6:8] in ("19", "20"):
        return "id_card"
    if n == 15:  # first-generation ID card
        return "id_card"
    if 16 <= n <= 19:
        return "bank_card"
    return None


def _number_spans(text: str) -> list[Span]:
    masked = _DATE.sub(lambda m: "\0" * len(m.group()), text)  # dates/times are not numbers to hide
    groups = [(m.start(), m.end(), _digits(m.group())) for m in _GROUP.finditer(masked)]
    spans: list[Span] = []
    i = 0
    while i < len(groups):
        s, e, d = groups[i]
        j = i
        # join comma-separated groups only into an exact personal-number shape
        best = None
        k, ds, ek = i, d, e
        while k + 1 < len(groups) and _COMMA_GAP.match(masked[ek:groups[k + 1][0]]):
            k += 1
            ds += groups[k][2]
            ek = groups[k][1]
            mx = _ID_X.match(masked[ek:])
            if _shape(ds, bool(mx)):
                best = (k, ds, ek)
        if best:
            j, d, e = best
        mx = _ID_X.match(masked[e:])
        x = bool(mx) and len(d) in (14, 17)
        if x:
            e += mx.end()
        i = j + 1
        if len(d) < 3:
            continue
        kind = _shape(d, x)
        if kind is None:
            if _UNIT_AFTER.match(masked[e:]) or _MONEY_BEFORE.search(masked[:s]):
                continue
            cue = _CUE.search(masked[max(0, s - 16):s])
            if _SERVICE.fullmatch(d):
                continue
            if len(d) >= 7:
                kind = "number"
            elif cue:
                word = cue.group(1).lower()
                kind = ("id_card" if "身份" in word or "证件" in word else
                        "bank_card" if "卡" in word or "card" in word else "number")
            else:
                continue
        spans.append(Span(s, e, kind))
    return spans


def _text_spans(text: str) -> list[Span]:
    spans: list[Span] = []
    for m in _NAME_CUE.finditer(text):
        name = m.group(1)
        cut = next((i for i, c in enumerate(name) if c in _NAME_STOP), len(name))
        if cut:
            spans.append(Span(m.start(1), m.start(1) + cut, "name"))
    for m in _EN_NAME.finditer(text):
        first = m.group(1).split()[0]
        if first not in _EN_NAME_STOP:
            spans.append(Span(m.start(1), m.end(1), "name"))
    for m in _ADDR_CUE.finditer(text):
        spans.append(Span(m.start(1), m.end(1), "address"))
    for rx in (_STREET, _ESTATE):
        for m in rx.finditer(text):
            s = m.start()
            while s < m.end() - 3 and text[s] in _LEAD_TRIM:
                s += 1
            spans.append(Span(s, m.end(), "address"))
    for m in _EMAIL.finditer(text):
        spans.append(Span(m.start(), m.end(), "email"))
    return spans


def find_pii(text: str) -> list[Span]:
    """Non-overlapping spans of personal data in ``text``, in order."""
    if not text:
        return []
    cands = sorted(_number_spans(text) + _text_spans(text), key=lambda s: (s.start, -s.end))
    out: list[Span] = []
    for sp in cands:
        if out and sp.start < out[-1].end:
            last = out[-1]
            # overlapping: keep one span covering both, labelled by the wider kind
            kind = last.kind if (last.end - last.start) >= (sp.end - sp.start) else sp.kind
            out[-1] = Span(last.start, max(last.end, sp.end), kind)
        else:
            out.append(sp)
    return out


def redact_text(text: str) -> str:
    """``text`` with personal data replaced by labels (see the module doc for the policy)."""
    if not text:
        return text
    spans = find_pii(text)
    if not spans:
        return text
    parts, pos = [], 0
    for sp in spans:
        parts.append(text[pos:sp.start])
        parts.append(LABELS[sp.kind])
        pos = sp.end
    parts.append(text[pos:])
    return "".join(parts)


def redact_spans(turn: Turn, pad: float = 0.05) -> list[TimeSpan]:
    """Seconds of the audio of ``turn`` that hold redacted personal data (for beeping)."""
    if turn.words:
        text, owner = "", []
        for wi, w in enumerate(turn.words):
            text += w.text
            owner.extend([wi] * len(w.text))
        out = []
        for sp in find_pii(text):
            ws = [turn.words[i] for i in sorted(set(owner[sp.start:sp.end]))]
            if ws:
                out.append(TimeSpan(max(0.0, ws[0].start - pad), ws[-1].end + pad, sp.kind))
        return out
    if turn.start is None or turn.end is None or not turn.text:
        return []
    # no word timings: assume an even speaking rate over the characters, widened a little
    per = (turn.end - turn.start) / max(len(turn.text), 1)
    return [TimeSpan(max(turn.start, turn.start + sp.start * per - 4 * pad),
                     min(turn.end, turn.start + sp.end * per + 4 * pad), sp.kind, True)
            for sp in find_pii(turn.text)]


def redact_turn(turn: Turn) -> Turn:
    """A copy of ``turn`` with redacted text; words inside a redacted span become the label."""
    if not turn.words:
        return replace(turn, text=redact_text(turn.text))
    text, owner = "", []
    for wi, w in enumerate(turn.words):
        text += w.text
        owner.extend([wi] * len(w.text))
    words = list(turn.words)
    for sp in find_pii(text):
        idx = sorted(set(owner[sp.start:sp.end]))
        for n, i in enumerate(idx):
            words[i] = Word(text=LABELS[sp.kind] if n == 0 else "", start=words[i].start,
                            end=words[i].end, probability=words[i].probability)
    return replace(turn, text=redact_text(turn.text), words=tuple(words))


def redact_transcript(tr: Transcript) -> Transcript:
    return replace(tr, turns=tuple(redact_turn(t) for t in tr.turns))


def redact_call_dict(d: dict[str, Any]) -> dict[str, Any]:
    """Redact an exported ``CallResult.to_dict()`` record (transcript text, words, evidence).

    Agent ids and names stay: they are the staff member being coached, not the customer.
    """
    d = dict(d)
    if d.get("transcript"):
        d["transcript"] = redact_transcript(Transcript.from_dict(d["transcript"])).to_dict()
    rules = []
    for r in d.get("rules") or []:
        r = dict(r)
        r["evidence"] = [{**e, "text": redact_text(e.get("text", "")),
                          "matched": redact_text(e.get("matched", ""))}
                         for e in r.get("evidence") or []]
        rules.append(r)
    d["rules"] = rules
    return d
