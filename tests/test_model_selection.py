"""Validation where the selection metric is undefined says so (issue 18)."""

import logging

import torch

from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.epoch_loop import EpochCounter
from speechbrain_kd.brains import EnhanceBrain
from speechbrain_kd.lobes.manner import MANNER
from speechbrain_kd.losses import WeightedCleanNoiseLoss


def test_every_validation_file_too_short_for_pesq_is_said(tmp_path, caplog):
    """The checkpoint was chosen on -inf with no reason given."""
    generator = torch.Generator().manual_seed(0)
    items = {}
    for i, samples in enumerate((3000, 3200)):  # 0.19 s and 0.2 s
        clean = 0.1 * torch.randn(samples, generator=generator)
        items[f"u{i}"] = {"clean_sig": clean, "noisy_sig": 1.5 * clean}
    data = DynamicItemDataset(
        items, output_keys=["id", "noisy_sig", "clean_sig"]
    )
    model = MANNER(channels=6, depth=2, attention_layers=[1])
    counter = EpochCounter(1)
    brain = EnhanceBrain(
        modules={"model": model},
        opt_class=lambda params: torch.optim.Adam(params, 1e-3),
        hparams={
            "loss": WeightedCleanNoiseLoss(),
            "epoch_counter": counter,
            "valid_metrics": ["pesq", "si_sdr"],
            "ckpt_max_key": "pesq",
        },
        run_opts={"device": "cpu", "noprogressbar": True},
        checkpointer=Checkpointer(tmp_path, {"model": model}),
    )
    with caplog.at_level(logging.WARNING):
        brain.fit(
            counter,
            data,
            data,
            train_loader_kwargs={"batch_size": 1},
            valid_loader_kwargs={"batch_size": 1},
        )
    assert (
        "epoch 1: pesq is undefined for every one of the 2 validation "
        "utterances (the shortest lasts 0.19 s; PESQ needs 1/4 s and some "
        "speech), so this checkpoint is scored -inf and the best checkpoint "
        "cannot be chosen by pesq. Use longer validation utterances, or "
        "select on another metric (--ckpt_max_key=si_sdr, say)"
    ) in caplog.text
