"""Wiring shared by the TIMIT + NOISEX-92 recipe scripts.

:func:`timit_datasets` mixes the corpora once (main process) and loads the
three datasets; the scripts pass every yaml key they use explicitly.
"""

from speechbrain.utils.distributed import run_on_main
from speechbrain_kd.data.pipelines import dataio_prep
from speechbrain_kd.data.timit_noisex import prepare_timit_noisex
from speechbrain_kd.recipe import exit_with_message, fit_and_test, load_recipe  # noqa: F401 (the scripts' API)


def timit_datasets(
    timit_folder,
    noisex_folder,
    prepare_folder,
    data,
    sample_rate,
    skip_prep,
    segment_seconds,
    segment_hop_seconds,
):
    """Mixes TIMIT with NOISEX-92 once and loads the three datasets.

    Arguments
    ---------
    timit_folder : str
        TIMIT root (``TRAIN/``, ``TEST/``).
    noisex_folder : str
        NOISEX-92 wav files named by noise type.
    prepare_folder : str
        Where the mixtures and manifests go.
    data : dict
        The recipe's ``data`` block (``hparams/data/timit_noisex.yaml``).
    sample_rate : int
        The recipe's rate.
    skip_prep : bool
        Use the manifests as they are.
    segment_seconds : float or None
        Training segment length (None: whole utterances).
    segment_hop_seconds : float or None
        Hop between training segments (None: one random crop).

    Returns
    -------
    dict
        ``train``, ``valid`` and ``test`` datasets.
    """
    run_on_main(
        prepare_timit_noisex,
        kwargs={
            "timit_folder": timit_folder,
            "noisex_folder": noisex_folder,
            "save_folder": prepare_folder,
            "sample_rate": sample_rate,
            "train_sentences": data["train_sentences"],
            "valid_sentences": data["valid_sentences"],
            "test_sentences": data["test_sentences"],
            "train_noises": data["train_noises"],
            "test_noises": data["test_noises"],
            "train_snrs": data["train_snrs"],
            "test_snrs": data["test_snrs"],
            "seed": data["mix_seed"],
            "skip_prep": skip_prep,
        },
    )
    return dataio_prep(
        train_json=data["train_json"],
        valid_json=data["valid_json"],
        test_json=data["test_json"],
        sample_rate=sample_rate,
        segment_seconds=segment_seconds,
        segment_hop_seconds=segment_hop_seconds,
    )
