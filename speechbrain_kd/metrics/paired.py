"""Paired comparison of two systems on the same utterances."""

import math

import numpy as np
from scipy import stats


def paired_comparison(baseline, candidate, confidence=0.95):
    """Mean per-utterance difference ``candidate - baseline``, its
    confidence interval and a two-tailed paired t-test.

    Utterances where either score is NaN (an undefined metric) are left
    out.

    Arguments
    ---------
    baseline : sequence of float
        Scores of the baseline, one per utterance.
    candidate : sequence of float
        Scores of the candidate, same utterances and order.
    confidence : float
        Level of the interval (0.95: 95 %).

    Returns
    -------
    dict
        ``n``, ``baseline_mean``, ``candidate_mean``, ``mean_difference``,
        ``ci_low``, ``ci_high``, ``t`` and ``p_value`` (NaN where fewer
        than two utterances are left, or every difference is the same).

    Example
    -------
    >>> result = paired_comparison([1.0, 2.0, 3.0, 4.0], [1.5, 2.5, 3.0, 5.0])
    >>> result["n"], result["mean_difference"], round(result["t"], 4)
    (4, 0.5, 2.4495)
    """
    baseline = np.asarray(baseline, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if baseline.shape != candidate.shape or baseline.ndim != 1:
        raise ValueError(
            f"paired scores need the same utterances: got {baseline.shape} "
            f"and {candidate.shape}"
        )
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    kept = np.isfinite(baseline) & np.isfinite(candidate)
    baseline, candidate = baseline[kept], candidate[kept]
    difference = candidate - baseline
    n = int(len(difference))
    result = {
        "n": n,
        "baseline_mean": float(baseline.mean()) if n else math.nan,
        "candidate_mean": float(candidate.mean()) if n else math.nan,
        "mean_difference": float(difference.mean()) if n else math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "t": math.nan,
        "p_value": math.nan,
    }
    if n < 2:
        return result
    spread = float(difference.std(ddof=1))
    if spread == 0.0:
        return result
    error = spread / math.sqrt(n)
    t = result["mean_difference"] / error
    critical = float(stats.t.ppf((1 + confidence) / 2, n - 1))
    result.update(
        ci_low=result["mean_difference"] - critical * error,
        ci_high=result["mean_difference"] + critical * error,
        t=t,
        p_value=float(2 * stats.t.sf(abs(t), n - 1)),
    )
    return result
