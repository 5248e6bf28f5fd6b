"""Tests of the intrusive metrics, pair/batch evaluation and MetricStats.

Real-audio references: ``pesq_ref`` (python-pesq's own test files, with
Taal's MATLAB STOI/ESTOI values) and ``vbd_16k_25`` (25 VoiceBank-DEMAND
test pairs with reference PESQ and STOI of noisy vs clean).
"""

import csv
import math
import os
import pickle
import time

import numpy as np
import pesq as pesq_lib
import pytest
import soundfile as sf
import torch
import torchaudio.functional

from speechbrain_kd.metrics import (
    ALL_METRICS,
    KNOWN_METRICS,
    EnhancementMetricStats,
    estoi,
    evaluate_pair,
    evaluate_pairs,
    pesq,
    si_sdr,
    snr,
    stoi,
    summarize_scores,
)
from speechbrain_kd.metrics.evaluation import is_failure
from speechbrain_kd.metrics.pool import SafePool

FS = 16000
INTRUSIVE = {
    "pesq": lambda c, e: pesq(c, e, FS),
    "stoi": lambda c, e: stoi(c, e, FS),
    "estoi": lambda c, e: estoi(c, e, FS),
    "si_sdr": si_sdr,
    "snr": snr,
}


# ------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def pesq_ref(shared_data):
    folder = shared_data / "pesq_ref"
    clean, rate = sf.read(folder / "speech.wav")
    degraded, _ = sf.read(folder / "speech_bab_0dB.wav")
    assert rate == FS
    return clean, degraded


@pytest.fixture(scope="module")
def vbd(shared_data):
    folder = shared_data / "vbd_16k_25"
    with open(folder / "reference_noisy_metrics.tsv") as stream:
        reference = list(csv.DictReader(stream, delimiter="\t"))
    pairs = {}
    for row in reference:
        clean, _ = sf.read(folder / "clean" / f"{row['name']}.wav")
        noisy, _ = sf.read(folder / "noisy" / f"{row['name']}.wav")
        pairs[row["name"]] = (clean, noisy)
    return reference, pairs


@pytest.fixture(scope="module")
def short_pair(shared_data):
    """A 1.5-s excerpt of a real pair (fast to score)."""
    folder = shared_data / "vbd_16k_25"
    clean, _ = sf.read(folder / "clean" / "p232_003.wav")
    noisy, _ = sf.read(folder / "noisy" / "p232_003.wav")
    return clean[8000:32000], noisy[8000:32000]


def _sleepy_metric(clean, enhanced, sample_rate, metrics, clip):
    """Test-only pair function: hangs on 1000-sample pairs, crashes on 2000."""
    if len(clean) == 1000:
        time.sleep(60)
    if len(clean) == 2000:
        os._exit(3)
    if len(clean) == 3000:
        raise RuntimeError("boom")
    return dict.fromkeys(metrics, 1.0)


# ------------------------------------------------------- reference values


def test_pesq_reference_values(pesq_ref):
    clean, degraded = pesq_ref
    assert pesq(clean, degraded, FS) == 1.0832337141036987
    assert pesq(clean, degraded, FS, mode="wb") == 1.0832337141036987
    assert pesq(clean, degraded, FS, mode="nb") == 1.6072081327438354


def test_pesq_narrowband_at_8k(pesq_ref):
    clean, degraded = (
        torchaudio.functional.resample(torch.from_numpy(x), FS, 8000).numpy()
        for x in pesq_ref
    )
    expected = pesq_lib.pesq(8000, clean, degraded, "nb")
    assert pesq(clean, degraded, 8000) == expected
    assert pesq(clean, degraded, 8000, mode="nb") == expected
    with pytest.raises(ValueError, match="16000"):
        pesq(clean, degraded, 8000, mode="wb")


@pytest.mark.parametrize("rate", [22050, 44100, 48000])
def test_pesq_other_rates_ask_to_resample(rate):
    with pytest.raises(ValueError, match="resample to 8 or 16 kHz"):
        pesq(np.ones(rate), np.ones(rate), rate)


def test_pesq_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        pesq(np.ones(FS), np.ones(FS), FS, mode="swb")


def test_stoi_estoi_reference_values(pesq_ref):
    clean, degraded = pesq_ref
    assert stoi(clean, degraded, FS) == pytest.approx(0.673918, abs=1e-5)
    assert estoi(clean, degraded, FS) == pytest.approx(0.390450, abs=1e-5)


