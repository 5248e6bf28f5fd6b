"""Debug runs of ``recipes/recipes.csv`` rows, with their own flags.

The teacher is the ``manner_teacher.yaml`` row run with its flags (plus
``--debug_persistently``, so the distillation rows can load it); the
ablation rows (``extends: mvat.yaml``) run through the MV-AT script and
must save the complete, changed hyperparameters.
"""

import os
import subprocess

import pytest
from hyperpyyaml import load_hyperpyyaml
from recipe_rows import REPO, debug_command, expected_files, recipe_rows

ROWS = {row["Hparam_file"]: row for row in recipe_rows()}


def run_row(row, **paths):
    result = subprocess.run(
        debug_command(row, **paths),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    run = paths["out"] / "run"
    for name in expected_files(row):
        assert (run / name).is_file(), name
    return run


@pytest.fixture(scope="module")
def paths(mini_valentini, tiny_manner_teacher):
    return {
        "data": mini_valentini,
        "manner_teacher": tiny_manner_teacher / "run",
    }


@pytest.mark.parametrize(
    "hparams, changed, term",
    [
        ("hparams/mvat_l2.yaml", {"at_distance": "l2"}, "loss_mvat"),
        (
            "hparams/single_view_at.yaml",
            {"at_student_layers": [0, 1, 2]},
            "loss_single_view_at",
        ),
    ],
)
def test_ablation_row_runs_and_saves_its_changes(
    paths, tmp_path, hparams, changed, term
):
    run = run_row(ROWS[hparams], out=tmp_path, **paths)
    with open(run / "hyperparams.yaml", encoding="utf-8") as fin:
        saved = load_hyperpyyaml(fin, {"teacher_source": None})
    name = hparams.split("/")[-1].removesuffix(".yaml")
    assert saved["experiment_name"] == name
    assert saved["kd_weight"] == 0.0
    for key, value in changed.items():
        assert saved[key] == value
    log = (run / "train_log.txt").read_text()
    assert term in log and "loss_output_kd" not in log
