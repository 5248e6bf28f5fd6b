"""Simulated two-ear impulse responses: deterministic, resumable, ITD-bounded."""

import numpy as np
import soundfile as sf

from speechbrain_kd.data.binaural_folders import read_impulse_responses
from speechbrain_kd.data.room_simulation import (
    SPEED_OF_SOUND,
    simulate_binaural_irs,
)


def test_same_seed_same_files_and_a_lost_file_comes_back(tmp_path):
    a = simulate_binaural_irs(tmp_path / "a", count=2, rt60=(0.2, 0.3), seed=5)
    b = simulate_binaural_irs(tmp_path / "b", count=2, rt60=(0.2, 0.3), seed=5)
    for name in ("room000.wav", "room001.wav"):
        assert np.array_equal(sf.read(a / name)[0], sf.read(b / name)[0])
    expected = sf.read(b / "room001.wav")[0]
    (b / "room001.wav").unlink()
    simulate_binaural_irs(tmp_path / "b", count=2, rt60=(0.2, 0.3), seed=5)
    assert np.array_equal(sf.read(b / "room001.wav")[0], expected)


def test_the_ears_differ_by_at_most_the_ear_distance(tmp_path):
    folder = simulate_binaural_irs(
        tmp_path / "irs", count=3, rt60=(0.2, 0.3), ear_distance=0.18, seed=1
    )
    irs = read_impulse_responses(folder, 16000)
    assert len(irs) == 3
    limit = 0.18 / SPEED_OF_SOUND * 16000  # 8.4 samples
    for ir in irs:
        onsets = [
            int(np.argmax(np.abs(ear) > 0.5 * np.abs(ear).max())) for ear in ir
        ]
        assert abs(onsets[0] - onsets[1]) <= np.ceil(limit) + 1
        assert not np.allclose(ir[0], ir[1])
