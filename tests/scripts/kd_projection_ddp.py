"""Trains a KD student with a learnable projection term under DDP (gloo).

Run by ``tests/test_distill_contract.py`` with ``torchrun
--nproc_per_node=2``; each process writes its projection weights to
``<out>/rank<k>.pt``, so the test can check that DDP kept them equal.
"""

import os
import sys

import torch

import speechbrain as sb
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.utils.epoch_loop import EpochCounter
from speechbrain_kd.brains import KDBrain
from speechbrain_kd.distill import FeatureDistillTerm, FeatureMSELoss
from speechbrain_kd.lobes.manner import MANNER
from speechbrain_kd.losses import WeightedCleanNoiseLoss


def main(out):
    """Two epochs of two batches per process, different data per rank."""
    run_opts = {
        "device": "cpu",
        "distributed_launch": True,
        "distributed_backend": "gloo",
        "noprogressbar": True,
    }
    sb.utils.distributed.ddp_init_group(run_opts)
    rank = int(os.environ["RANK"])
    torch.manual_seed(0)
    student = MANNER(channels=6, depth=2, attention_layers=[1])
    teacher = MANNER(channels=12, depth=2, attention_layers=[1])
    term = FeatureDistillTerm(
        [("encoder.1", "encoder.1")],
        FeatureMSELoss(),
        projection=torch.nn.Conv1d(24, 48, 1),
        name="hint",
    )
    brain = KDBrain(
        modules={"model": student},
        opt_class=lambda params: torch.optim.Adam(params, 1e-2),
        hparams={"loss": WeightedCleanNoiseLoss(), "distill_terms": [term]},
        run_opts=run_opts,
        teacher=teacher,
    )
    generator = torch.Generator().manual_seed(rank + 1)
    items = [
        {
            "id": f"r{rank}u{i}",
            "noisy_sig": torch.randn(1600, generator=generator),
            "clean_sig": torch.randn(1600, generator=generator),
        }
        for i in range(4)
    ]
    loader = torch.utils.data.DataLoader(
        items, batch_size=2, collate_fn=PaddedBatch
    )
    before = term.projection.weight.detach().clone()
    brain.fit(EpochCounter(2), loader, progressbar=False)
    weight = term.projection.weight.detach()
    assert not torch.equal(weight, before), "the projection did not train"
    torch.save(weight, os.path.join(out, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
