"""Non-finite audio never destroys a model (issue 18, "silent damage" 1).

Preparation refuses files with NaN / infinite / out-of-range samples,
naming them; training skips a batch whose loss is not finite (no update,
its ids logged) and stops when every batch of an epoch is; non-finite
weights are never checkpointed, loaded as a teacher or exported.
"""

import logging
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.utils.epoch_loop import EpochCounter
from speechbrain_kd.brains import EnhanceBrain
from speechbrain_kd.brains.nonfinite import NonFiniteError, nonfinite_parameters
from speechbrain_kd.brains.teacher import load_teacher
from speechbrain_kd.data.folder_mix import prepare_folder_mix
from speechbrain_kd.data.synthetic import make_mini_valentini
from speechbrain_kd.data.valentini import prepare_valentini
from speechbrain_kd.lobes.manner import MANNER
from speechbrain_kd.losses import WeightedCleanNoiseLoss
from speechbrain_kd.pretrained.checkpoints import CheckpointError

SR = 16000
BAD = "p226_002"


@pytest.fixture(scope="module")
def valentini(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vbd")
    make_mini_valentini(folder, n_train=4, n_test=2, seed=0)
    return folder


def spoil(path, value):
    data, rate = sf.read(path, dtype="float32")
    data[100] = value
    sf.write(path, data, rate, subtype="FLOAT")


@pytest.mark.parametrize("value", [np.nan, np.inf, 1.5])
@pytest.mark.parametrize("sample_rate", [16000, 48000])
def test_preparation_names_a_file_with_bad_samples(
    valentini, tmp_path, value, sample_rate
):
    """48 kHz sources resampled to 16 kHz, and sources kept at their rate
    (``sample_rate=48000``), are both checked."""
    data = tmp_path / "data"
    shutil.copytree(valentini, data)
    bad = next((data / "noisy_trainset_28spk_wav").glob("*.wav"))
    spoil(bad, value)
    with pytest.raises(ValueError, match=str(bad)):
        prepare_valentini(data, tmp_path / "prepared", sample_rate=sample_rate)


def test_folder_mix_names_a_file_with_nan(tmp_path):
    rng = np.random.default_rng(0)
    for kind, count in (("clean", 3), ("noise", 1)):
        (tmp_path / kind).mkdir()
        for i in range(count):
            sf.write(
                tmp_path / kind / f"{kind}{i}.wav",
                0.1 * rng.standard_normal(8000),
                SR,
                subtype="FLOAT",
            )
    spoil(tmp_path / "clean" / "clean1.wav", np.nan)
    with pytest.raises(ValueError, match="clean1.wav holds 1 non-finite"):
        prepare_folder_mix(
            tmp_path / "clean", tmp_path / "noise", tmp_path / "mix"
        )


@pytest.fixture(scope="module")
def speech(shared_data):
    """Four 1-s crops of a real VoiceBank-DEMAND utterance."""
    folder = shared_data / "vbd_16k_25"
    clean, _ = sf.read(folder / "clean" / "p232_003.wav", dtype="float32")
    noisy, _ = sf.read(folder / "noisy" / "p232_003.wav", dtype="float32")
    return {
        f"u{i}": {
            "noisy_sig": torch.from_numpy(noisy[i * SR : (i + 1) * SR]),
            "clean_sig": torch.from_numpy(clean[i * SR : (i + 1) * SR]),
        }
        for i in range(4)
    }


def train(items, epochs=2):
    torch.manual_seed(0)
    model = MANNER(channels=6, depth=3, attention_layers=[2])
    counter = EpochCounter(epochs)
    data = DynamicItemDataset(
        items, output_keys=["id", "noisy_sig", "clean_sig"]
    )
    brain = EnhanceBrain(
        modules={"model": model},
        opt_class=lambda params: torch.optim.Adam(params, 1e-3),
        hparams={
            "loss": WeightedCleanNoiseLoss(),
            "epoch_counter": counter,
            "valid_metrics": ["si_sdr"],
        },
        run_opts={"device": "cpu", "noprogressbar": True},
    )
    brain.fit(
        counter,
        data,
        data,
        train_loader_kwargs={"batch_size": 1},
        valid_loader_kwargs={"batch_size": 1},
    )
    return model


def test_a_nan_utterance_is_skipped_and_the_model_stays_finite(speech, caplog):
    items = {k: dict(v) for k, v in speech.items()}
    noisy = items["u2"]["noisy_sig"].clone()
    noisy[500] = float("nan")
    items["u2"]["noisy_sig"] = noisy
    with caplog.at_level(logging.WARNING):
        model = train(items)
    assert nonfinite_parameters(model) == []
    skips = [
        r.getMessage()
        for r in caplog.records
        if "skipped a training batch" in r.message
    ]
    assert len(skips) == 2 and all("Utterances: u2" in s for s in skips)
    assert "epoch 1: 1 of 4 training batches skipped" in caplog.text
    # BatchNorm re-estimation before validation leaves the batch out too
    assert "re-estimation skipped a non-finite batch (utterances: u2)" in (
        caplog.text
    )
    # the other batches trained: the weights moved
    torch.manual_seed(0)
    initial = next(
        MANNER(channels=6, depth=3, attention_layers=[2]).parameters()
    )
    assert not torch.equal(initial.detach(), next(model.parameters()).detach())


def test_every_batch_nonfinite_stops_the_run(speech):
    items = {k: dict(v) for k, v in speech.items()}
    for item in items.values():
        item["noisy_sig"] = torch.full_like(item["noisy_sig"], float("nan"))
    with pytest.raises(NonFiniteError, match="every training batch of epoch 1"):
        train(items, epochs=1)


def test_nonfinite_weights_are_not_checkpointed_loaded_or_exported(tmp_path):
    model = MANNER(channels=6, depth=3, attention_layers=[2])
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    brain = EnhanceBrain(
        modules={"model": model},
        hparams={},
        run_opts={"device": "cpu", "noprogressbar": True},
    )
    with pytest.raises(NonFiniteError, match="not saving"):
        brain.check_finite_weights("saving the checkpoint of epoch 1")
    ckpt = tmp_path / "diverged" / "model.ckpt"
    ckpt.parent.mkdir()
    torch.save(model.state_dict(), ckpt)
    fresh = MANNER(channels=6, depth=3, attention_layers=[2])
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_teacher(fresh, str(ckpt), tmp_path / "save")
