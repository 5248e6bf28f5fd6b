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

import speechbrain as sb
from speechbrain.utils.distributed import run_on_main

from speechbrain_kd.brains import OKDMetricGANBrain
from speechbrain_kd.data.folder_mix import prepare_folder_mix
from speechbrain_kd.recipe import (
    datasets_from_hparams,
    exit_with_message,
    fit_and_test,
    load_recipe,
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
        run_on_main(
            prepare_folder_mix,
            kwargs={
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
        )
        datasets = datasets_from_hparams(hparams)
        fit_and_test(OKDMetricGANBrain, hparams, run_opts, datasets)
    except (ValueError, FileNotFoundError, TypeError) as error:
        exit_with_message(error)


if __name__ == "__main__":
    main(sys.argv[1:])
