#!/usr/bin/env python3
"""Knowledge distillation on VoiceBank-DEMAND: MV-AT and its ablations.

Distils a trained MANNER teacher into a small MANNER student with the
terms declared in the yaml (``hparams/mvat.yaml``: MV-AT with dual depth
plus output KD; ``mvat_no_kd``, ``mvat_l2``, ``mvat_no_dual_depth``,
``single_view_at`` and ``kd_only`` for the paper's Table 3)::

    python recipes/Valentini/train_teacher.py hparams/manner_teacher.yaml \
        --data_folder /path/to/VoiceBank-DEMAND
    python recipes/Valentini/train_mvat.py hparams/mvat.yaml \
        --data_folder /path/to/VoiceBank-DEMAND \
        --teacher_source results/manner_teacher/100

``teacher_source`` is a training output folder (its best checkpoint by
validation PESQ is used), a checkpoint folder or a HuggingFace id.
"""

import sys

import speechbrain as sb
from valentini_recipe import exit_with_message, load_recipe, run

from speechbrain_kd.brains import KDBrain
from speechbrain_kd.brains.teacher import HOW_TO_GET_A_TEACHER


def main(argv):
    """Runs the recipe.

    Arguments
    ---------
    argv : list of str
        Command-line arguments (``hparams.yaml`` first).
    """
    hparams_file, hparams, run_opts, overrides = load_recipe(argv)
    if not hparams.get("teacher_source"):
        exit_with_message(
            f"{hparams_file} needs a teacher: pass --teacher_source. "
            + HOW_TO_GET_A_TEACHER
        )
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    try:
        run(KDBrain, hparams, run_opts)
    except (ValueError, FileNotFoundError) as error:
        exit_with_message(error)


if __name__ == "__main__":
    main(sys.argv[1:])
