"""Tests of the composite measures (CSIG/CBAK/COVL, LLR, WSS, segSNR).

The real-audio test compares with MATLAB ``composite.m`` values (unclipped,
3 decimals) of 25 VoiceBank-DEMAND test pairs in ``vbd_16k_25``.
"""

import csv
import importlib
import math
import time

import numpy as np
import pesq
import pytest
import scipy.linalg
import soundfile as sf
import torch
from scipy.signal import lfilter

from speechbrain_kd.metrics.composite import (
    composite,
    critical_band_filters,
    frame_parameters,
    hanning,
    llr,
    llr_frames,
    segmental_snr,
    segsnr_frames,
    wss,
    wss_frames,
)

KEYS = ("csig", "cbak", "covl", "pesq", "llr", "wss", "ssnr")
FS = 16000

# The package re-exports the function under the same name as the module.
comp = importlib.import_module("speechbrain_kd.metrics.composite")


def speech_like(seed=0, seconds=2.0, noise=0.02):
    """An AR(2)-coloured, amplitude-modulated signal and a noisy copy."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    clean = lfilter([1.0], [1.0, -1.6, 0.8], rng.standard_normal(len(t)))
    clean *= 0.02 * (1.2 + np.sin(2 * np.pi * 2 * t))
    noisy = clean + noise * rng.standard_normal(len(t))
    return clean, noisy


# ------------------------------------------------------- MATLAB reference


@pytest.fixture(scope="module")
def vbd_pairs(shared_data):
    """(name, clean, noisy, reference row) of the 25 reference pairs."""
    folder = shared_data / "vbd_16k_25"
    with open(folder / "reference_noisy_metrics.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    pairs = []
    for row in rows:
        clean, fs_clean = sf.read(
            folder / "clean" / f"{row['name']}.wav", dtype="float64"
        )
        noisy, fs_noisy = sf.read(
            folder / "noisy" / f"{row['name']}.wav", dtype="float64"
        )
        assert fs_clean == fs_noisy == FS
        pairs.append((row["name"], clean, noisy, row))
    assert len(pairs) == 25
    return pairs


def test_matches_matlab_reference(vbd_pairs):
    """Unclipped CSIG/CBAK/COVL and segSNR match MATLAB composite.m."""
    columns = {
        "csig": "csig",
        "cbak": "cbak",
        "covl": "covl",
        "ssnr": "ssnr",
        "pesq": "pesq_wb",
    }
    ours = {key: [] for key in columns}
    matlab = {key: [] for key in columns}
    elapsed, seconds = 0.0, 0.0
    for _, clean, noisy, row in vbd_pairs:
        start = time.perf_counter()
        scores = composite(clean, noisy, sample_rate=FS, clip=False)
        elapsed += time.perf_counter() - start
        seconds += len(clean) / FS
        for key, column in columns.items():
            ours[key].append(scores[key])
            matlab[key].append(float(row[column]))
    print(f"\ncomposite: {elapsed / seconds:.4f} s per second of audio")
    worst = {}
    for key in columns:
        diff = np.array(ours[key]) - np.array(matlab[key])
        index = int(np.argmax(np.abs(diff)))
        worst[key] = (np.abs(diff).max(), abs(diff.mean()))
        print(
            f"{key:5s}: worst |diff| {worst[key][0]:.5f} "
            f"({vbd_pairs[index][0]}), |mean diff| {worst[key][1]:.5f}"
        )
    for key in ("csig", "cbak", "covl"):
        assert worst[key][0] <= 0.005, key
        assert worst[key][1] <= 0.002, key
    assert worst["ssnr"][0] <= 0.02
    # The reference PESQ column is the pesq package's wide-band score.
    assert worst["pesq"][0] <= 1e-5


def test_int16_and_scaled_input_match_float(vbd_pairs):
    """int16 dtype and 32768-scaled floats give the float-input scores."""
    name, clean, noisy, _ = vbd_pairs[0]
    reference = composite(clean, noisy, clip=False)
    as_int16 = composite(
        np.round(clean * 32768).astype(np.int16),
        np.round(noisy * 32768).astype(np.int16),
        clip=False,
    )
    scaled = composite(32768.0 * clean, 32768.0 * noisy, clip=False)
    worst = 0.0
    for key in KEYS:
        assert as_int16[key] == pytest.approx(reference[key], abs=1e-9)
        assert scaled[key] == pytest.approx(reference[key], abs=1e-9)
        worst = max(worst, abs(scaled[key] - reference[key]))
    print(f"\n{name}: worst |diff| float vs 32768*float {worst:.2e}")


# ------------------------------------------------------- inputs and API


def test_returns_all_keys_as_floats():
    clean, noisy = speech_like()
    scores = composite(clean, noisy)
    assert tuple(scores) == KEYS
    assert all(isinstance(value, float) for value in scores.values())
    assert all(math.isfinite(value) for value in scores.values())


def test_numpy_inputs_not_modified():
    clean, noisy = speech_like()
    clean_copy, noisy_copy = clean.copy(), noisy.copy()
    composite(clean, noisy)
    for function in (llr, wss, segmental_snr):
        function(clean, noisy, FS)
    np.testing.assert_array_equal(clean, clean_copy)
    np.testing.assert_array_equal(noisy, noisy_copy)


def test_torch_inputs_not_modified_and_match_numpy():
    clean, noisy = speech_like()
    clean_t, noisy_t = torch.from_numpy(clean), torch.from_numpy(noisy)
    clean_copy, noisy_copy = clean_t.clone(), noisy_t.clone()
    from_torch = composite(clean_t, noisy_t)
    assert torch.equal(clean_t, clean_copy)
    assert torch.equal(noisy_t, noisy_copy)
    assert from_torch == composite(clean, noisy)


def test_unequal_lengths_are_trimmed_to_shorter():
    clean, noisy = speech_like()
    padded = np.concatenate([noisy, np.ones(1000)])
    assert composite(clean, padded) == composite(clean, noisy)


def test_clipping_to_one_five():
    clean, noisy = speech_like()
    high_raw = composite(clean, noisy, clip=False, pesq_score=4.5)
    high = composite(clean, noisy, clip=True, pesq_score=4.5)
    assert high_raw["csig"] > 5.0
    assert high["csig"] == 5.0
    low_raw = composite(clean, noisy, clip=False, pesq_score=-5.0)
    low = composite(clean, noisy, clip=True, pesq_score=-5.0)
    for key in ("csig", "cbak", "covl"):
        assert low_raw[key] < 1.0
        assert low[key] == 1.0
    for scores in (high, low, composite(clean, noisy)):
        for key in ("csig", "cbak", "covl"):
            assert 1.0 <= scores[key] <= 5.0
    # Components are unaffected by clipping.
    for key in ("pesq", "llr", "wss", "ssnr"):
        assert high[key] == high_raw[key]


def test_regression_formulas():
    clean, noisy = speech_like()
    s = composite(clean, noisy, clip=False, pesq_score=2.5)
    assert s["pesq"] == 2.5
    assert s["csig"] == pytest.approx(
        3.093 - 1.029 * s["llr"] + 0.603 * 2.5 - 0.009 * s["wss"]
    )
    assert s["cbak"] == pytest.approx(
        1.634 + 0.478 * 2.5 - 0.007 * s["wss"] + 0.063 * s["ssnr"]
    )
    assert s["covl"] == pytest.approx(
        1.594 + 0.805 * 2.5 - 0.512 * s["llr"] - 0.007 * s["wss"]
    )
    assert s["llr"] == llr(clean, noisy)
    assert s["wss"] == wss(clean, noisy)
    assert s["ssnr"] == segmental_snr(clean, noisy)


def test_pesq_computed_wideband_at_16k():
    clean, noisy = speech_like()
    expected = pesq.pesq(FS, clean, noisy, "wb")
    assert composite(clean, noisy)["pesq"] == pytest.approx(expected)


@pytest.mark.parametrize("seconds", [1.0, 0.1])
def test_pesq_failure_on_silence_gives_nan(seconds):
    silence = np.zeros(int(seconds * FS))
    scores = composite(silence, silence)
    for key in ("pesq", "csig", "cbak", "covl"):
        assert math.isnan(scores[key]), key
    # The frame-based measures are still defined (identical signals).
    assert scores["llr"] == 0.0
    assert scores["wss"] == 0.0
    assert math.isfinite(scores["ssnr"])


def test_silent_enhanced_gives_nan_pesq():
    clean, _ = speech_like()
    scores = composite(clean, np.zeros_like(clean))
    assert math.isnan(scores["pesq"]) and math.isnan(scores["covl"])
    assert math.isfinite(scores["llr"]) and math.isfinite(scores["wss"])


def test_too_short_for_a_frame_gives_nan():
    short = np.zeros(300)
    scores = composite(short, short, pesq_score=3.0)
    for key in ("llr", "wss", "ssnr", "csig", "cbak", "covl"):
        assert math.isnan(scores[key]), key
    assert math.isnan(composite(np.zeros(0), np.zeros(0))["pesq"])


def test_unsupported_rate_needs_pesq_score():
    clean, noisy = speech_like()
    with pytest.raises(ValueError, match="8000 or 16000"):
        composite(clean, noisy, sample_rate=22050)
    scores = composite(clean, noisy, sample_rate=22050, pesq_score=2.0)
    assert all(math.isfinite(value) for value in scores.values())


def test_narrowband_8k():
    clean, noisy = speech_like()
    clean8, noisy8 = clean[::2], noisy[::2]
    scores = composite(clean8, noisy8, sample_rate=8000)
    assert scores["pesq"] == pytest.approx(
        pesq.pesq(8000, clean8, noisy8, "nb")
    )
    assert all(math.isfinite(value) for value in scores.values())
    assert len(llr_frames(clean8, noisy8, 8000)) == (len(clean8) - 240) // 60


# ------------------------------------------------- conventions and parts


def test_hanning_is_matlab_hanning():
    window = hanning(480)
    n = np.arange(1, 481)
    np.testing.assert_allclose(
        window, 0.5 * (1 - np.cos(2 * np.pi * n / 481)), rtol=0, atol=1e-15
    )
    assert window.min() > 0  # no zero end points, unlike numpy.hanning
    np.testing.assert_allclose(window, window[::-1], atol=1e-15)
    np.testing.assert_allclose(hanning(3), [0.5, 1.0, 0.5])
    np.testing.assert_allclose(hanning(5)[1:-1], np.hanning(7)[2:-2])


def test_frame_parameters_and_frame_count():
    assert frame_parameters(16000) == (480, 120)
    assert frame_parameters(8000) == (240, 60)
    assert frame_parameters(22050) == (662, 165)  # round(661.5) = 662
    for length in (480, 599, 600, 1000, 48000, 48119):
        # MATLAB: for frame_count = 1:(len/skiprate - winlength/skiprate)
        expected = max(int(np.floor(length / 120 - 480 / 120)), 0)
        x = np.random.default_rng(length).standard_normal(length)
        assert len(llr_frames(x, x)) == expected
        assert len(wss_frames(x, x)) == expected
        assert len(segsnr_frames(x, x)) == expected


def test_frames_start_at_multiples_of_the_hop():
    x = np.random.default_rng(0).standard_normal(2000)
    y = x.copy()
    y[1700:] += 1.0  # touches only frames ending after sample 1700
    values = segsnr_frames(x, y)
    # frame k spans [120 k, 120 k + 480): frames 0..10 end by 1800
    last_clean = (1700 - 480) // 120  # frame 10 ends at 1680
    assert np.all(values[: last_clean + 1] == 35.0)
    assert np.all(values[last_clean + 1 :] < 35.0)


def test_critical_band_filters():
    filters = critical_band_filters(16000)
    assert filters.shape == (25, 512)
    assert int(filters[0].argmax()) == 3  # floor(50 / 8000 * 512)
    assert filters[0, 3] == 1.0  # exp(0): band 0 sets the norm
    centre_bins = np.floor(comp.CENTER_FREQUENCIES / 8000 * 512).astype(int)
    np.testing.assert_array_equal(filters.argmax(axis=1), centre_bins)
    np.testing.assert_allclose(
        filters.max(axis=1), 70.0 / comp.BANDWIDTHS, rtol=1e-12
    )
    min_factor = math.exp(-30 / (2 * 2.303))
    nonzero = filters[filters > 0]
    assert nonzero.min() > min_factor
    # Each band is a contiguous symmetric run around its centre bin.
    for band, centre in enumerate(centre_bins):
        support = np.flatnonzero(filters[band])
        assert np.all(np.diff(support) == 1)
        assert centre - support[0] == support[-1] - centre
    assert critical_band_filters(8000).shape == (25, 256)


def test_levinson_solves_normal_equations():
    rng = np.random.default_rng(3)
    frames = rng.standard_normal((20, 480)) * hanning(480)
    frames = lfilter([1.0], [1.0, -0.9, 0.4], frames, axis=1)
    r = comp._autocorrelation(frames, 16)
    for k in (0, 1, 16):
        np.testing.assert_allclose(
            r[:, k], np.sum(frames[:, : 480 - k] * frames[:, k:], axis=1)
        )
    polys = comp._lpc_polynomials(r)
    assert np.all(polys[:, 0] == 1.0)
    for frame, poly in zip(r, polys, strict=False):
        expected = scipy.linalg.solve_toeplitz(frame[:16], frame[1:])
        np.testing.assert_allclose(-poly[1:], expected, rtol=1e-8, atol=1e-10)


def test_nearest_peak_search_matches_literal_matlab_loop():
    rng = np.random.default_rng(1)
    energy = np.round(rng.standard_normal((500, 25)), 1)  # ties included
    energy[:20] = 0.0
    slope = np.diff(energy, axis=1)
    peaks = comp._nearest_peaks(energy, slope)
    for frame in range(len(energy)):
        # 1-based copies, as in composite.m
        s = np.concatenate([[np.nan], slope[frame]])
        e = np.concatenate([[np.nan], energy[frame]])
        for i in range(1, 25):
            n = i
            if s[i] > 0:
                while n < 25 and s[n] > 0:
                    n += 1
                expected = e[n - 1]
            else:
                while n > 0 and s[n] <= 0:
                    n -= 1
                expected = e[n + 1]
            assert peaks[frame, i - 1] == expected


def test_identical_and_scaled_signals():
    clean, _ = speech_like()
    assert llr(clean, clean) == 0.0
    assert wss(clean, clean) == 0.0
    assert segmental_snr(clean, clean) == 35.0
    assert np.all(segsnr_frames(clean, clean) == 35.0)
    # LPC and spectral slopes ignore the gain.
    assert abs(llr(clean, 0.5 * clean)) < 1e-9
    assert abs(wss(clean, 0.5 * clean)) < 1e-9


@pytest.mark.parametrize(
    "gain, expected",
    [
        (-1.0, 10 * math.log10(0.25)),  # noise = 2 clean
        (0.5, 10 * math.log10(4.0)),  # noise = clean / 2
        (2.0, 0.0),  # noise = clean
        (0.0, 0.0),  # noise = clean
        (1.0 + 10 ** (-30 / 20), 30.0),  # noise = clean * 10^(-1.5)
    ],
)
def test_segmental_snr_of_scaled_copies(gain, expected):
    clean, _ = speech_like()
    values = segsnr_frames(clean, gain * clean)
    np.testing.assert_allclose(values, expected, atol=1e-9)
    assert segmental_snr(clean, gain * clean) == pytest.approx(
        expected, abs=1e-9
    )


def test_segmental_snr_clips_at_minus_ten():
    clean, _ = speech_like()
    assert segmental_snr(clean, -20.0 * clean) == -10.0


def test_segmental_snr_has_no_dc_removal_or_rescaling():
    clean, _ = speech_like()
    offset = clean + 0.01  # a DC offset is noise, not removed
    per_frame = segsnr_frames(clean, offset)
    frames = comp._windowed_frames(clean, FS)
    window = hanning(480)
    expected = 10 * np.log10(
        np.sum(frames**2, axis=1) / np.sum((0.01 * window) ** 2)
    )
    np.testing.assert_allclose(per_frame, np.clip(expected, -10, 35))


def test_llr_and_wss_are_non_negative_and_trimmed():
    clean, noisy = speech_like(noise=0.05)
    per_frame = llr_frames(clean, noisy)
    assert np.all(per_frame >= -1e-12)
    count = int(np.floor(0.95 * len(per_frame) + 0.5))
    assert llr(clean, noisy) == pytest.approx(np.sort(per_frame)[:count].mean())
    per_frame = wss_frames(clean, noisy)
    assert np.all(per_frame >= 0)
    assert wss(clean, noisy) == pytest.approx(np.sort(per_frame)[:count].mean())


def test_more_noise_scores_worse():
    clean, mild = speech_like(noise=0.005)
    _, strong = speech_like(noise=0.05)
    good = composite(clean, mild, clip=False)
    bad = composite(clean, strong, clip=False)
    for key in ("csig", "cbak", "covl", "pesq", "ssnr"):
        assert good[key] > bad[key], key
    for key in ("llr", "wss"):
        assert good[key] < bad[key], key


def test_speed_three_seconds():
    clean, noisy = speech_like(seconds=3.0)
    composite(clean, noisy)
    start = time.perf_counter()
    for _ in range(5):
        composite(clean, noisy)
    per_file = (time.perf_counter() - start) / 5
    start = time.perf_counter()
    for _ in range(5):
        composite(clean, noisy, pesq_score=2.0)
    without_pesq = (time.perf_counter() - start) / 5
    print(
        f"\n3-s file: {per_file:.3f} s with PESQ, {without_pesq:.3f} s without"
    )
    assert without_pesq < 0.5  # generous: the target is < 0.15 s
