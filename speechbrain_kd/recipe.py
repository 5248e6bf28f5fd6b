"""Wiring shared by every recipe script: arguments, training, test.

A recipe script parses its arguments with :func:`load_recipe`, creates
its experiment folder (SpeechBrain copies the *calling* script there, so
that stays in the script), prepares its data, builds its Brain with every
yaml key it uses written out, and hands over to :func:`fit_and_test`.
Brains know no dataset; this module knows neither datasets nor methods.

Example
-------
>>> import speechbrain_kd.recipe as recipe
>>> callable(recipe.fit_and_test)
True
"""

import atexit
import logging
import sys

from hyperpyyaml import load_hyperpyyaml

import speechbrain as sb
from speechbrain_kd.brains.checkpoints import CheckpointSaveError
from speechbrain_kd.brains.nonfinite import NonFiniteError
from speechbrain_kd.hyperyaml import EXTENDS, recipe_source  # noqa: F401
from speechbrain_kd.outputs import OutputFolderError, check_output_folder

logger = logging.getLogger(__name__)

#: Errors a recipe script reports in one line (they explain themselves).
USER_ERRORS = (
    ValueError,
    FileNotFoundError,
    TypeError,
    NonFiniteError,
    CheckpointSaveError,
)


def load_hparams_file(hparams_file, overrides=None):
    """Loads a recipe yaml (an ``extends`` one as its base with changes).

    Arguments
    ---------
    hparams_file : str or pathlib.Path
        The yaml.
    overrides : str or dict, optional
        Overrides on top.

    Returns
    -------
    dict
        The loaded hyperparameters.

    Example
    -------
    >>> hparams = load_hparams_file(
    ...     "hparams/mvat_l2.yaml", {"data_folder": "unused"}
    ... )
    >>> hparams["experiment_name"], hparams["at_distance"]
    ('mvat_l2', 'l2')
    """
    path, text = recipe_source(hparams_file, overrides or "")
    with open(path, encoding="utf-8") as fin:
        return load_hyperpyyaml(fin, text)


def _destroy_process_group():
    """Destroys the default process group, if any (run at exit), once
    every process has got there: a process that tears its group down while
    another still talks to it was seen to abort (gloo)."""
    import datetime

    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=datetime.timedelta(seconds=120))
        else:
            dist.barrier()
    except RuntimeError as error:  # another process died: just tear down
        logger.warning("no barrier at exit: %s", error)
    dist.destroy_process_group()


def load_recipe(argv):
    """Parses the command line and loads the hyperparameters.

    A yaml with ``extends`` (an ablation) is loaded as its base with its
    changes (:func:`recipe_source`).

    Arguments
    ---------
    argv : list of str
        ``hparams.yaml`` followed by SpeechBrain options and overrides.

    Returns
    -------
    tuple
        ``(hparams_file, hparams, run_opts, overrides)``: the yaml file and
        overrides to save with the run (the base and every change, for an
        ablation).
    """
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    # Torn down before interpreter shutdown: a process group left to the
    # C++ destructors can abort the process at exit (seen with gloo).
    atexit.register(_destroy_process_group)
    given = hparams_file
    hparams_file, overrides = recipe_source(hparams_file, overrides)
    # Before loading: the yaml's Checkpointer creates folders under it.
    output_folder = declared_output_folder(hparams_file, overrides)
    try:
        if output_folder is not None:
            check_output_folder(output_folder, "output_folder")
        with open(hparams_file, encoding="utf-8") as fin:
            hparams = load_hyperpyyaml(fin, overrides)
    except OutputFolderError as error:
        exit_with_message(error)
    except KeyError as error:
        message = unknown_option_message(error, given)
        if message is None:
            raise
        exit_with_message(message)
    except ValueError as error:  # a model refusing its settings, say
        exit_with_message(f"{given}: {error}")
    except OSError as error:  # a folder the yaml creates, say
        exit_with_message(f"{given}: {error}")
    return str(hparams_file), hparams, run_opts, overrides


def declared_output_folder(hparams_file, overrides=None):
    r"""The ``output_folder`` a recipe yaml resolves to, without loading it.

    Arguments
    ---------
    hparams_file : str or pathlib.Path
        The yaml.
    overrides : str or dict, optional
        Overrides on top.

    Returns
    -------
    str or None
        The folder, or None when the yaml has none (or cannot be resolved
        yet: loading it then gives the error).

    Example
    -------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.yaml"
    >>> _ = path.write_text("seed: 3\noutput_folder: !ref results/<seed>\n")
    >>> declared_output_folder(path), declared_output_folder(path, "seed: 4")
    ('results/3', 'results/4')
    """
    import ruamel.yaml
    from hyperpyyaml import resolve_references

    try:
        with open(hparams_file, encoding="utf-8") as fin:
            text = resolve_references(fin, overrides or "").getvalue()
        folder = ruamel.yaml.YAML(typ="rt").load(text).get("output_folder")
    except Exception:  # noqa: BLE001 (loading reports the real problem)
        return None
    return str(folder) if isinstance(folder, str) else None


