#!/usr/bin/env python3
"""MetricGAN-OKD (and plain MetricGAN+) on VoiceBank-DEMAND.

One MetricGAN+ generator per target metric, trained with online knowledge
distillation among them (``OKDMetricGANBrain``)::

    python recipes/Valentini/train_okd.py hparams/okd.yaml \
        --data_folder /path/to/VoiceBank-DEMAND

``hparams/okd.yaml``: targets PESQ and CSIG; ``okd_causal.yaml``:
unidirectional (causal) generators; ``okd_4metrics.yaml``: PESQ, CSIG,
CBAK and COVL; ``metricgan_plus.yaml``: the one-generator MetricGAN+
baseline. See ``recipes/Valentini/README_OKD.md``.
"""

import sys

import speechbrain as sb
from valentini_recipe import exit_with_message, load_recipe, run

from speechbrain_kd.brains import OKDMetricGANBrain


def main(argv):
    """Runs the recipe.

    Arguments
    ---------
    argv : list of str
        Command-line arguments (``hparams.yaml`` first).
    """
    hparams_file, hparams, run_opts, overrides = load_recipe(argv)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    try:
        run(OKDMetricGANBrain, hparams, run_opts)
    except (ValueError, FileNotFoundError, TypeError) as error:
        exit_with_message(error)


if __name__ == "__main__":
    main(sys.argv[1:])
