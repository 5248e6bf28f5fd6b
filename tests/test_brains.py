"""Exact checks of the Brains: teacher handling, loss terms, teacher
loading, checkpoint hygiene, LR schedule and the test-stage outputs.

Tiny models (MANNER with 6 channels, or a few-parameter ``nn.Module`` where
the architecture does not matter) on 0.5-s random signals keep the module
fast; the PESQ checkpoint check reads a real VoiceBank utterance through
the ``shared_data`` fixture.
"""

import csv
import json
import math
import re

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn as nn

import speechbrain as sb
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.epoch_loop import EpochCounter
from speechbrain_kd.brains import EnhanceBrain, KDBrain
from speechbrain_kd.brains.checkpoints import (
    INCOMPLETE_PREFIX,
    set_aside_incomplete_checkpoints,
)
from speechbrain_kd.brains.teacher import (
    TeacherLoadError,
    load_teacher,
    looks_like_local_path,
    resolve_checkpoint_file,
)
from speechbrain_kd.distill import (
    ATLoss,
    DistillStep,
    FeatureDistillTerm,
    FeatureTaps,
    OutputDistillTerm,
    mvat_pairs,
)
from speechbrain_kd.lobes.manner import MANNER
from speechbrain_kd.losses import WeightedCleanNoiseLoss
from speechbrain_kd.metrics import si_sdr, snr
from speechbrain_kd.pretrained import KDEnhancement

SR = 16000
RUN_OPTS = {"device": "cpu", "noprogressbar": True}


pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------
# helpers


def make_teacher(seed=0):
    torch.manual_seed(seed)
    return MANNER(channels=6, depth=4, attention_layers=[0, 1, 2, 3])


def make_student(seed=1):
    torch.manual_seed(seed)
    return MANNER(channels=6, depth=3, attention_layers=[2])


def make_items(lengths, seed=0):
    """Items with ``id``, ``noisy_sig`` and ``clean_sig`` (random signals)."""
    generator = torch.Generator().manual_seed(seed)
    items = []
    for index, length in enumerate(lengths):
        clean = 0.1 * torch.randn(length, generator=generator)
        noisy = clean + 0.05 * torch.randn(length, generator=generator)
        items.append(
            {"id": f"u{index}", "noisy_sig": noisy, "clean_sig": clean}
        )
    return items


def as_loader(items, batch_size=2):
    return torch.utils.data.DataLoader(
        items, batch_size=batch_size, collate_fn=PaddedBatch
    )


def as_dataset(items):
    data = {
        item["id"]: {k: v for k, v in item.items() if k != "id"}
        for item in items
    }
    return DynamicItemDataset(
        data, output_keys=["id", "noisy_sig", "clean_sig"]
    )


def kd_terms():
    with torch.random.fork_rng():  # the RNG stream of the tests unchanged
        pairs = mvat_pairs(make_student(), make_teacher(), [2], [[2, 3]])
    return [
        FeatureDistillTerm(pairs, ATLoss(), name="mvat"),
        OutputDistillTerm(WeightedCleanNoiseLoss(), name="output_kd"),
    ]


def make_kd_brain(teacher, student, **hparams):
    hparams = {
        "loss": WeightedCleanNoiseLoss(),
        "distill_terms": kd_terms(),
        **hparams,
    }
    return KDBrain(
        modules={"model": student},
        opt_class=lambda params: torch.optim.Adam(params, 1e-3),
        hparams=hparams,
        run_opts=RUN_OPTS,
        teacher=teacher,
    )


def state_copy(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same_state(module, state):
    current = module.state_dict()
    return set(current) == set(state) and all(
        torch.equal(current[k], state[k]) for k in state
    )


class Gain(nn.Module):
    """``y = w * x`` with one learnable weight."""

    def __init__(self, weight=0.8):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(float(weight)))

    def forward(self, x):
        return self.weight * x


