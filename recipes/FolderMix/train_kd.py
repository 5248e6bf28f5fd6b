#!/usr/bin/env python3
"""Knowledge distillation on mixtures of any clean-speech folder and noise
folder: the lightweight Wave-U-Net student distilled from a Wave-U-Net
teacher trained by ``train_enhance.py`` (``hparams/light_wave_u_net_kd.yaml``:
cosine latent alignment + output KD)::

    python recipes/FolderMix/train_enhance.py \
        hparams/wave_u_net_folder_mix.yaml \
        --clean_folder /path/to/speech --noise_folder /path/to/cabin_noise
    python recipes/FolderMix/train_kd.py hparams/light_wave_u_net_kd.yaml \
        --clean_folder /path/to/speech --noise_folder /path/to/cabin_noise \
        --teacher_source results/wave_u_net_folder_mix/100

``teacher_source`` is a training output folder (its best checkpoint by
validation PESQ is used), a checkpoint folder or a HuggingFace id.
"""

import sys

from folder_mix_recipe import (
    exit_with_message,
    fit_and_test,
    folder_mix_datasets,
    load_recipe,
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
        datasets = folder_mix_datasets(
            mixing={
                "clean_folder": hparams["clean_folder"],
                "noise_folder": hparams["noise_folder"],
                "save_folder": hparams["prepare_folder"],
                "sample_rate": hparams["sample_rate"],
                "train_snr": hparams["train_snr"],
                "test_snr": hparams["test_snr"],
                "valid_fraction": hparams["valid_fraction"],
                "test_fraction": hparams["test_fraction"],
                "test_noise_fraction": hparams["test_noise_fraction"],
                "seed": hparams["mix_seed"],
                "skip_prep": hparams["skip_prep"],
            },
            manifests=(
                hparams["data"]["train_json"],
                hparams["data"]["valid_json"],
                hparams["data"]["test_json"],
            ),
            sample_rate=hparams["sample_rate"],
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
