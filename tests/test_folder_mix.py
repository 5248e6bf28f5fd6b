"""Mixtures from a clean folder and a noise folder, and the listening-
enhancement recipe that trains MetricGAN-OKD on them."""

import json
import pathlib
import sys

import numpy as np
import pytest
import soundfile as sf

from speechbrain_kd.data.folder_mix import noise_part, prepare_folder_mix

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def folders(folder_mix_folders):
    """10 clean 'sentences' at 22.05 kHz (one in a sub-folder) and two
    noise recordings at 16 kHz (one stereo)."""
    return folder_mix_folders


def load(path):
    return json.loads(pathlib.Path(path).read_text())


def test_mixtures_have_the_drawn_snrs_and_disjoint_splits(folders, tmp_path):
    manifests = prepare_folder_mix(
        folders / "clean",
        folders / "noise",
        tmp_path / "mix",
        valid_fraction=0.1,
        test_fraction=0.2,
        seed=3,
    )
    sets = {split: load(path) for split, path in manifests.items()}
    assert {k: len(v) for k, v in sets.items()} == {
        "train": 7,
        "valid": 1,
        "test": 2,
    }
    ids = [set(v) for v in sets.values()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert "more_h09" in set().union(*ids)
    for split, entries in sets.items():
        low, high = (-13, -1) if split == "test" else (-11, -3)
        for entry in entries.values():
            assert low <= entry["snr"] <= high
            clean, rate = sf.read(entry["clean_wav"])
            noisy, _ = sf.read(entry["noisy_wav"])
            assert rate == 16000 and clean.shape == noisy.shape
            assert clean.shape[0] == pytest.approx(16000, abs=1)
            noise = noisy - clean
            snr = 10 * np.log10(np.mean(clean**2) / np.mean(noise**2))
            assert snr == pytest.approx(entry["snr"], abs=1e-3)
            assert np.max(np.abs(noisy)) <= 0.99 + 1e-6


def test_same_options_give_the_same_mixtures(folders, tmp_path):
    first = load(
        prepare_folder_mix(
            folders / "clean", folders / "noise", tmp_path / "a", seed=1
        )["train"]
    )
    second = load(
        prepare_folder_mix(
            folders / "clean", folders / "noise", tmp_path / "b", seed=1
        )["train"]
    )
    assert [e["snr"] for e in first.values()] == [
        e["snr"] for e in second.values()
    ]
    other = load(
        prepare_folder_mix(
            folders / "clean", folders / "noise", tmp_path / "c", seed=2
        )["train"]
    )
    assert [e["snr"] for e in other.values()] != [
        e["snr"] for e in first.values()
    ]


def test_test_noise_comes_from_the_held_out_tail():
    noise = np.arange(100.0)
    train, test = (
        noise_part(noise, 0.3, "train"),
        noise_part(noise, 0.3, "test"),
    )
    assert train.max() < test.min() and train.size == 70 and test.size == 30


def test_bad_folders_and_options_are_named(folders, tmp_path):
    with pytest.raises(FileNotFoundError, match="noise_folder"):
        prepare_folder_mix(folders / "clean", tmp_path / "none", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="clean_folder .* no audio"):
        prepare_folder_mix(tmp_path / "empty", folders / "noise", tmp_path)
    with pytest.raises(ValueError, match="train_snr"):
        prepare_folder_mix(
            folders / "clean", folders / "noise", tmp_path, train_snr=(3, -3)
        )
    with pytest.raises(ValueError, match="cannot be split"):
        prepare_folder_mix(
            folders / "clean",
            folders / "noise",
            tmp_path,
            valid_fraction=0.5,
            test_fraction=0.5,
        )


def test_listening_enhancement_recipe_debug_run(recipe_runs):
    done = recipe_runs("hparams/okd_listening.yaml")
    for metric in ("pesq", "csig"):
        summary = load(done.run / f"test_summary_generator_{metric}.json")
        assert summary["n_items"] == 2
    assert (done.run / "historical" / "epoch_0002" / "index.json").is_file()
    train = load(done.out / "prepared" / "train.json")
    assert all(-11 <= e["snr"] <= -3 for e in train.values())


def test_missing_clean_folder_is_a_clear_error(run_script, folders, tmp_path):
    command = [
        sys.executable,
        str(REPO / "recipes" / "FolderMix" / "train_okd.py"),
        str(REPO / "hparams" / "okd_listening.yaml"),
        "--debug",
        f"--clean_folder={tmp_path / 'nope'}",
        f"--noise_folder={folders / 'noise'}",
        f"--prepare_folder={tmp_path / 'mix'}",
        f"--output_folder={tmp_path / 'run'}",
    ]
    result = run_script(command)
    assert result.returncode == 2
    assert "clean_folder" in result.stderr and "nope" in result.stderr


def test_mix_command(folders, tmp_path, capsys):
    from speechbrain_kd.cli import main

    code = main(
        [
            "mix",
            "--clean-folder",
            str(folders / "clean"),
            "--noise-folder",
            str(folders / "noise"),
            "--save-folder",
            str(tmp_path / "mix"),
            "--train-snr",
            "0",
            "5",
        ]
    )
    assert code == 0
    manifests = json.loads(capsys.readouterr().out)
    train = load(manifests["train"])
    assert train and all(0 <= e["snr"] <= 5 for e in train.values())
    code = main(
        [
            "mix",
            "--clean-folder",
            str(tmp_path / "missing"),
            "--noise-folder",
            str(folders / "noise"),
            "--save-folder",
            str(tmp_path / "mix2"),
        ]
    )
    assert code == 2
    assert "clean_folder" in capsys.readouterr().err
