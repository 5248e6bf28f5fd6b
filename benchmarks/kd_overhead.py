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
  (MV-AT + output KD, a second full MANNER loss against the teacher);
* the last KD step again with ``teacher_cache: True``, served from the
  cache (the teacher ran in the warm-up): its time over the student step.

It prints medians and, per KD yaml, the overhead ratio
``(kd - teacher) / student``: the target is at most 1.15, i.e. taps and
attention-transfer losses cost almost nothing beyond the teacher's
forward pass.

A second table does the same for KDRL (``--kdrl hparams/kdrl.yaml``:
``KDRLBrain.fit_batch``, the student, two references and the policy,
against that recipe's own student step and teacher forward); expected
about 3 (student and two references, each a forward and a backward, plus
the re-pass and the policy)::

    python benchmarks/kd_overhead.py --batch 2 --seconds 2 --repeats 7
"""

import argparse
import functools
import statistics
import time

import torch

import speechbrain as sb
from speechbrain.dataio.batch import PaddedBatch
from speechbrain_kd.brains import EnhanceBrain, KDBrain, KDRLBrain
from speechbrain_kd.losses import WaveformLoss
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
    parser.add_argument(
        "--kdrl",
        default="hparams/kdrl.yaml",
        help="KDRL recipe to time ('' to skip)",
    )
    parser.add_argument(
        "--kdrl-seconds",
        type=float,
        default=1.024,
        help="crop length of the KDRL table (its policy's input length)",
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


def measure(cases, warmup, repeats):
    """Median wall time of every case, the cases interleaved."""
    for _ in range(warmup):
        for case in cases.values():
            case()
    times = {name: [] for name in cases}
    for _ in range(repeats):
        for name, case in cases.items():
            times[name].append(timed(case))
    return {name: statistics.median(t) for name, t in times.items()}


def print_table(medians, prefix, target):
    """The table of medians and overhead ratios."""
    student_s, teacher_s = list(medians.values())[:2]
    print(f"| {'step':<44} | {'median s':>9} | {'ratio':>6} |")
    print(f"|{'-' * 46}|{'-' * 11}|{'-' * 8}|")
    for name, median in medians.items():
        ratio = ""
        if name.startswith(prefix):
            ratio = f"{(median - teacher_s) / student_s:.3f}"
        elif name.startswith(("  of which", "cached")):
            ratio = f"{median / student_s:.3f}"
        print(f"| {name:<44} | {median:>9.4f} | {ratio:>6} |")
    print(
        f"ratio = ({prefix} - teacher forward) / student step (parts and "
        f"cached: their time / student step); {target}"
    )


def kdrl_table(args):
    """Times KDRL's step against its own student step and teacher."""
    overrides = f"policy_input_length: {int(args.kdrl_seconds * 16000)}\n"
    hparams = load_hparams(args.kdrl, overrides)
    batch = make_batch(
        args.batch, int(args.kdrl_seconds * hparams["sample_rate"])
    )
    teacher = hparams["teacher"].eval()
    student_hparams = dict(hparams)
    student_hparams["loss"] = WaveformLoss(hparams["distance"].kind)
    student = build_brain(EnhanceBrain, student_hparams)
    kdrl = build_brain(
        KDRLBrain, load_hparams(args.kdrl, overrides), teacher=teacher
    )
    noisy = batch.noisy_sig.data

    def teacher_forward():
        with torch.no_grad():
            teacher(noisy)

    clean, lengths = batch.clean_sig.data, batch.noisy_sig.lengths
    with torch.no_grad():
        teacher_out = teacher(noisy)
    state = torch.stack([clean - noisy, teacher_out - noisy], dim=1)

    def policy_step():
        alpha = kdrl.policy(state)
        kdrl.policy_optimizer.zero_grad()
        ((alpha - 0.5) ** 2).mean().backward()
        kdrl.policy_optimizer.step()

    cases = {
        "student training step (no KD)": lambda: student.fit_batch(batch),
        "teacher forward (no_grad)": teacher_forward,
        f"KDRL step, {args.kdrl}": functools.partial(kdrl.fit_batch, batch),
        "  of which: both references' steps": lambda: kdrl.update_references(
            noisy, lengths, clean, teacher_out
        ),
        "  of which: re-pass (3 forwards, eval)": lambda: kdrl.repass(
            noisy, lengths, clean
        ),
        "  of which: policy forward + step": policy_step,
        "  of which: copy student to references": (
            kdrl.copy_student_to_references
        ),
    }
    medians = measure(cases, args.warmup, args.repeats)
    print(
        f"\nKDRL: batch {args.batch} x {args.kdrl_seconds:g} s, "
        f"{args.threads} threads, median of {args.repeats} after "
        f"{args.warmup} warm-up rounds (interleaved)"
    )
    print_table(medians, "KDRL step", "expected about 3")


def main():
    """Runs the benchmark and prints the tables."""
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
    # The same KD step with teacher_cache: the warm-up fills the cache, so
    # the timed steps are served from it (what epochs 2+ cost).
    cached = load_hparams(path, args.overrides + "\nteacher_cache: True")
    kd = build_brain(KDBrain, cached, teacher=teacher)
    cases[f"cached teacher, {path}"] = functools.partial(kd.fit_batch, batch)
    medians = measure(cases, args.warmup, args.repeats)
    print(
        f"batch {args.batch} x {args.seconds:g} s, {args.threads} threads, "
        f"median of {args.repeats} after {args.warmup} warm-up rounds "
        "(interleaved)"
    )
    print_table(medians, "KD step", "target <= 1.15")
    if args.kdrl:
        kdrl_table(args)


if __name__ == "__main__":
    sb.utils.seed_everything(0)
    main()
