"""A checkpoint save failing on a full disk is one error; the run resumes
from the previous checkpoint (issue 18)."""

import logging
import pathlib

import pytest
import torch

from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.epoch_loop import EpochCounter
from speechbrain_kd.brains import (
    EnhanceBrain,
    checkpoints as brain_checkpoints,
)
from speechbrain_kd.brains.checkpoints import CheckpointSaveError
from speechbrain_kd.lobes.manner import MANNER
from speechbrain_kd.losses import WeightedCleanNoiseLoss


def items():
    generator = torch.Generator().manual_seed(0)
    clean = [0.1 * torch.randn(4000, generator=generator) for _ in range(2)]
    return {
        f"u{i}": {"clean_sig": c, "noisy_sig": c + 0.05 * torch.randn_like(c)}
        for i, c in enumerate(clean)
    }


def fit(save_folder, epochs):
    torch.manual_seed(0)
    model = MANNER(channels=6, depth=2, attention_layers=[1])
    counter = EpochCounter(epochs)
    checkpointer = Checkpointer(
        save_folder, {"model": model, "counter": counter}
    )
    brain = EnhanceBrain(
        modules={"model": model},
        opt_class=lambda params: torch.optim.Adam(params, 1e-3),
        hparams={
            "loss": WeightedCleanNoiseLoss(),
            "epoch_counter": counter,
            "valid_metrics": ["si_sdr"],
            "ckpt_max_key": "si_sdr",
        },
        run_opts={"device": "cpu", "noprogressbar": True},
        checkpointer=checkpointer,
    )
    data = DynamicItemDataset(
        items(), output_keys=["id", "noisy_sig", "clean_sig"]
    )
    brain.fit(
        counter,
        data,
        data,
        train_loader_kwargs={"batch_size": 1},
        valid_loader_kwargs={"batch_size": 1},
    )
    return counter


def full_disk_save(obj, path, *args, **kwargs):
    """What ``torch.save`` did on a full tmpfs: a few bytes, then two
    chained RuntimeErrors without an errno."""
    pathlib.Path(path).write_bytes(b"PK\x03\x04")
    try:
        raise RuntimeError("basic_ios::clear: iostream error")
    except RuntimeError:
        raise RuntimeError(
            "[enforce fail at inline_container.cc:672] . unexpected pos "
            "576 vs 534"
        ) from None


def test_disk_full_during_save_is_one_error_and_resume_works(
    tmp_path, monkeypatch, caplog
):
    save = tmp_path / "save"
    fit(save, epochs=1)
    (previous,) = save.glob("CKPT+*")
    monkeypatch.setattr(torch, "save", full_disk_save)
    monkeypatch.setattr(brain_checkpoints, "free_bytes", lambda folder: 0)
    with pytest.raises(CheckpointSaveError) as error:
        fit(save, epochs=2)
    (aside,) = save.glob("incomplete-CKPT+*")
    assert str(error.value) == (
        f"no space left on the device of {save} while saving the checkpoint "
        f"of epoch 2: the incomplete checkpoint is set aside as {aside} "
        f"(delete it to free space); the run resumes from {previous} when "
        "you run the same command again after freeing space"
    )
    assert error.value.__cause__ is None and error.value.__suppress_context__
    monkeypatch.undo()
    with caplog.at_level(logging.INFO):
        counter = fit(save, epochs=2)
    assert f"Loading a checkpoint from {previous}" in caplog.text
    assert counter.current == 2


def test_other_save_errors_are_not_reported_as_a_full_disk(
    tmp_path, monkeypatch
):
    save = tmp_path / "save"

    def broken(obj, path, *args, **kwargs):
        raise RuntimeError("something else")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(RuntimeError, match="something else"):
        fit(save, epochs=1)
