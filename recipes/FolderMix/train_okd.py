#!/usr/bin/env python3
"""MetricGAN-OKD on mixtures of any clean-speech folder and noise folder.

The listening-enhancement setting of MetricGAN-OKD (low SNRs) with the
same Brain as the VoiceBank-DEMAND recipe::

    python recipes/FolderMix/train_okd.py hparams/okd_listening.yaml \
        --clean_folder /path/to/sentences --noise_folder /path/to/noise

The mixtures and manifests are made once by
``speechbrain_kd.data.folder_mix.prepare_folder_mix`` (see the yaml for
the SNR ranges and splits).
"""

import sys

from folder_mix_recipe import (
    exit_with_message,
    fit_and_test,
    folder_mix_datasets,
    load_recipe,
)

import speechbrain as sb
from speechbrain_kd.brains import OKDMetricGANBrain
from speechbrain_kd.recipe import USER_ERRORS, yaml_run_options


def make_brain(hparams, run_opts):
    """The MetricGAN-OKD Brain, with every yaml key it uses.

    Arguments
    ---------
    hparams : dict
        The loaded yaml.
    run_opts : dict
        SpeechBrain run options.

    Returns
    -------
    OKDMetricGANBrain
        The Brain.
    """
    critic_eval = hparams["critic_eval_in_generator_phase"]
    return OKDMetricGANBrain(
        modules=hparams["modules"],
        hparams={
            "target_metrics": hparams["target_metrics"],
            "okd_loss": hparams["okd_loss"],
            "g_opt_class": hparams["g_opt_class"],
            "d_opt_class": hparams["d_opt_class"],
            "utterances_per_epoch": hparams["utterances_per_epoch"],
            "historical_fraction": hparams["historical_fraction"],
            "historical_folder": hparams["historical_folder"],
            "generator_start_epoch": hparams["generator_start_epoch"],
            "critic_eval_in_generator_phase": critic_eval,
            "seed": hparams["seed"],
            "sample_rate": hparams["sample_rate"],
            "epoch_counter": hparams["epoch_counter"],
            "valid_metrics": hparams["valid_metrics"],
            "test_metrics": hparams["test_metrics"],
            "metric_jobs": hparams["metric_jobs"],
            "metric_timeout": hparams["metric_timeout"],
            "selection_metric": hparams["selection_metric"],
            "selection_start_epoch": hparams["selection_start_epoch"],
            "ckpt_max_key": hparams["ckpt_max_key"],
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
                "seed": hparams["seed"],
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
