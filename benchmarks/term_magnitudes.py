#!/usr/bin/env python3
"""How large is each term of a KD objective at initialisation?

Builds each recipe's student and teacher from its yaml (same seed, the
student first, as the recipes do), runs ``KDBrain.compute_objectives`` in
the training stage on real 4-s VoiceBank-DEMAND segments and prints every
logged term (``loss_supervised``, ``loss_<name>`` of each distillation
term, each with its yaml weight applied) and its ratio to the supervised
loss. The teacher is the yaml's, freshly initialised, unless
``--teacher_source`` gives trained weights::

    python benchmarks/term_magnitudes.py \\
        --hparams hparams/mvat.yaml hparams/single_view_at.yaml \\
        --overrides "at_time_reduction: mean"
"""

import argparse
import pathlib

import soundfile as sf
import torch

import speechbrain as sb
from speechbrain.dataio.batch import PaddedBatch
from speechbrain_kd.brains import KDBrain
from speechbrain_kd.recipe import load_hparams_file

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_PAIRS = REPO.parent / "shared" / "data" / "vbd_16k_25"


def parse_args():
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hparams", nargs="+", default=["hparams/mvat.yaml"])
    parser.add_argument(
        "--pairs",
        default=str(DEFAULT_PAIRS),
        help="folder with clean/ and noisy/ wavs of the same names",
    )
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--teacher_source", default=None)
    parser.add_argument(
        "--overrides", default="", help="yaml overrides of every hparams"
    )
    return parser.parse_args()


def segment_batches(folder, batch_size, n_batches, samples):
    """Batches of the first ``samples`` of each pair (zero-padded)."""
    folder = pathlib.Path(folder)
    clean_files = sorted((folder / "clean").glob("*.wav"))
    needed = batch_size * n_batches
    if len(clean_files) < needed:
        raise SystemExit(
            f"{folder}/clean holds {len(clean_files)} wavs, {needed} needed"
        )
    items = []
    for path in clean_files[:needed]:
        signals = {}
        for kind in ("clean", "noisy"):
            wav, _ = sf.read(folder / kind / path.name, dtype="float32")
            wav = torch.from_numpy(wav[:samples])
            signals[kind] = torch.nn.functional.pad(
                wav, (0, samples - wav.shape[0])
            )
        items.append(
            {
                "id": path.stem,
                "noisy_sig": signals["noisy"],
                "clean_sig": signals["clean"],
            }
        )
    return [
        PaddedBatch(items[i : i + batch_size])
        for i in range(0, needed, batch_size)
    ]


def term_values(path, overrides, batches, teacher_source):
    """Mean of every logged term over the batches, for one yaml."""
    text = f"data_folder: unused\nteacher_source: {teacher_source or 'null'}"
    if overrides:
        text += "\n" + overrides
    hparams = load_hparams_file(path, text)
    brain_hparams = {k: v for k, v in hparams.items() if k != "lr_scheduler"}
    teacher = hparams["teacher"] if teacher_source is None else None
    brain = KDBrain(
        modules={"model": hparams["model"]},
        hparams=brain_hparams,
        teacher=teacher,
    )
    brain.modules.train()
    brain.term_averages()
    with torch.no_grad():
        for batch in batches:
            out = brain.compute_forward(batch, sb.Stage.TRAIN)
            brain.compute_objectives(out, batch, sb.Stage.TRAIN)
    return brain.term_averages()


def main():
    """Prints one table row per (yaml, term)."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    batches = segment_batches(
        args.pairs, args.batch, args.batches, int(args.seconds * 16000)
    )
    print(
        f"{args.batches} batches of {args.batch} x {args.seconds:g} s from "
        f"{args.pairs}; teacher: {args.teacher_source or 'fresh init'}; "
        f"overrides: {args.overrides or 'none'}"
    )
    print(f"| {'yaml':<28} | {'term':<22} | {'value':>10} | {'/ sup.':>8} |")
    print(f"|{'-' * 30}|{'-' * 24}|{'-' * 12}|{'-' * 10}|")
    for path in args.hparams:
        values = term_values(path, args.overrides, batches, args.teacher_source)
        supervised = values.get("loss_supervised", float("nan"))
        for term, value in values.items():
            name = pathlib.Path(path).name
            print(
                f"| {name:<28} | {term:<22} | {value:>10.4g} | "
                f"{value / supervised:>8.3g} |"
            )


if __name__ == "__main__":
    main()
