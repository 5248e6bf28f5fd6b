"""Shared fixtures: the real-audio folder beside the project.

Real-audio checks read ``../shared/data`` (override with the environment
variable ``SBKD_SHARED_DATA``). When the folder is missing they are skipped
on a developer machine but **fail** under CI (``CI=true``), so a missing
folder can never turn a real check into a silent pass.
"""

import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
    """Path to the real recorded audio in ``../shared/data``."""
    folder = pathlib.Path(
        os.environ.get("SBKD_SHARED_DATA", DEFAULT_SHARED_DATA)
    )
    if not folder.is_dir():
        message = (
            f"real-audio folder {folder} is missing; set SBKD_SHARED_DATA "
            "or place the shared data beside the project"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder
