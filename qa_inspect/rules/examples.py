"""Run the ``examples:`` kept next to each rule (like semgrep ``ruleid:``/``ok:``/``todoruleid:``)."""
from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from qa_inspect.records import Transcript, Turn
from qa_inspect.rules.model import Example, Rule, RulePack


@dataclass(frozen=True)
class ExampleOutcome:
    pack: str
    source: str
    rule_id: str
    example: Example
    matched: bool
    reason: str

    @property
    def status(self) -> str:
        """pass | fail | todo (known gap, still missing) | todo-passes (move it to hit)."""
        kind = self.example.kind
        if kind == "todo":
            return "todo-passes" if self.matched else "todo"
        return "pass" if self.matched == (kind == "hit") else "fail"

    @property
    def where(self) -> str:
        return f"{self.source}:{self.example.line}"

    @property
    def name(self) -> str:
        return f"{self.example.kind}[{self.example.index}]"


def example_transcript(ex: Example, language: str) -> Transcript:
    turns = tuple(Turn(role=r, text=t, start=i * 5.0, end=i * 5.0 + 4.0) for i, (r, t) in enumerate(ex.turns))
    return Transcript(call_id="example", language=language, turns=turns, duration=len(turns) * 5.0)


def run_rule_examples(pack: RulePack, rule: Rule) -> list[ExampleOutcome]:
    from qa_inspect.rules.engine import evaluate

    one = dataclasses.replace(pack, rules=(rule,))
    out = []
    for ex in rule.examples:
        (res,) = evaluate(one, example_transcript(ex, pack.language))
        out.append(ExampleOutcome(pack.id, rule.source or pack.source, rule.id, ex, res.matched, res.reason))
    return out


def run_examples(pack: RulePack) -> dict[str, list[ExampleOutcome]]:
    """rule id → outcomes, in pack order (rules without examples map to [])."""
    return {r.id: run_rule_examples(pack, r) for r in pack.rules}


def junit_xml(results: list[tuple[RulePack, dict[str, list[ExampleOutcome]]]]) -> bytes:
    """One testsuite per pack, one testcase per example; todo → skipped."""
    root = ET.Element("testsuites", name="qa-inspect rules test")
    total = fails = skips = 0
    for pack, by_rule in results:
        outs = [o for os_ in by_rule.values() for o in os_]
        nf = sum(o.status == "fail" for o in outs)
        ns = sum(o.status == "todo" for o in outs)
        suite = ET.SubElement(root, "testsuite", name=pack.id, file=pack.source, tests=str(len(outs)),
                              failures=str(nf), errors="0", skipped=str(ns))
        for o in outs:
            case = ET.SubElement(suite, "testcase", classname=f"{pack.id}.{o.rule_id}", name=o.name,
                                 file=pack.source, line=str(o.example.line))
            if o.status == "fail":
                want = "match" if o.example.kind == "hit" else "no match"
                f = ET.SubElement(case, "failure", message=f"expected {want}: {o.reason}")
                f.text = f"{o.where}: {o.example.describe()}\n{o.reason}"
            elif o.status == "todo":
                ET.SubElement(case, "skipped", message=f"todo (known gap): {o.reason}")
            elif o.status == "todo-passes":
                ET.SubElement(case, "system-out").text = "todo now passes — move it to hit"
        total, fails, skips = total + len(outs), fails + nf, skips + ns
    root.set("tests", str(total))
    root.set("failures", str(fails))
    root.set("errors", "0")
    root.set("skipped", str(skips))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
