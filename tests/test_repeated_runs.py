"""Repeated runs: the seeds command on a real recipe, the aggregate table and
the paired comparison against hand-computed values."""

import csv
import json
import math
import pathlib
import sys

import pytest

from speechbrain_kd.cli import main
from speechbrain_kd.repeated_runs import (
    aggregate,
    compare_configurations,
    seed_command,
    write_aggregate,
)

REPO = pathlib.Path(__file__).resolve().parents[1]


def fake_seed(root, seed, summary, scores):
    folder = root / f"seed_{seed}"
    folder.mkdir(parents=True)
    (folder / "test_summary.json").write_text(json.dumps(summary))
    with open(folder / "test_per_utterance.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "pesq"])
        writer.writerows(scores.items())


def test_aggregate_is_the_mean_and_sample_std(tmp_path):
    fake_seed(tmp_path, 1, {"pesq": 2.0, "stoi": 0.9, "tag": "x"}, {})
    fake_seed(tmp_path, 2, {"pesq": 2.5, "stoi": 0.8, "tag": "y"}, {})
    fake_seed(tmp_path, 7, {"pesq": 3.0, "stoi": None, "tag": "z"}, {})
    (tmp_path / "seed_9").mkdir()  # unfinished: left out
    result = aggregate(tmp_path)
    assert result["seeds"] == [1, 2, 7]
    pesq = result["metrics"]["pesq"]
    assert pesq["mean"] == pytest.approx(2.5)
    # sample std: sqrt(((-0.5)^2 + 0 + 0.5^2) / 2) = 0.5
    assert pesq["std"] == pytest.approx(0.5)
    assert "tag" not in result["metrics"]  # not numeric
    assert "stoi" not in result["metrics"]  # None for one seed
    table = write_aggregate(result, tmp_path)
    assert "| pesq | 2.5000 ± 0.5000 | 3 | 2.0000 | 2.5000 | 3.0000 |" in table
    rows = list(csv.DictReader(open(tmp_path / "seeds_summary.csv")))
    assert rows[0]["metric"] == "pesq" and float(rows[0]["std"]) == 0.5
    assert (tmp_path / "seeds_summary.md").read_text() == table


def test_one_seed_has_no_std_and_nothing_finished_is_an_error(tmp_path):
    fake_seed(tmp_path, 3, {"pesq": 2.0}, {})
    result = aggregate(tmp_path)
    assert math.isnan(result["metrics"]["pesq"]["std"])
    assert "2.0000 ± n/a" in write_aggregate(result, tmp_path)
    with pytest.raises(FileNotFoundError, match="no finished seed"):
        aggregate(tmp_path / "none")


def test_compare_averages_seeds_then_pairs_utterances(tmp_path):
    fake_seed(tmp_path / "a", 1, {}, {"u1": 1.0, "u2": 2.0, "u3": 3.0})
    fake_seed(tmp_path / "a", 2, {}, {"u1": 2.0, "u2": 2.0, "u3": 2.0})
    fake_seed(tmp_path / "b", 1, {}, {"u1": 2.0, "u2": 3.0, "u3": 3.0})
    report = compare_configurations(tmp_path / "a", tmp_path / "b")["pesq"]
    # a averages to 1.5, 2.0, 2.5; differences 0.5, 1.0, 0.5
    assert report["n"] == 3
    assert report["baseline_mean"] == pytest.approx(2.0)
    assert report["mean_difference"] == pytest.approx(2 / 3)
    sd = math.sqrt(((0.5 - 2 / 3) ** 2 * 2 + (1 / 3) ** 2) / 2)
    assert report["t"] == pytest.approx((2 / 3) / (sd / math.sqrt(3)))


def test_seed_and_output_folder_belong_to_the_command():
    with pytest.raises(ValueError, match="--seed is set per seed"):
        seed_command("py", "s.py", "a.yaml", 1, pathlib.Path("r"), ["--seed=3"])


FLAGS = [
    "--debug",
    "--debug_persistently",
    "--prepare_folder={root}/prepared",
    "--metric_jobs=1",
    "--num_workers=0",
    "--segment_seconds=0.256",
    "--batch_size=2",
    "--depth=4",
    "--width=2",
]


def test_seeds_run_two_tiny_seeds_skips_finished_and_resumes(
    mini_valentini, tmp_path, capsys
):
    root = tmp_path / "seeds"
    flags = [f.format(root=tmp_path) for f in FLAGS]
    command = [
        "seeds",
        "run",
        str(REPO / "recipes" / "Valentini" / "train_teacher.py"),
        str(REPO / "hparams" / "wave_u_net_student.yaml"),
        str(root),
        "--seeds",
        "1",
        "2",
        "--python",
        sys.executable,
        "--",
        f"--data_folder={mini_valentini}",
        *flags,
    ]
    assert main(command) == 0
    out = capsys.readouterr().out
    assert "seed 1 (1/2): running" in out and "seed 2 (2/2): running" in out
    summaries = [
        json.loads((root / f"seed_{s}" / "test_summary.json").read_text())
        for s in (1, 2)
    ]
    pesq = [s["pesq"] for s in summaries]
    assert pesq[0] != pesq[1]  # the seeds differ
    mean = (pesq[0] + pesq[1]) / 2
    std = abs(pesq[0] - pesq[1]) / math.sqrt(2)  # n - 1 = 1
    rows = {
        r["metric"]: r for r in csv.DictReader(open(root / "seeds_summary.csv"))
    }
    assert float(rows["pesq"]["mean"]) == pytest.approx(mean, rel=1e-12)
    assert float(rows["pesq"]["std"]) == pytest.approx(std, rel=1e-12)
    assert f"{mean:.4f} ± {std:.4f}" in (root / "seeds_summary.md").read_text()

    # finished seeds are skipped; an unfinished one runs again (resuming)
    (root / "seed_2" / "test_summary.json").unlink()
    assert main(command) == 0
    out = capsys.readouterr().out
    assert "seed 1 (1/2): finished, skipped" in out
    assert "seed 2 (2/2): running" in out
    log = (root / "seed_2" / "seed_run.log").read_text()
    assert log.count("--seed=2") == 2  # one command line per start
    assert (root / "seed_2" / "test_summary.json").is_file()
