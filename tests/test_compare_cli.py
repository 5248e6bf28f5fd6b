"""``speechbrain-kd compare``: two folders, utterance by utterance."""

import json

import pytest
import soundfile as sf

from speechbrain_kd.cli import main
from speechbrain_kd.metrics.evaluation import evaluate_pair
from speechbrain_kd.metrics.paired import paired_comparison

NAMES = ["p232_003", "p232_005", "p232_006"]


@pytest.fixture
def folders(shared_data, tmp_path):
    source = shared_data / "vbd_16k_25"
    out = {k: tmp_path / k for k in ("clean", "baseline", "candidate")}
    for folder in out.values():
        folder.mkdir()
    for name in NAMES:
        clean, rate = sf.read(source / "clean" / f"{name}.wav")
        noisy, _ = sf.read(source / "noisy" / f"{name}.wav")
        sf.write(out["clean"] / f"{name}.wav", clean, rate, subtype="FLOAT")
        sf.write(out["baseline"] / f"{name}.wav", noisy, rate, subtype="FLOAT")
        better = clean + 0.5 * (noisy - clean)  # half the noise
        sf.write(
            out["candidate"] / f"{name}.wav", better, rate, subtype="FLOAT"
        )
    return out


def test_compare_reports_the_paired_differences(folders, tmp_path, capsys):
    report = tmp_path / "compare.json"
    status = main(
        [
            "compare",
            "--clean-dir",
            str(folders["clean"]),
            "--baseline-dir",
            str(folders["baseline"]),
            "--candidate-dir",
            str(folders["candidate"]),
            "--metrics",
            "si_sdr",
            "stoi",
            "--json",
            str(report),
            "--no-progress",
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert out.startswith("3 utterances; candidate ")
    got = json.loads(report.read_text())["metrics"]
    for metric in ("si_sdr", "stoi"):
        scores = {}
        for system in ("baseline", "candidate"):
            scores[system] = [
                evaluate_pair(
                    sf.read(folders["clean"] / f"{n}.wav")[0],
                    sf.read(folders[system] / f"{n}.wav")[0],
                    metrics=[metric],
                )[metric]
                for n in NAMES
            ]
        expected = paired_comparison(scores["baseline"], scores["candidate"])
        assert got[metric]["n"] == 3
        for key, value in expected.items():
            assert got[metric][key] == pytest.approx(value, rel=1e-9), key
    # halving the noise adds about 6 dB of SI-SDR
    assert got["si_sdr"]["mean_difference"] == pytest.approx(6.0, abs=0.5)
    assert got["si_sdr"]["ci_low"] > 0


def test_different_utterances_are_an_error(folders, capsys):
    (folders["candidate"] / f"{NAMES[0]}.wav").unlink()
    status = main(
        [
            "compare",
            "--clean-dir",
            str(folders["clean"]),
            "--baseline-dir",
            str(folders["baseline"]),
            "--candidate-dir",
            str(folders["candidate"]),
            "--no-progress",
        ]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert "1 clean file(s) have no enhanced file: p232_003" in err
