"""prepare_binaural: levels and SNRs as drawn, deterministic, resumable."""

import json
import math
import pathlib

import numpy as np
import pytest
import soundfile as sf

from speechbrain_kd.data.binaural_folders import prepare_binaural
from speechbrain_kd.data.synthetic import make_binaural_folders


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("binaural")
    return make_binaural_folders(root, utterances=10, seed=3)


def read(manifest):
    return json.loads(pathlib.Path(manifest).read_text())


def test_every_file_has_its_drawn_level_and_snr(folders, tmp_path):
    manifests = prepare_binaural(*folders, tmp_path / "prep", seed=1)
    assert (
        sum(len(read(manifests[s])) for s in ("train", "valid", "test")) == 10
    )
    for split in ("train", "valid", "test"):
        for entry in read(manifests[split]).values():
            clean, rate = sf.read(entry["clean_wav"])
            noisy, _ = sf.read(entry["noisy_wav"])
            binaural, _ = sf.read(entry["binaural_wav"])
            assert rate == 16000 and binaural.shape == (clean.size, 2)
            assert entry["length"] == clean.size / 16000
            level = 10 * math.log10(np.mean(clean**2))
            snr = 10 * math.log10(
                np.mean(clean**2) / np.mean((noisy - clean) ** 2)
            )
            assert level == pytest.approx(entry["level"], abs=1e-4)
            assert snr == pytest.approx(entry["snr"], abs=1e-3)
            assert -35 <= entry["level"] <= -15
            # the ears differ from each other and from the mono mixture
            assert not np.allclose(binaural[:, 0], binaural[:, 1])
            assert not np.allclose(binaural[:, 0], noisy)
    test = read(manifests["test"])
    assert {e["snr"] for e in test.values()} <= {-5, 0, 5, 10}
    per_snr = {s: read(manifests[f"test_snr{s}"]) for s in (-5, 0, 5, 10)}
    assert sum(len(v) for v in per_snr.values()) == len(test)
    for snr, entries in per_snr.items():
        assert all(e["snr"] == snr for e in entries.values())


def test_same_seed_same_mixtures_and_an_interrupted_run_resumes(
    folders, tmp_path
):
    first = prepare_binaural(*folders, tmp_path / "a", seed=2)
    second = prepare_binaural(*folders, tmp_path / "b", seed=2)
    a, b = read(first["train"]), read(second["train"])
    assert list(a) == list(b)
    for uid in a:
        assert np.array_equal(
            sf.read(a[uid]["noisy_wav"])[0], sf.read(b[uid]["noisy_wav"])[0]
        )
    # an interrupted run: a file and the manifests are missing
    uid = next(iter(b))
    lost = pathlib.Path(b[uid]["binaural_wav"])
    kept = pathlib.Path(b[uid]["noisy_wav"])
    before = kept.stat().st_mtime_ns
    expected = sf.read(lost)[0]
    lost.unlink()
    pathlib.Path(second["train"]).unlink()
    prepare_binaural(*folders, tmp_path / "b", seed=2)
    assert np.array_equal(sf.read(lost)[0], expected)
    assert kept.stat().st_mtime_ns == before


def test_other_options_in_the_same_folder_are_refused(folders, tmp_path):
    prepare_binaural(*folders, tmp_path / "prep", seed=1)
    with pytest.raises(ValueError, match=r"other options \(\['seed'\]\)"):
        prepare_binaural(*folders, tmp_path / "prep", seed=4)


def test_a_mono_impulse_response_is_named(folders, tmp_path):
    irs = tmp_path / "irs"
    irs.mkdir()
    sf.write(irs / "mono.wav", np.ones(16), 16000)
    with pytest.raises(ValueError, match="mono.wav has 1 channel"):
        prepare_binaural(folders[0], folders[1], irs, tmp_path / "prep")


def test_a_missing_folder_is_named(folders, tmp_path):
    with pytest.raises(FileNotFoundError, match="ir_folder .*nowhere"):
        prepare_binaural(
            folders[0], folders[1], tmp_path / "nowhere", tmp_path / "p"
        )
