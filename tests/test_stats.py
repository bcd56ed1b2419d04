"""The statistics: scipy's, checked against the textbook formulas on known numbers."""

import math
import statistics

import pytest
from scipy import stats as scipy_stats

from cifarbench import stats


def test_the_interval_is_the_mean_plus_minus_t_times_the_standard_error():
    values = [1.0, 2.0, 3.0, 4.0]  # mean 2.5, sample sd 1.2910, standard error 0.6455
    low, high = stats.mean_interval(values)
    half_width = 3.182446305284263 * statistics.stdev(values) / 2  # t(0.975, 3 df) * sd/sqrt(4)
    assert (low, high) == pytest.approx((2.5 - half_width, 2.5 + half_width), rel=1e-12)
    assert stats.mean_interval([5.0]) == (None, None)
    assert stats.mean_interval([5.0, 5.0]) == (5.0, 5.0)


def test_welch_p_value_is_the_welch_satterthwaite_t_test():
    a, b = [10.1, 10.4, 9.8, 10.3], [11.0, 11.6, 10.9, 11.8, 11.2]
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    t = (statistics.fmean(a) - statistics.fmean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    expected = 2 * scipy_stats.t.sf(abs(t), df)
    assert stats.welch_p(a, b) == pytest.approx(expected, rel=1e-10)
    assert stats.welch_p(a, [11.0]) is None


@pytest.mark.parametrize(
    ("values", "baseline", "expected"),
    [
        ([10.1, 10.4, 9.8, 10.3], [11.0, 11.6, 10.9, 11.8], "faster"),
        ([11.0, 11.6, 10.9, 11.8], [10.1, 10.4, 9.8, 10.3], "slower"),
        ([10.0, 12.0, 9.0, 11.0], [10.5, 11.5, 9.5, 10.0], "same within noise"),
        ([10.0, 10.0], [10.0, 10.0], "same within noise"),
        ([9.0, 9.0], [10.0, 10.0], "faster"),
        ([10.0], [11.0, 12.0], None),
    ],
)
def test_verdict(values, baseline, expected):
    assert stats.verdict(values, baseline, ("faster", "slower")) == expected


def test_a_row_is_noisy_above_ten_percent_variation():
    assert stats.variation([6.0, 24.4]) == pytest.approx(statistics.stdev([6.0, 24.4]) / 15.2)
    assert stats.is_noisy([6.0, 24.4])  # the two seeds the issue saw
    assert not stats.is_noisy([10.0, 10.5, 9.8])
    assert not stats.is_noisy([10.0])


def _fieller_t(numerator: list[float], denominator: list[float], ratio: float) -> float:
    """|mean(n) - r mean(d)| over its standard error: Fieller's statistic at ratio r."""
    v_n = statistics.variance(numerator) / len(numerator)
    v_d = statistics.variance(denominator) / len(denominator)
    difference = statistics.fmean(numerator) - ratio * statistics.fmean(denominator)
    return abs(difference) / math.sqrt(v_n + ratio**2 * v_d)


def test_a_clear_two_fold_step_has_a_ratio_interval_around_two_and_is_faster():
    below, rung = [10.0, 10.4, 9.7, 10.1], [5.1, 4.9, 5.0, 5.2]  # times: the rung is 2x faster
    low, high = stats.ratio_interval(below, rung)
    assert 1.8 < low < statistics.fmean(below) / statistics.fmean(rung) < high < 2.2
    # Fieller's ends are where the statistic meets the t quantile (Welch's df at the estimate).
    assert _fieller_t(below, rung, low) == pytest.approx(_fieller_t(below, rung, high), rel=0.02)
    assert 2.4 < _fieller_t(below, rung, low) < 4.4  # t(0.975) for 3 to 6 degrees of freedom
    assert stats.verdict(rung, below, ("faster", "slower")) == "faster"


def test_a_step_within_noise_has_a_ratio_interval_around_one():
    below, rung = [10.0, 12.0, 9.0, 11.0], [10.5, 11.5, 9.5, 10.0]
    low, high = stats.ratio_interval(below, rung)
    assert low < 1 < high
    assert stats.verdict(rung, below, ("faster", "slower")) == "same within noise"


def test_constant_replicates_give_a_point_interval_and_too_few_give_none():
    assert stats.ratio_interval([6.0, 6.0, 6.0], [3.0, 3.0]) == (2.0, 2.0)
    assert stats.ratio_interval([6.0], [3.0, 3.1]) == (None, None)
    assert stats.ratio_interval([6.0, 6.1], [0.0, 0.0]) == (None, None)
    # A denominator indistinguishable from 0: the set of plausible ratios is unbounded.
    assert stats.ratio_interval([6.0, 6.2], [0.1, -0.1, 0.05]) == (None, None)


def test_robust_summaries_resist_one_slow_replicate():
    times = [10.0, 10.2, 9.9, 30.0]  # one run on a busy machine
    assert stats.median(times) == pytest.approx(10.1)
    assert (stats.smallest(times), stats.largest(times)) == (9.9, 30.0)
    assert stats.median([]) is None and stats.smallest([]) is None
