#!/usr/bin/env python3
"""The lightweight Wave-U-Net beside the plain one of the same widths, side
by side in one run on one CPU thread: parameters, MACs per second of audio
and offline RTF (rounds of all models interleaved, median over rounds)::

    python benchmarks/light_wave_u_net.py --seconds 4 --threads 1
"""

import argparse
import pathlib
import statistics

from speechbrain_kd.profiling import (
    count_macs,
    count_parameters,
    load_module_from_hparams,
    make_example_input,
    measure_rtf,
)

YAML = (
    pathlib.Path(__file__).resolve().parents[1]
    / "hparams"
    / "models"
    / "light_wave_u_net.yaml"
)


def parse_args():
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--widths", type=int, nargs="+", default=[24, 12])
    parser.add_argument("--rounds", type=int, default=5)
    return parser.parse_args()


def main():
    """Prints the table."""
    args = parse_args()
    models = {}
    for width in args.widths:
        for block in ("conv", "separable"):
            overrides = {"width": width, "block": block}
            models[(width, block)] = load_module_from_hparams(
                YAML, overrides=overrides
            ).eval()
    audio = {k: make_example_input(m, args.seconds) for k, m in models.items()}
    rtfs = {k: [] for k in models}
    for _ in range(args.rounds):
        for key, model in models.items():
            rtfs[key].append(
                measure_rtf(
                    model,
                    audio[key],
                    args.seconds,
                    threads=args.threads,
                    warmup=1,
                    repeats=3,
                )["rtf"]
            )
    print(
        f"{args.seconds:g} s input, {args.threads} thread(s), median of "
        f"{args.rounds} interleaved rounds"
    )
    print(
        f"{'model':<28} {'params':>10} {'GMAC/s':>8} {'RTF':>8} "
        f"{'params':>7} {'MACs':>7} {'RTF':>7}"
    )
    print(f"{'':<28} {'':>10} {'':>8} {'':>8} {'(ratio to plain)':>23}")
    for width in args.widths:
        plain = None
        for block in ("conv", "separable"):
            key = (width, block)
            params = count_parameters(models[key])["total"]
            macs = count_macs(models[key], audio[key]) / args.seconds
            rtf = statistics.median(rtfs[key])
            if plain is None:
                plain = (params, macs, rtf)
            name = f"Wave-U-Net {width}" + (
                " (plain)" if block == "conv" else " light (DS+SE)"
            )
            print(
                f"{name:<28} {params:>10,} {macs / 1e9:>8.3f} {rtf:>8.4f} "
                f"{params / plain[0]:>7.3f} {macs / plain[1]:>7.3f} "
                f"{rtf / plain[2]:>7.3f}"
            )


if __name__ == "__main__":
    main()
