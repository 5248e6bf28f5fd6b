"""The paired comparison of two systems, on hand-made numbers."""

import math

import pytest

from speechbrain_kd.metrics.paired import paired_comparison


def t3_cdf(t):
    """Student's t CDF with 3 degrees of freedom (closed form)."""
    x = t / math.sqrt(3)
    return 0.5 + (x / (1 + x * x) + math.atan(x)) / math.pi


def test_four_utterances_by_hand():
    # differences 0.5, 0.5, 0, 1: mean 0.5, sample sd sqrt(0.5 / 3)
    result = paired_comparison([1.0, 2.0, 3.0, 4.0], [1.5, 2.5, 3.0, 5.0])
    sd = math.sqrt(0.5 / 3)
    se = sd / 2
    assert result["n"] == 4
    assert result["baseline_mean"] == 2.5 and result["candidate_mean"] == 3.0
    assert result["mean_difference"] == 0.5
    assert result["t"] == pytest.approx(0.5 / se, rel=1e-12)
    assert result["p_value"] == pytest.approx(
        2 * (1 - t3_cdf(0.5 / se)), rel=1e-9
    )
    # t(0.975, 3) = 3.182446305 (tables)
    assert result["ci_low"] == pytest.approx(0.5 - 3.182446305 * se, rel=1e-8)
    assert result["ci_high"] == pytest.approx(0.5 + 3.182446305 * se, rel=1e-8)


def test_undefined_scores_drop_their_utterance():
    result = paired_comparison(
        [1.0, math.nan, 3.0, 4.0, 2.0], [1.5, 9.0, 3.0, 5.0, math.nan]
    )
    assert result["n"] == 3
    assert result["mean_difference"] == pytest.approx(0.5)


def test_identical_differences_and_single_utterances_have_no_test():
    same = paired_comparison([1.0, 2.0], [2.0, 3.0])
    assert same["mean_difference"] == 1.0 and math.isnan(same["p_value"])
    one = paired_comparison([1.0], [2.0])
    assert one["n"] == 1 and math.isnan(one["ci_low"])


def test_mismatched_inputs_are_named():
    with pytest.raises(ValueError, match="same utterances"):
        paired_comparison([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="confidence must be in"):
        paired_comparison([1.0], [1.0], confidence=1.5)
