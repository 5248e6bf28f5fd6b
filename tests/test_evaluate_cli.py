"""Tests of ``speechbrain-kd evaluate``."""

import csv
import json
import math
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional

from speechbrain_kd.cli import (
    evaluate as evaluate_cli,
    main,
)
from speechbrain_kd.metrics import pool
from speechbrain_kd.metrics.evaluation import (
    ALL_METRICS,
    EXTRA_METRICS,
    evaluate_pair,
)

SUMMARY_KEYS = set(ALL_METRICS) | {"n_files", "n_failed"}


@pytest.fixture(scope="module")
def vbd(shared_data):
    return shared_data / "vbd_16k_25"


def _copy_pairs(vbd, tmp_path, names):
    clean, enhanced = tmp_path / "clean", tmp_path / "enhanced"
    clean.mkdir()
    enhanced.mkdir()
    for name in names:
        shutil.copy(vbd / "clean" / f"{name}.wav", clean)
        shutil.copy(vbd / "noisy" / f"{name}.wav", enhanced)
    return clean, enhanced


def test_parser_copies_match_the_library():
    assert evaluate_cli.DEFAULT_METRICS == ALL_METRICS
    assert evaluate_cli.OTHER_METRICS == EXTRA_METRICS
    assert evaluate_cli.DEFAULT_TIMEOUT == pool.DEFAULT_TIMEOUT


