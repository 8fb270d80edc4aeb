"""A transcripts JSONL is read a segment at a time (issue 18): `run` never holds the whole
night's text; the calls, duplicates, error rows, results and report are what one pass gives."""
import csv
import json

import pytest
from click.testing import CliRunner

from qa_inspect.batch import inputs
from qa_inspect.batch.inputs import read_input, read_input_segments
from qa_inspect.cli import main
from qa_inspect.errors import InputError


def _line(cid, text="您好，请问有什么可以帮您"):
    return json.dumps({"call_id": cid, "turns": [{"role": "agent", "text": text},
                                                 {"role": "customer", "text": "我要查话费"}]}, ensure_ascii=False)


def test_segments_are_read_lazily_and_join_to_what_read_input_gives(tmp_path, monkeypatch):
    p = tmp_path / "t.jsonl"
    lines = [_line("a"), "", _line("b"), "{not json", _line("c"), _line("a"), "   ", _line("d"), "x" * 300]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("QA_INSPECT_MAX_LINE_BYTES", "200")
    whole = read_input(p)
    parsed = []
    real = inputs._transcript_line
    monkeypatch.setattr(inputs, "_transcript_line", lambda d, *a, **k: parsed.append(d["call_id"]) or real(d, *a, **k))
    total, segs = read_input_segments(p, size=3)
    assert total == len(whole) == 7  # blank lines are no calls; an over-long line is an error row
    assert parsed == []  # counting parses nothing
    first = next(segs)
    assert [it.call.call_id for it in first][:1] == ["a"] and len(first) == 3 and parsed == ["a", "b"]
    rest = [it for seg in segs for it in seg]
    got = first + rest
    assert [(it.call.call_id, it.error) for it in got] == [(it.call.call_id, it.error) for it in whole]
    dup = next(it for it in got if it.call.call_id.startswith("a#dup"))  # across the segment boundary
    assert "duplicate call_id 'a'" in dup.error and f"{p}:1" in dup.error
    assert sum(bool(it.error) for it in got) == 3  # bad JSON, duplicate, over-long line


def test_segment_size_from_the_environment(tmp_path, monkeypatch):
    p = tmp_path / "t.jsonl"
    p.write_text("\n".join(_line(f"c{i}") for i in range(5)) + "\n", encoding="utf-8")
    monkeypatch.setenv("QA_INSPECT_SEGMENT_CALLS", "2")
    total, segs = read_input_segments(p)
    assert total == 5 and [len(s) for s in segs] == [2, 2, 1]
    monkeypatch.setenv("QA_INSPECT_SEGMENT_CALLS", "0")
    with pytest.raises(InputError, match="QA_INSPECT_SEGMENT_CALLS"):
        read_input_segments(p)


def _rows(out):
    with open(out / "report.csv", encoding="utf-8-sig", newline="") as f:
        return sorted(tuple(r.items()) for r in csv.DictReader(f))


def test_run_in_segments_gives_the_one_pass_results(samples, tmp_path, monkeypatch):
    monkeypatch.setenv("QA_INSPECT_SENTIMENT", "lexicon")
    src = samples / "transcripts.jsonl"
    one = CliRunner().invoke(main, ["run", str(src), "--db", str(tmp_path / "a.db"), "--out", str(tmp_path / "a"),
                                    "--workers", "1"])
    monkeypatch.setenv("QA_INSPECT_SEGMENT_CALLS", "4")
    seg = CliRunner().invoke(main, ["run", str(src), "--db", str(tmp_path / "b.db"), "--out", str(tmp_path / "b"),
                                    "--workers", "1"])
    assert one.exit_code == seg.exit_code and "13 call(s)" in seg.output
    counts = [next(x for x in r.output.splitlines() if x.startswith("done:")).split(" in ")[0] for r in (one, seg)]
    assert counts[0] == counts[1] == "done: 13 ok, 0 error(s), 0 already done", counts
    a, b = _rows(tmp_path / "a"), _rows(tmp_path / "b")
    assert len(a) == 13 and a == b
    again = CliRunner().invoke(main, ["run", str(src), "--db", str(tmp_path / "b.db"), "--out", str(tmp_path / "c"),
                                      "--workers", "1"])
    assert "done: 0 ok, 0 error(s), 13 already done" in again.output
    assert _rows(tmp_path / "c") == b  # the report still covers every call of the input
