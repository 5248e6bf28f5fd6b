"""Wiring shared by the FolderMix recipe scripts (a folder of clean speech
plus a folder of noise).

Each script passes its yaml's keys explicitly (so that SpeechBrain's
``check_yaml_vs_script`` sees every key it uses):
:func:`folder_mix_datasets` makes the mixtures once on the main process and
returns the datasets; the Brain and
:func:`speechbrain_kd.recipe.fit_and_test` do the rest.
"""

from speechbrain_kd.data.folder_mix import prepare_folder_mix
from speechbrain_kd.recipe import (  # noqa: F401 (the scripts' API)
    exit_with_message,
    fit_and_test,
    load_recipe,
    prepared_datasets,
)


def folder_mix_datasets(
    mixing, manifests, sample_rate, segment_seconds, segment_hop_seconds
):
    """Mixes the clean folder with the noise folder once and loads the
    three datasets.

    Arguments
    ---------
    mixing : dict
        Keyword arguments of
        :func:`speechbrain_kd.data.folder_mix.prepare_folder_mix`
        (folders, rate, SNR ranges, splits, seed, ``skip_prep``).
    manifests : tuple of str
        ``(train_json, valid_json, test_json)``.
    sample_rate : int
        The recipe's rate.
    segment_seconds : float or None
        Training segment length (None: whole utterances).
    segment_hop_seconds : float or None
        Hop between training segments (None: one random crop).

    Returns
    -------
    dict
        ``train``, ``valid`` and ``test`` datasets.
    """
    return prepared_datasets(
        prepare_folder_mix,
        mixing,
        manifests,
        sample_rate,
        segment_seconds,
        segment_hop_seconds,
    )