class FIR(nn.Module):
    """A learnable 31-tap filter starting near the identity."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv1d(1, 1, 31, padding=15, bias=False)
        with torch.no_grad():
            self.conv.weight.mul_(0.1)
            self.conv.weight[0, 0, 15] += 1.0

    def forward(self, x):
        return self.conv(x.unsqueeze(1)).squeeze(1)


# --------------------------------------------------------------------------
# 1. KDBrain: the teacher stays in eval mode, without gradient or optimizer


def test_kd_brain_teacher_frozen_outside_optimizer():
    teacher, student = make_teacher(), make_student()
    teacher.train()  # whatever the caller did, the Brain must freeze it
    teacher_before = state_copy(teacher)
    student_before = state_copy(student)

    modes, calls = [], []
    teacher.register_forward_pre_hook(
        lambda module, args: modes.append(
            (module.training, any(m.training for m in module.modules()))
        )
    )
    teacher.register_forward_hook(lambda module, args, out: calls.append(1))

    brain = make_kd_brain(teacher, student, valid_metrics=["snr"])
    assert brain.teacher is teacher
    assert "teacher" not in brain.modules
    assert all(m is not teacher for m in brain.modules.values())

    train = as_loader(make_items([8000, 7000, 8000, 6000, 8000]), 2)
    valid = as_loader(make_items([8000, 7500], seed=5), 2)
    brain.fit(EpochCounter(1), train, valid, progressbar=False)

    # once per training batch (3 batches), never in validation
    assert len(calls) == len(train) == 3
    # in eval mode, every submodule too, at every call
    assert modes == [(False, False)] * 3
    assert teacher.training is False
    assert not any(m.training for m in teacher.modules())
    # no gradient, no optimizer
    teacher_ids = {id(p) for p in teacher.parameters()}
    assert all(not p.requires_grad for p in teacher.parameters())
    assert all(p.grad is None for p in teacher.parameters())
    for optimizer in brain.optimizers_dict.values():
        for group in optimizer.param_groups:
            assert not teacher_ids & {id(p) for p in group["params"]}
    optimized = {
        id(p) for group in brain.optimizer.param_groups for p in group["params"]
    }
    assert optimized == {id(p) for p in student.parameters()}
    assert not teacher_ids & {id(p) for p in brain.modules.parameters()}
    # weights and BatchNorm statistics untouched; the student trained
    assert same_state(teacher, teacher_before)
    assert not same_state(student, student_before)
    assert brain.optimizer_step == 3


def test_kd_brain_loads_teacher_from_source(tmp_path):
    trained = make_teacher(seed=3)
    (tmp_path / "export").mkdir()
    torch.save(trained.state_dict(), tmp_path / "export" / "enhance_model.ckpt")
    hparams = {
        "loss": WeightedCleanNoiseLoss(),
        "distill_terms": kd_terms(),
        "teacher": make_teacher(seed=4).train(),
        "teacher_source": str(tmp_path / "export"),
        "output_folder": str(tmp_path / "out"),
    }
    brain = KDBrain(modules={"model": make_student()}, hparams=hparams)
    assert brain.teacher is hparams["teacher"]
    assert same_state(brain.teacher, trained.state_dict())
    assert brain.teacher.training is False
    assert all(not p.requires_grad for p in brain.teacher.parameters())
    # the Pretrainer collected the file in output_folder/teacher
    assert (tmp_path / "out" / "teacher" / "teacher.ckpt").exists()

    hparams["teacher_source"] = None
    with pytest.raises(TeacherLoadError, match="teacher_source"):
        KDBrain(modules={"model": make_student()}, hparams=hparams)


# --------------------------------------------------------------------------
# 2. loss terms


def test_kd_brain_loss_terms_logged_and_summed():
    teacher, student = make_teacher(), make_student()
    brain = make_kd_brain(teacher, student, supervised_weight=0.5)
    items = make_items([8000, 6400, 8000, 7200])
    brain.fit(EpochCounter(1), as_loader(items, 2), progressbar=False)
    stats = brain.train_stats
    assert set(stats) == {
        "loss",
        "loss_supervised",
        "loss_mvat",
        "loss_output_kd",
    }
    assert all(math.isfinite(v) for v in stats.values())

    # one batch directly, against the terms computed by hand
    batch = PaddedBatch(items[:2])
    out = brain.compute_forward(batch, sb.Stage.TRAIN)
    assert isinstance(out, DistillStep)
    assert not out.teacher_out.requires_grad
    assert all(not f.requires_grad for f in out.teacher_features.values())
    assert out.teacher_input is out.student_input  # default: same input
    loss = brain.compute_objectives(out, batch, sb.Stage.TRAIN)
    logged = brain.term_averages()

    noisy, lengths = batch.noisy_sig
    clean, _ = batch.clean_sig
    pairs = mvat_pairs(student, teacher, [2], [[2, 3]])
    with torch.no_grad():
        with (
            FeatureTaps(student, [s for s, _ in pairs]) as s_taps,
            FeatureTaps(teacher, [t for _, ts in pairs for t in ts]) as t_taps,
        ):
            enhanced = student(noisy)
            teacher_out = teacher(noisy)
            mvat = sum(
                ATLoss()(s_taps[s], t_taps[t], length=lengths)
                for s, ts in pairs
                for t in ts
            )
        supervised = WeightedCleanNoiseLoss()(enhanced, clean, noisy, lengths)
        output_kd = WeightedCleanNoiseLoss()(
            enhanced, teacher_out, noisy, lengths
        )
    assert len(pairs) == 6  # 2 sides x 3 views, dual depth: 12 summands
    assert torch.allclose(out.student_out, enhanced)
    assert torch.allclose(out.teacher_out, teacher_out)
    assert logged["loss_supervised"] == pytest.approx(float(supervised))
    assert logged["loss_mvat"] == pytest.approx(float(mvat), rel=1e-5)
    assert logged["loss_output_kd"] == pytest.approx(float(output_kd))
    expected = 0.5 * supervised + mvat + output_kd
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    assert float(mvat) > 0 and float(output_kd) > 0
    assert loss.requires_grad

    # outside training: the student alone, no teacher call, no KD terms
    calls = []
    teacher.register_forward_hook(lambda module, args, out: calls.append(1))
    with torch.no_grad():
        out = brain.compute_forward(batch, sb.Stage.VALID)
    assert isinstance(out, torch.Tensor) and calls == []
    assert torch.allclose(out, enhanced)


# --------------------------------------------------------------------------
# 3. load_teacher / resolve_checkpoint_file


def two_checkpoints(save):
    """pesq 3.0 (older) and pesq 2.0 (newer) with different weights."""
    best, newer = make_teacher(seed=10), make_teacher(seed=11)
    model = make_teacher(seed=12)
    checkpointer = Checkpointer(save, {"model": model})
    model.load_state_dict(best.state_dict())
    best_ckpt = checkpointer.save_checkpoint(meta={"pesq": 3.0})
    model.load_state_dict(newer.state_dict())
    checkpointer.save_checkpoint(meta={"pesq": 2.0})
    return best, best_ckpt


def test_load_teacher_from_training_folder_takes_best_pesq(tmp_path):
    best, best_ckpt = two_checkpoints(tmp_path / "run" / "save")
    assert len(list((tmp_path / "run" / "save").glob("CKPT+*"))) == 2
    path = resolve_checkpoint_file(tmp_path / "run")
    assert path == best_ckpt.path / "model.ckpt"
    teacher = make_teacher(seed=13).train()
    loaded = load_teacher(teacher, str(tmp_path / "run"), tmp_path / "c1")
    assert loaded is teacher
    assert same_state(teacher, best.state_dict())
    assert teacher.training is False
    assert not any(m.training for m in teacher.modules())
    assert all(not p.requires_grad for p in teacher.parameters())


def test_load_teacher_from_ckpt_and_export_folders(tmp_path):
    best, best_ckpt = two_checkpoints(tmp_path / "run" / "save")
    teacher = load_teacher(
        make_teacher(seed=14), best_ckpt.path, tmp_path / "c"
    )
    assert same_state(teacher, best.state_dict())
    assert teacher.training is False

    exported = make_teacher(seed=15)
    (tmp_path / "export").mkdir()
    torch.save(
        exported.state_dict(), tmp_path / "export" / "enhance_model.ckpt"
    )
    assert resolve_checkpoint_file(tmp_path / "export") == (
        tmp_path / "export" / "enhance_model.ckpt"
    )
    teacher = load_teacher(
        make_teacher(seed=16).train(), tmp_path / "export", tmp_path / "d"
    )
    assert same_state(teacher, exported.state_dict())
    assert teacher.training is False
    assert all(not p.requires_grad for p in teacher.parameters())


def test_load_teacher_missing_sources(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TeacherLoadError) as error:
        load_teacher(make_teacher(), "./nope/teacher", tmp_path / "c")
    assert "does not exist" in str(error.value)
    assert "train_teacher.py" in str(error.value)
    for source in (None, "", "  ", "None", "null"):
        with pytest.raises(TeacherLoadError, match="teacher_source"):
            load_teacher(make_teacher(), source, tmp_path / "c")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TeacherLoadError, match="holds no model checkpoint"):
        load_teacher(make_teacher(), tmp_path / "empty", tmp_path / "c")


def test_load_teacher_wrong_architecture_lists_keys(tmp_path):
    (tmp_path / "student").mkdir()
    torch.save(make_student().state_dict(), tmp_path / "student" / "model.ckpt")
    teacher = make_teacher(seed=20)
    before = state_copy(teacher)
    with pytest.raises(TeacherLoadError) as error:
        load_teacher(teacher, tmp_path / "student", tmp_path / "c")
    message = str(error.value)
    assert "do not fit MANNER" in message
    assert "missing keys ['decoder.0.attention.channel_attention" in message
    assert re.search(r"\] and \d+ more;", message)
    assert "shape mismatch for ['bottleneck.weight']" in message
    assert same_state(teacher, before)  # nothing loaded

    (tmp_path / "teacher").mkdir()
    torch.save(make_teacher().state_dict(), tmp_path / "teacher" / "model.ckpt")
    with pytest.raises(TeacherLoadError) as error:
        load_teacher(make_student(), tmp_path / "teacher", tmp_path / "d")
    assert "unexpected keys ['decoder.0.attention." in str(error.value)

    state = make_teacher().state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["bottleneck.weight"]
    (tmp_path / "edited").mkdir()
    torch.save(state, tmp_path / "edited" / "model.ckpt")
    with pytest.raises(TeacherLoadError) as error:
        load_teacher(make_teacher(), tmp_path / "edited", tmp_path / "e")
    message = str(error.value)
    assert "missing keys ['bottleneck.weight']" in message
    assert "unexpected keys ['extra.weight']" in message


@pytest.mark.parametrize(
    "source, expected",
    [
        ("org/name", False),
        ("speechbrain/metricgan-plus-voicebank", False),
        ("results/x/100", True),
        ("/abs", True),
        ("./rel", True),
        ("../rel", True),
        ("~/x", True),
        ("org/name/", True),
        ("name", True),
    ],
)
def test_looks_like_local_path(source, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert looks_like_local_path(source) is expected


def test_looks_like_local_path_existing_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert looks_like_local_path("org/name") is True


@pytest.mark.parametrize(
    "source", ["models/base_typo", "org/model.ckpt", "org/with space"]
)
def test_missing_path_like_source_is_not_a_hub_id(
    tmp_path, monkeypatch, source
):
    """``models/base_typo`` was looked up on the hub, with 30 s of retries,
    although ``models/`` is a local folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    assert looks_like_local_path(source) is True

    def no_network(*args, **kwargs):
        raise AssertionError("the hub was asked")

    monkeypatch.setattr("speechbrain.utils.fetching.fetch", no_network)
    monkeypatch.setattr(
        "speechbrain.utils.parameter_transfer.fetch", no_network
    )
    with pytest.raises(TeacherLoadError, match="does not exist"):
        load_teacher(make_teacher(), source, tmp_path / "collected")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        KDEnhancement.from_hparams(source=source, savedir=tmp_path / "c")


