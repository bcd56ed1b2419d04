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
