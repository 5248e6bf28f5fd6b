#!/usr/bin/env python3
"""Cost of one MetricGAN-OKD epoch on this machine, measured part by part.

Times, on a 3-s utterance with the full-size models of
``hparams/okd.yaml`` (two generators, shared 16-32-64-128 critic): one
generator-phase step (both generators, OKD loss, backward, Adam), one
discriminator update, and the metric targets of one utterance (PESQ and
CSIG in this process). It then projects one epoch of the official scheme
(100 utterances; 3 x 100 critic updates on the current set, twice, plus
the 20 % historical replay after ``--epoch`` epochs)::

    python benchmarks/okd_epoch_cost.py --threads 2 --epoch 375
"""

import argparse
import pathlib
import statistics
import time

import numpy as np
import torch
from hyperpyyaml import load_hyperpyyaml

from speechbrain_kd.metrics import evaluate_pair

REPO = pathlib.Path(__file__).resolve().parents[1]


def median_seconds(function, repeats):
    """Median wall time of ``function()`` after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    """Measures and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--epoch", type=int, default=375)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with open(REPO / "hparams" / "okd.yaml") as stream:
        hparams = load_hyperpyyaml(stream, {"data_folder": "unused"})
    generators = [hparams["generator_pesq"], hparams["generator_csig"]]
    critic = hparams["discriminator"]
    loss_fn = hparams["okd_loss"]
    g_opt = torch.optim.Adam(
        [p for g in generators for p in g.parameters()], lr=5e-4
    )
    d_opt = torch.optim.Adam(critic.parameters(), lr=5e-4)
    rng = np.random.default_rng(0)
    samples = int(args.seconds * 16000)
    t = np.arange(samples) / 16000
    clean = (0.3 * np.sin(2 * np.pi * 180 * t) * np.sin(np.pi * t) ** 2).astype(
        np.float32
    )
    noisy = clean + 0.1 * rng.standard_normal(samples).astype(np.float32)
    clean_t, noisy_t = (
        torch.from_numpy(clean)[None],
        torch.from_numpy(noisy)[None],
    )

    def generator_step():
        critic.eval()
        clean_mag = generators[0].log_magnitude(clean_t)
        enhanced = [g(noisy_t, None, "log_magnitude") for g in generators]
        scores = [critic(clean_mag, e)[:, i] for i, e in enumerate(enhanced)]
        loss, _ = loss_fn(scores, enhanced)
        g_opt.zero_grad()
        loss.backward()
        g_opt.step()

    def critic_step():
        critic.train()
        clean_mag = generators[0].log_magnitude(clean_t)
        test_mag = generators[0].log_magnitude(noisy_t)
        loss = ((critic(clean_mag, test_mag) - 0.5) ** 2).mean()
        d_opt.zero_grad()
        loss.backward()
        d_opt.step()

    def targets():
        evaluate_pair(clean, noisy, 16000, ["pesq", "csig"])

    g = median_seconds(generator_step, args.repeats)
    d = median_seconds(critic_step, args.repeats)
    m = median_seconds(targets, args.repeats)
    replay = round(0.2 * 100 * (args.epoch - 1))
    d_updates = 3 * 300 + replay
    epoch = 100 * g + d_updates * d + 100 * m
    print(
        f"{args.seconds:g}-s utterance, {args.threads} thread(s), "
        f"median of {args.repeats}"
    )
    print("| part | seconds |")
    print("|---|---|")
    print(f"| generator-phase step (2 generators) | {g:.3f} |")
    print(f"| critic update | {d:.3f} |")
    print(f"| metric targets of one utterance (PESQ + CSIG) | {m:.3f} |")
    print(
        f"| projected epoch {args.epoch}: 100 G steps, {d_updates} critic "
        f"updates, 100 scorings | {epoch:.0f} |"
    )
    print(f"750 epochs at that rate: {750 * epoch / 3600:.0f} h on this CPU")


if __name__ == "__main__":
    main()
