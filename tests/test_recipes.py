"""Recipe runs on tiny generated data: teacher, MV-AT, resume, DDP.

Models are shrunk through the command line (the recipes expose channels,
depth and attention layers) so each run takes seconds on two CPU cores;
the code paths are those of the full recipes.
"""

import json
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import types

import pytest

from speechbrain_kd.brains.checkpoints import is_complete

REPO = pathlib.Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes" / "Valentini"
PYTHON = sys.executable

# A MANNER teacher small enough for CI (depth 4 so that MV-AT's dual-depth
# pairs, student layer 2 <-> teacher layers 2 and 3, exist).
TINY_TEACHER = [
    "--channels=6",
    "--depth=4",
    "--attention_layers=[0, 1, 2, 3]",
]
TINY_TEACHER_FOR_KD = [
    "--teacher_channels=6",
    "--teacher_depth=4",
    "--teacher_attention_layers=[0, 1, 2, 3]",
]
# Files of a complete checkpoint of the teacher recipe.
RECOVERABLES = ["model", "counter", "optimizer", "lr_scheduler"]
FAST = ["--metric_jobs=1", "--num_workers=0", "--segment_seconds=1.0"]


@pytest.fixture(scope="module")
def data_folder(mini_valentini):
    """The shared tiny dataset in the official 48 kHz layout."""
    return mini_valentini


def run_recipe(run_script, script, hparams, *args, check=True):
    """Runs a recipe script (``run_script``: as a subprocess would)."""
    command = [PYTHON, str(RECIPES / script), str(REPO / "hparams" / hparams)]
    result = run_script([*command, *args])
    if check and result.returncode != 0:
        raise AssertionError(
            f"{script} failed ({result.returncode}):\n{result.stderr[-4000:]}"
        )
    return result


@pytest.fixture(scope="module")
def teacher_run(tiny_manner_teacher):
    """``train_teacher.py --debug --debug_persistently``, tiny MANNER
    teacher (the csv row; its checkpoints stay in the output folder, where
    the distillation runs load it from)."""
    return tiny_manner_teacher


def test_teacher_run_writes_checkpoint_and_test_report(teacher_run):
    run = teacher_run / "run"
    checkpoints = list((run / "save").glob("CKPT+*"))
    assert checkpoints, "no checkpoint written"
    assert (checkpoints[0] / "model.ckpt").is_file()
    summary = json.loads((run / "test_summary.json").read_text())
    for key in ("pesq", "stoi", "estoi", "csig", "cbak", "covl", "si_sdr"):
        assert key in summary
    rows = (run / "test_per_utterance.csv").read_text().splitlines()
    assert rows[0].startswith("id,pesq")
    assert len(rows) == 1 + 2  # header + two test utterances
    assert len(list((run / "enhanced").glob("*.wav"))) == 2
    log = (run / "train_log.txt").read_text()
    assert "loss_supervised" in log and "pesq" in log


def official_training_checkpoint(golden, tmp_path):
    """The all-MA golden model (N=12, depth 3) saved as the official
    training script saves it."""
    import torch

    fixture = torch.load(golden / "manner_all_ma_n12_d3.pt")
    path = tmp_path / "official" / "best_model.pth"
    path.parent.mkdir()
    torch.save(
        {"loss": 0.5, "state_dict": fixture["state_dict"], "optimizer": {}},
        path,
    )
    return path


def run_mvat_from_official(
    run_script, golden, teacher_run, data_folder, tmp_path, *args
):
    """``train_mvat.py --debug`` with an official checkpoint as teacher."""
    checkpoint = official_training_checkpoint(golden, tmp_path)
    return run_recipe(
        run_script,
        "train_mvat.py",
        "mvat.yaml",
        "--debug",
        f"--data_folder={data_folder}",
        f"--prepare_folder={teacher_run / 'prepared'}",
        f"--output_folder={tmp_path / 'mvat'}",
        f"--teacher_source={checkpoint}",
        *FAST,
        *args,
        check=False,
    )


