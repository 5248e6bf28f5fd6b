"""Wiring shared by the VoiceBank-DEMAND (Valentini) recipes.

Each recipe script parses its arguments, creates the experiment folder
(SpeechBrain copies the *calling* script there, so that stays in the
script) and hands over to :func:`run`: data preparation on the main
process and SpeechBrain datasets here, then the Brain, training and the
test stage (:func:`speechbrain_kd.recipe.fit_and_test`). The Brain knows
no dataset and this module knows no method.
"""

import logging

from speechbrain.utils.distributed import run_on_main

from speechbrain_kd.data.valentini import prepare_valentini
from speechbrain_kd.recipe import (  # noqa: F401 (the scripts' API)
    datasets_from_hparams,
    exit_with_message,
    fit_and_test,
    load_recipe,
)

logger = logging.getLogger(__name__)


def run(brain_class, hparams, run_opts, **brain_kwargs):
    """Prepares Valentini, trains ``brain_class`` and runs the test stage.

    Arguments
    ---------
    brain_class : type
        ``EnhanceBrain``, ``KDBrain``, ``OKDMetricGANBrain`` or a subclass.
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
    datasets = datasets_from_hparams(hparams)
    return fit_and_test(
        brain_class, hparams, run_opts, datasets, **brain_kwargs
    )
