"""The distillation contract: one term protocol, learnable terms, inputs.

* a term with parameters (a 1x1 projection, FitNets-style) is trained with
  the student, checkpointed and resumed, kept equal across DDP processes,
  and not part of the exported student;
* the teacher (and the student) read the batch key the yaml names;
* per-utterance term values are weighted by the Brain's sample weights.
"""

import pathlib

import pytest
import torch

import speechbrain as sb
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.epoch_loop import EpochCounter
from speechbrain_kd.brains import KDBrain
from speechbrain_kd.cli import main as cli_main
from speechbrain_kd.distill import (
    DistillStep,
    DistillTerm,
    DistillTerms,
    FeatureDistillTerm,
    FeatureMSELoss,
    OutputDistillTerm,
    layer_pairs,
)
from speechbrain_kd.lobes.manner import MANNER
from speechbrain_kd.losses import WeightedCleanNoiseLoss

REPO = pathlib.Path(__file__).resolve().parents[1]
RUN_OPTS = {"device": "cpu", "noprogressbar": True}
STUDENT = {"channels": 6, "depth": 2, "attention_layers": [1]}

pytestmark = pytest.mark.usefixtures("one_thread")


def student_and_teacher():
    torch.manual_seed(0)
    student = MANNER(**STUDENT)
    teacher = MANNER(channels=12, depth=2, attention_layers=[1])
    return student, teacher


def hint_term(seed):
    torch.manual_seed(seed)
    return FeatureDistillTerm(
        [("encoder.1", "encoder.1")],
        FeatureMSELoss(),
        projection=torch.nn.Conv1d(24, 48, 1),  # encoder.1: 4 N channels
        name="hint",
    )


def items(count=4, length=1600, seed=0, extra=None):
    generator = torch.Generator().manual_seed(seed)
    out = []
    for index in range(count):
        item = {
            "id": f"u{index}",
            "noisy_sig": torch.randn(length, generator=generator),
            "clean_sig": torch.randn(length, generator=generator),
        }
        for key, shape in (extra or {}).items():
            item[key] = torch.randn(*shape, length, generator=generator)
        out.append(item)
    return out


def loader(data):
    return torch.utils.data.DataLoader(
        data, batch_size=2, collate_fn=PaddedBatch
    )


def kd_brain(student, teacher, terms, checkpointer=None, **hparams):
    return KDBrain(
        modules={"model": student},
        opt_class=lambda params: torch.optim.Adam(params, 1e-2),
        hparams={
            "loss": WeightedCleanNoiseLoss(),
            "distill_terms": terms,
            **hparams,
        },
        run_opts=RUN_OPTS,
        checkpointer=checkpointer,
        teacher=teacher,
    )


def test_learnable_projection_trains_resumes_and_is_not_exported(tmp_path):
    student, teacher = student_and_teacher()
    term = hint_term(seed=1)
    save = tmp_path / "save"
    checkpointer = Checkpointer(save, recoverables={"model": student})
    brain = kd_brain(student, teacher, [term], checkpointer)
    assert (
        checkpointer.recoverables["distill_terms"]
        is brain.modules["distill_terms"]
    )
    before = term.projection.weight.detach().clone()
    brain.fit(EpochCounter(1), loader(items()), progressbar=False)
    optimised = {
        id(p) for g in brain.optimizer.param_groups for p in g["params"]
    }
    assert id(term.projection.weight) in optimised
    assert not torch.equal(term.projection.weight, before)  # it trains
    assert "loss_hint" in brain.train_stats
    checkpointer.save_checkpoint(name="after")
    trained = term.projection.weight.detach().clone()

    # a fresh run resumes the projection from the checkpoint
    student2, teacher2 = student_and_teacher()
    fresh = hint_term(seed=2)
    assert not torch.equal(fresh.projection.weight, trained)
    checkpointer2 = Checkpointer(save, recoverables={"model": student2})
    kd_brain(student2, teacher2, [fresh], checkpointer2)
    checkpointer2.recover_if_possible()
    assert torch.equal(fresh.projection.weight, trained)

    # the exported student holds the student's parameters only
    hparams = tmp_path / "student.yaml"
    hparams.write_text(
        "sample_rate: 16000\n"
        "model: !new:speechbrain_kd.lobes.manner.MANNER\n"
        "    channels: 6\n    depth: 2\n    attention_layers: [1]\n"
    )
    out = tmp_path / "exported"
    code = cli_main(
        [
            "export",
            "--hparams",
            str(hparams),
            "--checkpoint",
            str(save),
            "--output",
            str(out),
        ]
    )
    assert code in (0, None)
    files = sorted(out.glob("*.ckpt"))
    assert len(files) == 1
    exported = torch.load(files[0], weights_only=True)
    assert set(exported) == set(student.state_dict())


