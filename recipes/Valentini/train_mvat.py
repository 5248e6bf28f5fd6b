#!/usr/bin/env python3
"""Knowledge distillation on VoiceBank-DEMAND: MV-AT, its ablations, CNNC.

Distils a trained teacher into a small student with the terms declared in
the yaml (``hparams/mvat.yaml``: MV-AT with dual depth plus output KD;
``mvat_no_kd``, ``mvat_l2``, ``mvat_no_dual_depth``, ``single_view_at``
and ``kd_only`` for the paper's Table 3; ``cnnc*.yaml`` for CNNC-Distill
into RT-SENet)::

    python recipes/Valentini/train_teacher.py hparams/manner_teacher.yaml \
        --data_folder /path/to/VoiceBank-DEMAND
    python recipes/Valentini/train_mvat.py hparams/mvat.yaml \
        --data_folder /path/to/VoiceBank-DEMAND \
        --teacher_source results/manner_teacher/100

``teacher_source`` is a training output folder (its best checkpoint by
validation PESQ is used), a checkpoint folder, an official MANNER
checkpoint or a HuggingFace id.
"""

import sys

from valentini_recipe import (
    exit_with_message,
    fit_and_test,
    load_recipe,
    valentini_datasets,
)

import speechbrain as sb
from speechbrain_kd.brains import KDBrain
from speechbrain_kd.brains.teacher import HOW_TO_GET_A_TEACHER
from speechbrain_kd.recipe import USER_ERRORS, yaml_run_options


def make_brain(hparams, run_opts):
    """The distillation Brain, with every yaml key it uses.

    Arguments
    ---------
    hparams : dict
        The loaded yaml.
    run_opts : dict
        SpeechBrain run options.

    Returns
    -------
    KDBrain
        The Brain (its teacher loaded from ``teacher_source``).
    """
    return KDBrain(
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
            "teacher": hparams["teacher"],
            "teacher_source": hparams["teacher_source"],
            "distill_terms": hparams["distill_terms"],
            "supervised_weight": hparams["supervised_weight"],
            "student_input": hparams["student_input"],
            "teacher_input": hparams["teacher_input"],
            "teacher_cache": hparams["teacher_cache"],
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
    if not hparams["teacher_source"]:
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
        datasets = valentini_datasets(
            data_folder=hparams["data_folder"],
            prepare_folder=hparams["prepare_folder"],
            valid_speakers=hparams["data"]["valid_speakers"],
            sample_rate=hparams["sample_rate"],
            skip_prep=hparams["skip_prep"],
            manifests=(
                hparams["data"]["train_json"],
                hparams["data"]["valid_json"],
                hparams["data"]["test_json"],
            ),
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
