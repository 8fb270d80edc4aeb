"""Calibration statistics on small inputs worked out by hand."""
import pytest

from qa_inspect.workflow.calibration import (cohen_kappa, fix_first, mean_abs_diff, pearson, reviewer_flags,
                                             rule_stats, weeks_spanned)


def test_cohen_kappa_by_hand():
    a = [1, 1, 1, 0, 0, 0, 1, 0, 1, 1]
    b = [1, 1, 0, 0, 0, 1, 1, 0, 1, 0]
    # agree on 7 of 10: p_o = 0.7. a says 1 six times, b five times:
    # p_e = 0.6·0.5 + 0.4·0.5 = 0.5 → kappa = (0.7 − 0.5) / (1 − 0.5) = 0.4
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert cohen_kappa([1, 0, 1, 0], [0, 1, 0, 1]) == pytest.approx(-1.0)
    # 3 of 4 agree, p_e = 0.75·0.5 + 0.25·0.5 = 0.5 → 0.5
    assert cohen_kappa(["f", "f", "f", "p"], ["f", "f", "p", "p"]) == pytest.approx(0.5)
    assert cohen_kappa([True] * 3, [True] * 3) is None  # one label only: undefined
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError):
        cohen_kappa([1], [1, 0])


def test_pearson_and_mean_abs_diff_by_hand():
    # deviations (−1.5, −.5, .5, 1.5) and (−.5, −1.5, 1.5, .5): Σxy = 3, Σx² = Σy² = 5 → 0.6
    assert pearson([1, 2, 3, 4], [2, 1, 4, 3]) == pytest.approx(0.6)
    assert pearson([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert pearson([1], [2]) is None and pearson([1, 1], [2, 3]) is None
    assert mean_abs_diff([80, 90, 100], [70, 100, 100]) == pytest.approx(20 / 3)
    assert mean_abs_diff([], []) is None


def test_reviewer_label_from_machine_outcome_and_verdict():
    assert reviewer_flags("fail", "confirmed") and reviewer_flags("hit", "confirmed")
    assert not reviewer_flags("pass", "confirmed") and not reviewer_flags("n/a", "confirmed")
    assert not reviewer_flags("hit", "false_positive")
    assert reviewer_flags("pass", "missed") and reviewer_flags("n/a", "missed")


def test_rule_stats_precision_recall_and_fix_first():
    rows = [  # rule, call, machine flags, reviewer flags
        ("greet", "c1", True, True), ("greet", "c2", True, False), ("greet", "c3", False, True),
        ("greet", "c4", False, False), ("greet", "c5", True, True),
        ("rude", "c1", True, False), ("rude", "c2", True, False), ("rude", "c3", True, True),
        ("close", "c1", False, False),
    ]
    s = rule_stats(rows, weeks=2)
    g = s["greet"]
    assert (g.n, g.tp, g.fp, g.fn, g.tn) == (5, 2, 1, 1, 1)
    assert g.precision == pytest.approx(2 / 3) and g.recall == pytest.approx(2 / 3)
    r = s["rude"]
    assert (r.tp, r.fp, r.precision, r.recall, r.fp_per_week) == (1, 2, pytest.approx(1 / 3), 1.0, 1.0)
    assert r.false_positive_calls == ["c1", "c2"]
    c = s["close"]
    assert c.precision is None and c.recall is None  # nothing flagged by anyone
    assert [x.rule_id for x in fix_first(s)] == ["rude", "greet"]  # 1.0 FP/week before 0.5


def test_weeks_spanned_counts_iso_weeks():
    assert weeks_spanned(["2026-11-23T09:00:00+08:00", "2026-11-24T10:00:00+08:00"]) == 1
    assert weeks_spanned(["2026-11-23T09:00:00+08:00", "2026-11-30T10:00:00+08:00", "garbage"]) == 2
    assert weeks_spanned([]) == 1
