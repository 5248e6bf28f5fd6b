#!/usr/bin/env python3
"""Supervised training on TIMIT + NOISEX-92 (KDRL's protocol).

Trains the Wave-U-Net teacher (``hparams/wave_u_net_teacher_timit.yaml``)
or the non-KD student (``hparams/wave_u_net_student_timit.yaml``)::

    python recipes/TIMIT/train_teacher.py \
        hparams/wave_u_net_teacher_timit.yaml \
        --timit_folder /path/to/TIMIT --noisex_folder /path/to/NOISEX-92

Outputs go to ``results/<experiment_name>/<seed>``; an interrupted run
resumes from its last checkpoint when started again with the same command.
"""

import sys

from timit_recipe import (
    exit_with_message,
    fit_and_test,
    load_recipe,
    timit_datasets,
)

import speechbrain as sb
from speechbrain_kd.brains import EnhanceBrain
from speechbrain_kd.recipe import USER_ERRORS, yaml_run_options


def make_brain(hparams, run_opts):
    """The supervised Brain, with every yaml key it uses.

    Arguments
    ---------
    hparams : dict
        The loaded yaml.
    run_opts : dict
        SpeechBrain run options.

    Returns
    -------
    EnhanceBrain
        The Brain.
    """
    return EnhanceBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams={
            "loss": hparams["loss"],
            "sample_rate": hparams["sample_rate"],
            "epoch_counter": hparams["epoch_counter"],
            "lr_scheduler": hparams["lr_scheduler"],
            "valid_metrics": hparams["valid_metrics"],
            "test_metrics": hparams["test_metrics"],
            "metric_jobs": hparams["metric_jobs"],
            "ckpt_max_key": hparams["ckpt_max_key"],
            "bn_recalibration_batches": hparams["bn_recalibration_batches"],
            "valid_interval": hparams.get("valid_interval", 1),
            "train_logger": hparams["train_logger"],
            "output_folder": hparams["output_folder"],
            "save_enhanced": hparams["save_enhanced"],
            **yaml_run_options(hparams),
        },
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )


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
        datasets = timit_datasets(
            timit_folder=hparams["timit_folder"],
            noisex_folder=hparams["noisex_folder"],
            prepare_folder=hparams["prepare_folder"],
            data=hparams["data"],
            sample_rate=hparams["sample_rate"],
            skip_prep=hparams["skip_prep"],
            segment_seconds=hparams["segment_seconds"],
            segment_hop_seconds=hparams["segment_hop_seconds"],
        )
        brain = make_brain(hparams, run_opts)
        fit_and_test(
            brain,
            datasets,
            epoch_counter=hparams["epoch_counter"],
            train_loader_kwargs=hparams["train_dataloader_opts"],
            valid_loader_kwargs=hparams["valid_dataloader_opts"],
            test_loader_kwargs=hparams["test_dataloader_opts"],
            max_key=hparams["ckpt_max_key"],
            selection_split=hparams.get("selection_split", "valid"),
        )
    except USER_ERRORS as error:
        exit_with_message(error)


if __name__ == "__main__":
    main(sys.argv[1:])
