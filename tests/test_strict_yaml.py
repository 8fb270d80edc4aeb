"""Strict YAML against hostile input (issue 17): every class fails fast and small, with one
readable line naming file:line, through rule packs, scorecards and sampling plans alike."""
import time
import tracemalloc

import pytest
from click.testing import CliRunner

from qa_inspect.cli import main
from qa_inspect.errors import RuleError
from qa_inspect.rules import load_pack, parse_pack
from qa_inspect.scoring.scorecard import parse_scorecard
from qa_inspect.strict_yaml import YamlMap, read_strict_yaml
from qa_inspect.workflow.sampling import parse_plan

PACK = """pack: {id: p}
rules:
  - id: r
    kind: forbidden
    severity: minor
    deduction: 1
    match: {any: [不知道]}
"""

LAUGHS = "".join(f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]\n" for i in range(1, 10))


def _bounded(fn, seconds=2.0, megabytes=64):
    """Run ``fn``; assert it took under ``seconds`` and allocated under ``megabytes`` at peak
    (``megabytes=None``: time only, without tracemalloc's slow-down)."""
    if megabytes is None:
        t0 = time.perf_counter()
        out = fn()
        assert time.perf_counter() - t0 < seconds, f"took {time.perf_counter() - t0:.2f} s"
        return out
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        out = fn()
    finally:
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f} s"
    assert peak < megabytes * 2**20, f"peak {peak / 2**20:.0f} MB"
    return out


def _one_problem(text, file="p.yaml"):
    pack, problems = _bounded(lambda: parse_pack(text, file))
    assert pack is None
    assert len(problems) == 1, problems
    return str(problems[0])


def test_line_numbers_and_duplicate_keys_still_work():
    doc = read_strict_yaml("a: 1\nb:\n  c: 2\n", "x.yaml")
    assert isinstance(doc, YamlMap) and doc.key_lines == {"a": 1, "b": 2} and doc["b"].line == 3
    with pytest.raises(RuleError, match=r"x.yaml:2: duplicate key 'a' \(first at line 1\)"):
        read_strict_yaml("a: 1\na: 2\n", "x.yaml")


def test_document_size_limit():
    text = PACK + "# " + "x" * 2_100_000 + "\n"
    assert _one_problem(text).startswith("p.yaml:1: YAML document too large")


def test_deep_nesting_is_a_clean_error_not_recursion():
    deep = "variables: {a: " + "[" * 20_000 + "]" * 20_000 + "}\n"
    msg = _one_problem(PACK + deep)
    assert msg.startswith("p.yaml:8: YAML nested deeper than 64 levels"), msg
    with pytest.raises(RuleError, match="nested deeper"):
        _bounded(lambda: parse_plan("plan: {id: x}\nx: " + "{a: " * 20_000 + "1" + "}" * 20_000, "plan.yaml"))


def test_alias_bomb_under_variables_fails_fast_and_small():
    msg = _one_problem(PACK + "variables:\n  l0: &l0 lol\n" + LAUGHS)
    assert msg.startswith("p.yaml:") and "alias" in msg and "200,000" in msg, msg


def test_alias_bomb_in_a_scorecard_fails_fast_and_small():
    text = "scorecard: {id: s, version: '1', pack: p}\nbomb:\n  l0: &l0 lol\n" + LAUGHS
    sc, problems = _bounded(lambda: parse_scorecard(text, "sc.yaml"))
    assert sc is None and len(problems) == 1 and "alias" in str(problems[0])
    assert str(problems[0]).startswith("sc.yaml:")


def test_a_few_aliases_are_fine():
    doc = read_strict_yaml("a: &x [1, 2]\nb: *x\nc: *x\n", "ok.yaml")
    assert doc["b"] == [1, 2] and doc["c"] == [1, 2]


def test_recursive_alias_is_refused():
    with pytest.raises(RuleError, match="r.yaml:1: YAML alias refers to itself"):
        read_strict_yaml("a: &x [1, *x]\n", "r.yaml")


@pytest.mark.parametrize("tagged, tag", [
    ("!!python/object/apply:os.system ['echo pwned']", "!!python/object/apply:os.system"),
    ("!!python/name:os.system ''", "!!python/name:os.system"),
    ("!custom thing", "!custom"),
    ("!!set {a, b}", "!!set"),
])
def test_non_standard_tags_are_refused(tagged, tag):
    msg = _one_problem(PACK + f"variables:\n  v: {tagged}\n")
    assert msg.startswith("p.yaml:9: YAML tag " + tag) and "not allowed" in msg, msg


def test_standard_tags_are_fine():
    assert read_strict_yaml("a: !!str 12\nb: !!int '3'\n", "t.yaml") == {"a": "12", "b": 3}


def _chain(tmp_path, n):
    for i in range(n):
        inc = f"include: [p{i + 1}.yaml]\n" if i + 1 < n else ""
        body = PACK.replace("id: p}", f"id: p{i}}}").replace("id: r\n", f"id: r{i}\n")
        (tmp_path / f"p{i}.yaml").write_text(inc + body, encoding="utf-8")
    return tmp_path / "p0.yaml"


def test_include_chain_1000_deep_is_one_line(tmp_path):
    top = _chain(tmp_path, 1000)
    with pytest.raises(RuleError) as e:
        _bounded(lambda: load_pack(top), seconds=1.0, megabytes=None)
    msg = str(e.value)
    assert "\n" not in msg and "includes nested deeper than 8 packs" in msg and msg.startswith(str(tmp_path)), msg
    ok = tmp_path / "ok"
    ok.mkdir()
    assert len(load_pack(_chain(ok, 8)).rules) == 8  # at the limit: every pack's rule


@pytest.mark.parametrize("levels, says", [(22, "includes nested deeper than 8 packs"),
                                          (7, "more than 64 included pack files")])  # 2+4+…+64 reads
def test_include_diamond_is_one_line(tmp_path, levels, says):
    for lvl in range(levels):
        for side in "ab":
            inc = f"include: [a{lvl + 1}.yaml, b{lvl + 1}.yaml]\n" if lvl + 1 < levels else ""
            body = PACK.replace("id: p}", f"id: {side}{lvl}}}").replace("id: r\n", f"id: r{side}{lvl}\n")
            (tmp_path / f"{side}{lvl}.yaml").write_text(inc + body, encoding="utf-8")
    with pytest.raises(RuleError) as e:
        _bounded(lambda: load_pack(tmp_path / "a0.yaml"), seconds=1.0, megabytes=None)
    msg = str(e.value)
    assert "\n" not in msg and says in msg, msg


def test_cli_validate_says_one_line_no_traceback(tmp_path):
    bad = tmp_path / "bomb.yaml"
    bad.write_text(PACK + "variables:\n  l0: &l0 lol\n" + LAUGHS, encoding="utf-8")
    res = CliRunner().invoke(main, ["rules", "validate", str(bad)])
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{bad}:") and "Traceback" not in res.output
