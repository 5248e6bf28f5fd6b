#!/usr/bin/env python3
"""Supervised training of an enhancement model on VoiceBank-DEMAND.

Trains the MANNER-B teacher (``hparams/manner_teacher.yaml``) or a student
preset without distillation (``hparams/manner_baseline.yaml``)::

    python recipes/Valentini/train_teacher.py hparams/manner_teacher.yaml \
        --data_folder /path/to/VoiceBank-DEMAND

Outputs go to ``results/<experiment_name>/<seed>``: checkpoints (best
validation PESQ kept), ``train_log.txt``, enhanced test wavs,
``test_per_utterance.csv`` and ``test_summary.json``. An interrupted run
resumes from its last checkpoint when started again with the same command.
"""

import sys

import speechbrain as sb
from valentini_recipe import exit_with_message, load_recipe, run

from speechbrain_kd.brains import EnhanceBrain


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
        run(EnhanceBrain, hparams, run_opts)
    except (ValueError, FileNotFoundError) as error:
        exit_with_message(error)


if __name__ == "__main__":
    main(sys.argv[1:])