def unknown_option_message(error, hparams_file):
    """A one-line message for HyperPyYAML's unknown-override ``KeyError``.

    Arguments
    ---------
    error : KeyError
        The error HyperPyYAML raised.
    hparams_file : str or pathlib.Path
        The yaml (named in the message).

    Returns
    -------
    str or None
        "unknown option --x (did you mean --y?)", or None for another
        ``KeyError``.

    Example
    -------
    >>> error = KeyError(
    ...     "Override 'batch_sizee' not found in: ['seed', 'batch_size']"
    ... )
    >>> unknown_option_message(error, "hparams/mvat.yaml")
    'unknown option --batch_sizee for hparams/mvat.yaml (did you mean --batch_size?)'
    """
    import difflib
    import re

    from speechbrain.utils.run_opts import HELP_TEXTS

    text = error.args[0] if error.args else ""
    found = re.match(r"Override '(.+)' not found in: \[(.*)\]$", str(text))
    if found is None:
        return None
    name = found.group(1)
    keys = re.findall(r"'([^']+)'", found.group(2))
    known = [k for k in keys if not k.startswith("__")] + list(HELP_TEXTS)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.75)
    hint = (
        f" (did you mean {' or '.join('--' + c for c in close)}?)"
        if close
        else "; see the yaml for its keys and --help for SpeechBrain's run "
        "options"
    )
    return f"unknown option --{name} for {hparams_file}{hint}"


def yaml_run_options(hparams):
    """The SpeechBrain run options a recipe yaml sets.

    SpeechBrain's Brain reads run options (``ckpt_interval_minutes``,
    ``max_grad_norm``, ...) from the hparams it is given; a script that
    hands the Brain an explicit dict passes these along with it.

    Arguments
    ---------
    hparams : dict
        The loaded yaml.

    Returns
    -------
    dict
        The run-option keys present, with their values.

    Example
    -------
    >>> yaml_run_options({"max_grad_norm": 5.0, "lr": 0.1})
    {'max_grad_norm': 5.0}
    """
    from speechbrain.utils.run_opts import RunOptions

    names = RunOptions().as_dict()
    return {key: value for key, value in hparams.items() if key in names}


def prepared_datasets(
    prepare, kwargs, manifests, sample_rate, segment_seconds, hop_seconds
):
    """Runs a data preparation on the main process, then loads the
    ``train``, ``valid`` and ``test`` datasets of its manifests.

    Arguments
    ---------
    prepare : callable
        The preparation (``prepare_dns``, ``prepare_folder_mix``, ...).
    kwargs : dict
        Its keyword arguments.
    manifests : tuple of str
        ``(train_json, valid_json, test_json)``.
    sample_rate : int
        The recipe's rate.
    segment_seconds : float or None
        Training segment length (None: whole utterances).
    hop_seconds : float or None
        Hop between training segments (None: one random crop).

    Returns
    -------
    dict
        The three datasets.
    """
    from speechbrain.utils.distributed import run_on_main
    from speechbrain_kd.data.pipelines import dataio_prep

    run_on_main(prepare, kwargs=kwargs)
    train_json, valid_json, test_json = manifests
    return dataio_prep(
        train_json=train_json,
        valid_json=valid_json,
        test_json=test_json,
        sample_rate=sample_rate,
        segment_seconds=segment_seconds,
        segment_hop_seconds=hop_seconds,
    )


def fit_and_test(
    brain,
    datasets,
    epoch_counter,
    train_loader_kwargs,
    valid_loader_kwargs,
    test_loader_kwargs,
    max_key,
    selection_split="valid",
):
    """Trains ``brain`` on ``datasets`` and runs the test stage.

    Model selection uses the ``valid`` set, or the ``test`` set with
    ``selection_split="test"`` (MetricGAN-OKD's original protocol; it
    reports selection-biased test scores, so it is only offered for
    comparisons with that paper).

    Arguments
    ---------
    brain : speechbrain.Brain
        The Brain, built by the recipe script.
    datasets : dict
        ``train``, ``valid`` and ``test`` datasets.
    epoch_counter : speechbrain.utils.epoch_loop.EpochCounter
        The (checkpointed) epoch counter.
    train_loader_kwargs : dict
        Training DataLoader options.
    valid_loader_kwargs : dict
        Selection-set DataLoader options.
    test_loader_kwargs : dict
        Test DataLoader options.
    max_key : str
        Checkpoint meta key of the model tested.
    selection_split : str
        ``valid`` or ``test``.

    Returns
    -------
    speechbrain.Brain
        The trained Brain.
    """
    if selection_split not in ("valid", "test"):
        raise ValueError(
            f"selection_split must be valid or test, got {selection_split!r}"
        )
    brain.fit(
        epoch_counter,
        datasets["train"],
        datasets[selection_split],
        train_loader_kwargs=train_loader_kwargs,
        valid_loader_kwargs=valid_loader_kwargs,
    )
    brain.evaluate(
        datasets["test"],
        max_key=max_key,
        test_loader_kwargs=test_loader_kwargs,
    )
    return brain


def exit_with_message(error):
    """Prints a user-facing error without a traceback and exits (2).

    Arguments
    ---------
    error : Exception
        The error to report.
    """
    message = str(error)
    if "Original Traceback" in message:
        # Raised in a DataLoader worker: PyTorch puts the worker's whole
        # traceback in the message; its last line is the error itself.
        last = message.strip().splitlines()[-1]
        message = last.split(": ", 1)[-1] if ": " in last else last
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)
