"""Peak memory and time of chunked vs unchunked enhancement.

Enhances 60 s of a synthetic signal with a randomly initialised
MANNER-S-1.5GF (``hparams/models/manner_s_1.5gf.yaml``) loaded through
:class:`speechbrain_kd.pretrained.KDEnhancement` from a temporary model
folder, once in a single pass and once per chunk setting, and prints peak
memory (``speechbrain_kd.profiling.peak_memory``: PyTorch CPU allocator,
over the level before the call), wall time (median of ``--repeats``) and
the SNR / max abs difference of the chunked output against the unchunked
one.

Usage::

    python benchmarks/chunked_memory.py [--seconds 60] [--repeats 3]
"""

import argparse
import math
import os
import pathlib
import statistics
import sys
import tempfile
import time

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from speechbrain_kd.hyperyaml import resolved_nodes  # noqa: E402
from speechbrain_kd.pretrained import KDEnhancement  # noqa: E402
from speechbrain_kd.pretrained.folder import write_hyperparams, write_parameters  # noqa: E402
from speechbrain_kd.profiling import peak_memory  # noqa: E402

MODEL = """\
model: !new:speechbrain_kd.lobes.manner.MANNER
    channels: 12
    depth: 3
    attention_layers: [2]
"""


class Enhance(torch.nn.Module):
    """``enhance_batch`` with fixed chunking, as a module for profiling."""

    def __init__(self, enhancer, chunk_seconds, overlap_seconds):
        super().__init__()
        self.enhancer = enhancer
        self.chunk_seconds = chunk_seconds
        self.overlap_seconds = overlap_seconds

    def forward(self, x):
        """Enhances ``x``."""
        return self.enhancer.enhance_batch(
            x,
            chunk_seconds=self.chunk_seconds,
            overlap_seconds=self.overlap_seconds,
        )


def signal(seconds, rate=16000):
    """A modulated tone plus noise, ``[1, time]``."""
    generator = torch.Generator().manual_seed(1)
    t = torch.arange(round(seconds * rate)) / rate
    envelope = 0.5 + 0.5 * torch.sin(2 * math.pi * 0.7 * t) ** 2
    tone = torch.sin(2 * math.pi * 220 * t + 3 * torch.sin(2 * math.pi * 3 * t))
    noise = torch.randn(t.shape[0], generator=generator)
    return (0.3 * envelope * tone + 0.05 * noise).unsqueeze(0)


def main():
    """Runs the benchmark and prints a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    folder = pathlib.Path(tempfile.mkdtemp())
    node = resolved_nodes(MODEL)["model"]
    write_hyperparams(folder, 16000, node)
    from speechbrain_kd.lobes.manner import MANNER

    write_parameters(folder, MANNER(channels=12, depth=3, attention_layers=[2]))
    enhancer = KDEnhancement.from_hparams(
        source=str(folder),
        savedir=str(folder / "collected"),
        run_opts={"device": "cpu"},
    )
    noisy = signal(args.seconds)
    settings = [(None, "unchunked", args.seconds + 1, 1.0)]
    settings += [
        (c, f"{c:g}-s chunks, {o:g}-s overlap", c, o)
        for c, o in ((10.0, 1.0), (4.0, 0.5), (2.0, 0.25))
    ]
    reference = None
    print(
        f"MANNER-S-1.5GF (random weights), {args.seconds:g} s at 16 kHz, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}\n"
    )
    print(
        "| processing | peak memory (MiB) | time (s) | SNR vs unchunked "
        "(dB) | max abs diff |"
    )
    print("|---|---|---|---|---|")
    for _, name, chunk, overlap in settings:
        module = Enhance(enhancer, chunk, overlap)
        peak = peak_memory(module, noisy)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            output = module(noisy)
            times.append(time.perf_counter() - start)
        if reference is None:
            reference = output
            snr, diff = "-", "-"
        else:
            error = output - reference
            ratio = reference.pow(2).sum() / error.pow(2).sum()
            snr = f"{10 * torch.log10(ratio).item():.1f}"
            diff = f"{error.abs().max().item():.2e}"
        print(
            f"| {name} | {peak / 2**20:.1f} | "
            f"{statistics.median(times):.2f} | {snr} | {diff} |"
        )
    print(f"\noutput peak |y| = {reference.abs().max().item():.3g}")


if __name__ == "__main__":
    main()
