"""Wiring shared by every recipe script: arguments, training, test.

A recipe script parses its arguments with :func:`load_recipe`, creates
its experiment folder (SpeechBrain copies the *calling* script there, so
that stays in the script), builds its datasets and hands over to
:func:`fit_and_test`. Brains know no dataset; this module knows neither
datasets nor methods.

Example
-------
>>> import speechbrain_kd.recipe as recipe
>>> callable(recipe.fit_and_test)
True
"""

import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml


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


def datasets_from_hparams(hparams):
    """The train, valid and test datasets of a recipe's manifests.

    Arguments
    ---------
    hparams : dict
        ``train_json``, ``valid_json``, ``test_json``, ``sample_rate``,
        ``segment_seconds`` and ``segment_hop_seconds``.

    Returns
    -------
    dict
        See :func:`speechbrain_kd.data.pipelines.dataio_prep`.
    """
    from speechbrain_kd.data.pipelines import dataio_prep

    return dataio_prep(
        train_json=hparams["train_json"],
        valid_json=hparams["valid_json"],
        test_json=hparams["test_json"],
        sample_rate=hparams["sample_rate"],
        segment_seconds=hparams["segment_seconds"],
        segment_hop_seconds=hparams["segment_hop_seconds"],
    )


def fit_and_test(brain_class, hparams, run_opts, datasets, **brain_kwargs):
    """Trains ``brain_class`` on ``datasets`` and runs the test stage.

    Model selection uses the ``valid`` set, or the ``test`` set when
    ``hparams["selection_split"]`` is ``test`` (MetricGAN-OKD's original
    protocol; it reports selection-biased test scores, so it is only
    offered for comparisons with that paper).

    Arguments
    ---------
    brain_class : type
        ``EnhanceBrain``, ``KDBrain``, ``OKDMetricGANBrain``, ...
    hparams : dict
        Loaded hyperparameters (``modules``, ``checkpointer``,
        ``epoch_counter``, loader options, ``ckpt_max_key``; ``opt_class``
        for single-optimizer Brains).
    run_opts : dict
        SpeechBrain run options.
    datasets : dict
        ``train``, ``valid`` and ``test`` datasets.
    **brain_kwargs : dict
        Extra keyword arguments of the Brain.

    Returns
    -------
    speechbrain.Brain
        The trained Brain.
    """
    split = hparams.get("selection_split", "valid")
    if split not in ("valid", "test"):
        raise ValueError(
            f"selection_split must be valid or test, got {split!r}"
        )
    brain = brain_class(
        modules=hparams["modules"],
        opt_class=hparams.get("opt_class"),
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
        **brain_kwargs,
    )
    brain.fit(
        brain.hparams.epoch_counter,
        datasets["train"],
        datasets[split],
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