# --------------------------------------------------------------------------
# 4. incomplete checkpoints are set aside


def checkpoints_with_truncated_newest(save):
    """A complete checkpoint (weight 0.25), then a truncated one (0.75)."""
    old, new = Gain(0.25), Gain(0.75)
    model = Gain(0.0)
    checkpointer = Checkpointer(save, {"model": model})
    model.load_state_dict(old.state_dict())
    complete = checkpointer.save_checkpoint(meta={"pesq": 1.0})
    model.load_state_dict(new.state_dict())
    truncated = checkpointer.save_checkpoint(meta={"pesq": 1.0})
    path = truncated.path / "model.ckpt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return complete, truncated


def test_set_aside_truncated_checkpoint(tmp_path):
    complete, truncated = checkpoints_with_truncated_newest(tmp_path)
    model = Gain(0.0)
    checkpointer = Checkpointer(tmp_path, {"model": model})
    moved = set_aside_incomplete_checkpoints(checkpointer)
    assert moved == [tmp_path / (INCOMPLETE_PREFIX + truncated.path.name)]
    assert moved[0].is_dir() and (moved[0] / "model.ckpt").is_file()
    assert not truncated.path.exists()
    assert [c.path for c in checkpointer.list_checkpoints()] == [complete.path]
    assert checkpointer.recover_if_possible() is not None
    assert model.weight.item() == 0.25
    assert set_aside_incomplete_checkpoints(checkpointer) == []


