"""Finding and loading a pretrained teacher, strictly.

A teacher can come from four kinds of ``source``:

* a **training output folder** of one of our recipes (it holds ``save/``
  with SpeechBrain checkpoints): the checkpoint with the best validation
  PESQ is taken;
* a **checkpoint folder** (``CKPT+...``) or an **exported model folder**
  holding ``model.ckpt`` or ``enhance_model.ckpt``;
* a **HuggingFace id** (``org/name``) of an exported model folder;
* a checkpoint file of the **official MANNER code** (its training
  checkpoint or a bare state dict), converted by
  :mod:`speechbrain_kd.lobes.manner_official`.

Files are collected with SpeechBrain's ``Pretrainer`` (so hub ids, caching
and symlinks behave as everywhere in SpeechBrain), but the state dict is
checked **strictly** before loading: the ``Pretrainer`` only warns about
missing keys, and a teacher with random layers would silently ruin a
distillation run.
"""

import logging
import pathlib

import torch
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.parameter_transfer import Pretrainer

from speechbrain_kd.lobes.manner import MANNER
from speechbrain_kd.lobes.manner_official import (
    is_official_checkpoint,
    load_official_checkpoint,
)

logger = logging.getLogger(__name__)

#: Parameter files looked for, in order, in a checkpoint or model folder.
CHECKPOINT_NAMES = ("model.ckpt", "enhance_model.ckpt")

HOW_TO_GET_A_TEACHER = (
    "Train one with `python recipes/Valentini/train_teacher.py "
    "hparams/manner_teacher.yaml` and pass its output folder "
    "(e.g. --teacher_source results/manner_teacher/100), or pass the "
    "HuggingFace id of an exported teacher."
)


class TeacherLoadError(ValueError):
    """Raised when a teacher cannot be found or does not fit the model."""


def looks_like_local_path(source):
    """Tells whether ``source`` is meant as a local path, not a hub id.

    Arguments
    ---------
    source : str or pathlib.Path
        A path or a HuggingFace id such as ``org/name``.

    Returns
    -------
    bool
        True for absolute, ``./``, ``../``, ``~`` paths, paths with more
        than one ``/`` and anything that exists on disk.

    Example
    -------
    >>> looks_like_local_path("speechbrain/metricgan-plus-voicebank")
    False
    >>> looks_like_local_path("results/manner_teacher/100")
    True
    """
    text = str(source)
    if pathlib.Path(text).expanduser().exists():
        return True
    if text.startswith(("/", "./", "../", "~", ".\\")):
        return True
    return text.count("/") != 1 or text.endswith("/")


def module_selection_key(key, module):
    """The checkpoint meta key that ranks checkpoints for one module.

    A run that selects each of several models on its own score (e.g. one
    MetricGAN-OKD generator per target metric) stores them under
    ``<key>[<module>]``.

    Arguments
    ---------
    key : str
        The run's selection key (``ckpt_max_key``).
    module : str
        The module's name (a ``modules`` / recoverables key).

    Returns
    -------
    str
        The meta key.

    Example
    -------
    >>> module_selection_key("selection_score", "generator_csig")
    'selection_score[generator_csig]'
    """
    return f"{key}[{module}]"


def resolve_checkpoint_file(source, max_key="pesq", names=CHECKPOINT_NAMES):
    """Finds the parameter file of a teacher in a local folder.

    Arguments
    ---------
    source : str or pathlib.Path
        A training output folder (holding ``save/``), a checkpoints folder,
        a ``CKPT+...`` folder or an exported model folder.
    max_key : str or tuple of str
        Checkpoint meta key to maximise when several checkpoints exist (a
        tuple: the first key that some checkpoint holds; none: the most
        recent checkpoint).
    names : tuple of str
        File names that hold the model's parameters, by preference.

    Returns
    -------
    pathlib.Path
        The ``.ckpt`` file holding the model's state dict.

    Raises
    ------
    TeacherLoadError
        If the folder does not exist or holds no usable checkpoint.

    Example
    -------
    >>> import tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> torch.save({"w": torch.zeros(1)}, folder / "model.ckpt")
    >>> resolve_checkpoint_file(folder).name
    'model.ckpt'
    """
    folder = pathlib.Path(source).expanduser()
    if not folder.exists():
        raise TeacherLoadError(
            f"teacher_source {folder} does not exist. {HOW_TO_GET_A_TEACHER}"
        )
    if folder.is_file():
        return folder
    for name in names:
        if (folder / name).is_file():
            return folder / name
    for checkpoints_dir in (folder / "save", folder):
        if not checkpoints_dir.is_dir():
            continue
        checkpointer = Checkpointer(checkpoints_dir)
        if not checkpointer.list_checkpoints():
            continue
        metas = [ckpt.meta for ckpt in checkpointer.list_checkpoints()]
        keys = (max_key,) if isinstance(max_key, str) else tuple(max_key)
        held = [key for key in keys if any(key in meta for meta in metas)]
        checkpoint = checkpointer.find_checkpoint(
            max_key=held[0] if held else None
        )
        for name in names:
            if (checkpoint.path / name).is_file():
                logger.info("Using checkpoint %s", checkpoint.path)
                return checkpoint.path / name
    raise TeacherLoadError(
        f"teacher_source {folder} holds no model checkpoint (looked for "
        f"{' or '.join(names)} in it, in save/CKPT+* and in "
        "CKPT+* folders; a --debug run keeps its checkpoints only with "
        f"--debug_persistently). {HOW_TO_GET_A_TEACHER}"
    )


