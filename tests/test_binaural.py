"""Spatial injection's mixtures (paper 002, Eqs. 6-8) on hand-built
examples: known impulse responses, known level and SNR."""

import math

import numpy as np
import pytest

from speechbrain_kd.data.binaural import (
    binaural_mixture,
    scale_noise,
    scale_speech,
)


def test_hand_built_example():
    speech = np.array([1.0, -1.0, 1.0, -1.0])  # sigma_x = 1
    noise = np.array([1.0, 1.0, 1.0, 1.0, 5.0])  # cut to 4 samples
    speech_irs = np.array([[1.0, 0.0], [0.0, 0.5]])  # L: identity, R: delay
    noise_irs = np.array([[0.5, 0.0], [1.0, 0.0]])
    out = binaural_mixture(
        speech, noise, speech_irs, noise_irs, level_db=-20.0, snr_db=0.0
    )
    # x_hat = 0.1 speech (RMS -20 dB); v_hat = 0.1 (0 dB below x_hat)
    x = 0.1 * speech
    v = 0.1 * np.ones(4)
    left = x + 0.5 * v
    right = 0.5 * np.r_[0.0, x[:-1]] + v
    np.testing.assert_allclose(out["binaural"][0], left, atol=1e-7)
    np.testing.assert_allclose(out["binaural"][1], right, atol=1e-7)
    np.testing.assert_allclose(out["mono"], x + v, atol=1e-7)  # Eq. 8
    np.testing.assert_allclose(out["clean"], x, atol=1e-7)
    assert out["binaural"].dtype == np.float32


@pytest.mark.parametrize("level, snr", [(-35.0, -5.0), (-15.0, 10.0)])
def test_level_and_snr_are_met(level, snr):
    rng = np.random.default_rng(0)
    speech = rng.standard_normal(16000)
    noise = 3.0 * rng.standard_normal(20000)
    clean = scale_speech(speech, level)
    assert 20 * math.log10(np.sqrt(np.mean(clean**2))) == pytest.approx(level)
    scaled = scale_noise(noise, clean, snr)
    measured = 10 * math.log10(np.mean(clean**2) / np.mean(scaled**2))
    assert measured == pytest.approx(snr, abs=1e-9)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: scale_speech(np.zeros(4), -20.0), "speech is silent"),
        (
            lambda: scale_noise(np.zeros(4), np.ones(4), 0.0),
            "noise is silent",
        ),
        (
            lambda: scale_noise(np.ones(3), np.ones(4), 0.0),
            r"noise \(3 samples\) is shorter than the speech \(4\)",
        ),
        (
            lambda: binaural_mixture(
                np.ones(4), np.ones(4), np.ones((1, 2)), np.ones((2, 2)), -20, 0
            ),
            r"speech_irs must hold one impulse response per ear, shape "
            r"\[2, taps\]; got \(1, 2\)",
        ),
    ],
)
def test_bad_inputs_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
