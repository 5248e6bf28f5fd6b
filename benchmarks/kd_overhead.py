#!/usr/bin/env python3
"""What does distillation cost beyond running the teacher?

Times, side by side in one run (interleaved, so machine noise hits all
three alike), with the real Brains of the recipes:

* ``student``: one training step of the student alone
  (``EnhanceBrain.fit_batch``: forward, MANNER loss, backward, Adam step);
* ``teacher``: one forward pass of the frozen teacher under ``no_grad``;
* one KD training step per yaml (``KDBrain.fit_batch`` with its terms:
  student and teacher forward, feature taps, distillation losses,
  backward, Adam step): by default ``hparams/mvat_no_kd.yaml`` (MV-AT
  alone: taps + 12 attention-transfer terms) and ``hparams/mvat.yaml``
  (MV-AT + output KD, a second full MANNER loss against the teacher).

It prints medians and, per KD yaml, the overhead ratio
``(kd - teacher) / student``: the target is at most 1.15, i.e. taps and
attention-transfer losses cost almost nothing beyond the teacher's
forward pass::

    python benchmarks/kd_overhead.py --batch 2 --seconds 2 --repeats 7
"""

import argparse
import functools
import statistics
import time

import torch

import speechbrain as sb
from speechbrain.dataio.batch import PaddedBatch
from speechbrain_kd.brains import EnhanceBrain, KDBrain
from speechbrain_kd.recipe import load_hparams_file


def parse_args():
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--hparams",
        nargs="+",
        default=["hparams/mvat_no_kd.yaml", "hparams/mvat.yaml"],
        help="KD recipes to time (the first also gives student/teacher)",
    )
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
    return load_hparams_file(path, "data_folder: unused\n" + overrides)


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
    hparams = load_hparams(args.hparams[0], args.overrides)
    student = build_brain(EnhanceBrain, hparams)
    batch = make_batch(args.batch, int(args.seconds * hparams["sample_rate"]))
    noisy = batch.noisy_sig.data
    teacher = hparams["teacher"].eval()

    def teacher_forward():
        with torch.no_grad():
            teacher(noisy)

    cases = {
        "student training step (no KD)": lambda: student.fit_batch(batch),
        "teacher forward (no_grad)": teacher_forward,
    }
    for path in args.hparams:
        # An independent student per Brain, so all start equal.
        kd_hparams = load_hparams(path, args.overrides)
        kd = build_brain(KDBrain, kd_hparams, teacher=teacher)
        cases[f"KD step, {path}"] = functools.partial(kd.fit_batch, batch)
    for _ in range(args.warmup):
        for case in cases.values():
            case()
    times = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, case in cases.items():
            times[name].append(timed(case))
    medians = {name: statistics.median(t) for name, t in times.items()}
    student_s, teacher_s = list(medians.values())[:2]

    print(
        f"batch {args.batch} x {args.seconds:g} s, {args.threads} threads, "
        f"median of {args.repeats} after {args.warmup} warm-up rounds "
        "(interleaved)"
    )
    print(f"| {'step':<44} | {'median s':>9} | {'ratio':>6} |")
    print(f"|{'-' * 46}|{'-' * 11}|{'-' * 8}|")
    for name, median in medians.items():
        ratio = ""
        if name.startswith("KD step"):
            ratio = f"{(median - teacher_s) / student_s:.3f}"
        print(f"| {name:<44} | {median:>9.4f} | {ratio:>6} |")
    print("ratio = (KD step - teacher forward) / student step; target <= 1.15")


if __name__ == "__main__":
    sb.utils.seed_everything(0)
    main()
