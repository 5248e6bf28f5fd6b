"""Tests of the VoiceBank-DEMAND (Valentini) preparation."""

import json
import logging
import os
import pathlib
import zlib

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional

from speechbrain_kd.data.valentini import ValentiniPrepError, prepare_valentini

MINI = "valentini_48k_mini"


def _snapshot(folder):
    """Every path under ``folder`` with its size and mtime."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            stat = os.stat(path)
            out[path] = (stat.st_size, stat.st_mtime_ns)
    return out


def _mtimes(paths):
    return {p: os.stat(p).st_mtime_ns for p in paths}


def _files_under(folder):
    return sorted(
        os.path.join(root, name)
        for root, _, files in os.walk(folder)
        for name in files
    )


def _signal(n, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 0.3 * np.sin(0.03 * t) + 0.05 * rng.standard_normal(n)


def _write_pair(data, noisy_dir, clean_dir, uid, n=960, rate=48000):
    clean = _signal(n, zlib.crc32(uid.encode()))
    noisy = clean + 0.1 * _signal(n, 7)
    for folder, sig in ((noisy_dir, noisy), (clean_dir, clean)):
        os.makedirs(data / folder, exist_ok=True)
        sf.write(data / folder / f"{uid}.wav", sig, rate, subtype="PCM_16")


def _make_split(data, kind, ids, suffix="", rate=48000, n=960):
    noisy_dir = f"noisy_{kind}_wav{suffix}"
    clean_dir = f"clean_{kind}_wav{suffix}"
    for uid in ids:
        _write_pair(data, noisy_dir, clean_dir, uid, n=n, rate=rate)
    return data / noisy_dir, data / clean_dir


def _load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# --------------------------------------------------------------------------
# Real 48 kHz audio (read-only shared folder)
# --------------------------------------------------------------------------


def test_real_48k_test_split(shared_data, tmp_path, caplog):
    data = shared_data / MINI
    before = _snapshot(data)
    save = tmp_path / "prep"
    with caplog.at_level(logging.WARNING):
        out = prepare_valentini(data, save)

    assert out == {"test": str(save / "test.json")}
    assert not (save / "train.json").exists()
    assert not (save / "valid.json").exists()
    assert any(
        "trainset" in r.getMessage() and r.levelno == logging.WARNING
        for r in caplog.records
    )

    stems = sorted(p.stem for p in (data / "noisy_testset_wav").glob("*.wav"))
    assert len(stems) == 20
    manifest = _load(out["test"])
    assert list(manifest) == stems  # keys sorted, every pair listed
    for uid, entry in manifest.items():
        assert set(entry) == {"noisy_wav", "clean_wav", "length"}
        for key, folder in (
            ("noisy_wav", "noisy_testset_wav"),
            ("clean_wav", "clean_testset_wav"),
        ):
            path = entry[key]
            assert os.path.isabs(path)
            assert path == str(save / "wav_16000" / folder / f"{uid}.wav")
            src = sf.info(data / folder / f"{uid}.wav")
            dst = sf.info(path)
            assert src.samplerate == 48000
            assert (dst.samplerate, dst.channels) == (16000, 1)
            assert dst.subtype == "PCM_16"
            assert abs(dst.frames - round(src.frames / 3)) <= 1
            assert entry["length"] == dst.frames / 16000

    # The cache holds torchaudio's resampling of the original, as 16 bit.
    uid = stems[0]
    orig, _ = sf.read(
        data / "clean_testset_wav" / f"{uid}.wav", dtype="float32"
    )
    ref = torchaudio.functional.resample(torch.from_numpy(orig), 48000, 16000)
    cached, _ = sf.read(manifest[uid]["clean_wav"], dtype="float32")
    np.testing.assert_allclose(cached, ref.numpy(), atol=1.0 / 32768)

    assert _snapshot(data) == before  # nothing written into data_folder


def test_real_48k_second_run_is_noop(
    shared_data, tmp_path, monkeypatch, caplog
):
    data = shared_data / MINI
    before = _snapshot(data)
    save = tmp_path / "prep"
    out = prepare_valentini(data, save)
    files = _files_under(save)
    assert len(files) == 40 + 2  # cache + test.json + state file
    stamps = _mtimes(files)

    def boom(*args, **kwargs):
        raise AssertionError("audio must not be read or resampled")

    monkeypatch.setattr(torchaudio.functional, "resample", boom)
    monkeypatch.setattr(sf, "info", boom)
    monkeypatch.setattr(sf, "read", boom)
    monkeypatch.setattr(sf, "SoundFile", boom)
    with caplog.at_level(logging.INFO):
        again = prepare_valentini(data, save)
    assert again == out
    assert "already prepared" in caplog.text
    assert _files_under(save) == files
    assert _mtimes(files) == stamps
    monkeypatch.undo()

    # Another sample rate prepares again, into its own cache.
    out8 = prepare_valentini(data, save, sample_rate=8000)
    assert out8 == out
    manifest = _load(out8["test"])
    assert len(manifest) == 20
    for uid, entry in manifest.items():
        assert entry["clean_wav"].startswith(str(save / "wav_8000"))
        info = sf.info(entry["noisy_wav"])
        src = sf.info(data / "noisy_testset_wav" / f"{uid}.wav")
        assert info.samplerate == 8000
        assert abs(info.frames - round(src.frames / 6)) <= 1
        assert entry["length"] == info.frames / 8000
    assert _load(save / "valentini_prepare.json")["options"]["sample_rate"] == (
        8000
    )
    # The 16 kHz cache was left untouched.
    assert _mtimes([f for f in files if "wav_16000" in f]) == {
        f: t for f, t in stamps.items() if "wav_16000" in f
    }
    assert _snapshot(data) == before


# --------------------------------------------------------------------------
# Generated data
# --------------------------------------------------------------------------


def test_16k_layout_points_at_originals(tmp_path):
    data = tmp_path / "data"
    _make_split(data, "testset", ["p232_001", "p232_002"], "_16k", 16000, 800)
    _make_split(
        data, "trainset_28spk", ["p226_001", "p287_001"], "_16k", 16000, 400
    )
    save = tmp_path / "prep"
    out = prepare_valentini(data, save)
    assert sorted(out) == ["test", "train", "valid"]
    test = _load(out["test"])
    assert test == {
        uid: {
            "noisy_wav": str(data / "noisy_testset_wav_16k" / f"{uid}.wav"),
            "clean_wav": str(data / "clean_testset_wav_16k" / f"{uid}.wav"),
            "length": 0.05,
        }
        for uid in ("p232_001", "p232_002")
    }
    assert list(_load(out["train"])) == ["p226_001"]
    valid = _load(out["valid"])
    assert list(valid) == ["p287_001"]
    assert valid["p287_001"]["length"] == 0.025
    assert valid["p287_001"]["clean_wav"] == str(
        data / "clean_trainset_28spk_wav_16k" / "p287_001.wav"
    )
    assert not any(p.name.startswith("wav_") for p in save.iterdir())


def test_train_valid_split_by_speaker(tmp_path, caplog):
    data = tmp_path / "data"
    ids = [f"{spk}_00{i}" for spk in ("p226", "p282", "p287") for i in (1, 2)]
    _make_split(data, "trainset_28spk", ids)
    save = tmp_path / "prep"
    with caplog.at_level(logging.WARNING):
        out = prepare_valentini(data, save)
    assert sorted(out) == ["train", "valid"]
    assert "testset" in caplog.text  # missing test split warned
    train, valid = _load(out["train"]), _load(out["valid"])
    assert list(train) == ["p226_001", "p226_002"]
    assert list(valid) == ["p282_001", "p282_002", "p287_001", "p287_002"]
    for entry in list(train.values()) + list(valid.values()):
        assert entry["length"] == 320 / 16000
        assert sf.info(entry["noisy_wav"]).frames == 320

    # Other validation speakers: re-prepared, unknown speaker warned.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        out = prepare_valentini(data, save, valid_speakers=["p282", "p999"])
    assert "p999" in caplog.text
    assert list(_load(out["train"])) == [
        "p226_001",
        "p226_002",
        "p287_001",
        "p287_002",
    ]
    assert list(_load(out["valid"])) == ["p282_001", "p282_002"]

    # No validation speakers: no valid.json (the stale one is removed).
    out = prepare_valentini(data, save, valid_speakers=None)
    assert sorted(out) == ["train"]
    assert len(_load(out["train"])) == 6
    assert not (save / "valid.json").exists()


def test_prefers_28spk_over_56spk(tmp_path, caplog):
    data = tmp_path / "data"
    _make_split(data, "trainset_28spk", ["p226_001"])
    _make_split(data, "trainset_56spk", ["p234_001"])
    with caplog.at_level(logging.INFO):
        out = prepare_valentini(data, tmp_path / "prep", valid_speakers=())
    assert list(_load(out["train"])) == ["p226_001"]
    assert "noisy_trainset_56spk_wav" in caplog.text

    # The 56-speaker set alone is accepted.
    data56 = tmp_path / "data56"
    _make_split(data56, "trainset_56spk", ["p234_001"])
    out = prepare_valentini(data56, tmp_path / "prep56", valid_speakers=())
    assert list(_load(out["train"])) == ["p234_001"]


def test_skip_prep_returns_immediately(tmp_path):
    assert (
        prepare_valentini(tmp_path / "absent", tmp_path, skip_prep=True) == {}
    )


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def _test_folders(tmp_path, ids=("p232_001", "p232_002")):
    data = tmp_path / "data"
    noisy, clean = _make_split(data, "testset", ids)
    return data, noisy, clean


def _prep_error(data, tmp_path):
    with pytest.raises(ValentiniPrepError) as info:
        prepare_valentini(data, tmp_path / "prep")
    assert isinstance(info.value, ValueError)
    return str(info.value)


def test_error_noisy_without_clean(tmp_path):
    data, noisy, clean = _test_folders(tmp_path)
    os.remove(clean / "p232_002.wav")
    message = _prep_error(data, tmp_path)
    assert str(noisy / "p232_002.wav") in message
    assert "no clean twin" in message


def test_error_clean_without_noisy(tmp_path):
    data, noisy, clean = _test_folders(tmp_path)
    os.remove(noisy / "p232_001.wav")
    message = _prep_error(data, tmp_path)
    assert str(clean / "p232_001.wav") in message
    assert "no noisy twin" in message


def test_error_unreadable_file(tmp_path):
    data, noisy, _ = _test_folders(tmp_path)
    (noisy / "p232_002.wav").write_bytes(b"this is not a wav file" * 10)
    message = _prep_error(data, tmp_path)
    assert str(noisy / "p232_002.wav") in message
    assert "Cannot read" in message


def test_error_empty_file(tmp_path):
    data, _, clean = _test_folders(tmp_path)
    sf.write(clean / "p232_001.wav", np.zeros(0), 48000, subtype="PCM_16")
    message = _prep_error(data, tmp_path)
    assert str(clean / "p232_001.wav") in message
    assert "0 samples" in message


def test_error_stereo_file(tmp_path):
    data, _, clean = _test_folders(tmp_path)
    sf.write(clean / "p232_002.wav", np.zeros((960, 2)), 48000)
    message = _prep_error(data, tmp_path)
    assert str(clean / "p232_002.wav") in message
    assert "2 channels" in message


def test_error_sample_rate_mismatch(tmp_path):
    data, noisy, clean = _test_folders(tmp_path)
    sf.write(noisy / "p232_001.wav", _signal(960, 1), 44100)
    message = _prep_error(data, tmp_path)
    assert "p232_001" in message
    assert str(noisy / "p232_001.wav") in message
    assert "44100" in message and "48000" in message


def test_error_length_mismatch(tmp_path):
    data, noisy, clean = _test_folders(tmp_path)
    sf.write(noisy / "p232_002.wav", _signal(900, 1), 48000)
    message = _prep_error(data, tmp_path)
    assert str(noisy / "p232_002.wav") in message
    assert "900" in message and "960" in message


def test_error_no_split_folder(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "clean_testset_wav").mkdir()  # half a split is not a split
    message = _prep_error(data, tmp_path)
    assert str(data) in message
    for name in (
        "clean_trainset_28spk_wav",
        "noisy_trainset_28spk_wav",
        "clean_testset_wav",
        "noisy_testset_wav",
        "noisy_testset_wav_16k",
    ):
        assert name in message
    assert not (tmp_path / "prep").exists()


# --------------------------------------------------------------------------
# Synthetic dataset from speechbrain_kd.data.synthetic
# --------------------------------------------------------------------------


def test_prepare_synthetic_mini_valentini(tmp_path):
    synthetic = pytest.importorskip("speechbrain_kd.data.synthetic")
    data = tmp_path / "mini"
    synthetic.make_mini_valentini(data, n_train=4, n_test=2, seed=0)
    out = prepare_valentini(data, tmp_path / "prep")
    assert sorted(out) == ["test", "train", "valid"]
    manifests = {split: _load(path) for split, path in out.items()}
    assert all(manifests.values())
    assert {uid.split("_")[0] for uid in manifests["valid"]} <= {
        "p282",
        "p287",
    }
    assert not any(
        uid.split("_")[0] in ("p282", "p287") for uid in manifests["train"]
    )
    for manifest in manifests.values():
        for entry in manifest.values():
            info = sf.info(entry["clean_wav"])
            assert info.samplerate == 16000
            assert entry["length"] == info.frames / 16000


def _to_flac(folder):
    for wav in sorted(folder.glob("*.wav")):
        data, rate = sf.read(wav, dtype="int16")
        sf.write(wav.with_suffix(".flac"), data, rate, subtype="PCM_16")
        wav.unlink()


@pytest.mark.parametrize("rate", [16000, 48000])
def test_flac_corpus_is_prepared(tmp_path, rate):
    """A folder of .flac files said "remove the empty folders"."""
    suffix = "_16k" if rate == 16000 else ""
    data = tmp_path / "data"
    wav = tmp_path / "wav"
    for root in (data, wav):
        _make_split(root, "testset", ["p232_001", "p232_002"], suffix, rate)
    for folder in data.iterdir():
        _to_flac(folder)
    flac = _load(prepare_valentini(data, tmp_path / "flac_prep")["test"])
    reference = _load(prepare_valentini(wav, tmp_path / "wav_prep")["test"])
    assert list(flac) == list(reference)
    for uid, entry in flac.items():
        assert entry["length"] == reference[uid]["length"]
        for key in ("noisy_wav", "clean_wav"):
            assert pathlib.Path(entry[key]).suffix == (
                ".flac" if rate == 16000 else ".wav"
            )
            got, _ = sf.read(entry[key])
            expected, _ = sf.read(reference[uid][key])
            np.testing.assert_array_equal(got, expected)


def test_other_audio_formats_are_named(tmp_path):
    data, noisy, clean = _test_folders(tmp_path)
    for folder in (noisy, clean):
        for wav in folder.glob("*.wav"):
            wav.rename(wav.with_suffix(".mp3"))
    message = _prep_error(data, tmp_path)
    assert message.endswith(
        "contain no .wav or .flac file (found .mp3: convert them to .wav "
        "or .flac, e.g. with sox or ffmpeg)."
    )


def test_same_utterance_in_two_formats_is_an_error(tmp_path):
    data, noisy, _ = _test_folders(tmp_path)
    wav = noisy / "p232_001.wav"
    signal, rate = sf.read(wav)
    sf.write(wav.with_suffix(".flac"), signal, rate)
    message = _prep_error(data, tmp_path)
    assert message == (
        f"{wav.with_suffix('.flac')} and {wav} are the same utterance in "
        "two formats; keep one of them"
    )
