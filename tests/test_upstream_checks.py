"""What SpeechBrain's CI runs on every recipe it accepts, on ours.

``recipes/recipes.csv`` lists every recipe in the format of SpeechBrain's
``tests/recipes/<Dataset>.csv``; each row's yaml must pass SpeechBrain's
``check_yaml_vs_script`` against its script, and the code and yamls must
pass SpeechBrain's ruff and yamllint settings (all from
``../shared/upstream``; these tests fail, not skip, under CI without it).
"""

import contextlib
import csv
import io
import pathlib
import string
import subprocess
import sys

import pytest
from recipe_rows import (
    COLUMNS,
    REPO,
    TEACHER_ROWS,
    extends_base,
    recipe_rows,
    row_id,
)
from ruamel.yaml import YAML

ROWS = recipe_rows()


def test_csv_lists_every_recipe_once_with_existing_files():
    with open(REPO / "recipes" / "recipes.csv", encoding="utf-8") as fin:
        assert fin.readline().strip().split(",") == COLUMNS
    listed = [row["Hparam_file"] for row in ROWS]
    recipes = sorted(
        f"hparams/{p.name}" for p in (REPO / "hparams").glob("*.yaml")
    )
    assert sorted(listed) == recipes  # each recipe yaml exactly once
    for row in ROWS:
        for column in ("Script_file", "Hparam_file", "Data_prep_file"):
            assert (REPO / row[column]).is_file(), (column, row[column])
        assert (REPO / row["Readme_file"]).is_file(), row["Readme_file"]
        folder = (REPO / row["Script_file"]).parent
        assert (folder / "README.md").is_file()
        assert (folder / "extra_requirements.txt").is_file()
        assert row["test_debug_flags"].startswith("--debug")


def test_every_csv_row_has_eleven_cells_and_known_placeholders():
    """An unquoted flag with a comma (``--layers=[0,1]``) shifts the row's
    cells: the debug run then gets a cut flag and the checks a flag."""
    with open(REPO / "recipes" / "recipes.csv", encoding="utf-8") as fin:
        lines = list(csv.reader(fin))
    assert [len(cells) for cells in lines] == [len(COLUMNS)] * len(lines)
    known = {
        "data",
        "silent_data",
        "out",
        "clean",
        "noise",
        "timit",
        "noisex",
        "binaural",
        "dns",
        *TEACHER_ROWS,
    }
    for row in ROWS:
        flags = row["test_debug_flags"]
        names = {n for _, n, _, _ in string.Formatter().parse(flags) if n}
        assert names <= known, (row_id(row), names - known)
        assert row["test_debug_checks"].startswith("file_exists=[")


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_check_yaml_vs_script(row, upstream):
    """SpeechBrain's check: every top-level yaml key is used by the script
    or referenced in the yaml.

    A yaml with ``extends`` holds only what it changes in its base (an
    ablation): its keys are consumed by the base's objects, which the
    check cannot see in that file, so the check runs on the base and each
    changed key must be a key of the base.
    """
    sys.path.insert(0, str(upstream))
    import check_yaml

    hparams_file = REPO / row["Hparam_file"]
    base = extends_base(hparams_file)
    if base is not None:
        with open(hparams_file, encoding="utf-8") as fin:
            changes = set(YAML().load(fin)) - {"extends"}
        with open(base, encoding="utf-8") as fin:
            assert changes <= set(YAML().load(fin)), changes
        hparams_file = base
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        ok = check_yaml.check_yaml_vs_script(
            str(hparams_file), str(REPO / row["Script_file"])
        )
    assert ok, report.getvalue()


def test_speechbrain_ruff_settings(upstream, tmp_path):
    """SpeechBrain's ``[tool.ruff]`` settings on the package, recipes,
    tests and benchmarks. One change, stated here: ``target-version`` is
    the project's Python (3.11, the pinned stack) instead of SpeechBrain's
    3.8, whose syntax rules (e.g. no parenthesised ``with``) do not apply
    to a package that requires 3.11."""
    text = (upstream / "speechbrain_ruff_config.toml").read_text()
    assert 'target-version = "py38"' in text
    config = tmp_path / "pyproject.toml"
    config.write_text(
        text.replace('target-version = "py38"', 'target-version = "py311"')
    )
    ruff = pathlib.Path(sys.executable).parent / "ruff"
    if not ruff.exists():
        pytest.fail("ruff is not installed: make install (the test extra) does")
    result = subprocess.run(
        [
            str(ruff),
            "check",
            "--config",
            str(config),
            "speechbrain_kd",
            "recipes",
            "tests",
            "benchmarks",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-4000:]


def test_speechbrain_yamllint_settings(upstream):
    yamllint = pathlib.Path(sys.executable).parent / "yamllint"
    if not yamllint.exists():
        pytest.fail("yamllint is not installed: make install does")
    result = subprocess.run(
        [
            str(yamllint),
            "--strict",
            "-c",
            str(upstream / "yamllint.yaml"),
            "hparams",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-4000:]


@pytest.mark.parametrize("folder", ["recipes", "speechbrain_kd"])
def test_speechbrain_docstring_check(upstream, folder):
    sys.path.insert(0, str(upstream))
    import check_docstrings

    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        ok = check_docstrings.check_docstrings(
            str(REPO / folder), [str(REPO / folder)]
        )
    errors = [
        line for line in report.getvalue().splitlines() if "ERROR" in line
    ]
    assert ok, "\n".join(errors)
