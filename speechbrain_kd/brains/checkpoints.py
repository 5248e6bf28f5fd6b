"""Making resumption robust to a run killed while it saved a checkpoint.

SpeechBrain writes a checkpoint's ``CKPT.yaml`` before its parameter files,
so a run killed during a save leaves a checkpoint that looks valid but has
empty or truncated files, and the next start crashes while loading it.
:func:`set_aside_incomplete_checkpoints` finds such checkpoints and moves
them out of the way (``incomplete-CKPT+...``, never deleted), so that
recovery falls back to the newest complete checkpoint. A save that fails
on a full disk is one error (:func:`reported_save_failure`).
"""

import contextlib
import logging
import shutil

from speechbrain_kd.outputs import is_disk_full
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


#: Below this many free bytes, a failed write is reported as a full disk
#: (PyTorch's zip writer fails with "iostream error", no errno).
LOW_SPACE_BYTES = 1 << 20


class CheckpointSaveError(RuntimeError):
    """A checkpoint could not be written (the run can resume)."""


def free_bytes(folder):
    """Free bytes on the file system of ``folder``.

    Arguments
    ---------
    folder : pathlib.Path
        An existing folder.

    Returns
    -------
    int
        Bytes available.

    Example
    -------
    >>> import tempfile
    >>> free_bytes(tempfile.gettempdir()) > 0
    True
    """
    return shutil.disk_usage(folder).free


@contextlib.contextmanager
def reported_save_failure(checkpointer, what):
    """Turns a checkpoint save failing on a full disk into one error.

    The half-written checkpoint is set aside (as resuming would), and the
    error says which one it was and where the run will resume from.

    Arguments
    ---------
    checkpointer : speechbrain.utils.checkpoints.Checkpointer
        The checkpointer saving inside the block.
    what : str
        The checkpoint, for the message (e.g. ``"of epoch 3"``).

    Raises
    ------
    CheckpointSaveError
        If the save failed with no space left on the device.

    Example
    -------
    >>> import tempfile, torch
    >>> from speechbrain.utils.checkpoints import Checkpointer
    >>> checkpointer = Checkpointer(tempfile.mkdtemp(), {})
    >>> with reported_save_failure(checkpointer, "of epoch 1"):
    ...     _ = checkpointer.save_checkpoint(verbosity=logging.DEBUG)
    >>> len(checkpointer.list_checkpoints())
    1
    """
    folder = checkpointer.checkpoints_dir
    before = set(folder.glob("CKPT+*"))
    try:
        yield
    except (OSError, RuntimeError) as error:
        if not (is_disk_full(error) or free_bytes(folder) < LOW_SPACE_BYTES):
            raise
        started = sorted(set(folder.glob("CKPT+*")) - before)
        aside = []
        for path in started:
            target = path.with_name(INCOMPLETE_PREFIX + path.name)
            path.rename(target)
            aside.append(str(target))
        names = required_recoverables(checkpointer)
        complete = [
            c
            for c in checkpointer.list_checkpoints()
            if checkpoint_problem(c.path, names) is None
        ]
        resume = "no complete checkpoint exists yet: the run starts over"
        if complete:
            newest = max(complete, key=lambda c: c.meta.get("unixtime", 0))
            resume = f"the run resumes from {newest.path}"
        incomplete = (
            f"the incomplete checkpoint is set aside as {', '.join(aside)}"
            if aside
            else "no checkpoint folder was started"
        )
        raise CheckpointSaveError(
            f"no space left on the device of {folder} while saving the "
            f"checkpoint {what}: {incomplete} (delete it to free space); "
            f"{resume} when you run the same command again after freeing "
            "space"
        ) from None


class OtherModelCheckpointError(ValueError):
    """The output folder holds checkpoints of another model."""


def recover_checkpoint(checkpointer, **kwargs):
    """``checkpointer.recover_if_possible``, one error for another model.

    An output folder reused with other model settings (another size,
    say) made PyTorch list every mismatched tensor, 100+ lines.

    Arguments
    ---------
    checkpointer : speechbrain.utils.checkpoints.Checkpointer
        The checkpointer.
    **kwargs : dict
        Passed to ``recover_if_possible`` (``max_key``, ...).

    Returns
    -------
    speechbrain.utils.checkpoints.Checkpoint or None
        The checkpoint loaded.

    Raises
    ------
    OtherModelCheckpointError
        If the checkpoint's parameters do not fit the modules.

    Example
    -------
    >>> import tempfile, torch
    >>> from speechbrain.utils.checkpoints import Checkpointer
    >>> folder = tempfile.mkdtemp()
    >>> ckpt = Checkpointer(folder, {"model": torch.nn.Linear(2, 2)})
    >>> _ = ckpt.save_checkpoint(verbosity=logging.DEBUG)
    >>> other = Checkpointer(folder, {"model": torch.nn.Linear(3, 3)})
    >>> try:
    ...     recover_checkpoint(other)
    ... except OtherModelCheckpointError as error:
    ...     print(str(error).split(": ")[1])
    2 tensors differ in shape (weight
    """
    try:
        return checkpointer.recover_if_possible(**kwargs)
    except (RuntimeError, ValueError) as error:
        text = str(error)
        if not (
            "Error(s) in loading state_dict" in text
            or "doesn't match the size of optimizer's group" in text
        ):
            raise
        newest = checkpointer.find_checkpoint(**kwargs)
        where = newest.path if newest is not None else checkpointer
        shapes = [
            line.strip()[len("size mismatch for ") :]
            for line in text.splitlines()
            if line.strip().startswith("size mismatch for ")
        ]
        if shapes:
            first = shapes[0].split(": copying a param with shape ")
            detail = f"{len(shapes)} tensors differ in shape ({first[0]}"
            if len(first) == 2:
                saved, _, current = first[1].partition(
                    " from checkpoint, the shape in current model is "
                )
                detail += f": {saved} saved, {current.rstrip('.')} now"
            detail += ", ...)" if len(shapes) > 1 else ")"
        elif "Missing key" in text or "Unexpected key" in text:
            detail = "its tensors have other names"
        else:
            detail = "its optimizer state has other parameter groups"
        folder = checkpointer.checkpoints_dir
        raise OtherModelCheckpointError(
            f"the checkpoint {where} holds another model: {detail}. The "
            f"output folder {folder.parent} was used by a run with other "
            "model settings; choose another output_folder "
            f"(--output_folder) for this one, or delete {folder} to start "
            "over"
        ) from None