def test_official_manner_checkpoint_trains_as_mvat_teacher(
    run_script, golden, teacher_run, data_folder, tmp_path
):
    result = run_mvat_from_official(
        run_script,
        golden,
        teacher_run,
        data_folder,
        tmp_path,
        "--teacher_channels=12",
        "--teacher_depth=3",
        "--teacher_attention_layers=[0, 1, 2]",
        "--at_teacher_layers=[[1, 2]]",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    log = (tmp_path / "mvat" / "train_log.txt").read_text()
    assert "loss_mvat" in log and "loss_output_kd" in log
    assert (tmp_path / "mvat" / "test_summary.json").is_file()


def test_official_checkpoint_of_another_preset_names_the_fit(
    run_script, golden, teacher_run, data_folder, tmp_path
):
    result = run_mvat_from_official(
        run_script,
        golden,
        teacher_run,
        data_folder,
        tmp_path,
        *TINY_TEACHER_FOR_KD,
    )
    assert result.returncode == 2
    assert "official checkpoint does not fit" in result.stderr
    assert "channels=12, depth=3" in result.stderr


def test_mvat_without_teacher_says_how_to_get_one(
    run_script, data_folder, tmp_path
):
    result = run_recipe(
        run_script,
        "train_mvat.py",
        "mvat.yaml",
        f"--data_folder={data_folder}",
        f"--output_folder={tmp_path / 'mvat'}",
        check=False,
    )
    assert result.returncode == 2
    assert "train_teacher.py" in result.stderr
    assert "--teacher_source" in result.stderr


def test_mvat_with_wrong_teacher_size_is_a_clear_error(
    run_script, teacher_run, data_folder, tmp_path
):
    result = run_recipe(
        run_script,
        "train_mvat.py",
        "mvat.yaml",
        "--debug",
        f"--data_folder={data_folder}",
        f"--prepare_folder={teacher_run / 'prepared'}",
        f"--output_folder={tmp_path / 'mvat'}",
        f"--teacher_source={teacher_run / 'run'}",
        "--teacher_channels=9",  # trained with 6
        *FAST,
        check=False,
    )
    assert result.returncode == 2
    assert "do not fit MANNER" in result.stderr


def test_killed_run_resumes_from_its_checkpoint(
    run_script, data_folder, tmp_path
):
    out = tmp_path / "resume"
    args = [
        PYTHON,
        str(RECIPES / "train_teacher.py"),
        str(REPO / "hparams" / "manner_teacher.yaml"),
        f"--data_folder={data_folder}",
        f"--prepare_folder={tmp_path / 'prepared'}",
        f"--output_folder={out}",
        "--number_of_epochs=2",
        "--batch_size=1",
        "--segment_hop_seconds=0.25",
        "--ckpt_interval_minutes=0",
        "--ckpt_interval_steps=2",
        "--save_enhanced=False",
        *TINY_TEACHER,
        *FAST,
    ]
    process = subprocess.Popen(
        args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 300
    intra_epoch = None
    while time.time() < deadline and process.poll() is None:
        for meta in (out / "save").glob("CKPT+*/CKPT.yaml"):
            complete = is_complete(
                types.SimpleNamespace(path=meta.parent), RECOVERABLES
            )
            if "intra_epoch_ckpt" in meta.read_text() and complete:
                intra_epoch = meta.parent
        if intra_epoch is not None:
            break
        time.sleep(0.05)
    assert intra_epoch is not None, "no intra-epoch checkpoint appeared"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "test_summary.json").exists()

    result = run_script(args)
    assert result.returncode == 0, result.stderr[-4000:]
    run_log = (out / "log.txt").read_text()  # both runs append to it
    # The first run started fresh; the second resumed (from the checkpoint
    # seen above, or from a newer one if the kill came after it).
    assert run_log.count("Would load a checkpoint here, but none found") == 1
    assert "Loading a checkpoint from" in run_log
    log = (out / "train_log.txt").read_text().splitlines()
    epochs = [line.split(",")[0] for line in log if line.startswith("epoch")]
    assert epochs == ["epoch: 1", "epoch: 2"], log
    assert (out / "test_summary.json").is_file()


def test_torchrun_two_processes_gloo(teacher_run, data_folder, tmp_path):
    from recipe_rows import run_torchrun

    result = run_torchrun(
        RECIPES / "train_mvat.py",
        REPO / "hparams" / "mvat.yaml",
        "--debug",
        "--distributed_backend=gloo",
        f"--data_folder={data_folder}",
        f"--prepare_folder={teacher_run / 'prepared'}",
        f"--output_folder={tmp_path / 'ddp'}",
        f"--teacher_source={teacher_run / 'run'}",
        *TINY_TEACHER_FOR_KD,
        *FAST,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    log = (tmp_path / "ddp" / "train_log.txt").read_text()
    assert "loss_mvat" in log
    assert (tmp_path / "ddp" / "test_summary.json").is_file()


@pytest.mark.parametrize(
    "option, suggestion",
    [
        ("--batch_sizee=4", "did you mean --batch_size?"),
        ("--debug_batchs=4", "did you mean --debug_batches or --debug_epochs?"),
    ],
)
def test_mistyped_option_is_one_clear_line(
    run_script, data_folder, option, suggestion
):
    """Was a KeyError traceback listing every yaml key."""
    result = run_recipe(
        run_script,
        "train_mvat.py",
        "mvat_l2.yaml",
        f"--data_folder={data_folder}",
        option,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    name = option.split("=")[0]
    yaml = REPO / "hparams" / "mvat_l2.yaml"
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: unknown option {name} for {yaml} ({suggestion})"
    )


def test_bad_model_setting_is_one_line_at_start_up(run_script, data_folder):
    """``--channels 16`` for MANNER was a traceback from the yaml loader."""
    result = run_recipe(
        run_script,
        "train_teacher.py",
        "manner_teacher.yaml",
        f"--data_folder={data_folder}",
        "--channels=16",
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"error: {REPO / 'hparams' / 'manner_teacher.yaml'}: channels=16:"
    )
    assert "multiple of 3" in last


@pytest.mark.parametrize("kind", ["file", "read-only"])
def test_unusable_output_folder_is_one_line_before_any_work(
    run_script, data_folder, tmp_path, kind
):
    """Was a NotADirectoryError / PermissionError traceback."""
    if kind == "file":
        blocker = tmp_path / "taken"
        blocker.write_text("")
        out, expected = blocker / "run", f"{blocker} is a file, not a folder"
    else:
        out, expected = pathlib.Path("/sys/sbkd_run"), "cannot write there"
    result = run_recipe(
        run_script,
        "train_teacher.py",
        "manner_teacher.yaml",
        f"--data_folder={data_folder}",
        f"--prepare_folder={tmp_path / 'prepared'}",
        f"--output_folder={out}",
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: output_folder {out} is not usable: ")
    assert expected in last
    assert not (tmp_path / "prepared").exists()  # before any work


def test_output_folder_of_another_model_size_is_one_error(
    run_script, teacher_run, data_folder, tmp_path
):
    """Was 100+ "size mismatch" lines."""
    out = tmp_path / "reused"
    shutil.copytree(teacher_run / "run" / "save", out / "save")
    result = run_recipe(
        run_script,
        "train_teacher.py",
        "manner_teacher.yaml",
        "--debug",
        f"--data_folder={data_folder}",
        f"--prepare_folder={teacher_run / 'prepared'}",
        f"--output_folder={out}",
        "--debug_persistently",
        "--channels=9",  # the checkpoints were trained with 6
        "--depth=4",
        "--attention_layers=[0, 1, 2, 3]",
        *FAST,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: the checkpoint {out / 'save'}/CKPT+")
    assert (
        " holds another model: " in last and "tensors differ in shape" in last
    )
    assert "torch.Size([6, " in last and "torch.Size([9, " in last
    assert "choose another output_folder (--output_folder)" in last
    assert f"or delete {out / 'save'} to start over" in last


def test_file_damaged_after_preparation_is_one_line(
    run_script, teacher_run, data_folder, tmp_path
):
    """Was a soundfile traceback from a DataLoader worker, mid-epoch."""
    source = teacher_run / "prepared"
    prepared = tmp_path / "prepared"
    shutil.copytree(source, prepared)
    for manifest in prepared.glob("*.json"):
        manifest.write_text(
            manifest.read_text().replace(str(source), str(prepared))
        )
    train = json.loads((prepared / "train.json").read_text())
    damaged = pathlib.Path(next(iter(train.values()))["noisy_wav"])
    assert prepared in damaged.parents
    damaged.write_bytes(b"garbage!" * 64)
    result = run_recipe(
        run_script,
        "train_teacher.py",
        "manner_teacher.yaml",
        "--debug",
        f"--data_folder={data_folder}",
        f"--prepare_folder={prepared}",
        "--skip_prep=True",
        f"--output_folder={tmp_path / 'run'}",
        *TINY_TEACHER,
        "--metric_jobs=1",
        "--num_workers=1",  # the error crosses a DataLoader worker
        "--segment_seconds=1.0",
        check=False,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"error: {damaged}, listed in {prepared / 'train.json'}, cannot be "
        "read ("
    )
    assert last.endswith(
        f"Prepare it again: delete {prepared} (the prepare_folder) and run "
        "the same command without --skip_prep=True"
    )


KDRL_RECOVERABLES = [
    "model",
    "counter",
    "optimizer",
    "policy",
    "references",
    "policy_optimizer",
    "reference_soft_optimizer",
    "reference_hard_optimizer",
]


def test_killed_kdrl_run_resumes_without_losing_an_epoch(
    run_script, recipe_runs, data_folder, tmp_path
):
    """``train_kdrl.py`` killed with SIGKILL once an intra-epoch checkpoint
    holding the student, the policy, both references and every optimizer
    is complete; the rerun resumes from it and finishes both epochs."""
    teacher = recipe_runs("hparams/wave_u_net_teacher.yaml").out / "run"
    out = tmp_path / "kdrl"
    args = [
        PYTHON,
        str(RECIPES / "train_kdrl.py"),
        str(REPO / "hparams" / "kdrl.yaml"),
        f"--data_folder={data_folder}",
        f"--prepare_folder={tmp_path / 'prepared'}",
        f"--output_folder={out}",
        f"--teacher_source={teacher}",
        "--number_of_epochs=2",
        "--batch_size=1",
        "--segment_seconds=0.256",
        "--policy_input_length=4096",
        "--width=2",
        "--teacher_width=3",
        "--depth=4",
        "--ckpt_interval_minutes=0",
        "--ckpt_interval_steps=2",
        "--save_enhanced=False",
        "--metric_jobs=1",
        "--num_workers=0",
    ]
    process = subprocess.Popen(
        args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 300
    intra_epoch = None
    while time.time() < deadline and process.poll() is None:
        for meta in (out / "save").glob("CKPT+*/CKPT.yaml"):
            complete = is_complete(
                types.SimpleNamespace(path=meta.parent), KDRL_RECOVERABLES
            )
            if "intra_epoch_ckpt" in meta.read_text() and complete:
                intra_epoch = meta.parent
        if intra_epoch is not None:
            break
        time.sleep(0.05)
    assert intra_epoch is not None, "no intra-epoch checkpoint appeared"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "test_summary.json").exists()

    result = run_script(args)
    assert result.returncode == 0, result.stderr[-4000:]
    run_log = (out / "log.txt").read_text()
    assert run_log.count("Would load a checkpoint here, but none found") == 1
    assert "Loading a checkpoint from" in run_log
    log = (out / "train_log.txt").read_text().splitlines()
    epochs = [line.split(",")[0] for line in log if line.startswith("epoch")]
    assert epochs == ["epoch: 1", "epoch: 2"], log
    assert all("alpha_mean" in line for line in log if line.startswith("epoch"))
    assert (out / "test_summary.json").is_file()


def test_kdrl_with_bf16_accumulation_and_clipping(
    run_script, recipe_runs, data_folder, tmp_path
):
    """KDRLBrain keeps SpeechBrain's precision, gradient accumulation and
    clipping options (the references and the policy follow them)."""
    teacher = recipe_runs("hparams/wave_u_net_teacher.yaml").out / "run"
    result = run_recipe(
        run_script,
        "train_kdrl.py",
        "kdrl.yaml",
        "--debug",
        f"--data_folder={data_folder}",
        f"--prepare_folder={tmp_path / 'prepared'}",
        f"--output_folder={tmp_path / 'run'}",
        f"--teacher_source={teacher}",
        "--width=2",
        "--teacher_width=3",
        "--depth=4",
        "--segment_seconds=0.256",
        "--policy_input_length=4096",
        "--batch_size=2",
        "--grad_accumulation_factor=2",
        "--precision=bf16",
        "--max_grad_norm=5",
        "--metric_jobs=1",
        "--num_workers=0",
    )
    assert "--precision=bf16" in result.stdout + result.stderr
    log = (tmp_path / "run" / "train_log.txt").read_text()
    assert "epoch: 2" in log and "alpha_mean" in log and "loss_policy" in log
