"""Trains KDRL under DDP (gloo), different data per process.

Run by ``tests/test_kdrl_brain.py`` with ``torchrun --nproc_per_node=2``;
each process writes its policy and student weights to
``<out>/rank<k>.pt``, so the test can check that DDP kept them equal.
"""

import functools
import os
import sys

import torch

import speechbrain as sb
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.utils.epoch_loop import EpochCounter
from speechbrain_kd.brains import KDRLBrain
from speechbrain_kd.distill import OutputDistillTerm
from speechbrain_kd.distill.kdrl import PolicyNetwork
from speechbrain_kd.lobes.wave_u_net import WaveUNet
from speechbrain_kd.losses import mse_loss_masked


def main(out):
    """Two epochs of two batches per process.

    Arguments
    ---------
    out : str
        Where each process writes its weights.
    """
    run_opts = {
        "device": "cpu",
        "distributed_launch": True,
        "distributed_backend": "gloo",
        "noprogressbar": True,
    }
    sb.utils.distributed.ddp_init_group(run_opts)
    rank = int(os.environ["RANK"])
    torch.manual_seed(0)
    distance = functools.partial(mse_loss_masked, reduction="none")
    student = WaveUNet(width=2, depth=3)
    policy = PolicyNetwork(800)
    brain = KDRLBrain(
        modules={"model": student},
        opt_class=lambda params: torch.optim.SGD(params, 0.1),
        hparams={
            "distill_terms": [
                OutputDistillTerm(
                    distance, name="hard", target="clean", pass_noisy=False
                ),
                OutputDistillTerm(distance, name="soft", pass_noisy=False),
            ],
            "distance": distance,
            "policy": policy,
            "policy_opt_class": lambda params: torch.optim.SGD(params, 1.0),
            "epoch_counter": EpochCounter(2),
        },
        run_opts=run_opts,
        teacher=WaveUNet(width=3, depth=3),
    )
    generator = torch.Generator().manual_seed(rank + 1)
    items = [
        {
            "id": f"r{rank}u{i}",
            "noisy_sig": 0.3 * torch.randn(800, generator=generator),
            "clean_sig": 0.3 * torch.randn(800, generator=generator),
        }
        for i in range(4)
    ]
    loader = torch.utils.data.DataLoader(
        items, batch_size=2, collate_fn=PaddedBatch
    )
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    brain.fit(EpochCounter(2), loader, progressbar=False)
    changed = any(
        not torch.equal(before[k], v) for k, v in policy.state_dict().items()
    )
    assert changed, "the policy did not train"
    torch.save(
        {"policy": policy.state_dict(), "student": student.state_dict()},
        os.path.join(out, f"rank{rank}.pt"),
    )
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
