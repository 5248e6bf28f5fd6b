"""The 48 kHz and DNS recipe runs: what their outputs say about rates and
data."""

import json


def test_48k_run_names_its_rates_and_resampler(recipe_runs):
    run = recipe_runs("hparams/full_band_48k.yaml").run
    summary = json.loads((run / "test_summary.json").read_text())
    assert summary["sample_rate"] == 48000
    assert "resample to 16000 Hz" in summary["perceptual_metrics"]
    assert "SI-SDR and SSNR at 48000 Hz" in summary["perceptual_metrics"]
    assert summary["pesq"] is not None and summary["si_sdr"] is not None
    # the prepared manifests point at the 48 kHz originals (no resampling)
    test = json.loads((run.parent / "prepared" / "test.json").read_text())
    assert all("wav_" not in e["noisy_wav"] for e in test.values())


def test_dns_runs_train_on_synthesised_clips_and_test_on_fileids(recipe_runs):
    row = recipe_runs("hparams/mvat_dns.yaml")
    prepared = row.out / "prepared"
    train = json.loads((prepared / "train.json").read_text())
    test = json.loads((prepared / "test.json").read_text())
    assert train and all(e["length"] == 2.0 for e in train.values())
    assert sorted(test) == ["fileid_0", "fileid_1"]
    summary = json.loads((row.run / "test_summary.json").read_text())
    assert summary["pesq"] is not None
    options = json.loads((prepared / "dns_options.json").read_text())
    assert options["hours"] == 0.01 and options["segment_seconds"] == 2.0