def test_enhance_brain_fit_start_recovers_older_checkpoint(tmp_path):
    model = Gain(0.0)
    checkpointer = Checkpointer(tmp_path, {"model": model})
    brain = EnhanceBrain(  # registers itself ("brain") with the checkpointer
        modules={"model": model},
        hparams={"loss": WeightedCleanNoiseLoss()},
        run_opts=RUN_OPTS,
        checkpointer=checkpointer,
    )
    with torch.no_grad():
        model.weight.fill_(0.25)
        complete = checkpointer.save_checkpoint()
        model.weight.fill_(0.75)
        truncated = checkpointer.save_checkpoint()
        model.weight.fill_(0.0)
    assert (truncated.path / "brain.ckpt").is_file()
    path = truncated.path / "model.ckpt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    brain.on_fit_start()  # sets aside, then recovers
    assert brain.modules.model.weight.item() == 0.25
    assert (tmp_path / (INCOMPLETE_PREFIX + truncated.path.name)).is_dir()
    assert [c.path for c in checkpointer.list_checkpoints()] == [complete.path]


def fit_gain(save, epochs, train_loader=False):
    """EnhanceBrain.fit of a Gain model with a checkpointer in ``save``."""
    counter = EpochCounter(epochs)
    model = Gain()
    checkpointer = Checkpointer(save, {"model": model, "counter": counter})
    brain = EnhanceBrain(
        modules={"model": model},
        opt_class=lambda params: torch.optim.Adam(params, 1e-2),
        hparams={
            "loss": WeightedCleanNoiseLoss(),
            "valid_metrics": ["snr"],
            "ckpt_max_key": "snr",
        },
        run_opts=RUN_OPTS,
        checkpointer=checkpointer,
    )
    items = make_items([4000, 4000])
    train = as_loader(items, 1) if train_loader else as_dataset(items)
    kwargs = {} if train_loader else {"batch_size": 1}
    brain.fit(counter, train, as_dataset(items), train_loader_kwargs=kwargs)
    return brain, checkpointer


