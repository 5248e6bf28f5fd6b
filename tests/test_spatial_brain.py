"""SpatialInjectionBrain: Eq. 1 on the estimates, Eqs. 2-5 with a frozen
teacher and bad student, strict loading of the bad student."""

import pytest
import torch

import speechbrain as sb
from speechbrain.dataio.batch import PaddedBatch
from speechbrain_kd.brains import SpatialInjectionBrain, TeacherLoadError
from speechbrain_kd.distill import SpatialInjectionTerm
from speechbrain_kd.distill.spatial import (
    ReconstructionLoss,
    ear_tap_paths,
    reconstruction_loss,
)
from speechbrain_kd.lobes.mhca_crn import MHCACRN
from speechbrain_kd.lobes.sjen import SJEN

SMALL = {"channels": [16, 32], "hidden": 16}


def batch(samples=(2400, 1800)):
    torch.manual_seed(1)
    return PaddedBatch(
        [
            {
                "id": f"u{i}",
                "noisy_sig": torch.randn(n) * 0.1,
                "clean_sig": torch.randn(n) * 0.1,
                "binaural_sig": torch.randn(n, 2) * 0.1,
            }
            for i, n in enumerate(samples)
        ]
    )


def models():
    torch.manual_seed(0)
    return SJEN(**SMALL), MHCACRN(**SMALL), SJEN(**SMALL)


def brain(student, teacher, bad, bad_student=True, run_opts=None, **hparams):
    term = SpatialInjectionTerm(
        ear_tap_paths(student),
        ear_tap_paths(teacher),
        weight=0.5,
        bad_student=bad_student,
    )
    return SpatialInjectionBrain(
        modules={"model": student},
        opt_class=lambda p: torch.optim.SGD(p, lr=0.1),
        hparams={
            "loss": ReconstructionLoss(alpha=1.0),
            "distill_terms": [term],
            "teacher_input": "binaural_sig",
            **hparams,
        },
        run_opts={"device": "cpu", **(run_opts or {})},
        teacher=teacher,
        bad_student=bad if bad_student else None,
    )


def test_the_step_is_eq1_plus_beta_ts_over_bs():
    student, teacher, bad = models()
    student.eval(), teacher.eval(), bad.eval()
    b = batch()
    run = brain(student, teacher, bad)
    run.modules.model.eval()
    step = run.compute_forward(b, sb.Stage.TRAIN)
    loss = run.compute_objectives(step, b, sb.Stage.TRAIN)
    logged = run.term_averages()
    # by hand: the same quantities from the models' own outputs
    lengths = b.clean_sig.lengths
    clean_magnitude, clean_phase = student.spectrogram.analyse(b.clean_sig.data)
    features = {}
    for model, name in ((student, "s"), (teacher, "t"), (bad, "b")):
        for left, right in ear_tap_paths(model):
            for path in (left, right):
                module = dict(model.named_modules())[path]
                module.register_forward_hook(
                    lambda m, i, o, key=(name, path): features.__setitem__(
                        key, o
                    )
                )
    estimates = {}
    student.magnitude_out.register_forward_hook(
        lambda m, i, o: estimates.__setitem__("m", o)
    )
    student.phase_out.register_forward_hook(
        lambda m, i, o: estimates.__setitem__("p", o)
    )
    with torch.no_grad():
        student(b.noisy_sig.data)
        teacher(b.binaural_sig.data)
        bad(b.noisy_sig.data)
    eq1 = reconstruction_loss(
        estimates["m"],
        clean_magnitude,
        estimates["p"],
        clean_phase,
        lengths=lengths,
    ).mean()
    frames = estimates["m"].shape[-1]
    kept = torch.ceil(lengths * frames - 1e-6).long()

    def distance(other, other_paths):
        total = torch.zeros(2)
        for (sl, sr), (ol, o_r) in zip(
            ear_tap_paths(student), other_paths, strict=True
        ):
            diff = (features["s", sl] - features[other, ol]) + (
                features["s", sr] - features[other, o_r]
            )
            for u in range(2):
                total[u] += diff[u, ..., : kept[u]].abs().sum()
        return total

    ts = distance("t", ear_tap_paths(teacher))
    bs = distance("b", ear_tap_paths(bad))
    ratio = ts.sum() / bs.sum()
    assert torch.allclose(loss, eq1 + 0.5 * ratio, rtol=1e-5)
    assert logged["loss_spatial_ts"] == pytest.approx(
        float(ts.mean()), rel=1e-5
    )
    assert logged["loss_spatial_bs"] == pytest.approx(
        float(bs.mean()), rel=1e-5
    )
    assert logged["loss_spatial_ratio"] == pytest.approx(float(ratio), rel=1e-5)
    assert logged["loss_spatial"] == pytest.approx(0.5 * float(ratio), rel=1e-5)


