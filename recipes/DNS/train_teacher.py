#!/usr/bin/env python3
"""Supervised training on DNS Challenge (2020) mixtures: the MANNER-S
teacher of MV-AT on DNS (``hparams/manner_s_dns_teacher.yaml``)::

    python recipes/DNS/train_teacher.py hparams/manner_s_dns_teacher.yaml \
        --dns_folder /path/to/DNS-Challenge/datasets

The training mixtures are synthesised once from the DNS ``clean/`` and
``noise/`` folders (``speechbrain_kd.data.dns.prepare_dns``); the test set
is the synthetic no-reverb one. An interrupted run resumes from its last
checkpoint when started again with the same command.
"""

import sys

from dns_recipe import (
    dns_datasets,
    exit_with_message,
    fit_and_test,
    load_recipe,
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
        datasets = dns_datasets(
            mixing={
                "dns_folder": hparams["dns_folder"],
                "save_folder": hparams["prepare_folder"],
                "sample_rate": hparams["sample_rate"],
                "hours": hparams["dns_hours"],
                "segment_seconds": hparams["dns_clip_seconds"],
                "snr": hparams["dns_snr"],
                "valid_fraction": hparams["dns_valid_fraction"],
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
