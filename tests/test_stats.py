import pytest

from harness.gate import stats


def test_summarize_exact_values():
    s = stats.summarize([10.0, 12.0, 11.0, 15.0])
    assert s["median"] == 11.5
    assert s["mean"] == 12.0
    assert s["min"] == 10.0 and s["max"] == 15.0
    # deviations from the median: 1.5, 0.5, 0.5, 3.5 -> median 1.0
    assert s["mad"] == 1.0
    # sample stdev of 10, 12, 11, 15 is sqrt(14/3) = 2.160247
    assert s["stdev"] == pytest.approx(2.16025, abs=1e-5)
    assert s["cv"] == pytest.approx(2.160247 / 12, abs=1e-6)
    assert s["noisy"] is True  # cv 18% > 10%
    assert s["values"] == [10.0, 12.0, 11.0, 15.0]
    assert s["n"] == 4


def test_summarize_single_value_is_not_noisy():
    s = stats.summarize([5.0])
    assert s["stdev"] == 0.0 and s["cv"] == 0.0 and s["noisy"] is False


def test_summarize_quiet_values():
    s = stats.summarize([100.0, 101.0, 99.0])
    assert s["cv"] == pytest.approx(0.01)
    assert s["noisy"] is False


def test_summarize_rounds_to_significant_digits():
    assert stats.summarize([1234567.891])["median"] == 1234570.0
    assert stats.summarize([0.000123456789])["median"] == 0.000123457


def test_summarize_needs_values():
    with pytest.raises(ValueError):
        stats.summarize([])


def test_bootstrap_median_ci_brackets_the_median_and_is_repeatable():
    values = [0.97, 0.99, 1.0, 1.01, 1.02, 0.98, 1.03, 0.96]
    lo, hi = stats.bootstrap_median_ci(values)
    assert min(values) <= lo < 0.995 < hi <= max(values)  # median 0.995, strictly inside
    assert stats.bootstrap_median_ci(values) == (lo, hi)  # seeded
    assert stats.bootstrap_median_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
