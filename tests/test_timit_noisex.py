"""TIMIT + NOISEX-92 preparation (KDRL's protocol) on generated folders."""

import json
import os
import pathlib

import numpy as np
import pytest
import soundfile as sf

from speechbrain_kd.data.synthetic import make_timit_noisex
from speechbrain_kd.data.timit_noisex import (
    TEST_NOISES,
    TEST_SNRS,
    TRAIN_NOISES,
    TRAIN_SNRS,
    noisex_files,
    prepare_timit_noisex,
    timit_sentences,
)

SMALL = {
    "train_sentences": 2,
    "valid_sentences": 1,
    "test_sentences": 2,
    "train_noises": ["babble", "f16"],
    "test_noises": ["white"],
    "train_snrs": [-5.0, 5.0],
    "test_snrs": [2.5],
}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    return make_timit_noisex(tmp_path_factory.mktemp("corpora"), sentences=3)


def test_the_default_protocol_is_the_papers():
    assert TRAIN_NOISES == ("babble", "destroyerops", "f16", "pink", "volvo")
    assert len(TEST_NOISES) == 9 and not set(TEST_NOISES) & set(TRAIN_NOISES)
    assert TRAIN_SNRS == (-10.0, -5.0, 0.0, 5.0, 10.0)
    assert TEST_SNRS == (-7.5, -2.5, 2.5, 7.5)


def test_every_sentence_noise_and_snr_once(corpora, tmp_path):
    timit, noisex = corpora
    out = prepare_timit_noisex(timit, noisex, tmp_path / "mix", **SMALL)
    train = json.loads(pathlib.Path(out["train"]).read_text())
    valid = json.loads(pathlib.Path(out["valid"]).read_text())
    test = json.loads(pathlib.Path(out["test"]).read_text())
    assert len(train) == 2 * 2 * 2 and len(valid) == 1 * 2 * 2
    assert len(test) == 2 * 1 * 1
    assert "DR1_MABC0_SX1_babble_-5dB" in train
    assert {e["sentence"] for e in valid.values()} == {
        str(timit_sentences(timit, "train")[2])
    }
    sentence = timit_sentences(timit, "train")[0]
    reference, _ = sf.read(sentence)
    for uid, entry in train.items():
        clean, rate = sf.read(entry["clean_wav"])
        noisy, _ = sf.read(entry["noisy_wav"])
        assert rate == 16000 and len(clean) == len(noisy) == 16000
        assert entry["length"] == 1.0
        noise = noisy - clean
        snr = 10 * np.log10(np.mean(clean**2) / np.mean(noise**2))
        assert snr == pytest.approx(entry["snr"], abs=1e-3), uid
        if entry["sentence"] == str(sentence):
            # the clean target is the sentence (scaled only if the mixture
            # would clip)
            scale = np.dot(clean, reference) / np.dot(reference, reference)
            np.testing.assert_allclose(clean, scale * reference, atol=1e-6)


def test_deterministic_and_resumable(corpora, tmp_path):
    timit, noisex = corpora
    first = tmp_path / "a"
    prepare_timit_noisex(timit, noisex, first, **SMALL)
    second = tmp_path / "b"
    prepare_timit_noisex(timit, noisex, second, **SMALL)
    files = sorted(p.relative_to(first) for p in first.rglob("*.wav"))
    assert files == sorted(p.relative_to(second) for p in second.rglob("*.wav"))
    for rel in files:
        # equal up to float32 rounding: the noise's resampling (a
        # convolution) may round the last bit differently with the memory
        # alignment of its buffers
        np.testing.assert_allclose(
            sf.read(first / rel)[0], sf.read(second / rel)[0], atol=1e-7
        )

    # a killed run: one mixture missing, the state not complete
    state = second / "timit_noisex_options.json"
    saved = json.loads(state.read_text())
    state.write_text(json.dumps({**saved, "complete": False}))
    lost = second / "noisy" / "train" / "DR1_MABC0_SX2_f16_5dB.wav"
    lost.unlink()
    kept = second / "noisy" / "train" / "DR1_MABC0_SX1_babble_-5dB.wav"
    before = kept.stat().st_mtime_ns
    prepare_timit_noisex(timit, noisex, second, **SMALL)
    np.testing.assert_allclose(
        sf.read(lost)[0],
        sf.read(first / lost.relative_to(second))[0],
        atol=1e-7,
    )
    assert kept.stat().st_mtime_ns == before  # not rewritten
    assert json.loads(state.read_text())["complete"] is True

    # other options: everything is written again
    prepare_timit_noisex(timit, noisex, second, **{**SMALL, "seed": 1})
    assert not np.allclose(
        sf.read(kept)[0], sf.read(first / kept.relative_to(second))[0]
    )


def test_up_to_date_preparation_writes_nothing(corpora, tmp_path):
    timit, noisex = corpora
    out = tmp_path / "mix"
    prepare_timit_noisex(timit, noisex, out, **SMALL)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    prepare_timit_noisex(timit, noisex, out, **SMALL)
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("*")}


def test_missing_or_incomplete_corpora_say_what_was_expected(corpora, tmp_path):
    timit, noisex = corpora
    with pytest.raises(FileNotFoundError, match="has no TRAIN/ folder"):
        timit_sentences(tmp_path, "train")
    with pytest.raises(FileNotFoundError) as error:
        noisex_files(noisex, ["babble", "jet", "tank"])
    assert "lacks jet.wav, tank.wav (it holds: babble, " in str(error.value)
    with pytest.raises(ValueError, match="TIMIT has 3 training sentences, 5"):
        prepare_timit_noisex(
            timit, noisex, tmp_path / "m", **{**SMALL, "train_sentences": 4}
        )


def test_skip_prep_returns_the_manifest_paths(tmp_path):
    out = prepare_timit_noisex("nowhere", "nowhere", tmp_path, skip_prep=True)
    assert out == {
        s: str(tmp_path / f"{s}.json") for s in ("train", "valid", "test")
    }
    assert not os.listdir(tmp_path)