def test_ddp_keeps_the_projection_equal_on_every_process(tmp_path):
    from recipe_rows import run_torchrun

    script = REPO / "tests" / "scripts" / "kd_projection_ddp.py"
    result = run_torchrun(script, tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert torch.equal(rank0, rank1)  # different data, synchronised grads


class Binaural(torch.nn.Module):
    """A 'teacher' that needs a two-channel input ``[B, 2, T]``."""

    def forward(self, wav):
        assert wav.dim() == 3 and wav.shape[1] == 2, tuple(wav.shape)
        return wav.mean(dim=1)


def record_inputs(module, seen):
    module.register_forward_hook(
        lambda m, args, out: seen.append(tuple(args[0].shape))
    )


def test_teacher_and_student_read_the_keys_the_yaml_names():
    student, _ = student_and_teacher()
    teacher = Binaural()
    seen_student, seen_teacher = [], []
    record_inputs(student, seen_student)
    record_inputs(teacher, seen_teacher)
    term = OutputDistillTerm(WeightedCleanNoiseLoss())
    brain = kd_brain(
        student,
        teacher,
        [term],
        teacher_input="binaural_sig",
        student_input="mono_sig",
    )
    data = items(2, extra={"binaural_sig": (2,), "mono_sig": ()})
    batch = PaddedBatch(data)
    step = brain.compute_forward(batch, sb.Stage.TRAIN)
    assert seen_teacher == [(2, 2, 1600)] and seen_student == [(2, 1600)]
    assert torch.equal(step.teacher_input, batch.binaural_sig.data)
    assert torch.equal(step.student_input, batch.mono_sig.data)
    assert torch.equal(step.teacher_out, batch.binaural_sig.data.mean(1))
    loss = brain.compute_objectives(step, batch, sb.Stage.TRAIN)
    assert torch.isfinite(loss) and loss.requires_grad
    # validation: the student alone, on its own key
    with torch.no_grad():
        brain.compute_forward(batch, sb.Stage.VALID)
    assert seen_student[-1] == (2, 1600) and len(seen_teacher) == 1


def test_default_teacher_input_is_the_student_input():
    student, teacher = student_and_teacher()
    brain = kd_brain(
        student, teacher, [OutputDistillTerm(WeightedCleanNoiseLoss())]
    )
    batch = PaddedBatch(items(2))
    step = brain.compute_forward(batch, sb.Stage.TRAIN)
    assert step.teacher_input is step.student_input
    assert torch.equal(step.student_input, batch.noisy_sig.data)


def per_utterance_mse(student, target, noisy, length):
    return (student - target).pow(2).mean(dim=-1)


class WeighingBrain(KDBrain):
    """Weighs the soft and hard terms per utterance (as KDRL does)."""

    def sample_weights(self, step):
        alpha = torch.tensor([0.25, 1.0])
        return {"soft": alpha, "hard": 1 - alpha}


def test_sample_weights_weigh_per_utterance_terms():
    student, teacher = student_and_teacher()
    soft = OutputDistillTerm(per_utterance_mse, name="soft")
    hard = OutputDistillTerm(per_utterance_mse, name="hard", target="clean")
    brain = WeighingBrain(
        modules={"model": student},
        hparams={
            "loss": WeightedCleanNoiseLoss(),
            "distill_terms": [soft, hard],
            "supervised_weight": 0.0,
        },
        run_opts=RUN_OPTS,
        teacher=teacher,
    )
    batch = PaddedBatch(items(2))
    step = brain.compute_forward(batch, sb.Stage.TRAIN)
    loss = brain.compute_objectives(step, batch, sb.Stage.TRAIN).detach()
    out, teacher_out = step.student_out.detach(), step.teacher_out
    soft_values = (out - teacher_out).pow(2).mean(-1)
    hard_values = (out - batch.clean_sig.data).pow(2).mean(-1)
    expected_soft = (soft_values * torch.tensor([0.25, 1.0])).mean()
    expected_hard = (hard_values * torch.tensor([0.75, 0.0])).mean()
    logged = brain.term_averages()
    assert logged["loss_soft"] == pytest.approx(expected_soft.item(), rel=1e-6)
    assert logged["loss_hard"] == pytest.approx(expected_hard.item(), rel=1e-6)
    assert loss.item() == pytest.approx(
        float(expected_soft + expected_hard), rel=1e-6
    )


def test_terms_need_unique_names_and_the_protocol():
    loss = WeightedCleanNoiseLoss()
    with pytest.raises(ValueError, match="output_kd"):
        DistillTerms([OutputDistillTerm(loss), OutputDistillTerm(loss)])
    with pytest.raises(TypeError, match="DistillTerm"):
        DistillTerms([torch.nn.Linear(1, 1)])
    with pytest.raises(ValueError, match="projections"):
        FeatureDistillTerm(
            [("a", "b")], loss, projection=[torch.nn.Identity()] * 2
        )
    with pytest.raises(ValueError, match="reduction"):
        OutputDistillTerm(loss, reduction="max")


def test_a_term_returning_a_matrix_is_a_clear_error():
    class Bad(DistillTerm):
        def compute(self, step):
            return torch.ones(2, 2)

    step = DistillStep.from_tensors(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="one value per utterance"):
        Bad(name="bad")(step)


HINT_YAML = """
model: !include:../hparams/models/manner_s_1.5gf.yaml
teacher: !include:../hparams/models/manner_b.yaml
distill_terms:
    - !new:speechbrain_kd.distill.FeatureDistillTerm
      name: hint
      pairs: [[encoder.2, [encoder.2]]]
      loss: !new:speechbrain_kd.distill.FeatureMSELoss
      projection: !new:torch.nn.Conv1d [96, 480, 1]
      weight: 1.0
"""


def test_readme_hint_term_runs_between_the_presets(tmp_path):
    """The learnable-projection yaml of recipes/Valentini/README.md."""
    from hyperpyyaml import load_hyperpyyaml

    path = tmp_path / "hint.yaml"
    path.write_text(HINT_YAML.replace("../hparams", str(REPO / "hparams")))
    with open(path, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin)
    brain = kd_brain(
        hparams["model"]["model"],
        hparams["teacher"]["model"],
        hparams["distill_terms"],
    )
    batch = PaddedBatch(items(2, length=16000))
    step = brain.compute_forward(batch, sb.Stage.TRAIN)
    loss = brain.compute_objectives(step, batch, sb.Stage.TRAIN)
    loss.backward()
    projection = hparams["distill_terms"][0].projection
    assert projection.weight.grad.abs().sum() > 0
    assert brain.term_averages()["loss_hint"] > 0


@pytest.mark.parametrize(
    "pairs, role",
    [
        ([("encoder.9", "encoder.1")], "student"),
        ([("encoder.1", "encoder.7")], "teacher"),
    ],
)
def test_unknown_tap_path_names_student_or_teacher(pairs, role):
    """An unknown tap path did not say which model it was looked up in."""
    student, teacher = student_and_teacher()
    term = FeatureDistillTerm(pairs, FeatureMSELoss(), name="hint")
    with pytest.raises(ValueError) as error:
        kd_brain(student, teacher, [term])
    message = str(error.value)
    assert message.startswith(f"unknown module path(s) in the {role} (MANNER):")
    wrong = pairs[0][0] if role == "student" else pairs[0][1]
    assert f"{wrong!r} (close names: " in message


@pytest.mark.parametrize(
    "student_layer, teacher_layer, role, layers",
    [(5, 1, "student", "0..1"), (1, 5, "teacher", "0..1")],
)
def test_out_of_range_layer_names_student_or_teacher(
    student_layer, teacher_layer, role, layers
):
    student, teacher = student_and_teacher()
    with pytest.raises(ValueError) as error:
        layer_pairs(
            student,
            teacher,
            [student_layer],
            [teacher_layer],
            ["block"],
            ["encoder"],
        )
    layer = student_layer if role == "student" else teacher_layer
    assert str(error.value) == (
        f"the {role}: MANNER has layers {layers}, not encoder.{layer}"
    )
