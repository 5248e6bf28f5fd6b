"""Shared fixtures: the real-audio and golden-output folders beside the
project.

Real-audio checks read ``../shared/data`` (override with the environment
variable ``SBKD_SHARED_DATA``); golden outputs of the official MANNER code
are read from ``../shared/reference/golden`` (override with
``SBKD_GOLDEN``); SpeechBrain's consistency checks from
``../shared/upstream`` (``SBKD_UPSTREAM``). When a folder is missing its
checks are skipped on a developer machine but **fail** under CI (``CI=true``), so a missing folder
can never turn a real check into a silent pass.
"""

import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_GOLDEN = REPO_ROOT.parent / "shared" / "reference" / "golden"
DEFAULT_UPSTREAM = REPO_ROOT.parent / "shared" / "upstream"


def _folder_or_skip(variable, default, what):
    """The folder named by ``variable`` (or ``default``); skip or fail."""
    folder = pathlib.Path(os.environ.get(variable, default))
    if not folder.is_dir():
        message = (
            f"{what} folder {folder} is missing; set {variable} or place "
            "the shared data beside the project"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder


@pytest.fixture(scope="session")
def shared_data():
    """Path to the real recorded audio in ``../shared/data``."""
    return _folder_or_skip(
        "SBKD_SHARED_DATA", DEFAULT_SHARED_DATA, "real-audio"
    )


@pytest.fixture(scope="session")
def golden():
    """Path to the official MANNER golden outputs
    (``../shared/reference/golden``)."""
    return _folder_or_skip("SBKD_GOLDEN", DEFAULT_GOLDEN, "golden-output")


@pytest.fixture(scope="session")
def upstream():
    """Path to SpeechBrain's own consistency checks
    (``../shared/upstream``)."""
    return _folder_or_skip(
        "SBKD_UPSTREAM", DEFAULT_UPSTREAM, "SpeechBrain-checks"
    )


@pytest.fixture
def one_thread():
    """Runs a test on one torch thread (stable timings and results)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
