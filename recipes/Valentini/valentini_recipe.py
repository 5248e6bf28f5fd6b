"""Wiring shared by the VoiceBank-DEMAND (Valentini) recipe scripts.

Each script passes its yaml's keys explicitly (so a reader of the script
sees every key it uses, and SpeechBrain's ``check_yaml_vs_script`` can
check them): :func:`valentini_datasets` prepares the data on the main
process and returns the datasets; the Brain and
:func:`speechbrain_kd.recipe.fit_and_test` do the rest.
"""

from speechbrain.utils.distributed import run_on_main
from speechbrain_kd.data.pipelines import dataio_prep
from speechbrain_kd.data.valentini import prepare_valentini
from speechbrain_kd.recipe import exit_with_message, fit_and_test, load_recipe  # noqa: F401 (the scripts' API)


def valentini_datasets(
    data_folder,
    prepare_folder,
    valid_speakers,
    sample_rate,
    skip_prep,
    manifests,
    segment_seconds,
    segment_hop_seconds,
):
    """Prepares VoiceBank-DEMAND once and loads its three datasets.

    Arguments
    ---------
    data_folder : str
        The dataset (48 or 16 kHz layout).
    prepare_folder : str
        Where the resampled audio and the manifests go.
    valid_speakers : list of str
        Training speakers held out for validation.
    sample_rate : int
        The recipe's rate.
    skip_prep : bool
        Use the manifests as they are.
    manifests : tuple of str
        ``(train_json, valid_json, test_json)``.
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
        prepare_valentini,
        kwargs={
            "data_folder": data_folder,
            "save_folder": prepare_folder,
            "valid_speakers": tuple(valid_speakers),
            "sample_rate": sample_rate,
            "skip_prep": skip_prep,
        },
    )
    train_json, valid_json, test_json = manifests
    return dataio_prep(
        train_json=train_json,
        valid_json=valid_json,
        test_json=test_json,
        sample_rate=sample_rate,
        segment_seconds=segment_seconds,
        segment_hop_seconds=segment_hop_seconds,
    )
