"""The spatial-injection recipe rows log the parts of Eqs. 2-5 they use."""

import json
import pathlib
import sys

import pytest
import torch
from recipe_rows import run_torchrun

REPO = pathlib.Path(__file__).resolve().parents[1]
PYTHON = sys.executable

SPATIAL = {
    "hparams/sjen.yaml": {"loss_spatial_ts", "loss_spatial_bs"},
    "hparams/sjen_no_phase.yaml": {"loss_spatial_ts", "loss_spatial_bs"},
    "hparams/sjen_no_bad_student.yaml": {"loss_spatial_ts"},
    "hparams/sjen_no_kd.yaml": set(),
}
PARTS = {"loss_spatial_ts", "loss_spatial_bs", "loss_spatial_ratio"}


@pytest.mark.parametrize("hparams", sorted(SPATIAL))
def test_spatial_rows_log_their_parts(recipe_runs, hparams):
    log = (recipe_runs(hparams).run / "train_log.txt").read_text()
    train = [
        line.split(" - ")[1]
        for line in log.splitlines()
        if "train loss" in line
    ]
    assert train, log
    for line in train:
        logged = {part for part in PARTS if f"{part}:" in line}
        expected = SPATIAL[hparams]
        if expected:
            expected = expected | {"loss_spatial_ratio"}
        assert logged == expected, line
        assert ("loss_spatial:" in line) is bool(expected)


def test_teacher_row_trains_on_both_ears(recipe_runs):
    run = recipe_runs("hparams/mhca_crn_teacher.yaml").run
    saved = (run / "hyperparams.yaml").read_text()
    assert "student_input: binaural_sig" in saved
    assert "MHCACRN" in saved


def test_sjen_row_reports_each_test_snr_apart(recipe_runs):
    run = recipe_runs("hparams/sjen.yaml").run
    reported = 0
    for snr in (-5, 0, 5, 10):
        manifest = run.parent / "prepared" / f"test_snr{snr}.json"
        entries = json.loads(manifest.read_text())
        summary = run / f"test_summary_snr{snr}.json"
        assert summary.is_file() is bool(entries), snr
        if entries:
            assert json.loads(summary.read_text())["n_items"] == len(entries)
            reported += 1
    assert reported >= 1


SCRIPT = REPO / "recipes" / "Binaural" / "train_spatial.py"
DIES = REPO / "tests" / "scripts" / "dies_in_training.py"
BRAIN = "speechbrain_kd.brains:SpatialInjectionBrain"


def sjen_command(recipe_runs, binaural_folders, out, *args, epochs=2):
    """``args`` then the SJEN arguments (teacher and bad student: the rows'
    runs) without ``--debug``: ``epochs`` epochs of 1-s segments every
    0.5 s, a checkpoint after every step."""
    teacher = recipe_runs("hparams/mhca_crn_teacher.yaml")
    bad_student = recipe_runs("hparams/sjen_no_kd.yaml").run
    return [
        *map(str, args),
        str(REPO / "hparams" / "sjen.yaml"),
        f"--speech_folder={binaural_folders / 'speech'}",
        f"--noise_folder={binaural_folders / 'noise'}",
        f"--ir_folder={binaural_folders / 'irs'}",
        f"--prepare_folder={teacher.out / 'prepared'}",
        f"--output_folder={out}",
        f"--teacher_source={teacher.run}",
        f"--bad_student_source={bad_student}",
        "--channels=[16,32]",
        "--hidden=16",
        "--teacher_channels=[16,32]",
        "--teacher_hidden=16",
        f"--number_of_epochs={epochs}",
        "--batch_size=2",
        "--segment_seconds=1.0",
        "--segment_hop_seconds=0.5",
        "--ckpt_interval_minutes=0",
        "--ckpt_interval_steps=1",
        "--metric_jobs=1",
        "--num_workers=0",
        "--save_enhanced=False",
    ]


def model_tensors(run):
    """The model weights of the run's end-of-epoch checkpoints, by epoch."""
    tensors = {}
    for checkpoint in (run / "save").glob("CKPT+*"):
        if "intra_epoch_ckpt: true" in (checkpoint / "CKPT.yaml").read_text():
            continue
        epoch = int((checkpoint / "counter.ckpt").read_text())
        tensors[epoch] = torch.load(checkpoint / "model.ckpt")
    return tensors


def test_sjen_killed_mid_epoch_resumes_bit_exactly(
    run_script, recipe_runs, binaural_folders, tmp_path
):
    """kill -9 before step 3 of epoch 2 (a checkpoint after every step),
    then the same command: the weights and test scores equal those of a
    run that was never interrupted."""
    whole = tmp_path / "whole"
    result = run_script(
        sjen_command(recipe_runs, binaural_folders, whole, PYTHON, SCRIPT)
    )
    assert result.returncode == 0, result.stderr[-4000:]
    killed_run = tmp_path / "killed"
    dies = [PYTHON, DIES, BRAIN, "2", "3", SCRIPT]
    killed = run_script(
        sjen_command(recipe_runs, binaural_folders, killed_run, *dies)
    )
    assert killed.returncode == 137, killed.stderr[-4000:]
    assert not (killed_run / "test_summary.json").exists()
    resumed = run_script(
        sjen_command(recipe_runs, binaural_folders, killed_run, PYTHON, SCRIPT)
    )
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "Loading a checkpoint from" in (killed_run / "log.txt").read_text()

    expected, got = model_tensors(whole), model_tensors(killed_run)
    assert expected and sorted(got) == sorted(expected)  # the kept ones
    for epoch, weights in expected.items():
        assert got[epoch].keys() == weights.keys()
        for key, value in weights.items():
            assert torch.equal(got[epoch][key], value), (epoch, key)
    summaries = [
        json.loads((run / "test_summary.json").read_text())
        for run in (whole, killed_run)
    ]
    assert summaries[0] == summaries[1]
    log = (killed_run / "train_log.txt").read_text()
    assert log.count("epoch: 1,") == 1 and log.count("epoch: 2,") == 1, log


def test_sjen_torchrun_two_processes_gloo(
    recipe_runs, binaural_folders, tmp_path
):
    out = tmp_path / "ddp"
    command = sjen_command(recipe_runs, binaural_folders, out, epochs=1)
    result = run_torchrun(SCRIPT, *command, "--distributed_backend=gloo")
    assert result.returncode == 0, result.stderr[-4000:]
    log = (out / "train_log.txt").read_text()
    assert "loss_spatial_ts" in log and "loss_spatial_bs" in log, log
    assert (out / "test_summary.json").is_file()
    assert any(out.glob("test_summary_snr*.json"))
