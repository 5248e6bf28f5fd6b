"""Output folders are checked before work; full disks are recognised."""

import errno
import pathlib

import pytest

from speechbrain_kd.outputs import (
    OutputFolderError,
    check_output_folder,
    is_disk_full,
)


def test_new_nested_folder_is_created(tmp_path):
    folder = check_output_folder(tmp_path / "a" / "b")
    assert folder.is_dir() and list(folder.iterdir()) == []  # probe removed


@pytest.mark.parametrize("depth", [0, 2])
def test_a_file_in_the_way_is_named(tmp_path, depth):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    folder = blocker.joinpath(*["x"] * depth)
    with pytest.raises(OutputFolderError) as error:
        check_output_folder(folder, "--output")
    assert str(error.value) == (
        f"--output {folder} is not usable: {blocker} is a file, not a "
        "folder; choose another folder"
    )


def test_unwritable_folder_is_named():
    folder = pathlib.Path("/sys/sbkd_probe")  # not writable, even for root
    with pytest.raises(OutputFolderError) as error:
        check_output_folder(folder)
    assert str(error.value) == (
        f"output_folder {folder} is not usable: cannot write there "
        "(Operation not permitted); choose a folder you can write to"
    )


def test_disk_full_is_found_in_the_chain():
    full = OSError(errno.ENOSPC, "No space left on device")
    try:
        try:
            raise full
        except OSError as inner:
            raise RuntimeError(
                "[enforce fail at inline_container.cc]"
            ) from inner
    except RuntimeError as outer:
        assert is_disk_full(outer)
    assert is_disk_full(RuntimeError("... No space left on device ..."))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
