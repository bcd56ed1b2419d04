"""Is a difference real? Confidence intervals (of a mean, and of a ratio of two means),
Welch's t-test, robust summaries and a noise flag, from scipy."""

import math
import statistics

from scipy import stats

LEVEL = 0.95  # confidence of the intervals
ALPHA = 0.05  # a difference with p below this is called real
NOISY_CV = 0.10  # replicate times varying more than this (coefficient of variation) are noisy


def mean_interval(values: list[float]) -> tuple[float, float] | tuple[None, None]:
    """The 95% confidence interval of the mean (Student's t), or (None, None) below 2 values."""
    if len(values) < 2:
        return None, None
    mean, sem = statistics.fmean(values), stats.sem(values)
    if sem == 0:
        return mean, mean
    low, high = stats.t.interval(LEVEL, len(values) - 1, loc=mean, scale=sem)
    return float(low), float(high)


def welch_p(values: list[float], baseline: list[float]) -> float | None:
    """Two-sided p-value of Welch's t-test (unequal variances), or None below 2 values each
    or when both sides are constant."""
    if len(values) < 2 or len(baseline) < 2:
        return None
    if statistics.variance(values) == 0 and statistics.variance(baseline) == 0:
        return None  # no spread on either side: the test is undefined
    p = stats.ttest_ind(values, baseline, equal_var=False).pvalue
    return None if math.isnan(p) else float(p)


def verdict(values: list[float], baseline: list[float], words: tuple[str, str]) -> str | None:
    """`words[0]` if the mean is significantly below the baseline's, `words[1]` if above,
    "same within noise" otherwise; None when there are too few replicates to tell."""
    p = welch_p(values, baseline)
    if p is None:
        if len(values) >= 2 and len(baseline) >= 2:  # both constant: equal or plainly not
            return _direction(values, baseline, words) or "same within noise"
        return None
    if p >= ALPHA:
        return "same within noise"
    return _direction(values, baseline, words)


def indistinguishable(values: list[float], other: list[float]) -> bool:
    """Whether the test cannot tell the two sets of replicates apart."""
    return verdict(values, other, ("lower", "higher")) == "same within noise"


def _direction(values: list[float], baseline: list[float], words: tuple[str, str]) -> str | None:
    difference = statistics.fmean(values) - statistics.fmean(baseline)
    if difference == 0:
        return None
    return words[0] if difference < 0 else words[1]


def variation(values: list[float]) -> float | None:
    """Coefficient of variation (sample std over mean), or None below 2 values."""
    if len(values) < 2 or statistics.fmean(values) == 0:
        return None
    return statistics.stdev(values) / statistics.fmean(values)


def is_noisy(values: list[float]) -> bool:
    cv = variation(values)
    return cv is not None and cv > NOISY_CV


def median(values: list[float]) -> float | None:
    """The middle replicate (robust to one slow run, as torch.utils.benchmark reports)."""
    return statistics.median(values) if values else None


def smallest(values: list[float]) -> float | None:
    return min(values) if values else None


def largest(values: list[float]) -> float | None:
    return max(values) if values else None


def ratio_interval(
    numerator: list[float], denominator: list[float]
) -> tuple[float, float] | tuple[None, None]:
    """The 95% confidence interval of mean(numerator) / mean(denominator), two independent
    sets of replicates, by Fieller's method: the ratios r for which mean(numerator) -
    r * mean(denominator) is not significantly different from 0. Its variance is
    var_n/n_n + r^2 var_d/n_d, with Welch-Satterthwaite degrees of freedom taken at the point
    estimate. (None, None) below 2 values each, or when the denominator's mean is not
    significantly above 0 (the interval is then unbounded)."""
    top, bottom = statistics.fmean(numerator or [0]), statistics.fmean(denominator or [0])
    if len(numerator) < 2 or len(denominator) < 2 or bottom == 0:
        return None, None
    v_top = statistics.variance(numerator) / len(numerator)
    v_bottom = statistics.variance(denominator) / len(denominator)
    ratio = top / bottom
    if v_top == 0 and v_bottom == 0:
        return ratio, ratio
    t = stats.t.ppf(
        (1 + LEVEL) / 2, _welch_dof(v_top, len(numerator), ratio**2 * v_bottom, len(denominator))
    )
    # (top - r * bottom)^2 = t^2 (v_top + r^2 v_bottom), a quadratic a r^2 - 2 b r + c = 0.
    a = bottom**2 - t**2 * v_bottom
    b = top * bottom
    c = top**2 - t**2 * v_top
    if a <= 0:
        return None, None
    root = math.sqrt(max(b**2 - a * c, 0.0))
    return (b - root) / a, (b + root) / a


def _welch_dof(v1: float, n1: int, v2: float, n2: int) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of two variances of means."""
    terms = [v**2 / (n - 1) for v, n in ((v1, n1), (v2, n2)) if v > 0]
    return (v1 + v2) ** 2 / sum(terms)
