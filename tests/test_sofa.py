"""SOFA impulse responses: every measurement, delays, rates, bad files."""

import numpy as np
import pytest
import sofar
import soundfile as sf

from speechbrain_kd.data.binaural_folders import read_impulse_responses
from speechbrain_kd.data.sofa import read_sofa_irs


def write_hrirs(path, data_ir, rate, delay=None):
    sofa = sofar.Sofa("SimpleFreeFieldHRIR")
    sofa.Data_IR = data_ir
    sofa.Data_SamplingRate = rate
    sofa.SourcePosition = np.zeros((data_ir.shape[0], 3))
    if delay is not None:
        sofa.Data_Delay = delay
    sofar.write_sofa(str(path), sofa)


def test_every_measurement_is_one_response(tmp_path):
    data = np.arange(3 * 2 * 5, dtype=float).reshape(3, 2, 5)
    write_hrirs(tmp_path / "hrirs.sofa", data, 16000)
    irs, rate = read_sofa_irs(tmp_path / "hrirs.sofa")
    assert rate == 16000
    assert len(irs) == 3
    for got, expected in zip(irs, data, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_delays_become_leading_zeros(tmp_path):
    data = np.ones((1, 2, 3))
    write_hrirs(tmp_path / "d.sofa", data, 8000, delay=np.array([[2, 0]]))
    (ears,), _ = read_sofa_irs(tmp_path / "d.sofa")
    np.testing.assert_array_equal(ears, [[0, 0, 1, 1, 1], [1, 1, 1, 0, 0]])


def test_folder_mixes_wav_and_sofa_in_name_order(tmp_path):
    wav = np.array([[1.0, 0.0], [0.5, 0.25]])
    sf.write(tmp_path / "a.wav", wav, 8000, "FLOAT")
    write_hrirs(tmp_path / "b.sofa", np.full((2, 2, 2), 0.125), 8000)
    irs = read_impulse_responses(tmp_path, 8000)
    assert [ir.tolist() for ir in irs] == [
        [[1.0, 0.5], [0.0, 0.25]],
        [[0.125, 0.125], [0.125, 0.125]],
        [[0.125, 0.125], [0.125, 0.125]],
    ]


def test_resampled_responses_keep_their_gain(tmp_path):
    """A unit impulse at 48 kHz stays a unit impulse at 16 kHz (the taps
    scale by 3), so the simulated ear signals keep their level."""
    impulse = np.zeros((1, 2, 480))
    impulse[0, :, 39] = 1.0
    write_hrirs(tmp_path / "h.sofa", impulse, 48000)
    (ears,) = read_impulse_responses(tmp_path, 16000)
    assert ears.shape == (2, 160)
    for ear in ears:
        assert np.argmax(np.abs(ear)) == 13  # 39 / 3
        assert ear.sum() == pytest.approx(1.0, abs=0.02)  # DC gain
        assert ear[13] == pytest.approx(1.0, abs=0.05)


def test_three_receivers_are_named(tmp_path):
    sofa = sofar.Sofa("GeneralFIR")
    sofa.Data_IR = np.ones((1, 3, 4))
    sofa.Data_SamplingRate = 16000
    sofa.ReceiverPosition = np.zeros((3, 3, 1))
    sofa.Data_Delay = np.zeros((1, 3))
    sofar.write_sofa(str(tmp_path / "three.sofa"), sofa)
    with pytest.raises(ValueError, match=r"three.sofa has Data.IR of shape"):
        read_impulse_responses(tmp_path, 16000)


def test_transfer_functions_are_refused(tmp_path):
    sofa = sofar.Sofa("SimpleFreeFieldHRTF")
    sofa.Data_Real = np.ones((1, 2, 4))
    sofa.Data_Imag = np.zeros((1, 2, 4))
    sofa.N = np.arange(4.0)
    sofar.write_sofa(str(tmp_path / "tf.sofa"), sofa)
    with pytest.raises(ValueError, match=r"tf.sofa holds TF data"):
        read_impulse_responses(tmp_path, 16000)
