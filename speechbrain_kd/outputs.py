"""Output folders checked before any work, and errors of full disks."""

import errno
import os
import pathlib
import uuid


class OutputFolderError(ValueError):
    """Raised when an output folder cannot be created or written."""


def check_output_folder(folder, option="output_folder"):
    """Creates ``folder`` (with its parents) and proves it is writable.

    A probe file is written and removed, so that a read-only file system,
    missing permissions or a regular file in the way are found before a
    run spends time on data preparation or training.

    Arguments
    ---------
    folder : str or pathlib.Path
        The output folder.
    option : str
        The option or yaml key that set it (named in the error).

    Returns
    -------
    pathlib.Path
        The folder.

    Raises
    ------
    OutputFolderError
        If the folder (or one of its parents) is a file, or cannot be
        created or written.

    Example
    -------
    >>> import tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> check_output_folder(root / "run" / "1").is_dir()
    True
    >>> _ = (root / "file").write_text("")
    >>> try:
    ...     check_output_folder(root / "file" / "run", "--output-dir")
    ... except OutputFolderError as error:
    ...     print(str(error).split(":")[0])
    --output-dir ...file/run is not usable
    """
    folder = pathlib.Path(folder).expanduser()
    for parent in [folder, *folder.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise OutputFolderError(
                    f"{option} {folder} is not usable: {parent} is a file, "
                    "not a folder; choose another folder"
                )
            break
    probe = folder / f".write_test_{uuid.uuid4().hex}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or str(error)
        raise OutputFolderError(
            f"{option} {folder} is not usable: cannot write there "
            f"({reason}); choose a folder you can write to"
        ) from None
    return folder


def is_disk_full(error):
    """Whether ``error`` (or an error it was raised from) is a full disk.

    Arguments
    ---------
    error : BaseException
        The error.

    Returns
    -------
    bool
        True for ``ENOSPC`` / ``EDQUOT`` anywhere in the chain, or
        PyTorch's writer failing with "No space left on device".

    Example
    -------
    >>> is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    True
    >>> is_disk_full(RuntimeError("file write failed"))
    False
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in (
            errno.ENOSPC,
            errno.EDQUOT,
        ):
            return True
        if os.strerror(errno.ENOSPC) in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False
