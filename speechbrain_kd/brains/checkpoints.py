"""Making resumption robust to a run killed while it saved a checkpoint.

SpeechBrain writes a checkpoint's ``CKPT.yaml`` before its parameter files,
so a run killed during a save leaves a checkpoint that looks valid but has
empty or truncated files, and the next start crashes while loading it.
:func:`set_aside_incomplete_checkpoints` finds such checkpoints and moves
them out of the way (``incomplete-CKPT+...``, never deleted), so that
recovery falls back to the newest complete checkpoint.
"""

import logging
import zipfile

logger = logging.getLogger(__name__)

INCOMPLETE_PREFIX = "incomplete-"


def is_complete(checkpoint, recoverable_names):
    """Tells whether every file of a checkpoint was written completely.

    Arguments
    ---------
    checkpoint : speechbrain.utils.checkpoints.Checkpoint
        The checkpoint (its ``path`` is the ``CKPT+...`` folder).
    recoverable_names : iterable of str
        Names of the checkpointer's recoverables; each is saved as
        ``<name>.ckpt``.

    Returns
    -------
    bool
        False if a file is missing or empty, or if a torch (zip) file
        fails its CRC check.

    Example
    -------
    >>> import pathlib, tempfile, types, torch
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> torch.save({"w": torch.ones(2)}, folder / "model.ckpt")
    >>> ckpt = types.SimpleNamespace(path=folder)
    >>> is_complete(ckpt, ["model"])
    True
    >>> _ = (folder / "model.ckpt").write_bytes(b"")
    >>> is_complete(ckpt, ["model"])
    False
    """
    for name in recoverable_names:
        path = checkpoint.path / f"{name}.ckpt"
        if not path.is_file() or path.stat().st_size == 0:
            return False
        with open(path, "rb") as handle:
            is_zip = handle.read(2) == b"PK"
        if is_zip:
            try:
                with zipfile.ZipFile(path) as archive:
                    if archive.testzip() is not None:
                        return False
            except zipfile.BadZipFile:
                return False
    return True


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
    >>> [p.name.split("+")[0] for p in
    ...  set_aside_incomplete_checkpoints(checkpointer)]
    ['incomplete-CKPT']
    >>> checkpointer.list_checkpoints()
    []
    """
    names = list(checkpointer.recoverables)
    moved = []
    for checkpoint in checkpointer.list_checkpoints():
        if is_complete(checkpoint, names):
            continue
        target = checkpoint.path.with_name(
            INCOMPLETE_PREFIX + checkpoint.path.name
        )
        checkpoint.path.rename(target)
        logger.warning(
            "Checkpoint %s was not written completely (the run was "
            "probably stopped while saving); set aside as %s, resuming "
            "from the newest complete checkpoint instead",
            checkpoint.path,
            target,
        )
        moved.append(target)
    return moved
