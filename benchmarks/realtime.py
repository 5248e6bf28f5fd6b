#!/usr/bin/env python3
"""Real-time figures on one CPU thread, side by side in one run.

* streaming RT-SENet-S and -M through ``StreamingEnhancer``, at the native
  hop (lowest latency) and with blocks of several hops: median time per
  block, RTF (time / audio duration) and algorithmic latency;
* the full-band student (FullBandNet, 48 kHz) streamed the same way, on
  the same number of seconds of 48 kHz audio;
* offline RTF of MANNER-S-1.5GF and MANNER-B on the same audio.

Targets: RT-SENet-S streaming RTF <= 0.1 on one thread with an
algorithmic latency <= 32 ms; the full-band student RTF <= 0.02 at 48 kHz
with a latency <= 20 ms::

    python benchmarks/realtime.py --seconds 4 --threads 1
"""

import argparse
import pathlib
import statistics
import time

import torch

from speechbrain_kd.pretrained import StreamingEnhancer
from speechbrain_kd.profiling import load_module_from_hparams

MODELS = pathlib.Path(__file__).resolve().parents[1] / "hparams" / "models"


def parse_args():
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument(
        "--blocks",
        type=int,
        nargs="+",
        default=[1, 8],
        help="streaming block sizes, in native hops",
    )
    parser.add_argument("--repeats", type=int, default=3)
    return parser.parse_args()


def preset(name):
    """A model preset of hparams/models in eval mode."""
    return load_module_from_hparams(MODELS / f"{name}.yaml").eval()


def stream_once(model, audio, block_hops, sample_rate, compile=False):
    """Streams ``audio`` block by block; returns per-block seconds."""
    streamer = StreamingEnhancer(model, block_hops, sample_rate, compile)
    times = []
    for block in audio.split(streamer.block):
        start = time.perf_counter()
        streamer.process(block)
        times.append(time.perf_counter() - start)
    streamer.flush()
    return times, streamer


def offline_once(model, audio):
    """Seconds of one offline forward pass."""
    with torch.no_grad():
        start = time.perf_counter()
        model(audio[None])
        return time.perf_counter() - start


def main():
    """Runs the benchmark and prints the table."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    samples = int(args.seconds * args.sample_rate)
    audio = 0.1 * torch.randn(
        samples, generator=torch.Generator().manual_seed(0)
    )
    rows = []
    full_band_audio = 0.1 * torch.randn(
        int(args.seconds * 48000), generator=torch.Generator().manual_seed(0)
    )
    streamed = [
        ("rt_senet_s", audio, args.sample_rate),
        ("rt_senet_m", audio, args.sample_rate),
        ("full_band", full_band_audio, 48000),
    ]
    for name, signal, rate in streamed:
        model = preset(name)
        cases = [(b, False) for b in args.blocks]
        cases += [(b, True) for b in args.blocks]
        for block_hops, compiled in cases:
            per_block, streamer = [], None
            for repeat in range(args.repeats + 1):
                times, streamer = stream_once(
                    model, signal, block_hops, rate, compiled
                )
                if repeat:  # the first pass warms up
                    per_block.extend(times)
            block_s = streamer.block / rate
            median = statistics.median(per_block)
            how = "TorchScript" if compiled else "eager"
            rows.append(
                (
                    f"{name} stream {how}, block {streamer.block}",
                    f"{median * 1000:.2f} ms / {block_s * 1000:.0f} ms",
                    median / block_s,
                    f"{streamer.latency_ms:.1f}",
                )
            )
    for name in ("manner_s_1.5gf", "manner_b"):
        model = preset(name)
        offline_once(model, audio)  # warm-up
        median = statistics.median(
            offline_once(model, audio) for _ in range(args.repeats)
        )
        rows.append(
            (
                f"{name} offline",
                f"{median:.2f} s / {args.seconds:g} s",
                median / args.seconds,
                "whole file",
            )
        )
    print(
        f"{args.seconds:g} s of audio at {args.sample_rate} Hz, "
        f"{args.threads} thread(s), median over {args.repeats} runs"
    )
    print(
        f"| {'model':<42} | {'time per block':>22} | {'RTF':>6} | latency ms |"
    )
    print(f"|{'-' * 44}|{'-' * 24}|{'-' * 8}|{'-' * 12}|")
    for label, per, rtf, latency in rows:
        print(f"| {label:<42} | {per:>22} | {rtf:>6.3f} | {latency:>10} |")
    best = min(
        (rtf, float(latency))
        for label, _, rtf, latency in rows
        if label.startswith("rt_senet_s stream") and float(latency) <= 32
    )
    verdict = "met" if best[0] <= 0.1 else "NOT met"
    print(
        f"target RT-SENet-S streaming RTF <= 0.1 at latency <= 32 ms: "
        f"{verdict} (best RTF {best[0]:.3f} at {best[1]:g} ms)"
    )
    best = min(
        (rtf, float(latency))
        for label, _, rtf, latency in rows
        if label.startswith("full_band stream") and float(latency) <= 20
    )
    verdict = "met" if best[0] <= 0.02 else "NOT met"
    print(
        f"target full-band streaming RTF <= 0.02 at 48 kHz, latency <= 20 "
        f"ms: {verdict} (best RTF {best[0]:.3f} at {best[1]:g} ms)"
    )


if __name__ == "__main__":
    main()
