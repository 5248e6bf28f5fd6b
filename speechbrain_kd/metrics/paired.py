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


def paired_table(report):
    """The per-metric lines of a paired comparison, as
    ``speechbrain-kd compare`` and ``speechbrain-kd seeds compare`` print
    them.

    Arguments
    ---------
    report : dict
        Metric -> :func:`paired_comparison` result.

    Returns
    -------
    str
        A header line and one line per metric.

    Example
    -------
    >>> row = paired_comparison([1.0, 2.0, 3.0], [1.5, 2.0, 3.5])
    >>> paired_table({"pesq": row}).splitlines()[1].split()[:4]
    ['pesq', '3', '2.0000', '2.3333']
    """
    lines = [
        f"{'metric':<8} {'n':>5} {'baseline':>9} {'candidate':>9} "
        f"{'difference':>10} {'interval':>21} {'p':>8}"
    ]
    for metric, row in report.items():
        interval = f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]"
        lines.append(
            f"{metric:<8} {row['n']:>5} {row['baseline_mean']:>9.4f} "
            f"{row['candidate_mean']:>9.4f} {row['mean_difference']:>+10.4f} "
            f"{interval:>21} {row['p_value']:>8.4f}"
        )
    return "\n".join(lines)