def test_truncated_optimizer_file_is_set_aside(tmp_path):
    _, checkpointer = fit_gain(tmp_path, 2)
    newest = checkpointer.find_checkpoint()
    path = newest.path / "optimizer.ckpt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    brain, _ = fit_gain(tmp_path, 3)
    assert (tmp_path / (INCOMPLETE_PREFIX + newest.path.name)).is_dir()


def test_checkpoint_without_dataloader_file_is_kept(tmp_path):
    # first run fed a DataLoader (no dataloader-TRAIN.ckpt), resumed with a
    # Dataset: SpeechBrain itself loads such a checkpoint (with a warning)
    _, checkpointer = fit_gain(tmp_path, 1, train_loader=True)
    (first,) = checkpointer.list_checkpoints()
    assert not (first.path / "dataloader-TRAIN.ckpt").exists()
    fit_gain(tmp_path, 2)
    assert not (tmp_path / (INCOMPLETE_PREFIX + first.path.name)).exists()


# --------------------------------------------------------------------------
# 5. EnhanceBrain: LR schedule, test outputs, checkpoint meta


class RecordingOneCycle:
    """A ``lr_scheduler`` factory recording its kwargs and the LR of
    every optimizer step."""

    def __init__(self):
        self.kwargs = []
        self.step_lrs = []

    def __call__(self, optimizer, **kwargs):
        self.kwargs.append(kwargs)
        optimizer.register_step_pre_hook(
            lambda opt, args, kw: self.step_lrs.append(
                opt.param_groups[0]["lr"]
            )
        )
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=0.01, **kwargs
        )