def test_25_pairs_table_json_csv(vbd, tmp_path, capsys):
    json_path, csv_path = tmp_path / "out" / "s.json", tmp_path / "r.csv"
    status = main(
        [
            "evaluate",
            "--clean-dir",
            str(vbd / "clean"),
            "--enhanced-dir",
            str(vbd / "noisy"),
            "--jobs",
            "2",
            "--json",
            str(json_path),
            "--csv",
            str(csv_path),
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "25 files, 0 failed" in out
    assert "wide-band (P.862.2)" in out
    for name in ALL_METRICS:
        assert f"\n{name} " in out
    summary = json.loads(json_path.read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["n_files"] == 25 and summary["n_failed"] == 0
    with open(csv_path) as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 25
    assert list(rows[0]) == ["name", *ALL_METRICS]
    # Per-file rows agree with the reference PESQ; the means with the rows.
    with open(vbd / "reference_noisy_metrics.tsv") as stream:
        reference = {
            row["name"]: float(row["pesq_wb"])
            for row in csv.DictReader(stream, delimiter="\t")
        }
    for row in rows:
        assert float(row["pesq"]) == pytest.approx(
            reference[row["name"]], abs=1e-5
        )
    for name in ALL_METRICS:
        values = [float(row[name]) for row in rows]
        assert summary[name] == pytest.approx(np.mean(values), rel=1e-12)
        assert summary[f"{name}_std"] == pytest.approx(np.std(values))


def test_unmatched_names_are_listed(vbd, tmp_path, capsys):
    clean, enhanced = _copy_pairs(vbd, tmp_path, ["p232_003", "p232_005"])
    shutil.copy(vbd / "clean" / "p232_006.wav", clean)
    for index in range(12):
        sf.write(enhanced / f"extra_{index:02d}.flac", np.zeros(100), 16000)
    status = main(
        ["evaluate", "--clean-dir", str(clean), "--enhanced-dir", str(enhanced)]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("speechbrain-kd: error:")
    assert "1 clean file(s) have no enhanced file: p232_006" in err
    assert "12 enhanced file(s) have no clean file: extra_00" in err
    assert "extra_09, ... (2 more)" in err and "extra_10" not in err


def test_missing_folder_and_multichannel_are_errors(vbd, tmp_path, capsys):
    clean, enhanced = _copy_pairs(vbd, tmp_path, ["p232_003"])
    status = main(
        ["evaluate", "--clean-dir", str(clean), "--enhanced-dir", "nowhere"]
    )
    assert status == 2 and "nowhere" in capsys.readouterr().err
    stereo = enhanced / "p232_003.wav"
    mono, rate = sf.read(stereo)
    sf.write(stereo, np.stack([mono, mono], axis=1), rate)
    status = main(
        ["evaluate", "--clean-dir", str(clean), "--enhanced-dir", str(enhanced)]
    )
    err = capsys.readouterr().err
    assert status == 2 and str(stereo) in err and "2 channels" in err


def test_48k_enhanced_file_is_resampled(vbd, tmp_path, capsys):
    clean, enhanced = _copy_pairs(vbd, tmp_path, ["p232_003", "p232_005"])
    noisy, rate = sf.read(vbd / "noisy" / "p232_003.wav")
    upsampled = torchaudio.functional.resample(
        torch.from_numpy(noisy), rate, 48000
    ).numpy()
    (enhanced / "p232_003.wav").unlink()
    sf.write(enhanced / "p232_003.flac", upsampled, 48000, subtype="PCM_24")
    json_path, csv_path = tmp_path / "s.json", tmp_path / "r.csv"
    status = main(
        [
            "evaluate",
            "--clean-dir",
            str(clean),
            "--enhanced-dir",
            str(enhanced),
            "--metrics",
            "pesq",
            "stoi",
            "--json",
            str(json_path),
            "--csv",
            str(csv_path),
            "--no-progress",
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "resampled 1 file(s) from 48000 Hz to 16000 Hz" in out
    assert "torchaudio.functional.resample" in out
    summary = json.loads(json_path.read_text())
    assert summary["resampled_files"] == 1
    assert set(summary) >= {"pesq", "stoi", "n_files", "n_failed"}
    assert "csig" not in summary
    with open(csv_path) as stream:
        rows = {row["name"]: row for row in csv.DictReader(stream)}
    direct = evaluate_pair(
        sf.read(vbd / "clean" / "p232_003.wav")[0], noisy, metrics="pesq"
    )
    # 16 -> 48 -> 16 kHz through a sinc resampler is nearly transparent.
    assert float(rows["p232_003"]["pesq"]) == pytest.approx(
        direct["pesq"], abs=0.02
    )


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_silent_and_short_files_are_counted_failures(
    vbd, tmp_path, capsys, jobs
):
    clean, enhanced = _copy_pairs(vbd, tmp_path, ["p232_003"])
    sf.write(clean / "silent.wav", np.zeros(32000), 16000, subtype="PCM_16")
    sf.write(enhanced / "silent.wav", np.zeros(32000), 16000, subtype="PCM_16")
    excerpt, _ = sf.read(vbd / "clean" / "p232_005.wav")
    sf.write(clean / "short.wav", excerpt[8000:9600], 16000)  # 0.1 s
    sf.write(enhanced / "short.wav", excerpt[8000:9600], 16000)
    json_path, csv_path = tmp_path / "s.json", tmp_path / "r.csv"
    start = time.monotonic()
    status = main(
        [
            "evaluate",
            "--clean-dir",
            str(clean),
            "--enhanced-dir",
            str(enhanced),
            "--jobs",
            jobs,
            "--json",
            str(json_path),
            "--csv",
            str(csv_path),
            "--no-progress",
        ]
    )
    assert time.monotonic() - start < 30
    assert status == 0
    out = capsys.readouterr().out
    assert "3 files, 2 failed" in out
    assert "failed (2): short, silent" in out
    summary = json.loads(json_path.read_text())
    assert summary["n_failed"] == 2 and summary["failed"] == ["short", "silent"]
    # The means cover the one good file.
    with open(csv_path) as stream:
        rows = {row["name"]: row for row in csv.DictReader(stream)}
    assert math.isnan(float(rows["silent"]["pesq"]))
    assert summary["pesq"] == float(rows["p232_003"]["pesq"])


def test_console_script_end_to_end(vbd, tmp_path):
    clean, enhanced = _copy_pairs(vbd, tmp_path, ["p232_003", "p232_005"])
    script = [str(pathlib.Path(sys.executable).parent / "speechbrain-kd")]
    result = subprocess.run(
        [
            *script,
            "evaluate",
            "--clean-dir",
            str(clean),
            "--enhanced-dir",
            str(enhanced),
            "--metrics",
            "pesq",
            "si_sdr",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "2 files, 0 failed" in result.stdout
    assert "evaluate: 100%" in result.stderr  # the progress bar


def test_every_file_failed_is_a_nonzero_exit(vbd, tmp_path, capsys):
    """Was exit 0 with every mean NaN."""
    clean, enhanced = tmp_path / "clean", tmp_path / "enhanced"
    for folder in (clean, enhanced):
        folder.mkdir()
        sf.write(folder / "silent.wav", np.zeros(32000), 16000)
    status = main(
        [
            "evaluate",
            "--clean-dir",
            str(clean),
            "--enhanced-dir",
            str(enhanced),
            "--metrics",
            "pesq",
            "--jobs",
            "1",
            "--no-progress",
        ]
    )
    captured = capsys.readouterr()
    assert status == 1
    assert "1 files, 1 failed" in captured.out
    assert "failed (1): silent" in captured.out
    assert "every file failed (1)" in captured.err


def test_failed_files_are_listed_with_their_reason(vbd, tmp_path, capsys):
    """Failed files were named without saying why (and one unreadable file
    stopped the whole run)."""
    clean, enhanced = _copy_pairs(vbd, tmp_path, ["p232_003"])
    excerpt, _ = sf.read(vbd / "clean" / "p232_005.wav")
    sf.write(clean / "short.wav", excerpt[8000:9600], 16000)  # 0.1 s
    sf.write(enhanced / "short.wav", excerpt[8000:9600], 16000)
    sf.write(clean / "silent.wav", np.zeros(32000), 16000)
    sf.write(enhanced / "silent.wav", excerpt[:32000], 16000)
    shutil.copy(vbd / "clean" / "p232_005.wav", clean / "garbage.wav")
    (enhanced / "garbage.wav").write_bytes(b"not a wav file at all")
    json_path = tmp_path / "s.json"
    status = main(
        [
            "evaluate",
            "--clean-dir",
            str(clean),
            "--enhanced-dir",
            str(enhanced),
            "--metrics",
            "pesq",
            "stoi",
            "--jobs",
            "1",
            "--json",
            str(json_path),
            "--no-progress",
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "4 files, 3 failed" in out
    reasons = json.loads(json_path.read_text())["failure_reasons"]
    assert sorted(reasons) == ["garbage", "short", "silent"]
    assert reasons["garbage"].startswith("unreadable: ")
    assert "garbage.wav" in reasons["garbage"]
    assert reasons["short"] == (
        "pesq: shorter than PESQ's minimum of 1/4 s (BufferTooShortError: "
        "b'Buffer needs to be at least 1/4 of a second long'); "
        "stoi: shorter than 0.3968 s"
    )
    assert reasons["silent"] == (
        "pesq: silent reference (all zeros); stoi: silent reference (all zeros)"
    )
    for name, reason in reasons.items():
        assert f"  {name}: {reason}" in out


def test_pesq_without_utterances_is_named(tmp_path, capsys):
    clean, enhanced = tmp_path / "clean", tmp_path / "enhanced"
    rng = np.random.default_rng(0)
    # 1/16 s of noise at the end of 2 s of silence: PESQ's voice activity
    # detector finds no utterance.
    burst = np.r_[np.zeros(31000), 0.5 * rng.standard_normal(1000)]
    for folder in (clean, enhanced):
        folder.mkdir()
        sf.write(folder / "burst.wav", burst, 16000)
    status = main(
        [
            "evaluate",
            "--clean-dir",
            str(clean),
            "--enhanced-dir",
            str(enhanced),
            "--metrics",
            "pesq",
            "--jobs",
            "1",
            "--no-progress",
        ]
    )
    assert status == 1
    out = capsys.readouterr().out
    assert (
        "  burst: pesq: no speech found by PESQ's voice activity detector "
        "(NoUtterancesError" in out
    )


def test_timed_out_file_is_named(vbd, tmp_path, capsys):
    clean, enhanced = _copy_pairs(vbd, tmp_path, ["p232_003"])
    status = main(
        [
            "evaluate",
            "--clean-dir",
            str(clean),
            "--enhanced-dir",
            str(enhanced),
            "--jobs",
            "2",
            "--timeout",
            "0.001",
            "--no-progress",
        ]
    )
    assert status == 1
    assert "  p232_003: timed out after 0.001 s" in capsys.readouterr().out
