"""Half-written checkpoints of a killed run are skipped by export and the
teacher loader with the rule resuming uses (issue 18, case 3)."""

import logging
import pathlib

import pytest
import torch
import yaml

from speechbrain_kd.brains.teacher import TeacherLoadError, load_teacher
from speechbrain_kd.lobes.manner import MANNER
from speechbrain_kd.pretrained import KDEnhancement, export_model
from speechbrain_kd.pretrained.checkpoints import (
    CheckpointError,
    checkpoint_problem,
    find_checkpoint_file,
)
from speechbrain_kd.pretrained.folder import read_parameters
from speechbrain_kd.pretrained.interface import ModelLoadError

HPARAMS = (
    "sample_rate: 16000\n"
    "model: !new:speechbrain_kd.lobes.manner.MANNER\n"
    "    channels: 6\n    depth: 2\n    attention_layers: [1]\n"
)


def tiny(seed):
    torch.manual_seed(seed)
    return MANNER(channels=6, depth=2, attention_layers=[1])


def checkpoint(save, name, meta, model):
    folder = save / f"CKPT+{name}"
    folder.mkdir(parents=True)
    (folder / "CKPT.yaml").write_text(yaml.safe_dump(meta))
    torch.save(model.state_dict(), folder / "model.ckpt")
    return folder


@pytest.fixture
def killed_run(tmp_path):
    """A complete checkpoint (PESQ 1.5), a better one whose model file was
    cut off, and a newer one whose CKPT.yaml is empty."""
    save = tmp_path / "run" / "save"
    good = checkpoint(save, "1", {"pesq": 1.5, "unixtime": 1.0}, tiny(0))
    cut = checkpoint(save, "2", {"pesq": 2.0, "unixtime": 2.0}, tiny(1))
    data = (cut / "model.ckpt").read_bytes()
    (cut / "model.ckpt").write_bytes(data[: len(data) // 2])
    empty = checkpoint(save, "3", {"pesq": 3.0, "unixtime": 3.0}, tiny(2))
    (empty / "CKPT.yaml").write_text("")
    return tmp_path / "run", good, cut, empty


def test_the_rule_names_what_is_wrong(killed_run):
    _, good, cut, empty = killed_run
    assert checkpoint_problem(good, ["model"]) is None
    assert checkpoint_problem(cut) == "model.ckpt is empty or truncated"
    assert checkpoint_problem(empty) == (
        "CKPT.yaml is missing, empty or unreadable"
    )


def test_teacher_loader_skips_incomplete_checkpoints(
    killed_run, tmp_path, caplog
):
    run, good, cut, empty = killed_run
    with caplog.at_level(logging.WARNING):
        assert find_checkpoint_file(run) == good / "model.ckpt"
    assert f"Skipping checkpoint {cut}: model.ckpt is empty" in caplog.text
    assert f"Skipping checkpoint {empty}: CKPT.yaml is missing" in caplog.text
    teacher = tiny(5)
    load_teacher(teacher, str(run), tmp_path / "fetched")
    expected = tiny(0).state_dict()
    assert all(
        torch.equal(v, expected[k]) for k, v in teacher.state_dict().items()
    )


def test_export_skips_incomplete_checkpoints(killed_run, tmp_path):
    run, *_ = killed_run
    hparams = tmp_path / "hyperparams.yaml"
    hparams.write_text(HPARAMS)
    out = export_model(hparams, run, tmp_path / "export", rtf_seconds=0.1)
    exported = torch.load(out / "enhance_model.ckpt", weights_only=True)
    expected = tiny(0).state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in exported.items())


def test_only_incomplete_checkpoints_is_a_clear_error(killed_run):
    run, good, *_ = killed_run
    (good / "CKPT.yaml").write_text("")
    with pytest.raises(CheckpointError, match="skipping incomplete ones"):
        find_checkpoint_file(run)


def damaged(path, kind):
    """Writes a parameter file damaged in one of the ways users met."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(tiny(0).state_dict(), path)
    data = path.read_bytes()
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "garbage":
        path.write_bytes(b"\x00garbage bytes\xff" * 64)
    elif kind == "objects":
        torch.save(
            {"model": tiny(0).state_dict(), "path": pathlib.Path()}, path
        )
    return path


REASONS = {
    "empty": "it is empty (0 bytes), probably a save that was interrupted",
    "truncated": "it is truncated or damaged (",
    "garbage": "it is not a PyTorch parameter file; point at a .ckpt",
    "objects": "it holds Python objects besides tensors, which are never",
}


@pytest.mark.parametrize("kind", sorted(REASONS))
def test_damaged_parameter_file_names_the_file(tmp_path, kind):
    """Were UnpicklingError (advising weights_only=False), EOFError and
    zip-read tracebacks."""
    path = damaged(tmp_path / "teacher.ckpt", kind)
    with pytest.raises(CheckpointError) as error:
        read_parameters(path)
    message = str(error.value)
    assert message.startswith(f"cannot read the parameter file {path}: ")
    assert REASONS[kind] in message
    assert "weights_only" not in message
    with pytest.raises(TeacherLoadError) as error:
        load_teacher(tiny(1), str(path), tmp_path / "collected")
    assert str(error.value).startswith(
        f"teacher_source: cannot read the parameter file {path}: "
    )
    assert REASONS[kind] in str(error.value)


@pytest.mark.parametrize("kind", sorted(REASONS))
def test_damaged_exported_model_names_the_file(tmp_path, kind):
    hparams = tmp_path / "hyperparams.yaml"
    hparams.write_text(HPARAMS)
    ckpt = tmp_path / "model.ckpt"
    torch.save(tiny(0).state_dict(), ckpt)
    folder = export_model(hparams, ckpt, tmp_path / "export", rtf_seconds=0.1)
    damaged(folder / "enhance_model.ckpt", kind)
    with pytest.raises(ModelLoadError) as error:
        KDEnhancement.from_hparams(
            source=str(folder), savedir=str(tmp_path / "collected")
        )
    assert "cannot read the parameter file" in str(error.value)
    assert "enhance_model.ckpt" in str(error.value)
    assert REASONS[kind] in str(error.value)
    with pytest.raises(CheckpointError, match=REASONS[kind].split("(")[0]):
        export_model(hparams, damaged(ckpt, kind), tmp_path / "again")
