"""48 kHz end to end on the real pairs of ``valentini_48k_mini``:
preparation keeps the rate, evaluation scores SI-SDR/SSNR at 48 kHz and the
perceptual metrics after a named resampling to 16 kHz."""

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from speechbrain_kd.cli import main
from speechbrain_kd.data.valentini import prepare_valentini
from speechbrain_kd.metrics.composite import segmental_snr
from speechbrain_kd.metrics.evaluation import (
    ALL_METRICS,
    PERCEPTUAL_RESAMPLER,
    evaluate_pair,
)
from speechbrain_kd.metrics.intrusive import si_sdr


@pytest.fixture(scope="module")
def pairs_48k(shared_data):
    folder = shared_data / "valentini_48k_mini"
    if not folder.is_dir():
        pytest.fail(f"{folder} is missing from the shared data")
    return folder


def test_preparation_at_48k_keeps_every_sample(pairs_48k, tmp_path):
    manifests = prepare_valentini(pairs_48k, tmp_path, sample_rate=48000)
    entries = json.loads(open(manifests["test"]).read())
    assert len(entries) == len(
        list((pairs_48k / "clean_testset_wav").glob("*.wav"))
    )
    for uid, entry in entries.items():
        for key, folder in (
            ("clean", "clean_testset_wav"),
            ("noisy", "noisy_testset_wav"),
        ):
            path = entry[f"{key}_wav"] if f"{key}_wav" in entry else entry[key]
            source = pairs_48k / folder / f"{uid}.wav"
            # no copy, no resampling: the manifest points at the source
            assert str(path) == str(source.resolve())
            info = sf.info(source)
            assert info.samplerate == 48000
            assert entry["length"] == pytest.approx(info.frames / 48000)
    assert not list(tmp_path.glob("wav_*"))


def read(path):
    signal, rate = sf.read(path)
    assert rate == 48000
    return signal


def to_16k(signal):
    tensor = torch.as_tensor(signal, dtype=torch.float32)
    return torchaudio.functional.resample(tensor, 48000, 16000).double().numpy()


def test_48k_scores_perceptual_metrics_at_16k_and_sdr_at_48k(pairs_48k):
    uid = "p232_001"
    clean = read(pairs_48k / "clean_testset_wav" / f"{uid}.wav")
    noisy = read(pairs_48k / "noisy_testset_wav" / f"{uid}.wav")
    at_48k = evaluate_pair(clean, noisy, 48000, ALL_METRICS)
    at_16k = evaluate_pair(to_16k(clean), to_16k(noisy), 16000, ALL_METRICS)
    for name in ("pesq", "stoi", "estoi", "csig", "cbak", "covl"):
        assert at_48k[name] == pytest.approx(at_16k[name], abs=1e-12), name
    assert at_48k["si_sdr"] == pytest.approx(si_sdr(clean, noisy), abs=1e-9)
    assert at_48k["ssnr"] == pytest.approx(
        segmental_snr(clean, noisy, 48000), abs=1e-9
    )
    assert at_48k["si_sdr"] != at_16k["si_sdr"]
    assert all(math.isfinite(v) for v in at_48k.values())
    assert "torchaudio.functional.resample" in PERCEPTUAL_RESAMPLER


def test_evaluate_command_at_48k_names_the_resampler(
    pairs_48k, tmp_path, capsys
):
    out = tmp_path / "report.json"
    code = main(
        [
            "evaluate",
            "--clean-dir",
            str(pairs_48k / "clean_testset_wav"),
            "--enhanced-dir",
            str(pairs_48k / "noisy_testset_wav"),
            "--sample-rate",
            "48000",
            "--metrics",
            "pesq",
            "stoi",
            "si_sdr",
            "--jobs",
            "1",
            "--json",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "after " + PERCEPTUAL_RESAMPLER in printed
    report = json.loads(out.read_text())
    assert report["sample_rate"] == 48000
    assert PERCEPTUAL_RESAMPLER in report["perceptual_metrics"]
    assert report["n_failed"] == 0
    assert np.isfinite(report["pesq"])
