"""Wiring shared by the VoiceBank-DEMAND (Valentini) recipes.

Each recipe script parses its arguments, creates the experiment folder
(SpeechBrain copies the *calling* script there, so that stays in the
script) and hands over to :func:`run`: data preparation on the main
process, SpeechBrain datasets, the Brain, training and the test stage.
The Brain knows no dataset and this module knows no method.
"""

import logging
import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

from speechbrain_kd.data.pipelines import dataio_prep
from speechbrain_kd.data.valentini import prepare_valentini

logger = logging.getLogger(__name__)


def load_recipe(argv):
    """Parses the command line and loads the hyperparameters.

    Arguments
    ---------
    argv : list of str
        ``hparams.yaml`` followed by SpeechBrain options and overrides.

    Returns
    -------
    tuple
        ``(hparams_file, hparams, run_opts, overrides)``.
    """
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    return hparams_file, hparams, run_opts, overrides


def run(brain_class, hparams, run_opts, **brain_kwargs):
    """Prepares Valentini, trains ``brain_class`` and runs the test stage.

    Arguments
    ---------
    brain_class : type
        ``EnhanceBrain``, ``KDBrain`` or a subclass.
    hparams : dict
        Loaded hyperparameters (see ``hparams/manner_teacher.yaml``).
    run_opts : dict
        SpeechBrain run options.
    **brain_kwargs : dict
        Extra keyword arguments of the Brain.

    Returns
    -------
    speechbrain.Brain
        The trained Brain.
    """
    run_on_main(
        prepare_valentini,
        kwargs={
            "data_folder": hparams["data_folder"],
            "save_folder": hparams["prepare_folder"],
            "valid_speakers": tuple(hparams["valid_speakers"]),
            "sample_rate": hparams["sample_rate"],
            "skip_prep": hparams["skip_prep"],
        },
    )
    datasets = dataio_prep(
        train_json=hparams["train_json"],
        valid_json=hparams["valid_json"],
        test_json=hparams["test_json"],
        sample_rate=hparams["sample_rate"],
        segment_seconds=hparams["segment_seconds"],
        segment_hop_seconds=hparams["segment_hop_seconds"],
    )
    brain = brain_class(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
        **brain_kwargs,
    )
    brain.fit(
        brain.hparams.epoch_counter,
        datasets["train"],
        datasets["valid"],
        train_loader_kwargs=hparams["train_dataloader_opts"],
        valid_loader_kwargs=hparams["valid_dataloader_opts"],
    )
    brain.evaluate(
        datasets["test"],
        max_key=hparams["ckpt_max_key"],
        test_loader_kwargs=hparams["test_dataloader_opts"],
    )
    return brain


def exit_with_message(error):
    """Prints a user-facing error without a traceback and exits (2).

    Arguments
    ---------
    error : Exception
        The error to report.
    """
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
