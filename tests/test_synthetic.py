"""Tests of the embedded synthetic VoiceBank-DEMAND (make_mini_valentini)."""

import math
import pathlib

import numpy as np
import pesq
import pytest
import soundfile as sf
import torch
import torchaudio

from speechbrain_kd.data.synthetic import (
    LOG_FILES,
    SPLIT_FOLDERS,
    TEST_SNRS,
    TRAIN_SNRS,
    describe_dataset,
    make_mini_valentini,
)

N_TRAIN, N_TEST = 12, 4


@pytest.fixture(scope="module")
def default_set(tmp_path_factory):
    """The default dataset (seed 0) and the summary returned for it."""
    folder = tmp_path_factory.mktemp("mini_valentini")
    summary = make_mini_valentini(folder)
    return folder, summary


def wav_names(folder):
    """Sorted file names of the wav files in ``folder``."""
    return sorted(path.name for path in pathlib.Path(folder).glob("*.wav"))


def all_files(folder):
    """Relative path -> bytes of every wav and log file under ``folder``."""
    folder = pathlib.Path(folder)
    files = sorted(folder.glob("*/*.wav")) + sorted(folder.glob("log_*.txt"))
    return {str(path.relative_to(folder)): path.read_bytes() for path in files}


def read_log(path):
    """utt_id -> (noise_type, snr) from a Valentini-style log file."""
    entries = {}
    for line in pathlib.Path(path).read_text().splitlines():
        utt_id, noise, snr = line.split()
        entries[utt_id] = (noise, float(snr))
    return entries


def read_pair(folder, split, name):
    """The (clean, noisy) float arrays of one pair."""
    clean_dir, noisy_dir = SPLIT_FOLDERS[split]
    clean, _ = sf.read(folder / clean_dir / name, dtype="float64")
    noisy, _ = sf.read(folder / noisy_dir / name, dtype="float64")
    return clean, noisy


def pairs(folder):
    """Every (split, file name) of the dataset."""
    return [
        (split, name)
        for split, (clean_dir, _) in SPLIT_FOLDERS.items()
        for name in wav_names(folder / clean_dir)
    ]


def test_layout(default_set):
    folder, summary = default_set
    counts = {"train": N_TRAIN, "test": N_TEST}
    for split, (clean_dir, noisy_dir) in SPLIT_FOLDERS.items():
        clean_names = wav_names(folder / clean_dir)
        assert len(clean_names) == counts[split]
        assert clean_names == wav_names(folder / noisy_dir)
        for name in clean_names:
            assert len(name) == len("p000_000.wav")
            assert name[0] == "p" and name[4] == "_"
            for side in (clean_dir, noisy_dir):
                info = sf.info(str(folder / side / name))
                assert info.samplerate == 48000
                assert info.channels == 1
                assert info.subtype == "PCM_16"
        assert (folder / LOG_FILES[split]).is_file()
    train_speakers = {
        name[:4] for name in wav_names(folder / SPLIT_FOLDERS["train"][0])
    }
    assert {"p282", "p287"} <= train_speakers
    assert len(train_speakers) >= 4
    test_speakers = {
        name[:4] for name in wav_names(folder / SPLIT_FOLDERS["test"][0])
    }
    assert test_speakers == {"p232", "p257"}
    assert summary["train"] == N_TRAIN and summary["test"] == N_TEST
    assert summary["folder"] == str(folder)


def test_durations_and_levels(default_set):
    folder, summary = default_set
    seconds = []
    for split, name in pairs(folder):
        clean, noisy = read_pair(folder, split, name)
        assert len(clean) == len(noisy)
        seconds.append(len(clean) / 48000)
        level = 10 * math.log10(np.mean(clean**2))
        assert -30.0 < level < -20.0
        # Leading and trailing pauses hold only the recording's noise floor,
        # 35 dB below the speech (not digital zeros).
        for pause in (clean[:4800], clean[-4800:]):
            relative = 10 * math.log10(np.mean(pause**2) / np.mean(clean**2))
            assert -40.0 < relative < -30.0
    assert all(1.2 <= value <= 2.0 for value in seconds)
    assert summary["hours"] == pytest.approx(sum(seconds) / 3600)


def test_determinism(default_set, tmp_path):
    folder, _ = default_set
    np.random.seed(1234)
    torch.manual_seed(1234)
    make_mini_valentini(tmp_path / "same")
    reference = all_files(folder)
    assert len(reference) == 2 * (N_TRAIN + N_TEST) + 2
    assert all_files(tmp_path / "same") == reference
    make_mini_valentini(tmp_path / "other", n_train=4, n_test=2, seed=1)
    other = all_files(tmp_path / "other")
    wavs = [key for key in other if key.endswith(".wav")]
    assert len(wavs) == 12
    assert all(other[key] != reference[key] for key in wavs)


