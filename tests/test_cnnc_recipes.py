"""CNNC-Distill recipe runs (``--debug``) on tiny generated data.

The four CNNC yamls run through the shared KD script ``train_mvat.py``:
MANNER-B -> RT-SENet-S / -M with feature-similarity + output KD, output KD
only, and the same-network RT-SENet-L -> RT-SENet-S. Teachers are shrunk
through the command line (the students keep their presets, which are small)
so each run takes seconds on two CPU cores.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip(
    "speechbrain_kd.lobes.rt_senet",
    reason="the RT-SENet lobe (speechbrain_kd/lobes/rt_senet.py) is missing",
)

REPO = pathlib.Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes" / "Valentini"
PYTHON = sys.executable

# Teachers of depth 4 so the dual-depth pairs (student layer 2 <-> teacher
# layers 2 and 3) exist.
TINY_TEACHER = ["--channels=6", "--depth=4", "--attention_layers=[0, 1, 2, 3]"]
TINY_TEACHER_FOR_KD = [
    "--teacher_channels=6",
    "--teacher_depth=4",
    "--teacher_attention_layers=[0, 1, 2, 3]",
]
FAST = ["--metric_jobs=1", "--num_workers=0", "--segment_seconds=1.0"]


def run_recipe(script, hparams, *args):
    """Runs a recipe script in a subprocess from the repository root."""
    command = [PYTHON, str(RECIPES / script), str(REPO / "hparams" / hparams)]
    result = subprocess.run(
        [*command, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{script} {hparams} failed ({result.returncode}):\n"
            f"{result.stderr[-4000:]}"
        )
    return result


@pytest.fixture(scope="module")
def data_folder(mini_valentini):
    """The shared tiny dataset in the official 48 kHz layout."""
    return mini_valentini


def train_teacher(hparams, data_folder, out):
    """``train_teacher.py --debug --debug_persistently``, tiny model.

    ``--debug_persistently`` keeps the checkpoints in the output folder,
    where the distillation runs load the teacher from.
    """
    run_recipe(
        "train_teacher.py",
        hparams,
        "--debug",
        "--debug_persistently",
        f"--data_folder={data_folder}",
        f"--prepare_folder={out / 'prepared'}",
        f"--output_folder={out / 'run'}",
        *TINY_TEACHER,
        *FAST,
    )
    return out


@pytest.fixture(scope="module")
def manner_teacher(tiny_manner_teacher):
    """A tiny trained MANNER teacher (``hparams/manner_teacher.yaml``)."""
    return tiny_manner_teacher


@pytest.fixture(scope="module")
def rt_senet_teacher(data_folder, tmp_path_factory):
    """A tiny trained RT-SENet-L teacher (``hparams/rt_senet_teacher.yaml``)."""
    out = tmp_path_factory.mktemp("rt_senet_teacher")
    return train_teacher("rt_senet_teacher.yaml", data_folder, out)


def distil(hparams, teacher, data_folder, out):
    """``train_mvat.py <hparams> --debug`` from ``teacher``; the train log."""
    run_recipe(
        "train_mvat.py",
        hparams,
        "--debug",
        f"--data_folder={data_folder}",
        f"--prepare_folder={teacher / 'prepared'}",
        f"--output_folder={out}",
        f"--teacher_source={teacher / 'run'}",
        *TINY_TEACHER_FOR_KD,
        *FAST,
    )
    summary = json.loads((out / "test_summary.json").read_text())
    assert "pesq" in summary
    return (out / "train_log.txt").read_text()


@pytest.mark.parametrize("hparams", ["cnnc.yaml", "cnnc_m.yaml"])
def test_cnnc_from_manner_logs_every_term(
    hparams, manner_teacher, data_folder, tmp_path
):
    log = distil(hparams, manner_teacher, data_folder, tmp_path / "cnnc")
    for term in ("loss_supervised", "loss_cnnc", "loss_output_kd"):
        assert term in log, f"{term} missing from the training log"


def test_output_kd_only(manner_teacher, data_folder, tmp_path):
    log = distil(
        "cnnc_output_kd.yaml", manner_teacher, data_folder, tmp_path / "kd"
    )
    assert "loss_output_kd" in log
    assert "loss_cnnc" not in log


def test_rt_senet_teacher_run(rt_senet_teacher):
    run = rt_senet_teacher / "run"
    assert list((run / "save").glob("CKPT+*/model.ckpt"))
    assert (run / "test_summary.json").is_file()


def test_cnnc_same_network(rt_senet_teacher, data_folder, tmp_path):
    log = distil(
        "cnnc_same_network.yaml",
        rt_senet_teacher,
        data_folder,
        tmp_path / "same",
    )
    for term in ("loss_supervised", "loss_cnnc", "loss_output_kd"):
        assert term in log, f"{term} missing from the training log"
