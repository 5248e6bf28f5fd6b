#!/usr/bin/env python3
"""What does distillation cost beyond running the teacher?

Times, side by side in one run (interleaved, so machine noise hits all
three alike), with the real Brains of the recipes:

* ``student``: one training step of the student alone
  (``EnhanceBrain.fit_batch``: forward, MANNER loss, backward, Adam step);
* ``teacher``: one forward pass of the frozen teacher under ``no_grad``;
* ``kd``: one MV-AT training step (``KDBrain.fit_batch`` with the terms of
  ``hparams/mvat.yaml``: student and teacher forward, feature taps, MV-AT
  and output-KD losses, backward, Adam step).

It prints medians and the overhead ratio ``(kd - teacher) / student``: the
target is at most 1.15, i.e. taps and distillation losses cost almost
nothing beyond the teacher's forward pass::

    python benchmarks/kd_overhead.py --batch 2 --seconds 2 --repeats 7
"""

import argparse
import statistics
import time

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.dataio.batch import PaddedBatch

from speechbrain_kd.brains import EnhanceBrain, KDBrain


def parse_args():
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hparams", default="hparams/mvat.yaml")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--overrides", default="", help="yaml overrides of the hparams"
    )
    return parser.parse_args()


def make_batch(batch_size, samples, seed=0):
    """A padded batch of random noisy/clean pairs."""
    generator = torch.Generator().manual_seed(seed)
    items = []
    for index in range(batch_size):
        clean = 0.1 * torch.randn(samples, generator=generator)
        noise = 0.05 * torch.randn(samples, generator=generator)
        items.append(
            {"id": f"u{index}", "noisy_sig": clean + noise, "clean_sig": clean}
        )
    return PaddedBatch(items)


def load_hparams(path, overrides):
    """A fresh instantiation of the recipe's hyperparameters."""
    with open(path, encoding="utf-8") as fin:
        return load_hyperpyyaml(fin, "data_folder: unused\n" + overrides)


def build_brain(brain_class, hparams, **kwargs):
    """A Brain of the recipe with its optimizer, in train mode."""
    brain = brain_class(
        modules={"model": hparams["model"]},
        opt_class=hparams["opt_class"],
        hparams={k: v for k, v in hparams.items() if k != "lr_scheduler"},
        **kwargs,
    )
    brain.init_optimizers()
    brain.modules.train()
    return brain


def timed(function):
    """Wall time of one call."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main():
    """Runs the benchmark and prints the table."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    hparams = load_hparams(args.hparams, args.overrides)
    student = build_brain(EnhanceBrain, hparams)
    # An independent student for the KD Brain, so both start equal.
    kd_hparams = load_hparams(args.hparams, args.overrides)
    kd = build_brain(KDBrain, kd_hparams, teacher=kd_hparams["teacher"])
    batch = make_batch(args.batch, int(args.seconds * hparams["sample_rate"]))
    noisy = batch.noisy_sig.data

    def teacher_forward():
        with torch.no_grad():
            kd.teacher(noisy)

    cases = {
        "student": lambda: student.fit_batch(batch),
        "teacher": teacher_forward,
        "kd": lambda: kd.fit_batch(batch),
    }
    for _ in range(args.warmup):
        for case in cases.values():
            case()
    times = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, case in cases.items():
            times[name].append(timed(case))
    medians = {name: statistics.median(t) for name, t in times.items()}
    ratio = (medians["kd"] - medians["teacher"]) / medians["student"]

    print(
        f"{args.hparams}: batch {args.batch} x {args.seconds:g} s, "
        f"{args.threads} threads, median of {args.repeats} after "
        f"{args.warmup} warm-up rounds (interleaved)"
    )
    print(f"| {'step':<40} | {'median s':>9} |")
    print(f"|{'-' * 42}|{'-' * 11}|")
    labels = {
        "student": "student training step (no KD)",
        "teacher": "teacher forward (no_grad)",
        "kd": "MV-AT + output-KD training step",
    }
    for name, label in labels.items():
        print(f"| {label:<40} | {medians[name]:>9.4f} |")
    print(f"(kd - teacher) / student = {ratio:.3f}  (target <= 1.15)")


if __name__ == "__main__":
    sb.utils.seed_everything(0)
    main()
