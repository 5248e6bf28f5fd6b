"""Every row of ``recipes/recipes.csv`` run with its own debug flags.

Each row runs once per session (the ``recipe_runs`` fixture; teacher rows
first, the distillation rows load them), so the other recipe modules check
the same runs rather than repeating them. Here: the files each row says it
writes, a complete checkpoint, and for the distillation rows the terms the
yaml switches on (weight above 0) logged and the others not.
"""

import pytest
from hyperpyyaml import load_hyperpyyaml
from recipe_rows import expected_files, recipe_rows, row_id

ROWS = recipe_rows()


def saved_hparams(run):
    """The complete hyperparameters a run saved (teacher not loaded)."""
    with open(run / "hyperparams.yaml", encoding="utf-8") as fin:
        return load_hyperpyyaml(fin, {"teacher_source": None})


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_row_debug_run_writes_its_files_and_a_checkpoint(recipe_runs, row):
    run = recipe_runs(row["Hparam_file"]).run
    for name in expected_files(row):
        assert (run / name).is_file(), name
    checkpoints = sorted((run / "save").glob("CKPT+*"))
    assert checkpoints, "no checkpoint kept (--debug_persistently)"
    for checkpoint in checkpoints:
        assert (checkpoint / "CKPT.yaml").is_file()
        assert list(checkpoint.glob("*.ckpt")), checkpoint


KD_ROWS = [row for row in ROWS if row["Task"] == "Enhancement+KD"]


@pytest.mark.parametrize("row", KD_ROWS, ids=row_id)
def test_kd_row_logs_the_terms_its_yaml_switches_on(recipe_runs, row):
    run = recipe_runs(row["Hparam_file"]).run
    hparams = saved_hparams(run)
    log = (run / "train_log.txt").read_text()
    assert ("loss_supervised" in log) is (hparams["supervised_weight"] > 0)
    terms = {term.name: term.weight for term in hparams["distill_terms"]}
    assert any(weight > 0 for weight in terms.values()), terms
    for name, weight in terms.items():
        assert (f"loss_{name}:" in log) is (weight > 0), (name, weight)


@pytest.mark.parametrize(
    "hparams, changed, term",
    [
        ("hparams/mvat_l2.yaml", {"at_distance": "l2"}, "mvat"),
        (
            "hparams/single_view_at.yaml",
            {"at_student_layers": [0, 1, 2]},
            "single_view_at",
        ),
    ],
)
def test_ablation_row_saves_its_complete_changed_hparams(
    recipe_runs, hparams, changed, term
):
    run = recipe_runs(hparams).run
    saved = saved_hparams(run)
    name = hparams.split("/")[-1].removesuffix(".yaml")
    assert saved["experiment_name"] == name
    assert saved["kd_weight"] == 0.0
    for key, value in changed.items():
        assert saved[key] == value
    assert [t.name for t in saved["distill_terms"]] == [term, "output_kd"]