def test_vbd_reference_pesq_and_stoi(vbd):
    reference, pairs = vbd
    worst = {"pesq": (0.0, None), "stoi": (0.0, None)}
    for row in reference:
        clean, noisy = pairs[row["name"]]
        for metric, column, tolerance in [
            ("pesq", "pesq_wb", 1e-5),
            ("stoi", "stoi", 1e-4),
        ]:
            value = INTRUSIVE[metric](clean, noisy)
            difference = abs(value - float(row[column]))
            if difference >= worst[metric][0]:
                worst[metric] = (difference, row["name"])
            assert difference < tolerance, (row["name"], metric, value)
    for metric, (difference, name) in worst.items():
        print(f"worst |{metric} - reference| = {difference:.2e} ({name})")


# ------------------------------------------------------- input handling


@pytest.mark.parametrize("metric", sorted(INTRUSIVE))
def test_inputs_not_modified(metric, short_pair):
    clean, noisy = short_pair
    inputs = [
        (clean.copy(), noisy.copy()),
        (clean.astype(np.float32), noisy.astype(np.float32)),
        (torch.from_numpy(clean.copy()), torch.from_numpy(noisy.copy())),
        (
            torch.from_numpy(clean.astype(np.float32)),
            torch.from_numpy(noisy.astype(np.float32)),
        ),
    ]
    for a, b in inputs:
        a_before, b_before = (
            a.clone() if torch.is_tensor(a) else a.copy(),
            (b.clone() if torch.is_tensor(b) else b.copy()),
        )
        INTRUSIVE[metric](a, b)
        if torch.is_tensor(a):
            assert torch.equal(a, a_before) and torch.equal(b, b_before)
        else:
            assert np.array_equal(a, a_before) and np.array_equal(b, b_before)


def test_evaluate_pair_does_not_modify_inputs(short_pair):
    clean, noisy = short_pair
    c, n = torch.from_numpy(clean.copy()), noisy.copy()
    evaluate_pair(c, n, metrics=KNOWN_METRICS)
    assert torch.equal(c, torch.from_numpy(clean))
    assert np.array_equal(n, noisy)


def test_int16_and_scaled_input_give_identical_scores(short_pair):
    clean, noisy = short_pair
    # The files are 16-bit: x * 32768 is integral and fits int16.
    clean16 = np.round(clean * 32768).astype(np.int16)
    noisy16 = np.round(noisy * 32768).astype(np.int16)
    assert np.array_equal(clean16 / 32768, clean)
    reference = evaluate_pair(clean, noisy, metrics=KNOWN_METRICS)
    from_int16 = evaluate_pair(clean16, noisy16, metrics=KNOWN_METRICS)
    from_scaled = evaluate_pair(
        clean * 32768.0, noisy * 32768.0, metrics=KNOWN_METRICS
    )
    from_torch16 = evaluate_pair(
        torch.from_numpy(clean16), torch.from_numpy(noisy16), metrics="pesq"
    )
    # equal up to the last bit: numpy's SIMD sums inside pystoi round
    # differently with the arrays' memory alignment
    assert from_int16.keys() == reference.keys()
    for name, value in reference.items():
        assert from_int16[name] == pytest.approx(value, rel=1e-12, abs=1e-12)
    assert from_torch16["pesq"] == reference["pesq"]
    for name in KNOWN_METRICS:
        assert not math.isnan(reference[name]), name
        # The composite adds an absolute eps (2.2e-16) to every sample.
        assert from_scaled[name] == pytest.approx(
            reference[name], rel=1e-9, abs=1e-9
        ), name
    for name in INTRUSIVE:
        # power-of-two scaling is exact; numpy's SIMD sums may still round
        # differently with the arrays' memory alignment (seen once for ESTOI)
        assert from_scaled[name] == pytest.approx(
            reference[name], rel=1e-12, abs=1e-12
        ), name


def test_unequal_lengths_are_trimmed(short_pair):
    clean, noisy = short_pair
    for metric, function in INTRUSIVE.items():
        # up to the last bit (pystoi's sums depend on memory alignment)
        assert function(clean, noisy[:-800]) == pytest.approx(
            function(clean[:-800], noisy[:-800]), rel=1e-12, abs=1e-12
        ), metric


# --------------------------------------------------- SI-SDR and SNR exact


def test_si_sdr_of_scaled_copy_is_very_large():
    x = np.random.default_rng(1).standard_normal(FS)
    for gain in (1.0, 0.5, 0.3, -2.0, 1000.0):
        assert si_sdr(x, gain * x) > 100