def test_smaller_set_is_a_prefix(default_set, tmp_path):
    folder, _ = default_set
    make_mini_valentini(tmp_path, n_train=4, n_test=2)
    reference = all_files(folder)
    small = all_files(tmp_path)
    wavs = [key for key in small if key.endswith(".wav")]
    assert len(wavs) == 12
    assert all(small[key] == reference[key] for key in wavs)


def test_rerun_overwrites_cleanly(tmp_path):
    make_mini_valentini(tmp_path, n_train=4, n_test=2)
    summary = make_mini_valentini(tmp_path, n_train=2, n_test=1, seed=3)
    assert summary["train"] == 2 and summary["test"] == 1
    assert len(list(tmp_path.glob("*/*.wav"))) == 6
    assert len(read_log(tmp_path / LOG_FILES["train"])) == 2
    assert describe_dataset(tmp_path)["train"] == 2


def test_refuses_foreign_wav_files(tmp_path):
    foreign = tmp_path / SPLIT_FOLDERS["test"][0]
    foreign.mkdir()
    sf.write(str(foreign / "p232_001.wav"), np.zeros(480), 48000)
    with pytest.raises(FileExistsError):
        make_mini_valentini(tmp_path, n_train=1, n_test=1)
    assert (foreign / "p232_001.wav").is_file()


def test_snrs_match_logs(default_set):
    folder, summary = default_set
    valid = {"train": set(TRAIN_SNRS), "test": set(TEST_SNRS)}
    for split in SPLIT_FOLDERS:
        log = read_log(folder / LOG_FILES[split])
        names = wav_names(folder / SPLIT_FOLDERS[split][0])
        assert sorted(f"{utt_id}.wav" for utt_id in log) == names
        assert {snr for _, snr in log.values()} <= valid[split]
        assert summary["snrs"][split] == sorted(
            {snr for _, snr in log.values()}
        )
        for utt_id, (_, snr) in log.items():
            clean, noisy = read_pair(folder, split, f"{utt_id}.wav")
            measured = 10 * math.log10(
                np.sum(clean**2) / np.sum((noisy - clean) ** 2)
            )
            assert abs(measured - snr) < 0.2, utt_id
    assert summary["snrs"] == {
        "train": sorted(TRAIN_SNRS),
        "test": sorted(TEST_SNRS),
    }
    assert summary["noise_types"] == ["babble", "bursts", "coloured", "hum"]


def test_pesq_computable(default_set):
    folder, _ = default_set
    for split, name in pairs(folder):
        clean, noisy = read_pair(folder, split, name)
        clean16, noisy16 = (
            torchaudio.functional.resample(
                torch.from_numpy(audio), 48000, 16000
            ).numpy()
            for audio in (clean, noisy)
        )
        score = pesq.pesq(16000, clean16, noisy16, "wb")
        assert math.isfinite(score) and 1.0 <= score <= 4.64, name


def test_no_clipping_and_size(default_set):
    folder, summary = default_set
    for split, name in pairs(folder):
        clean, noisy = read_pair(folder, split, name)
        assert np.max(np.abs(noisy)) < 1.0
        assert np.max(np.abs(clean)) < 1.0
    total = sum(
        path.stat().st_size
        for path in list(folder.glob("*/*.wav")) + list(folder.glob("log_*"))
    )
    assert summary["bytes"] == total
    assert total < 6 * 1024 * 1024


def test_describe_dataset(default_set):
    folder, summary = default_set
    described = describe_dataset(folder)
    assert described["train"] == N_TRAIN and described["test"] == N_TEST
    assert described["snrs"] == summary["snrs"]
    assert described["noise_types"] == summary["noise_types"]
    assert described["bytes"] == summary["bytes"]
    assert described["hours"] == pytest.approx(summary["hours"])


def test_describe_partial_folder(tmp_path):
    make_mini_valentini(tmp_path, n_train=0, n_test=2)
    (tmp_path / LOG_FILES["test"]).unlink()
    described = describe_dataset(tmp_path)
    assert described["train"] == 0 and described["test"] == 2
    assert described["snrs"] == {"train": [], "test": []}
    assert described["noise_types"] == []
    assert described["hours"] > 0
    empty = describe_dataset(tmp_path / "missing")
    assert empty["train"] == 0 and empty["test"] == 0 and empty["hours"] == 0


def test_describe_real_test_split(shared_data):
    folder = shared_data / "valentini_48k_mini"
    described = describe_dataset(folder)
    assert described["train"] == 0 and described["test"] == 20
    assert described["snrs"] == {"train": [], "test": []}
    assert 0 < described["hours"] < 0.1
