"""Latent alignment: cosine distance, the projection, the term's contract."""

import math

import pytest
import torch

from speechbrain.dataio.batch import PaddedBatch
from speechbrain_kd.distill import DistillStep
from speechbrain_kd.distill.latent import (
    LatentAlignmentTerm,
    LinearInvertedBottleneck,
    cosine_distance,
    tap_widths,
)
from speechbrain_kd.lobes.manner import MANNER
from speechbrain_kd.lobes.rt_senet import RTSENet
from speechbrain_kd.lobes.wave_u_net import WaveUNet


def batch_of(n, samples=8):
    return PaddedBatch(
        [
            {
                "id": str(i),
                "noisy_sig": torch.ones(samples),
                "clean_sig": torch.ones(samples),
            }
            for i in range(n)
        ]
    )


def test_frame_distance_by_hand():
    teacher = torch.tensor([[[1.0, 0.0, 3.0], [0.0, 1.0, 4.0]]])
    student = torch.tensor([[[1.0, 1.0, -3.0], [1.0, 0.0, -4.0]]])
    # frames: (1,0)/(1,1): 1 - 1/sqrt2; (0,1)/(1,0): 1; opposite: 2
    expected = (1 - 1 / math.sqrt(2) + 1 + 2) / 3
    assert cosine_distance(student, teacher).item() == pytest.approx(expected)
    # the last frame left out by a relative length of 2/3
    masked = cosine_distance(student, teacher, torch.tensor([2 / 3]))
    assert masked.item() == pytest.approx((1 - 1 / math.sqrt(2) + 1) / 2)


def test_utterance_distance_by_hand():
    teacher = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    student = torch.tensor([[[1.0, 1.0], [0.0, 1.0]]])
    # flattened (1,0,0,1) . (1,1,0,1) = 2; norms sqrt2, sqrt3
    expected = 1 - 2 / (math.sqrt(2) * math.sqrt(3))
    got = cosine_distance(student, teacher, per="utterance")
    assert got.item() == pytest.approx(expected)


def test_student_frames_are_resampled_to_the_teacher():
    teacher = torch.ones(1, 2, 8)
    student = torch.ones(1, 2, 2)
    assert cosine_distance(student, teacher).item() == pytest.approx(
        0, abs=1e-6
    )
    with pytest.raises(ValueError, match="differ in width"):
        cosine_distance(torch.ones(1, 3, 8), teacher)


def step_with(student_latent, teacher_latent):
    return DistillStep.for_batch(
        batch_of(student_latent.shape[0]),
        student_out=torch.zeros(student_latent.shape[0], 8),
        student_features={"latent": student_latent},
        teacher_features={"latent": teacher_latent},
    )


@pytest.mark.parametrize("per", ["frame", "utterance"])
def test_term_ignores_a_positive_rescaling_of_the_student(per):
    torch.manual_seed(0)
    term = LatentAlignmentTerm([("latent", "latent")], [5], [7], per=per)
    student, teacher = torch.randn(3, 5, 6), torch.randn(3, 7, 6)
    base = term(step_with(student, teacher))
    for scale in (0.01, 3.0, 250.0):
        scaled = term(step_with(scale * student, teacher))
        assert scaled.item() == pytest.approx(base.item(), rel=1e-5)
    assert base.item() > 0.1  # not trivially zero


def test_term_equals_the_distance_of_the_projected_student():
    torch.manual_seed(1)
    term = LatentAlignmentTerm(
        [("latent", "latent")], [4], [6], expansion=3, weight=0.5
    )
    student, teacher = torch.randn(2, 4, 5), torch.randn(2, 6, 5)
    weights = [p.detach() for p in term.projection[0].parameters()]
    assert [tuple(w.shape) for w in weights] == [(18, 4, 1), (6, 18, 1)]
    projected = torch.einsum(
        "oh,hi,bit->bot", weights[1][..., 0], weights[0][..., 0], student
    )
    expected = 0.5 * cosine_distance(projected, teacher).mean()
    got = term(step_with(student, teacher))
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