def test_si_sdr_at_known_snr():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(FS)
    x -= x.mean()
    noise = rng.standard_normal(FS)
    noise -= noise.mean()
    noise -= np.dot(noise, x) / np.dot(x, x) * x  # orthogonal to x
    for target_db in (-5.0, 0.0, 10.0, 25.0):
        scaled = noise * np.sqrt(
            np.dot(x, x) / np.dot(noise, noise) / 10 ** (target_db / 10)
        )
        # An offset changes nothing: both signals are made zero-mean.
        value = si_sdr(x + 0.3, x + scaled - 0.1)
        assert value == pytest.approx(target_db, abs=1e-9)


def test_si_sdr_hand_computed():
    s = np.array([1.0, 2.0, -1.0, -2.0])  # zero mean
    e = np.array([1.0, 1.0, -1.0, -1.0])  # zero mean
    alpha = np.dot(e, s) / np.dot(s, s)  # 6 / 10
    target = alpha * s
    expected = 10 * np.log10(
        np.dot(target, target) / np.dot(e - target, e - target)
    )
    assert si_sdr(s, e) == pytest.approx(expected, abs=1e-9)
    # target 0.6 s (energy 3.6), residual [0.4, -0.2, -0.4, 0.2] (0.4).
    assert expected == pytest.approx(10 * np.log10(9.0), abs=1e-12)


def test_snr_hand_computed():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(FS)
    noise = rng.standard_normal(FS)
    expected = 10 * np.log10(np.sum(x**2) / np.sum(noise**2))
    assert snr(x, x + noise) == pytest.approx(expected, abs=1e-9)
    # No mean removal: a DC offset is noise.
    assert snr(np.array([1.0, -1.0]), np.array([1.1, -0.9])) == pytest.approx(
        10 * np.log10(2 / 0.02), abs=1e-9
    )


def test_silent_reference_is_nan_for_every_metric():
    x = np.random.default_rng(4).standard_normal(FS)
    for metric, function in INTRUSIVE.items():
        assert math.isnan(function(np.zeros(FS), x)), metric


def test_non_finite_input_is_nan():
    x = np.random.default_rng(5).standard_normal(FS)
    y = x.copy()
    y[100] = np.nan
    for metric, function in INTRUSIVE.items():
        assert math.isnan(function(x, y)), metric


def test_silent_or_short_enhanced_pesq_is_nan(short_pair):
    clean, noisy = short_pair
    assert math.isnan(pesq(clean, np.zeros_like(clean), FS))
    assert math.isnan(pesq(clean[:1600], noisy[:1600], FS))  # 0.1 s
    assert math.isnan(stoi(clean[:1600], noisy[:1600], FS))  # < 30 frames


# ------------------------------------------------------- pair evaluation


def test_evaluate_pair_keys_and_consistency(short_pair):
    clean, noisy = short_pair
    scores = evaluate_pair(clean, noisy)
    assert tuple(scores) == ALL_METRICS
    assert scores["pesq"] == pesq(clean, noisy, FS)
    assert scores["stoi"] == stoi(clean, noisy, FS)
    assert scores["si_sdr"] == si_sdr(clean, noisy)
    only = evaluate_pair(clean, noisy, metrics=["ssnr", "llr"])
    assert set(only) == {"ssnr", "llr"}
    assert only["ssnr"] == scores["ssnr"]


def test_evaluate_pair_computes_pesq_once(short_pair, monkeypatch):
    import speechbrain_kd.metrics.composite  # noqa: F401
    import speechbrain_kd.metrics.evaluation as evaluation

    calls = []
    original = pesq_lib.pesq

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(pesq_lib, "pesq", counting)
    scores = evaluation.evaluate_pair(*short_pair)
    assert len(calls) == 1
    assert not is_failure(scores)


def test_evaluate_pair_rejects_unknown_metric_and_rate():
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate_pair(np.ones(10), np.ones(10), metrics=["mos"])
    with pytest.raises(ValueError, match="8000 Hz or at least 16000 Hz"):
        evaluate_pair(np.ones(10), np.ones(10), 11025, metrics=["csig"])
    # STOI alone works at any rate (and is NaN on too-short input).
    scores = evaluate_pair(np.ones(10), np.ones(10), 44100, "stoi")
    assert math.isnan(scores["stoi"])
    x = np.random.default_rng(6).standard_normal(44100)
    assert evaluate_pair(x, x, 44100, "stoi")["stoi"] == pytest.approx(1.0)


