"""Tests of the enhancement data pipelines."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from speechbrain.dataio.batch import PaddedBatch
from speechbrain_kd.data.pipelines import (
    DamagedDataError,
    dataio_prep,
    expand_segments,
)

SR = 16000


def _ramp(n):
    """Strictly increasing float32 signal: every sample tells its index."""
    return (np.arange(n, dtype=np.float64) / n * 0.9).astype(np.float32)


def _noisy_of(clean):
    return 0.5 * clean - 0.25


@pytest.fixture
def manifest(tmp_path):
    """A 16 kHz manifest: ``long`` (5 s) then ``short`` (2 s)."""
    data = {}
    for uid, seconds in (("long", 5.0), ("short", 2.0)):
        clean = _ramp(int(seconds * SR))
        paths = {}
        for kind, sig in (("clean", clean), ("noisy", _noisy_of(clean))):
            path = tmp_path / f"{kind}_{uid}.wav"
            sf.write(path, sig, SR, subtype="FLOAT")  # exact float32 samples
            paths[f"{kind}_wav"] = "{root}/" + path.name
        data[uid] = {**paths, "length": seconds}
    path = tmp_path / "data.json"
    path.write_text(json.dumps(data))
    return path, {"root": str(tmp_path)}


def _offset(sig, n):
    """Index of the first sample of a crop of ``_ramp(n)``."""
    return int(round(float(sig[0]) / 0.9 * n))


def test_random_crop_shapes_and_batch(manifest):
    path, repl = manifest
    sets = dataio_prep(train_json=path, replacements=repl)
    assert sorted(sets) == ["train"]
    train = sets["train"]
    assert len(train) == 2
    long, short = train[0], train[1]
    assert list(long) == ["id", "noisy_sig", "clean_sig"]
    assert long["id"] == "long" and short["id"] == "short"
    assert long["noisy_sig"].shape == long["clean_sig"].shape == (64000,)
    assert long["noisy_sig"].dtype == torch.float32
    # Shorter than the segment: returned whole, not padded.
    assert short["noisy_sig"].shape == short["clean_sig"].shape == (32000,)
    torch.testing.assert_close(
        short["clean_sig"], torch.from_numpy(_ramp(32000))
    )

    loader = DataLoader(train, batch_size=2, collate_fn=PaddedBatch)
    batch = next(iter(loader))
    assert batch.id == ["long", "short"]
    for key in ("noisy_sig", "clean_sig"):
        sig, lens = getattr(batch, key)
        assert sig.shape == (2, 64000)
        torch.testing.assert_close(lens, torch.tensor([1.0, 0.5]))
        assert torch.all(sig[1, 32000:] == 0)


def test_random_crop_alignment_and_seeding(manifest):
    path, repl = manifest
    train = dataio_prep(train_json=path, replacements=repl)["train"]
    n = 5 * SR
    ramp = torch.from_numpy(_ramp(n))
    offsets = []
    for _ in range(50):
        item = train[0]
        start = _offset(item["clean_sig"], n)
        assert 0 <= start <= n - 64000
        torch.testing.assert_close(
            item["clean_sig"], ramp[start : start + 64000], rtol=0, atol=0
        )
        # The noisy crop starts at the same sample.
        torch.testing.assert_close(
            item["noisy_sig"], _noisy_of(item["clean_sig"]), rtol=0, atol=1e-7
        )
        offsets.append(start)
    assert len(set(offsets)) > 10  # a fresh offset per read

    def draws():
        torch.manual_seed(123)
        return [_offset(train[0]["clean_sig"], n) for _ in range(5)]

    assert draws() == draws()


def test_expand_segments_exact():
    data = {
        "a": {"noisy_wav": "na.wav", "clean_wav": "ca.wav", "length": 5.5},
        "b": {"noisy_wav": "nb.wav", "clean_wav": "cb.wav", "length": 3.0},
        "c": {"noisy_wav": "nc.wav", "clean_wav": "cc.wav", "length": 4.0},
        "d": {"noisy_wav": "nd.wav", "clean_wav": "cd.wav", "length": 4.5},
    }
    segs = expand_segments(data, 4.0, 1.0, SR)
    assert [(k, v["start"], v["stop"]) for k, v in segs.items()] == [
        ("a@0", 0, 64000),
        ("a@1", 16000, 80000),
        ("a@2", 32000, 88000),
        ("b@0", 0, 48000),
        ("c@0", 0, 64000),
        ("d@0", 0, 64000),
        ("d@1", 16000, 72000),
    ]
    assert segs["a@1"] == {
        "noisy_wav": "na.wav",
        "clean_wav": "ca.wav",
        "utt_id": "a",
        "start": 16000,
        "stop": 80000,
        "length": 4.0,
    }
    assert segs["a@2"]["length"] == 3.5
    assert segs["b@0"]["length"] == 3.0
    # One sample past the segment gives a second (one-sample) segment.
    one_more = {"e": {"length": (64000 + 1) / SR}}
    assert [
        (v["start"], v["stop"])
        for v in expand_segments(one_more, 4.0, 1.0, SR).values()
    ] == [(0, 64000), (16000, 64001)]
    # Count = ceil((length - segment) / hop) + 1 with a half-second hop.
    segs = expand_segments({"a": data["a"]}, 4.0, 0.5, SR)
    assert [v["start"] for v in segs.values()] == [0, 8000, 16000, 24000]
    assert data["a"] == {
        "noisy_wav": "na.wav",
        "clean_wav": "ca.wav",
        "length": 5.5,
    }


def test_segmented_dataset(manifest):
    path, repl = manifest
    train = dataio_prep(
        train_json=path, segment_hop_seconds=1.0, replacements=repl
    )["train"]
    # long (5 s): starts 0 and 1 s; short (2 s): a single whole segment.
    assert train.data_ids == ["long@0", "long@1", "short@0"]
    ramp = torch.from_numpy(_ramp(5 * SR))
    expected = {
        "long@0": ramp[:64000],
        "long@1": ramp[16000:80000],
        "short@0": torch.from_numpy(_ramp(2 * SR)),
    }
    for i, uid in enumerate(train.data_ids):
        item = train[i]
        assert item["id"] == uid
        torch.testing.assert_close(item["clean_sig"], expected[uid])
        torch.testing.assert_close(
            item["noisy_sig"], _noisy_of(expected[uid]), rtol=0, atol=1e-7
        )
    # Deterministic: the same item twice is the same audio.
    torch.testing.assert_close(train[1]["clean_sig"], train[1]["clean_sig"])


def test_valid_and_test_are_whole_utterances(manifest):
    path, repl = manifest
    sets = dataio_prep(valid_json=path, test_json=path, replacements=repl)
    assert sorted(sets) == ["test", "valid"]
    for split in ("valid", "test"):
        ds = sets[split]
        assert ds.data_ids == ["long", "short"]  # manifest order
        for i, seconds in enumerate((5, 2)):
            item = ds[i]
            clean = torch.from_numpy(_ramp(seconds * SR))
            torch.testing.assert_close(item["clean_sig"], clean)
            torch.testing.assert_close(
                item["noisy_sig"], _noisy_of(clean), rtol=0, atol=1e-7
            )
        # The length is kept, so the set can be sorted.
        ordered = ds.filtered_sorted(sort_key="length")
        assert [x["id"] for x in ordered] == ["short", "long"]


def test_whole_utterance_training(manifest):
    path, repl = manifest
    train = dataio_prep(
        train_json=path, segment_seconds=None, replacements=repl
    )["train"]
    assert train[0]["clean_sig"].shape == (5 * SR,)


def test_wrong_sample_rate(tmp_path):
    sig = np.zeros(8000, dtype=np.float32)
    for kind in ("noisy", "clean"):
        sf.write(tmp_path / f"{kind}.wav", sig, 8000)
    data = {
        "u": {
            "noisy_wav": str(tmp_path / "noisy.wav"),
            "clean_wav": str(tmp_path / "clean.wav"),
            "length": 1.0,
        }
    }
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data))
    for kwargs in (
        {"train_json": path},
        {"train_json": path, "segment_hop_seconds": 1.0},
        {"test_json": path},
    ):
        ds = next(iter(dataio_prep(**kwargs).values()))
        with pytest.raises(ValueError) as info:
            ds[0]
        message = str(info.value)
        assert str(tmp_path / "noisy.wav") in message
        assert "8000 Hz" in message and "sample_rate=16000" in message


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing"])
def test_file_damaged_after_preparation_names_file_and_remedy(tmp_path, damage):
    """A prepared file spoilt later was a soundfile traceback mid-epoch."""
    clean = np.linspace(-0.5, 0.5, 16000, dtype="float32")
    for name in ("clean", "noisy"):
        sf.write(tmp_path / f"{name}.wav", clean, 16000, subtype="PCM_16")
    manifest = tmp_path / "prepared" / "train.json"
    manifest.parent.mkdir()
    manifest.write_text(
        json.dumps(
            {
                "u1": {
                    "noisy_wav": str(tmp_path / "noisy.wav"),
                    "clean_wav": str(tmp_path / "clean.wav"),
                    "length": 1.0,
                }
            }
        )
    )
    noisy = tmp_path / "noisy.wav"
    data = noisy.read_bytes()
    if damage == "garbage":
        noisy.write_bytes(b"garbage!" * 100)
    elif damage == "truncated":
        noisy.write_bytes(data[: len(data) // 2])
    else:
        noisy.unlink()
    for hop in (None, 1.0):
        problem = {
            "garbage": "cannot be read (",
            "truncated": "is truncated ("
            + (
                "7989 frames; the manifest says 16000)"
                if hop is None
                else "frames 0-16000 requested, 7989 read; its header "
                "says 7989)"
            ),
            "missing": "does not exist",
        }[damage]
        sets = dataio_prep(
            train_json=manifest, segment_seconds=1.0, segment_hop_seconds=hop
        )
        with pytest.raises(DamagedDataError) as error:
            sets["train"][0]
        message = str(error.value)
        assert message.startswith(f"{noisy}, listed in {manifest}, {problem}")
        assert message.endswith(
            "the prepared data was damaged after preparation (a full disk, "
            "an interrupted copy?). Prepare it again: delete "
            f"{manifest.parent} (the prepare_folder) and run the same "
            "command without --skip_prep=True"
        )