def test_l2_baseline_uses_the_same_projection():
    torch.manual_seed(2)
    term = LatentAlignmentTerm(
        [("latent", "latent")], [4], [6], distance="l2", expansion=1
    )
    student, teacher = torch.randn(2, 4, 5), torch.randn(2, 6, 5)
    (weight,) = [p.detach() for p in term.projection[0].parameters()]
    projected = torch.einsum("oi,bit->bot", weight[..., 0], student)
    expected = (projected - teacher).pow(2).mean()
    got = term(step_with(student, teacher))
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


def test_projection_gets_gradients_and_bad_settings_are_named():
    term = LatentAlignmentTerm([("latent", "latent")], [4], [6])
    student = torch.randn(2, 4, 5, requires_grad=True)
    term(step_with(student, torch.randn(2, 6, 5))).backward()
    assert all(p.grad is not None for p in term.parameters())
    assert student.grad is not None
    with pytest.raises(ValueError, match="distance must be one of"):
        LatentAlignmentTerm([("a", "b")], [1], [1], distance="l1")
    with pytest.raises(ValueError, match="1 pairs, 2 student widths"):
        LatentAlignmentTerm([("a", "b")], [1, 2], [1])
    with pytest.raises(ValueError, match="expansion must be >= 1"):
        LinearInvertedBottleneck(2, 3, expansion=0)


@pytest.mark.parametrize(
    "model, width",
    [
        (MANNER(channels=6, depth=3, attention_layers=()), 48),
        (RTSENet(channels=6, depth=3, attention_layers=()), 48),
        (WaveUNet(width=4, depth=3), 12),
    ],
    ids=["manner", "rt_senet", "wave_u_net"],
)
def test_every_waveform_lobe_offers_its_latent(model, width):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert tap_widths(model, ["latent"]) == [width]
    assert "latent" in model.tap_paths()
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def kd_run(seed, save):
    """A KDBrain distilling MANNER's latent with a fresh cosine term."""
    from speechbrain.utils.checkpoints import Checkpointer
    from speechbrain_kd.brains import KDBrain
    from speechbrain_kd.losses import WeightedCleanNoiseLoss

    torch.manual_seed(0)
    student = MANNER(channels=4, depth=2, attention_layers=())
    teacher = MANNER(channels=8, depth=2, attention_layers=())
    torch.manual_seed(seed)
    term = LatentAlignmentTerm(
        [("latent", "latent")],
        tap_widths(student, ["latent"]),
        tap_widths(teacher, ["latent"]),
    )
    checkpointer = Checkpointer(save, recoverables={"model": student})
    brain = KDBrain(
        modules={"model": student},
        opt_class=lambda params: torch.optim.Adam(params, 1e-2),
        hparams={"loss": WeightedCleanNoiseLoss(), "distill_terms": [term]},
        run_opts={"device": "cpu", "noprogressbar": True},
        checkpointer=checkpointer,
        teacher=teacher,
    )
    return brain, term, checkpointer


def test_projection_trains_and_resumes_with_the_checkpoint(tmp_path):
    from speechbrain.utils.epoch_loop import EpochCounter

    brain, term, checkpointer = kd_run(seed=1, save=tmp_path / "save")
    assert (
        checkpointer.recoverables["distill_terms"]
        is brain.modules["distill_terms"]
    )
    before = [p.detach().clone() for p in term.parameters()]
    generator = torch.Generator().manual_seed(0)
    data = [
        {
            "id": str(i),
            "noisy_sig": torch.randn(1600, generator=generator),
            "clean_sig": torch.randn(1600, generator=generator),
        }
        for i in range(4)
    ]
    loader = torch.utils.data.DataLoader(
        data, batch_size=2, collate_fn=PaddedBatch
    )
    brain.fit(EpochCounter(1), loader, progressbar=False)
    assert "loss_latent" in brain.train_stats
    trained = [p.detach().clone() for p in term.parameters()]
    assert all(
        not torch.equal(a, b) for a, b in zip(before, trained, strict=True)
    )
    checkpointer.save_checkpoint(name="after")

    _, fresh, checkpointer2 = kd_run(seed=2, save=tmp_path / "save")
    assert not torch.equal(next(fresh.parameters()), trained[0])
    checkpointer2.recover_if_possible()
    for got, want in zip(fresh.parameters(), trained, strict=True):
        assert torch.equal(got, want)