@pytest.mark.parametrize("rate", [8000, 16000, 44100])
def test_stoi_on_short_input_is_nan_not_an_error(rate):
    rng = np.random.default_rng(7)
    for length in (1, 100, 400, 1000, int(0.39 * rate)):
        x = rng.standard_normal(length)
        assert math.isnan(stoi(x, x, rate)), length
        assert math.isnan(estoi(x, x, rate)), length


def test_summarize_scores_skips_failed_rows():
    rows = [
        {"pesq": 2.0, "stoi": 0.8},
        {"pesq": math.nan, "stoi": 0.5},
        {"pesq": 4.0, "stoi": 0.9},
    ]
    summary = summarize_scores(rows)
    assert summary["n_files"] == 3 and summary["n_failed"] == 1
    assert summary["pesq"] == 3.0 and summary["pesq_std"] == 1.0
    assert summary["stoi"] == pytest.approx(0.85)
    assert summarize_scores(rows, ["stoi"])["n_failed"] == 0
    assert math.isnan(summarize_scores([rows[1]])["pesq"])


# ------------------------------------------------- batch evaluation + pool


def _bad_pairs(short_pair):
    clean, noisy = short_pair
    return [
        (clean, noisy),
        (np.zeros(FS), np.zeros(FS)),  # silent file
        (clean[:1600], noisy[:1600]),  # 0.1-s file
        (clean, np.zeros_like(clean)),  # silent enhanced
    ]


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_silent_and_short_files_fail_fast(short_pair, n_jobs):
    start = time.monotonic()
    rows = evaluate_pairs(_bad_pairs(short_pair), n_jobs=n_jobs, timeout=20)
    assert time.monotonic() - start < 30
    assert [is_failure(row) for row in rows] == [False, True, True, True]
    assert all(math.isnan(row["pesq"]) for row in rows[1:])
    assert rows[0] == pytest.approx(evaluate_pair(*short_pair), rel=1e-12)
    assert summarize_scores(rows)["n_failed"] == 3


def test_hanging_crashing_and_raising_tasks_fail_without_hanging():
    pairs = [(np.ones(n), np.ones(n)) for n in (500, 1000, 2000, 3000, 4000)]
    start = time.monotonic()
    rows = evaluate_pairs(
        pairs,
        metrics=["snr", "pesq"],
        n_jobs=2,
        timeout=1.0,
        function=_sleepy_metric,
        progress=False,
    )
    assert time.monotonic() - start < 30
    assert [is_failure(row) for row in rows] == [False, True, True, True, False]
    assert rows[0] == {"snr": 1.0, "pesq": 1.0}
    assert summarize_scores(rows)["n_failed"] == 3


def test_safe_pool_reports_reasons_and_is_reusable():
    pairs = [(np.ones(n), np.ones(n), FS, ("snr",), True) for n in (1000, 10)]
    with SafePool(_sleepy_metric, n_jobs=2, timeout=1.0) as pool:
        first = pool.map(pairs)
        second = pool.map(pairs[1:] * 3)
    assert not first[0].ok and "timed out after 1 s" in first[0].error
    assert first[1].ok and first[1].value == {"snr": 1.0}
    assert [r.ok for r in second] == [True] * 3
    with pytest.raises(TypeError):
        pickle.dumps(pool)


def test_inline_pool_turns_exceptions_into_failures():
    rows = evaluate_pairs(
        [(np.ones(3000), np.ones(3000)), (np.ones(4), np.ones(4))],
        metrics="snr",
        function=_sleepy_metric,
        progress=False,
    )
    assert math.isnan(rows[0]["snr"]) and rows[1]["snr"] == 1.0


# ------------------------------------------------- EnhancementMetricStats


def _batch(signals, total):
    """Zero-pads 1-D signals into a (batch, total) tensor + rel. lengths."""
    batch = torch.zeros(len(signals), total)
    for row, signal in enumerate(signals):
        batch[row, : len(signal)] = torch.as_tensor(signal)
    lengths = torch.tensor([len(s) / total for s in signals])
    return batch, lengths


