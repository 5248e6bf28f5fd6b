#!/usr/bin/env python3
"""Spatial injection (Xu, Tu, Yang; paper 002) on binaurally simulated data.

One script for the three trainings of the pipeline, each a yaml:

    # 1. the binaural MHCA-CRN teacher
    python recipes/Binaural/train_spatial.py hparams/mhca_crn_teacher.yaml \
        --speech_folder WSJ0 --noise_folder NOISEX-92 --ir_folder BRIRs
    # 2. the bad student: SJEN without KD
    python recipes/Binaural/train_spatial.py hparams/sjen_no_kd.yaml ...
    # 3. SJEN with both
    python recipes/Binaural/train_spatial.py hparams/sjen.yaml ... \
        --teacher_source results/mhca_crn_teacher/100 \
        --bad_student_source results/sjen_no_kd/100

Outputs go to ``results/<experiment_name>/<seed>``; an interrupted run
resumes from its last checkpoint when started again with the same command.
"""

import json
import pathlib
import sys

import speechbrain as sb
from speechbrain.utils.distributed import run_on_main
from speechbrain_kd.brains import SpatialInjectionBrain
from speechbrain_kd.data.binaural_folders import prepare_binaural
from speechbrain_kd.data.pipelines import dataio_prep
from speechbrain_kd.recipe import (
    USER_ERRORS,
    exit_with_message,
    fit_and_test,
    load_recipe,
    yaml_run_options,
)


def binaural_datasets(hparams):
    """Simulates the mixtures once (main process) and loads the datasets.

    Arguments
    ---------
    hparams : dict
        The loaded yaml (its data keys).

    Returns
    -------
    dict
        ``train``, ``valid`` and ``test`` datasets with ``binaural_sig``,
        and ``test_snr<N>`` for every test SNR that has utterances.
    """
    run_on_main(
        prepare_binaural,
        kwargs={
            "speech_folder": hparams["speech_folder"],
            "noise_folder": hparams["noise_folder"],
            "ir_folder": hparams["ir_folder"],
            "save_folder": hparams["prepare_folder"],
            "sample_rate": hparams["sample_rate"],
            "levels_db": hparams["levels_db"],
            "train_snr": hparams["train_snr"],
            "test_snrs": hparams["test_snrs"],
            "valid_fraction": hparams["valid_fraction"],
            "test_fraction": hparams["test_fraction"],
            "seed": hparams["mix_seed"],
            "skip_prep": hparams["skip_prep"],
        },
    )
    datasets = dataio_prep(
        train_json=hparams["data"]["train_json"],
        valid_json=hparams["data"]["valid_json"],
        test_json=hparams["data"]["test_json"],
        sample_rate=hparams["sample_rate"],
        segment_seconds=hparams["segment_seconds"],
        segment_hop_seconds=hparams["segment_hop_seconds"],
        binaural=True,
    )
    for snr in hparams["test_snrs"]:
        manifest = pathlib.Path(hparams["prepare_folder"]) / (
            f"test_snr{int(snr)}.json"
        )
        if not json.loads(manifest.read_text()):
            continue  # no test utterance at this SNR (tiny test sets)
        per_snr = dataio_prep(
            test_json=manifest,
            sample_rate=hparams["sample_rate"],
            binaural=True,
        )
        datasets[f"test_snr{int(snr)}"] = per_snr["test"]
    return datasets


def test_per_snr(brain, datasets, hparams):
    """Tests on each SNR's set apart (Table 1), after the whole test set.

    Writes ``test_summary_snr<N>.json`` and ``test_per_utterance_snr<N>.csv``
    beside the overall report.

    Arguments
    ---------
    brain : SpatialInjectionBrain
        The trained Brain.
    datasets : dict
        Holds ``test_snr<N>`` sets.
    hparams : dict
        The loaded yaml.
    """
    for snr in hparams["test_snrs"]:
        name = f"test_snr{int(snr)}"
        if name not in datasets:
            continue
        brain.test_report_suffix = f"_snr{int(snr)}"
        brain.evaluate(
            datasets[name],
            max_key=hparams["ckpt_max_key"],
            test_loader_kwargs=hparams["test_dataloader_opts"],
        )
    brain.test_report_suffix = ""


def make_brain(hparams, run_opts):
    """The Brain, with every yaml key it uses.

    Arguments
    ---------
    hparams : dict
        The loaded yaml.
    run_opts : dict
        SpeechBrain run options.

    Returns
    -------
    SpatialInjectionBrain
        The Brain.
    """
    return SpatialInjectionBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams={
            "loss": hparams["loss"],
            "student_input": hparams["student_input"],
            "teacher_input": hparams["teacher_input"],
            "teacher": hparams["teacher"],
            "teacher_source": hparams["teacher_source"],
            "bad_student": hparams["bad_student"],
            "bad_student_source": hparams["bad_student_source"],
            "distill_terms": hparams["distill_terms"],
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
        datasets = binaural_datasets(hparams)
        brain = make_brain(hparams, run_opts)
        fit_and_test(
            brain,
            datasets,
            epoch_counter=hparams["epoch_counter"],
            train_loader_kwargs=hparams["train_dataloader_opts"],
            valid_loader_kwargs=hparams["valid_dataloader_opts"],
            test_loader_kwargs=hparams["test_dataloader_opts"],
            max_key=hparams["ckpt_max_key"],
        )
        test_per_snr(brain, datasets, hparams)
    except USER_ERRORS as error:
        exit_with_message(error)


if __name__ == "__main__":
    main(sys.argv[1:])