def check_state_dict(model, state_dict, source, role="teacher", hint=None):
    """Loads ``state_dict`` into ``model`` strictly, with a clear error.

    Arguments
    ---------
    model : torch.nn.Module
        The teacher, built from the recipe's hyperparameters.
    state_dict : dict
        Parameters read from the teacher's checkpoint; a checkpoint of the
        official MANNER code is converted
        (:func:`~speechbrain_kd.lobes.manner_official.load_official_checkpoint`).
    source : str
        Where the parameters came from (used in the error message).
    role : str
        What the parameters are for (first words of the error message).
    hint : str, optional
        Advice ending the error message (default: check the teacher's
        model hyperparameters).

    Raises
    ------
    TeacherLoadError
        If keys are missing or unexpected, or shapes differ.

    Example
    -------
    >>> model = torch.nn.Linear(2, 2)
    >>> check_state_dict(model, model.state_dict(), "memory")
    >>> try:
    ...     check_state_dict(model, {"weight": model.weight}, "memory")
    ... except TeacherLoadError as error:
    ...     print(str(error)[:60])
    teacher parameters from memory do not fit Linear: missing ke
    """
    if is_official_checkpoint(state_dict):
        _load_official(model, state_dict, source, role)
        return
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = sorted(
        key
        for key in set(expected) & set(state_dict)
        if tuple(expected[key].shape) != tuple(state_dict[key].shape)
    )
    if missing or unexpected or wrong_shape:
        problems = []
        if missing:
            problems.append(f"missing keys {_head(missing)}")
        if unexpected:
            problems.append(f"unexpected keys {_head(unexpected)}")
        if wrong_shape:
            problems.append(f"shape mismatch for {_head(wrong_shape)}")
        if hint is None:
            hint = (
                "Check that the teacher's model hyperparameters (preset, "
                "channels, depth, attention layers) match the ones it was "
                "trained with."
            )
        raise TeacherLoadError(
            f"{role} parameters from {source} do not fit "
            f"{type(model).__name__}: {'; '.join(problems)}. {hint}"
        )
    model.load_state_dict(state_dict, strict=True)


def load_teacher(model, source, savedir, max_key="pesq"):
    """Loads pretrained teacher parameters into ``model``.

    Arguments
    ---------
    model : torch.nn.Module
        The teacher module, built from the recipe's hyperparameters.
    source : str or pathlib.Path
        A training output folder, a checkpoint folder, an exported model
        folder or a HuggingFace id (see the module docstring).
    savedir : str or pathlib.Path
        Where the ``Pretrainer`` collects the file (a symlink for local
        sources, a download for hub ids).
    max_key : str
        Checkpoint meta key used to pick the best checkpoint of a training
        output folder.

    Returns
    -------
    torch.nn.Module
        ``model``, loaded, in eval mode, with gradients disabled.

    Raises
    ------
    TeacherLoadError
        If no teacher is given, the source is missing or the parameters do
        not fit the model.

    Example
    -------
    >>> import tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> trained = torch.nn.Linear(2, 2)
    >>> torch.save(trained.state_dict(), folder / "model.ckpt")
    >>> teacher = load_teacher(torch.nn.Linear(2, 2), folder, folder / "c")
    >>> torch.equal(teacher.weight, trained.weight), teacher.training
    (True, False)
    """
    if source is None or str(source).strip() in ("", "None", "null"):
        raise TeacherLoadError(
            "No teacher given: set teacher_source (yaml or "
            f"--teacher_source). {HOW_TO_GET_A_TEACHER}"
        )
    if looks_like_local_path(source):
        path = resolve_checkpoint_file(source, max_key=max_key)
        fetch_source, filename = str(path.parent), path.name
    else:
        fetch_source, filename = str(source), CHECKPOINT_NAMES[1]
    pathlib.Path(savedir).mkdir(parents=True, exist_ok=True)
    pretrainer = Pretrainer(
        collect_in=savedir,
        loadables={"teacher": model},
        paths={"teacher": f"{fetch_source}/{filename}"},
    )
    collected = pretrainer.collect_files()
    state_dict = torch.load(
        collected["teacher"], map_location="cpu", weights_only=True
    )
    check_state_dict(model, state_dict, f"{fetch_source}/{filename}")
    logger.info("Loaded teacher from %s/%s", fetch_source, filename)
    model.eval()
    model.requires_grad_(False)
    return model


def _load_official(model, checkpoint, source, role):
    """Loads a checkpoint of the official MANNER code, with a clear error."""
    if not isinstance(model, MANNER):
        raise TeacherLoadError(
            f"{role} parameters from {source} are an official MANNER "
            f"checkpoint, but the {role} is a {type(model).__name__}: "
            "declare a speechbrain_kd.lobes.manner.MANNER"
        )
    try:
        load_official_checkpoint(checkpoint, model)
    except ValueError as error:
        raise TeacherLoadError(
            f"{role} parameters from {source}: {error}. Set the model's "
            "hyperparameters accordingly (e.g. --teacher_channels, "
            "--teacher_depth, --teacher_attention_layers for a teacher)."
        ) from None


def _head(items, limit=5):
    """The first ``limit`` items, with a count of the rest."""
    shown = ", ".join(repr(item) for item in items[:limit])
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return f"[{shown}]{more}"