def test_metric_stats_relative_lengths(short_pair):
    clean, noisy = (x.astype(np.float32) for x in short_pair)
    lengths = [len(clean), 20000, 16000]
    cleans = [clean[:n] for n in lengths]
    noisies = [noisy[:n] for n in lengths]
    target, rel = _batch(cleans, len(clean))
    predict, _ = _batch(noisies, len(clean))
    stats = EnhancementMetricStats(["pesq", "stoi", "si_sdr"])
    stats.append(["a", "b", "c"], predict=predict, target=target, lengths=rel)
    expected = [
        evaluate_pair(c, n, metrics=["pesq", "stoi", "si_sdr"])
        for c, n in zip(cleans, noisies, strict=False)
    ]
    assert stats.rows == expected
    assert stats.scores == [row["pesq"] for row in expected]
    # Without lengths the padding is scored too, and PESQ differs.
    padded = EnhancementMetricStats("pesq")
    padded.append(["c"], predict=predict[2:], target=target[2:])
    assert padded.scores[0] != expected[2]["pesq"]
    summary = stats.summarize()
    pesqs = [row["pesq"] for row in expected]
    assert summary["average"] == pytest.approx(np.mean(pesqs))
    assert summary["pesq"] == summary["average"]
    assert summary["stoi"] == pytest.approx(
        np.mean([r["stoi"] for r in expected])
    )
    assert summary["min_id"] == "abc"[int(np.argmin(pesqs))]
    assert summary["max_id"] == "abc"[int(np.argmax(pesqs))]
    assert summary["n_failed"] == 0 and summary["n_items"] == 3
    assert stats.summarize("average") == summary["average"]


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_metric_stats_failures_and_pickling(short_pair, n_jobs):
    clean, noisy = short_pair
    stats = EnhancementMetricStats("pesq", n_jobs=n_jobs, timeout=20)
    pickle.dumps(stats)
    start = time.monotonic()
    pairs = _bad_pairs(short_pair)
    for index in range(0, len(pairs), 2):
        chunk = pairs[index : index + 2]
        target, rel = _batch([c for c, _ in chunk], FS * 2)
        predict, _ = _batch([e for _, e in chunk], FS * 2)
        ids = [f"u{index}", f"u{index + 1}"]
        stats.append(ids, predict=predict, target=target, lengths=rel)
        restored = pickle.loads(pickle.dumps(stats))
        assert restored.ids == stats.ids
    assert time.monotonic() - start < 30
    summary = stats.summarize()
    assert summary["n_failed"] == 3 and summary["n_items"] == 4
    assert stats.failed_ids == ["u1", "u2", "u3"]
    assert summary["average"] == pytest.approx(
        pesq(clean.astype(np.float32), noisy.astype(np.float32), FS)
    )
    assert summary["min_id"] == summary["max_id"] == "u0"
    restored = pickle.loads(pickle.dumps(stats))
    assert restored.summarize() == summary


def test_metric_stats_write_stats(short_pair):
    import io

    stats = EnhancementMetricStats(["pesq", "si_sdr"])
    clean, noisy = short_pair
    stats.append(["ok", "silent"], [noisy, noisy], [clean, np.zeros(FS)])
    stream = io.StringIO()
    stats.write_stats(stream)
    text = stream.getvalue()
    assert "over 2 utterances (1 failed)" in text
    assert "Average si_sdr" in text and "Failed ids: silent" in text


def test_metric_stats_all_failed():
    stats = EnhancementMetricStats("pesq")
    stats.append(["x"], predict=torch.zeros(1, 800), target=torch.zeros(1, 800))
    summary = stats.summarize()
    assert math.isnan(summary["average"]) and summary["min_id"] is None
    assert summary["n_failed"] == 1


def test_metric_stats_rejects_bad_batches():
    stats = EnhancementMetricStats("snr")
    with pytest.raises(ValueError, match="batch sizes"):
        stats.append(["a"], torch.zeros(2, 10), torch.zeros(2, 10))
    with pytest.raises(ValueError, match="mono"):
        stats.append(["a"], torch.zeros(1, 2, 10), torch.zeros(1, 2, 10))
    with pytest.raises(ValueError, match="unknown metric"):
        EnhancementMetricStats("mos")


def test_metric_stats_accepts_half_precision(short_pair):
    clean, noisy = (torch.from_numpy(x).float()[None] for x in short_pair)
    stats = EnhancementMetricStats(["stoi", "si_sdr"])
    stats.append(["a"], predict=noisy.bfloat16(), target=clean.half())
    expected = evaluate_pair(
        clean.half().float()[0], noisy.bfloat16().float()[0], metrics="stoi"
    )
    assert stats.rows[0]["stoi"] == expected["stoi"]
