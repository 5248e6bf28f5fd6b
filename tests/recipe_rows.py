"""The rows of ``recipes/recipes.csv`` and the commands they stand for.

The csv has the columns of SpeechBrain's ``tests/recipes/<Dataset>.csv``.
Its ``test_debug_flags`` name generated inputs with placeholders that the
recipe tests fill in: ``{data}`` (a mini VoiceBank-DEMAND), ``{out}`` (the
row's output folder), ``{manner_teacher}`` / ``{rt_senet_teacher}`` (tiny
trained teacher runs), ``{clean}`` / ``{noise}`` (folders for FolderMix).
"""

import csv
import pathlib
import shlex
import sys

from ruamel.yaml import YAML

REPO = pathlib.Path(__file__).resolve().parents[1]
CSV = REPO / "recipes" / "recipes.csv"
COLUMNS = [
    "Task",
    "Dataset",
    "Script_file",
    "Hparam_file",
    "Data_prep_file",
    "Readme_file",
    "Result_url",
    "HF_repo",
    "test_debug_flags",
    "test_debug_checks",
    "performance",
]


def recipe_rows():
    """Every row of ``recipes/recipes.csv`` as a dict."""
    with open(CSV, encoding="utf-8", newline="") as fin:
        return list(csv.DictReader(fin))


def row_id(row):
    """A short test id: ``<script stem>:<yaml stem>``."""
    script = pathlib.Path(row["Script_file"])
    hparams = pathlib.Path(row["Hparam_file"])
    return f"{script.parent.name}/{script.stem}:{hparams.stem}"


def debug_command(row, **paths):
    """The command line of a row's debug run, placeholders filled."""
    flags = row["test_debug_flags"].format(
        **{k: str(v) for k, v in paths.items()}
    )
    return [
        sys.executable,
        str(REPO / row["Script_file"]),
        str(REPO / row["Hparam_file"]),
        *shlex.split(flags),
    ]


def expected_files(row):
    """The files ``test_debug_checks`` says the run writes."""
    checks = row["test_debug_checks"].strip()
    if not checks:
        return []
    name, _, value = checks.partition("=")
    if name != "file_exists":
        raise ValueError(f"unknown test_debug_checks {checks!r}")
    return [item.strip() for item in value.strip("[]").split(",") if item]


def extends_base(hparams_file):
    """The base yaml of an ``extends`` yaml (None for a full recipe)."""
    with open(hparams_file, encoding="utf-8") as fin:
        document = YAML().load(fin)
    base = document.get("extends") if isinstance(document, dict) else None
    return None if base is None else pathlib.Path(hparams_file).parent / base
