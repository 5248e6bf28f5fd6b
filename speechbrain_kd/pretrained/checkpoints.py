"""Finding a model's parameter file and loading it strictly.

A model's parameters come from a training run of our recipes (its
``save/CKPT+*`` folders, ranked by a meta key such as the validation
PESQ), a ``CKPT+...`` folder, an exported model folder
(:mod:`speechbrain_kd.pretrained.folder`) or a ``.ckpt`` file. Export
and teacher loading (:mod:`speechbrain_kd.brains.teacher`) both find and
check parameters here. The check is strict: SpeechBrain's ``Pretrainer``
only warns about missing keys, and a model with random layers would
silently be wrong.
"""

import logging
import math
import pathlib
import re
import zipfile

from speechbrain_kd.pretrained.folder import MODEL_FILE, CheckpointError

logger = logging.getLogger(__name__)

#: Parameter files looked for, in order, in a checkpoint or model folder
#: (``model.ckpt``: the ``model`` module of a training checkpoint).
CHECKPOINT_NAMES = ("model.ckpt", MODEL_FILE)

#: What a HuggingFace repository id looks like (``org/name``).
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
#: Suffixes of files, never of a hub repository.
FILE_SUFFIXES = {".ckpt", ".pt", ".pth", ".yaml", ".json", ".wav"}


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
        than one ``/``, anything that exists on disk, ``a/b`` when the
        folder ``a`` exists here (a typo in ``models/base`` is not looked
        up on the hub) and names a hub id cannot have (spaces, a file
        suffix such as ``.ckpt``).

    Example
    -------
    >>> looks_like_local_path("speechbrain/metricgan-plus-voicebank")
    False
    >>> looks_like_local_path("results/manner_teacher/100")
    True
    >>> looks_like_local_path("org/model.ckpt")
    True
    """
    text = str(source)
    path = pathlib.Path(text).expanduser()
    if path.exists():
        return True
    if text.startswith(("/", "./", "../", "~", ".\\")):
        return True
    if text.count("/") != 1 or text.endswith("/"):
        return True
    if path.parent.is_dir():
        return True
    return HUB_ID.fullmatch(text) is None or path.suffix in FILE_SUFFIXES


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


def file_intact(path):
    """False for an empty file or a torch zip archive failing its CRCs.

    Arguments
    ---------
    path : pathlib.Path
        A parameter file.

    Returns
    -------
    bool
        Whether it looks completely written.

    Example
    -------
    >>> import tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.ckpt"
    >>> _ = path.write_bytes(b"")
    >>> file_intact(path)
    False
    """
    if path.stat().st_size == 0:
        return False
    with open(path, "rb") as handle:
        if handle.read(2) != b"PK":
            return True
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def checkpoint_meta(folder):
    """The meta of a checkpoint folder (``CKPT+<time>``).

    Arguments
    ---------
    folder : pathlib.Path
        The checkpoint folder.

    Returns
    -------
    dict or None
        Its ``CKPT.yaml``; None when that is missing, empty or unreadable
        (a save that was interrupted).

    Example
    -------
    >>> import tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "CKPT.yaml").write_text("")
    >>> checkpoint_meta(folder) is None
    True
    >>> _ = (folder / "CKPT.yaml").write_text("pesq: 2.5")
    >>> checkpoint_meta(folder)
    {'pesq': 2.5}
    """
    import yaml

    try:
        meta = yaml.safe_load((folder / "CKPT.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return None
    return meta if isinstance(meta, dict) else None


def checkpoint_problem(folder, required_names=None):
    """Why a checkpoint folder (``CKPT+<time>``) cannot be used (None
    when it is complete): the one rule of resuming, teacher loading and
    export.

    Arguments
    ---------
    folder : pathlib.Path
        The checkpoint folder.
    required_names : iterable of str, optional
        Recoverables whose ``<name>.ckpt`` must be present; every
        ``.ckpt`` file present must be intact too.

    Returns
    -------
    str or None
        The reason, e.g. ``"model.ckpt is empty or truncated"``.

    Example
    -------
    >>> import tempfile, torch
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "CKPT+1"
    >>> folder.mkdir()
    >>> torch.save({"w": torch.ones(1)}, folder / "model.ckpt")
    >>> checkpoint_problem(folder)
    'CKPT.yaml is missing, empty or unreadable'
    >>> _ = (folder / "CKPT.yaml").write_text("end-of-epoch: true")
    >>> checkpoint_problem(folder, ["model"]) is None
    True
    >>> checkpoint_problem(folder, ["model", "optimizer"])
    'optimizer.ckpt is missing'
    """
    if checkpoint_meta(folder) is None:
        return "CKPT.yaml is missing, empty or unreadable"
    for name in required_names or ():
        if not (folder / f"{name}.ckpt").is_file():
            return f"{name}.ckpt is missing"
    for path in sorted(folder.glob("*.ckpt")):
        if not file_intact(path):
            return f"{path.name} is empty or truncated"
    return None


def _best_checkpoint(checkpoints_dir, keys, names):
    """The complete ``CKPT+*`` folder holding one of ``names``, best by
    the first of ``keys`` that some checkpoint holds (else the newest)."""
    usable = []
    for folder in sorted(checkpoints_dir.glob("CKPT+*")):
        if not any((folder / name).is_file() for name in names):
            continue
        problem = checkpoint_problem(folder)
        if problem is not None:
            logger.warning("Skipping checkpoint %s: %s", folder, problem)
            continue
        usable.append((folder, checkpoint_meta(folder)))
    if not usable:
        return None
    held = [k for k in keys if any(k in meta for _, meta in usable)]
    return max(
        usable,
        key=lambda item: (
            item[1].get(held[0], -math.inf) if held else 0.0,
            item[1].get("unixtime", 0.0),
            item[0].name,
        ),
    )[0]


def find_checkpoint_file(source, max_key="pesq", names=CHECKPOINT_NAMES):
    """Finds the parameter file of a model in a local folder.

    Arguments
    ---------
    source : str or pathlib.Path
        A training output folder (holding ``save/``), a checkpoints folder,
        a ``CKPT+...`` folder, an exported model folder or a file.
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
    CheckpointError
        If ``source`` does not exist or holds no usable checkpoint (the
        message starts with the path).

    Example
    -------
    >>> import tempfile, torch
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> torch.save({"w": torch.zeros(1)}, folder / "enhance_model.ckpt")
    >>> find_checkpoint_file(folder).name
    'enhance_model.ckpt'
    """
    folder = pathlib.Path(source).expanduser()
    if not folder.exists():
        raise CheckpointError(f"{folder} does not exist.")
    if folder.is_file():
        return folder
    for name in names:
        if (folder / name).is_file():
            return folder / name
    keys = (max_key,) if isinstance(max_key, str) else tuple(max_key)
    for checkpoints_dir in (folder / "save", folder):
        if not checkpoints_dir.is_dir():
            continue
        checkpoint = _best_checkpoint(checkpoints_dir, keys, names)
        if checkpoint is None:
            continue
        for name in names:
            if (checkpoint / name).is_file():
                logger.info("Using checkpoint %s", checkpoint)
                return checkpoint / name
    raise CheckpointError(
        f"{folder} holds no model checkpoint (looked for "
        f"{' or '.join(names)} in it, in save/CKPT+* and in "
        "CKPT+* folders, skipping incomplete ones; a --debug run keeps its "
        "checkpoints only with --debug_persistently)."
    )


def check_state_dict(model, state_dict, source, role="model", hint=""):
    """Loads ``state_dict`` into ``model`` strictly, with a clear error.

    Arguments
    ---------
    model : torch.nn.Module
        The model, built from its hyperparameters.
    state_dict : dict
        Its parameters, as saved by ``model.state_dict()``.
    source : str
        Where the parameters came from (used in the error message).
    role : str
        What the parameters are for (first words of the error message).
    hint : str
        Advice ending the error message.

    Raises
    ------
    CheckpointError
        If keys are missing or unexpected, shapes differ, or a value is
        NaN or infinite (a diverged run; nothing is loaded then).

    Example
    -------
    >>> import torch
    >>> model = torch.nn.Linear(2, 2)
    >>> check_state_dict(model, model.state_dict(), "memory")
    >>> try:
    ...     check_state_dict(model, {"weight": model.weight}, "memory")
    ... except CheckpointError as error:
    ...     print(error)
    model parameters from memory do not fit Linear: missing keys ['bias'].
    """
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
        raise CheckpointError(
            f"{role} parameters from {source} do not fit "
            f"{type(model).__name__}: {'; '.join(problems)}. {hint}".rstrip()
        )
    nonfinite = sorted(
        key
        for key, value in state_dict.items()
        if hasattr(value, "is_floating_point")
        and value.is_floating_point()
        and not value.isfinite().all()
    )
    if nonfinite:
        raise CheckpointError(
            f"{role} parameters from {source} hold NaN or infinite values "
            f"in {_head(nonfinite)} (a diverged training run): use a "
            f"checkpoint from before it diverged. {hint}".rstrip()
        )
    model.load_state_dict(state_dict, strict=True)


def load_parameters(model, checkpoint, source, role="model", hint=""):
    """Loads a checkpoint into ``model``: ours, or the official MANNER's.

    Arguments
    ---------
    model : torch.nn.Module
        The model, built from its hyperparameters.
    checkpoint : dict
        A state dict (checked by :func:`check_state_dict`), or a checkpoint
        of the official MANNER code, converted by
        :func:`speechbrain_kd.lobes.manner_official.load_official_checkpoint`.
    source : str
        Where the parameters came from (used in the error message).
    role : str
        What the parameters are for (first words of the error message).
    hint : str
        Advice ending the error message.

    Raises
    ------
    CheckpointError
        If the parameters do not fit ``model``.

    Example
    -------
    >>> import torch
    >>> model, trained = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    >>> load_parameters(model, trained.state_dict(), "memory")
    >>> torch.equal(model.weight, trained.weight)
    True
    """
    from speechbrain_kd.lobes.manner_official import is_official_checkpoint

    if is_official_checkpoint(checkpoint):
        _load_official(model, checkpoint, source, role)
    else:
        check_state_dict(model, checkpoint, source, role=role, hint=hint)


def _load_official(model, checkpoint, source, role):
    """Loads a checkpoint of the official MANNER code, with a clear error."""
    from speechbrain_kd.lobes.manner import MANNER
    from speechbrain_kd.lobes.manner_official import load_official_checkpoint

    if not isinstance(model, MANNER):
        raise CheckpointError(
            f"{role} parameters from {source} are an official MANNER "
            f"checkpoint, but the {role} is a {type(model).__name__}: "
            "declare a speechbrain_kd.lobes.manner.MANNER"
        )
    try:
        load_official_checkpoint(checkpoint, model)
    except ValueError as error:
        raise CheckpointError(
            f"{role} parameters from {source}: {error}. Set the model's "
            "hyperparameters accordingly (e.g. --teacher_channels, "
            "--teacher_depth, --teacher_attention_layers for a teacher)."
        ) from None


def _head(items, limit=5):
    """The first ``limit`` items, with a count of the rest."""
    shown = ", ".join(repr(item) for item in items[:limit])
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return f"[{shown}]{more}"