@pytest.mark.parametrize(
    "run_opts",
    [{}, {"precision": "bf16"}, {"grad_accumulation_factor": 2}],
    ids=["fp32", "bf16", "accumulation"],
)
def test_training_moves_the_student_only(run_opts):
    student, teacher, bad = models()
    frozen = [
        {k: v.clone() for k, v in m.state_dict().items()}
        for m in (teacher, bad)
    ]
    before = {k: v.clone() for k, v in student.state_dict().items()}
    run = brain(student, teacher, bad, run_opts=run_opts)
    run.on_fit_start()
    for _ in range(run_opts.get("grad_accumulation_factor", 1)):
        run.fit_batch(batch())
    for model, saved in zip((teacher, bad), frozen, strict=True):
        for key, value in model.state_dict().items():
            assert torch.equal(value, saved[key]), key
    changed = [
        k
        for k, v in student.state_dict().items()
        if not torch.equal(v, before[k])
    ]
    assert any(k.startswith("right_encoder") for k in changed)
    assert any(k.startswith("phase.") for k in changed)


def test_without_bad_student_the_term_is_the_mean_distance():
    student, teacher, bad = models()
    run = brain(student, teacher, bad, bad_student=False)
    assert run.bad_student is None
    b = batch((2000, 2000))
    step = run.compute_forward(b, sb.Stage.TRAIN)
    term = run.distill_terms[0]
    value = term.compute(step)
    values = sum(
        step.student_features[left].numel()
        for left, _ in ear_tap_paths(student)
    )
    assert torch.allclose(value, term.logged["ts"] * 2 / values)
    assert "bs" not in term.logged


def test_no_term_needs_no_teacher_and_trains_the_teacher_on_eq1():
    torch.manual_seed(0)
    teacher = MHCACRN(**SMALL)
    run = SpatialInjectionBrain(
        modules={"model": teacher},
        opt_class=lambda p: torch.optim.SGD(p, lr=0.1),
        hparams={"loss": ReconstructionLoss(), "student_input": "binaural_sig"},
        run_opts={"device": "cpu"},
    )
    assert run.teacher is None and run.bad_student is None
    b = batch()
    out = run.compute_forward(b, sb.Stage.TRAIN)
    assert out.shape == b.clean_sig.data.shape
    assert torch.isfinite(run.compute_objectives(out, b, sb.Stage.TRAIN))


def test_bad_student_is_loaded_strictly(tmp_path):
    student, teacher, _ = models()
    other = SJEN(channels=[16, 32], hidden=8)
    torch.save(other.state_dict(), tmp_path / "model.ckpt")
    term = SpatialInjectionTerm(ear_tap_paths(student), ear_tap_paths(teacher))
    with pytest.raises(TeacherLoadError, match="bad student parameters from"):
        SpatialInjectionBrain(
            modules={"model": student},
            hparams={
                "loss": ReconstructionLoss(),
                "distill_terms": [term],
                "bad_student": SJEN(**SMALL),
                "bad_student_source": str(tmp_path),
                "output_folder": str(tmp_path / "out"),
            },
            run_opts={"device": "cpu"},
            teacher=teacher,
        )
    with pytest.raises(TeacherLoadError, match="set bad_student_source"):
        SpatialInjectionBrain(
            modules={"model": student},
            hparams={
                "loss": ReconstructionLoss(),
                "distill_terms": [term],
                "bad_student": SJEN(**SMALL),
                "bad_student_source": None,
                "output_folder": str(tmp_path / "out"),
            },
            run_opts={"device": "cpu"},
            teacher=teacher,
        )


def test_layer_counts_must_match():
    with pytest.raises(ValueError, match="2 encoder layers, the teacher 1"):
        SpatialInjectionTerm([("a", "b"), ("c", "d")], [("e", "f")])