def reference_lrs(total_steps):
    optimizer = torch.optim.Adam([nn.Parameter(torch.zeros(1))], 1e-3)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=0.01, total_steps=total_steps
    )
    lrs = []
    for _ in range(total_steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize(
    "n_items, batch_size, accumulation, steps_per_epoch",
    [(5, 2, 1, 3), (4, 1, 2, 2)],
)
def test_one_cycle_total_steps(
    n_items, batch_size, accumulation, steps_per_epoch, tmp_path
):
    factory = RecordingOneCycle()
    counter = EpochCounter(3)
    model = Gain()
    checkpointer = Checkpointer(tmp_path, {"model": model, "counter": counter})
    brain = EnhanceBrain(
        modules={"model": model},
        opt_class=lambda params: torch.optim.Adam(params, 1e-3),
        hparams={
            "loss": WeightedCleanNoiseLoss(),
            "lr_scheduler": factory,
            "epoch_counter": counter,
        },
        run_opts={**RUN_OPTS, "grad_accumulation_factor": accumulation},
        checkpointer=checkpointer,
    )
    train = as_dataset(make_items([4000] * n_items))
    brain.fit(counter, train, train_loader_kwargs={"batch_size": batch_size})

    batches = math.ceil(n_items / batch_size)
    assert brain.train_batches_per_epoch == batches
    total = math.ceil(batches / accumulation) * 3
    assert factory.kwargs == [{"total_steps": total}]
    assert total == steps_per_epoch * 3
    assert brain.optimizer_step == total
    assert "lr_scheduler" in checkpointer.recoverables
    # each optimizer step used the canonical OneCycle rate of its step
    expected = reference_lrs(total)
    assert factory.step_lrs == pytest.approx(expected)
    # the scheduler stepped after every update but the last: it holds the
    # final rate of the schedule instead of stepping past it
    assert brain.lr_scheduler.last_epoch == brain.optimizer_step - 1
    assert brain.optimizer.param_groups[0]["lr"] == pytest.approx(expected[-1])
    brain.on_fit_batch_end(None, None, None, True)  # one more: no error
    assert brain.lr_scheduler.last_epoch == total - 1


def test_one_cycle_completes_with_partial_accumulation():
    factory = RecordingOneCycle()
    counter = EpochCounter(3)
    brain = EnhanceBrain(
        modules={"model": Gain()},
        opt_class=lambda params: torch.optim.Adam(params, 1e-3),
        hparams={
            "loss": WeightedCleanNoiseLoss(),
            "lr_scheduler": factory,
            "epoch_counter": counter,
        },
        run_opts={**RUN_OPTS, "grad_accumulation_factor": 2},
    )
    train = as_dataset(make_items([4000] * 3))
    brain.fit(counter, train, train_loader_kwargs={"batch_size": 1})
    # 3 batches, factor 2: one update per epoch, 3 in all (6 scheduled)
    assert brain.optimizer_step == 3
    assert factory.kwargs == [{"total_steps": brain.optimizer_step}]


def test_lr_scheduler_needs_a_dataset():
    brain = EnhanceBrain(
        modules={"model": Gain()},
        opt_class=lambda params: torch.optim.Adam(params, 1e-3),
        hparams={
            "loss": WeightedCleanNoiseLoss(),
            "lr_scheduler": RecordingOneCycle(),
            "epoch_counter": EpochCounter(1),
        },
        run_opts=RUN_OPTS,
    )
    loader = as_loader(make_items([4000, 4000]), 1)
    with pytest.raises(RuntimeError, match="pass a Dataset"):
        brain.fit(EpochCounter(1), loader, progressbar=False)


def test_test_stage_writes_wavs_csv_and_summary(tmp_path):
    out = tmp_path / "out"
    lengths = [8000, 6000, 7001]
    items = make_items(lengths, seed=7)
    brain = EnhanceBrain(
        modules={"model": Gain(0.8)},
        hparams={
            "loss": WeightedCleanNoiseLoss(),
            "test_metrics": ["si_sdr", "snr"],
            "output_folder": str(out),
        },
        run_opts=RUN_OPTS,
    )
    loss = brain.evaluate(
        as_dataset(items),
        progressbar=False,
        test_loader_kwargs={"batch_size": 2},
    )

    expected = {}
    for item, length in zip(items, lengths, strict=False):
        path = out / "enhanced" / f"{item['id']}.wav"
        audio, rate = sf.read(path, dtype="float32")
        assert rate == SR and sf.info(path).subtype == "PCM_16"
        enhanced = (0.8 * item["noisy_sig"]).numpy()
        assert audio.shape == (length,)
        assert np.abs(audio - enhanced).max() <= 1.0 / 32768 + 1e-7
        clean = item["clean_sig"].numpy()
        expected[item["id"]] = {
            "si_sdr": si_sdr(clean, enhanced),
            "snr": snr(clean, enhanced),
            "rms_ratio": float(
                np.sqrt(np.mean(enhanced.astype(np.float64) ** 2))
                / np.sqrt(np.mean(clean.astype(np.float64) ** 2))
            ),
        }
    assert sorted(p.name for p in (out / "enhanced").iterdir()) == [
        "u0.wav",
        "u1.wav",
        "u2.wav",
    ]

    with open(out / "test_per_utterance.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "si_sdr", "snr"]
    assert [r[0] for r in rows[1:]] == ["u0", "u1", "u2"]
    for uid, value_sdr, value_snr in rows[1:]:
        assert float(value_sdr) == pytest.approx(
            expected[uid]["si_sdr"], abs=1e-3
        )
        assert float(value_snr) == pytest.approx(expected[uid]["snr"], abs=1e-3)

    summary = json.loads((out / "test_summary.json").read_text())
    assert set(summary) == {
        "loss",
        "loss_supervised",
        "si_sdr",
        "snr",
        "n_failed",
        "n_items",
        "rms_ratio",
        "si_sdr_median",
        "collapsed_files",
    }
    assert summary["n_items"] == 3 and summary["n_failed"] == 0
    assert summary["loss"] == pytest.approx(loss)
    assert summary["loss_supervised"] == pytest.approx(loss)
    for name in ("si_sdr", "snr"):
        mean = np.mean([v[name] for v in expected.values()])
        assert summary[name] == pytest.approx(mean, abs=1e-3)
    # Output health: medians over the files, none collapsed.
    for name, key in (("rms_ratio", "rms_ratio"), ("si_sdr", "si_sdr_median")):
        median = np.median([v[name] for v in expected.values()])
        assert summary[key] == pytest.approx(median, abs=1e-6)
    collapsed = np.mean(
        [v["rms_ratio"] < 0.2 or v["si_sdr"] < 0 for v in expected.values()]
    )
    assert summary["collapsed_files"] == collapsed


def speech_items(shared_data, count=2):
    clean, rate = sf.read(
        shared_data / "vbd_16k_25" / "clean" / "p232_003.wav", dtype="float32"
    )
    noisy, _ = sf.read(
        shared_data / "vbd_16k_25" / "noisy" / "p232_003.wav", dtype="float32"
    )
    assert rate == SR
    items = []
    for index in range(count):
        start = SR // 2 + index * SR
        items.append(
            {
                "id": f"s{index}",
                "noisy_sig": torch.from_numpy(noisy[start : start + SR]),
                "clean_sig": torch.from_numpy(clean[start : start + SR]),
            }
        )
    return items


def test_checkpoint_meta_holds_pesq_and_keeps_best(shared_data, tmp_path):
    items = speech_items(shared_data)
    counter = EpochCounter(3)
    model = FIR()
    checkpointer = Checkpointer(tmp_path, {"model": model, "counter": counter})
    metas = []
    save = checkpointer.save_and_keep_only

    def recording_save(**kwargs):
        metas.append(dict(kwargs["meta"]))
        return save(**kwargs)

    checkpointer.save_and_keep_only = recording_save
    brain = EnhanceBrain(
        modules={"model": model},
        opt_class=lambda params: torch.optim.Adam(params, 0.02),
        hparams={"loss": WeightedCleanNoiseLoss(), "epoch_counter": counter},
        run_opts=RUN_OPTS,
        checkpointer=checkpointer,
    )
    data = as_dataset(items)
    brain.fit(
        counter,
        data,
        data,
        train_loader_kwargs={"batch_size": 1},
        valid_loader_kwargs={"batch_size": 2},
    )
    assert [m["epoch"] for m in metas] == [1, 2, 3]
    for meta in metas:
        assert isinstance(meta["pesq"], float)
        assert 1.0 <= meta["pesq"] <= 4.7
    pesqs = [m["pesq"] for m in metas]
    assert len(set(pesqs)) == 3  # the model changed between epochs
    best_epoch = metas[int(np.argmax(pesqs))]["epoch"]
    kept = checkpointer.list_checkpoints()
    assert {c.meta["epoch"] for c in kept} == {best_epoch, 3}
    for ckpt in kept:
        assert ckpt.meta.items() >= metas[ckpt.meta["epoch"] - 1].items()
    assert checkpointer.find_checkpoint(max_key="pesq").meta["pesq"] == max(
        pesqs
    )


def test_checkpoint_meta_pesq_minus_inf_when_pesq_fails(tmp_path):
    items = make_items([8000, 8000])
    for item in items:
        item["clean_sig"] = torch.zeros_like(item["clean_sig"])  # no speech
    model = Gain()
    checkpointer = Checkpointer(tmp_path, {"model": model})
    brain = EnhanceBrain(
        modules={"model": model},
        opt_class=lambda params: torch.optim.Adam(params, 1e-3),
        hparams={"loss": WeightedCleanNoiseLoss(), "valid_metrics": ["pesq"]},
        run_opts=RUN_OPTS,
        checkpointer=checkpointer,
    )
    data = as_dataset(items)
    brain.fit(EpochCounter(1), data, data)
    (ckpt,) = checkpointer.list_checkpoints()
    assert ckpt.meta["pesq"] == -math.inf and ckpt.meta["epoch"] == 1
    # the meta survives the CKPT.yaml round trip
    reloaded = Checkpointer(tmp_path).list_checkpoints()
    assert reloaded[0].meta["pesq"] == -math.inf


def fit_manner_with_valid_interval(save, interval, epochs=4):
    """EnhanceBrain.fit of a small MANNER (BatchNorm, recalibrated before
    each validation) validating every ``interval`` epochs."""
    counter = EpochCounter(epochs)
    torch.manual_seed(0)
    model = MANNER(channels=6, depth=2, attention_layers=[1])
    checkpointer = Checkpointer(save, {"model": model, "counter": counter})
    logger = sb.utils.train_logger.FileTrainLogger(save / "train_log.txt")
    brain = EnhanceBrain(
        modules={"model": model},
        opt_class=lambda params: torch.optim.Adam(params, 1e-2),
        hparams={
            "loss": WeightedCleanNoiseLoss(),
            "valid_metrics": ["snr"],
            "ckpt_max_key": "epoch",
            "valid_interval": interval,
            "epoch_counter": counter,
            "train_logger": logger,
            "bn_recalibration_batches": 2,
        },
        run_opts=RUN_OPTS,
        checkpointer=checkpointer,
    )
    items = make_items([1600, 1200, 1600, 800], seed=3)
    brain.fit(
        counter,
        as_dataset(items),
        as_dataset(items[:2]),
        train_loader_kwargs={"batch_size": 2, "shuffle": True},
    )
    return model, checkpointer, (save / "train_log.txt").read_text()


def test_valid_interval_changes_only_how_often_validation_runs(tmp_path):
    every, _, every_log = fit_manner_with_valid_interval(tmp_path / "a", 1)
    model, checkpointer, log = fit_manner_with_valid_interval(tmp_path / "b", 3)
    for name, tensor in every.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name]), name
    lines = log.splitlines()
    assert [line.split(",")[0] for line in lines] == [
        f"epoch: {epoch}" for epoch in range(1, 5)
    ]
    # Epochs 3 (the interval) and 4 (the last) validated, 1 and 2 not.
    assert ["valid snr" in line for line in lines] == [False, False, True, True]
    assert all("train loss" in line for line in lines)
    assert lines[3] == every_log.splitlines()[3]
    kept = checkpointer.list_checkpoints()
    assert [ckpt.meta["epoch"] for ckpt in kept] == [4]


@pytest.mark.parametrize("interval", [0, 1.5, True])
def test_valid_interval_must_be_a_positive_whole_number(interval):
    brain = EnhanceBrain(
        modules={"model": Gain()}, hparams={"valid_interval": interval}
    )
    with pytest.raises(ValueError, match="valid_interval"):
        brain.validates(1)
