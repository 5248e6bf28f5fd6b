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

from valentini_recipe import (
    exit_with_message,
    fit_and_test,
    load_recipe,
    valentini_datasets,
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
