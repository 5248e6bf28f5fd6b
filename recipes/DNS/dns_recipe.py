"""Wiring shared by the DNS Challenge recipe scripts.

Each script passes its yaml's keys explicitly (so that SpeechBrain's
``check_yaml_vs_script`` sees every key it uses): :func:`dns_datasets`
synthesises the mixtures once on the main process and returns the datasets;
the Brain and :func:`speechbrain_kd.recipe.fit_and_test` do the rest.
"""

from speechbrain_kd.data.dns import prepare_dns
from speechbrain_kd.recipe import (  # noqa: F401 (the scripts' API)
    exit_with_message,
    fit_and_test,
    load_recipe,
    prepared_datasets,
)


def dns_datasets(
    mixing, manifests, sample_rate, segment_seconds, segment_hop_seconds
):
    """Prepares the DNS mixtures once and loads the three datasets.

    Arguments
    ---------
    mixing : dict
        Keyword arguments of :func:`speechbrain_kd.data.dns.prepare_dns`.
    manifests : tuple of str
        ``(train_json, valid_json, test_json)``.
    sample_rate : int
        The recipe's rate.
    segment_seconds : float or None
        Training segment length (None: whole clips).
    segment_hop_seconds : float or None
        Hop between training segments (None: one random crop).

    Returns
    -------
    dict
        ``train``, ``valid`` and ``test`` datasets.
    """
    return prepared_datasets(
        prepare_dns,
        mixing,
        manifests,
        sample_rate,
        segment_seconds,
        segment_hop_seconds,
    )
