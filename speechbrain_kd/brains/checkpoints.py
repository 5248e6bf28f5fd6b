"""Making resumption robust to a run killed while it saved a checkpoint.

SpeechBrain writes a checkpoint's ``CKPT.yaml`` before its parameter files,
so a run killed during a save leaves a checkpoint that looks valid but has
empty or truncated files, and the next start crashes while loading it.
:func:`set_aside_incomplete_checkpoints` finds such checkpoints and moves
them out of the way (``incomplete-CKPT+...``, never deleted), so that
recovery falls back to the newest complete checkpoint.
"""

import logging

from speechbrain_kd.pretrained.checkpoints import checkpoint_problem

logger = logging.getLogger(__name__)

INCOMPLETE_PREFIX = "incomplete-"


def is_complete(checkpoint, required_names):
    """Tells whether every file of a checkpoint was written completely.

    Arguments
    ---------
    checkpoint : speechbrain.utils.checkpoints.Checkpoint
        The checkpoint (its ``path`` is the ``CKPT+...`` folder).
    required_names : iterable of str
        Recoverables whose ``<name>.ckpt`` must exist (those SpeechBrain
        would refuse to do without); any other ``.ckpt`` file present is
        checked too.

    Returns
    -------
    bool
        False if ``CKPT.yaml`` is missing or empty, a required file is
        missing, or a file present is empty or a torch (zip) file that
        fails its CRC check (:func:`checkpoint_problem`, the rule export
        and teacher loading apply too).

    Example
    -------
    >>> import pathlib, tempfile, types, torch
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> torch.save({"w": torch.ones(2)}, folder / "model.ckpt")
    >>> _ = (folder / "CKPT.yaml").write_text("end-of-epoch: true")
    >>> ckpt = types.SimpleNamespace(path=folder)
    >>> is_complete(ckpt, ["model"])
    True
    >>> is_complete(ckpt, ["model", "optimizer"])
    False
    >>> _ = (folder / "model.ckpt").write_bytes(b"")
    >>> is_complete(ckpt, ["model"])
    False
    """
    return checkpoint_problem(checkpoint.path, required_names) is None


def required_recoverables(checkpointer):
    """Recoverables that SpeechBrain needs in a checkpoint to load it.

    Optional ones (``optional_load``), data loaders (saved only by
    checkpoint-aware loaders) and everything under ``allow_partial_load``
    may be missing from a checkpoint that SpeechBrain loads fine.

    Arguments
    ---------
    checkpointer : speechbrain.utils.checkpoints.Checkpointer
        The run's checkpointer.

    Returns
    -------
    list of str
        The names whose files must be present.

    Example
    -------
    >>> import tempfile, torch
    >>> from speechbrain.utils.checkpoints import Checkpointer
    >>> layer = torch.nn.Linear(1, 1)
    >>> checkpointer = Checkpointer(tempfile.mkdtemp(), {"model": layer})
    >>> checkpointer.add_recoverable(
    ...     "scaler", torch.nn.Linear(1, 1), optional_load=True
    ... )
    >>> required_recoverables(checkpointer)
    ['model']
    """
    if getattr(checkpointer, "allow_partial_load", False):
        return []
    optional = getattr(checkpointer, "optional_recoverables", {})
    return [
        name
        for name in checkpointer.recoverables
        if not optional.get(name, False) and not name.startswith("dataloader")
    ]


def set_aside_incomplete_checkpoints(checkpointer):
    """Renames incomplete checkpoints so that recovery skips them.

    Arguments
    ---------
    checkpointer : speechbrain.utils.checkpoints.Checkpointer
        The run's checkpointer (with all recoverables registered).

    Returns
    -------
    list of pathlib.Path
        The folders set aside.

    Example
    -------
    >>> import tempfile, torch
    >>> from speechbrain.utils.checkpoints import Checkpointer
    >>> model = torch.nn.Linear(1, 1)
    >>> checkpointer = Checkpointer(tempfile.mkdtemp(), {"model": model})
    >>> ckpt = checkpointer.save_checkpoint(verbosity=logging.DEBUG)
    >>> _ = (ckpt.path / "model.ckpt").write_bytes(b"")
    >>> [
    ...     p.name.split("+")[0]
    ...     for p in set_aside_incomplete_checkpoints(checkpointer)
    ... ]
    ['incomplete-CKPT']
    >>> checkpointer.list_checkpoints()
    []
    """
    names = required_recoverables(checkpointer)
    moved = []
    for path in sorted(checkpointer.checkpoints_dir.glob("CKPT+*")):
        problem = checkpoint_problem(path, names)
        if problem is None:
            continue
        target = path.with_name(INCOMPLETE_PREFIX + path.name)
        path.rename(target)
        logger.warning(
            "Checkpoint %s was not written completely (%s; the run was "
            "probably stopped while saving); set aside as %s, resuming "
            "from the newest complete checkpoint instead",
            path,
            problem,
            target,
        )
        moved.append(target)
    return moved
