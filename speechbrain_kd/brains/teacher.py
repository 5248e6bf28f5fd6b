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
distillation run. Finding and checking parameter files is shared with
export (:mod:`speechbrain_kd.pretrained.checkpoints`); this module adds
the teacher's messages.
"""

import logging
import pathlib

from speechbrain.utils.parameter_transfer import Pretrainer
from speechbrain_kd.pretrained.checkpoints import (
    CHECKPOINT_NAMES,
    CheckpointError,
    find_checkpoint_file,
    load_parameters,
    looks_like_local_path,
    module_selection_key,
)
from speechbrain_kd.pretrained.folder import MODEL_FILE, read_parameters

logger = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINT_NAMES",
    "HOW_TO_GET_A_TEACHER",
    "TeacherLoadError",
    "check_state_dict",
    "load_teacher",
    "looks_like_local_path",
    "module_selection_key",
    "resolve_checkpoint_file",
]

HOW_TO_GET_A_TEACHER = (
    "Train one with `python recipes/Valentini/train_teacher.py "
    "hparams/manner_teacher.yaml` and pass its output folder "
    "(e.g. --teacher_source results/manner_teacher/100), or pass the "
    "HuggingFace id of an exported teacher."
)


class TeacherLoadError(CheckpointError):
    """Raised when a teacher cannot be found or does not fit the model."""


def resolve_checkpoint_file(
    source, max_key="pesq", names=CHECKPOINT_NAMES, key="teacher_source"
):
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
    key : str
        The hyperparameter that gave ``source`` (named in errors).

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
    >>> import tempfile, torch
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> torch.save({"w": torch.zeros(1)}, folder / "model.ckpt")
    >>> resolve_checkpoint_file(folder).name
    'model.ckpt'
    """
    try:
        return find_checkpoint_file(source, max_key=max_key, names=names)
    except CheckpointError as error:
        advice = HOW_TO_GET_A_TEACHER if key == "teacher_source" else ""
        raise TeacherLoadError(f"{key} {error} {advice}".rstrip()) from None


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
    >>> import torch
    >>> model = torch.nn.Linear(2, 2)
    >>> check_state_dict(model, model.state_dict(), "memory")
    >>> try:
    ...     check_state_dict(model, {"weight": model.weight}, "memory")
    ... except TeacherLoadError as error:
    ...     print(str(error)[:60])
    teacher parameters from memory do not fit Linear: missing ke
    """
    if hint is None:
        hint = (
            f"Check that the {role}'s model hyperparameters (preset, "
            "channels, depth, attention layers) match the ones it was "
            "trained with."
        )
    try:
        load_parameters(model, state_dict, source, role=role, hint=hint)
    except CheckpointError as error:
        raise TeacherLoadError(str(error)) from None


def load_teacher(
    model, source, savedir, max_key="pesq", role="teacher", key=None
):
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
    role : str
        What the model is (``teacher``, ``bad student``), named in
        messages.
    key : str, optional
        The hyperparameter holding ``source`` (default
        ``<role>_source``), named in errors.

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
    >>> import tempfile, torch
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> trained = torch.nn.Linear(2, 2)
    >>> torch.save(trained.state_dict(), folder / "model.ckpt")
    >>> teacher = load_teacher(torch.nn.Linear(2, 2), folder, folder / "c")
    >>> torch.equal(teacher.weight, trained.weight), teacher.training
    (True, False)
    """
    name = role.replace(" ", "_")
    key = key or f"{name}_source"
    advice = HOW_TO_GET_A_TEACHER if role == "teacher" else ""
    if source is None or str(source).strip() in ("", "None", "null"):
        raise TeacherLoadError(
            f"No {role} given: set {key} (yaml or --{key}). {advice}".rstrip()
        )
    if looks_like_local_path(source):
        path = resolve_checkpoint_file(source, max_key=max_key, key=key)
        fetch_source, filename = str(path.parent), path.name
    else:
        fetch_source, filename = str(source), MODEL_FILE
    pathlib.Path(savedir).mkdir(parents=True, exist_ok=True)
    pretrainer = Pretrainer(
        collect_in=savedir,
        loadables={name: model},
        paths={name: f"{fetch_source}/{filename}"},
    )
    collected = pretrainer.collect_files()
    try:
        state_dict = read_parameters(
            collected[name], shown_as=f"{fetch_source}/{filename}"
        )
    except CheckpointError as error:
        raise TeacherLoadError(f"{key}: {error}") from None
    check_state_dict(model, state_dict, f"{fetch_source}/{filename}", role=role)
    logger.info("Loaded %s from %s/%s", role, fetch_source, filename)
    model.eval()
    model.requires_grad_(False)
    return model
