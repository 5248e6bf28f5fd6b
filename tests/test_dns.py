"""DNS Challenge preparation on a generated folder in the DNS layout."""

import json
import os

import numpy as np
import pytest
import soundfile as sf

from speechbrain_kd.data.dns import dns_test_pairs, prepare_dns
from speechbrain_kd.data.synthetic import make_dns_folder


@pytest.fixture
def dns(tmp_path):
    make_dns_folder(tmp_path / "dns", n_clean=3, n_noise=2, n_test=3)
    return tmp_path / "dns"


def prepare(dns, out, **kwargs):
    options = {"hours": 0.01, "segment_seconds": 2.0, "valid_fraction": 0.25}
    options.update(kwargs)
    return prepare_dns(dns, out, **options)


def test_clips_manifests_and_snrs(dns, tmp_path):
    manifests = prepare(dns, tmp_path / "prep", snr=(5.0, 5.0))
    train = json.load(open(manifests["train"]))
    valid = json.load(open(manifests["valid"]))
    assert (len(train), len(valid)) == (14, 4)  # 36 s / 2 s, 25 % valid
    for entry in [*train.values(), *valid.values()]:
        clean, rate = sf.read(entry["clean_wav"])
        noisy, _ = sf.read(entry["noisy_wav"])
        assert rate == 16000 and clean.shape == noisy.shape == (32000,)
        noise = noisy - clean
        snr = 10 * np.log10(np.sum(clean**2) / np.sum(noise**2))
        assert snr == pytest.approx(5.0, abs=1e-3)
        assert entry["snr"] == 5.0
    test = json.load(open(manifests["test"]))
    assert sorted(test) == ["fileid_0", "fileid_1", "fileid_2"]
    assert test["fileid_1"]["clean_wav"].endswith("clean_fileid_1.wav")
    assert test["fileid_1"]["noisy_wav"].endswith("_fileid_1.wav")


def test_same_seed_same_mixtures_and_interruption_resumes(dns, tmp_path):
    first = prepare(dns, tmp_path / "a")
    second = prepare(dns, tmp_path / "b")
    a, b = (json.load(open(m["train"])) for m in (first, second))
    assert [e["snr"] for e in a.values()] == [e["snr"] for e in b.values()]
    uid = sorted(a)[3]
    expected = sf.read(a[uid]["noisy_wav"])[0]
    assert np.array_equal(expected, sf.read(b[uid]["noisy_wav"])[0])
    # a killed preparation: a clip missing, another cut short, no manifests
    folder = tmp_path / "a"
    for name in ("train.json", "valid.json", "test.json"):
        (folder / name).unlink()
    cut = a[uid]["noisy_wav"]
    sf.write(cut, expected[:100], 16000)
    other = a[sorted(a)[5]]
    os.remove(other["clean_wav"])
    prepare(dns, folder)
    assert np.array_equal(sf.read(cut)[0], expected)
    assert np.array_equal(
        sf.read(other["clean_wav"])[0], sf.read(b[sorted(b)[5]]["clean_wav"])[0]
    )


def test_other_options_are_refused_and_bad_layouts_named(dns, tmp_path):
    prepare(dns, tmp_path / "p")
    with pytest.raises(ValueError, match=r"other options \(\['seed'\]\)"):
        prepare(dns, tmp_path / "p", seed=1)
    (
        dns
        / "test_set"
        / "synthetic"
        / "no_reverb"
        / "noisy"
        / ("book_x_snr3_fileid_0.wav")
    ).unlink(missing_ok=True)
    missing = next((dns / "test_set/synthetic/no_reverb/noisy").glob("*_0.wav"))
    missing.unlink()
    with pytest.raises(FileNotFoundError, match="fileid_0"):
        dns_test_pairs(dns)
    with pytest.raises(FileNotFoundError, match="test_set/synthetic/no_reverb"):
        dns_test_pairs(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="snr"):
        prepare(dns, tmp_path / "q", snr=(10.0, 0.0))
