"""CNNC-Distill similarity loss: hand-computed values and invariances."""

import math

import pytest
import torch
import torch.nn.functional as F

from speechbrain_kd.distill import (
    DistillStep,
    FeatureDistillTerm,
    SimilarityLoss,
    resample_frames,
    similarity_loss,
    similarity_matrix,
    single_view_pairs,
)
from speechbrain_kd.lobes.manner import MANNER

# Student [1, 2, 3]: frames (1, 0), (0, 1), (1, 1).
STUDENT = torch.tensor([[[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]])
# Teacher [1, 4, 3]: frames (1, 0, 0, 0), (0, 2, 0, 0), (0, 0, 0, 3), which
# are orthogonal, so the teacher's similarity matrix is the identity.
TEACHER = torch.tensor(
    [
        [
            [1.0, 0.0, 0.0],
            [0.0, 2.0, 0.0],
            [0.0, 0.0, 0.0],
            [0.0, 0.0, 3.0],
        ]
    ]
)
R = 1 / math.sqrt(2)
# cos((1,0),(1,1)) = cos((0,1),(1,1)) = 1/sqrt(2), cos((1,0),(0,1)) = 0.
STUDENT_SIM = torch.tensor([[[1.0, 0.0, R], [0.0, 1.0, R], [R, R, 1.0]]])


def test_similarity_matrices_by_hand():
    torch.testing.assert_close(similarity_matrix(STUDENT), STUDENT_SIM)
    torch.testing.assert_close(
        similarity_matrix(TEACHER), torch.eye(3).unsqueeze(0)
    )


@pytest.mark.parametrize("common_frames", [3, "min", "max"])
def test_loss_by_hand(common_frames):
    # S_T - S_S is 1/sqrt(2) (in absolute value) in four of nine entries.
    l2 = similarity_loss(STUDENT, TEACHER, common_frames=common_frames)
    torch.testing.assert_close(l2, torch.tensor(4 * 0.5 / 9))
    l1 = similarity_loss(
        STUDENT, TEACHER, common_frames=common_frames, distance="l1"
    )
    torch.testing.assert_close(l1, torch.tensor(4 * R / 9))
    module = SimilarityLoss(common_frames=common_frames, distance="l1")
    torch.testing.assert_close(module(STUDENT, TEACHER), l1)


def test_dual_depth_list_is_the_sum():
    loss = SimilarityLoss(common_frames=3)
    both = loss(STUDENT, [TEACHER, 2 * TEACHER])
    torch.testing.assert_close(both, 2 * loss(STUDENT, TEACHER))


def test_identical_features_give_zero():
    torch.manual_seed(0)
    x = torch.randn(3, 8, 50)
    for pooling in ("avgpool", "interpolate"):
        for distance in ("l1", "l2"):
            loss = SimilarityLoss(16, distance=distance, pooling=pooling)
            assert loss(x, x).item() == 0.0


def test_invariant_to_channel_permutation_and_scaling():
    torch.manual_seed(1)
    student, teacher = torch.randn(2, 6, 40), torch.randn(2, 10, 64)
    loss = SimilarityLoss(common_frames=20)
    reference = loss(student, teacher)
    permuted = student[:, torch.randperm(6)]
    torch.testing.assert_close(loss(permuted, teacher), reference)
    torch.testing.assert_close(
        loss(student, teacher[:, torch.randperm(10)]), reference
    )
    torch.testing.assert_close(loss(7.5 * student, teacher), reference)
    torch.testing.assert_close(loss(student, 0.01 * teacher), reference)
    # a positive scale per frame also cancels (no resampling: N = T)
    scale = torch.rand(2, 1, 40) + 0.5
    loss_no_resampling = SimilarityLoss(common_frames=40)
    torch.testing.assert_close(
        loss_no_resampling(scale * student, teacher),
        loss_no_resampling(student, teacher),
    )


def test_invariant_to_channel_count():
    torch.manual_seed(2)
    student = torch.randn(2, 5, 30)
    duplicated = torch.cat([student, student, student], dim=1)  # 15 channels
    for pooling in ("avgpool", "interpolate"):
        loss = SimilarityLoss(common_frames=12, pooling=pooling)
        assert loss(student, duplicated).item() == pytest.approx(0, abs=1e-10)


def test_invariant_to_time_resolution_when_frames_repeat():
    torch.manual_seed(3)
    student = torch.randn(1, 4, 16)
    teacher = student.repeat_interleave(4, dim=-1)  # 4x the frame rate
    loss = SimilarityLoss(common_frames=16)
    assert loss(student, teacher).item() == pytest.approx(0, abs=1e-10)


def test_resampling_matches_interpolate_and_adaptive_pooling():
    torch.manual_seed(4)
    x = torch.randn(2, 3, 37)
    torch.testing.assert_close(
        resample_frames(x, 10, pooling="interpolate"),
        F.interpolate(x, size=10, mode="linear", align_corners=False),
    )
    torch.testing.assert_close(
        resample_frames(x, 10), F.adaptive_avg_pool1d(x, 10)
    )
    # the loss compares matrices built on the resampled features
    teacher = torch.randn(2, 7, 90)
    expected = (
        (
            similarity_matrix(
                F.interpolate(teacher, 10, mode="linear", align_corners=False)
            )
            - similarity_matrix(
                F.interpolate(x, 10, mode="linear", align_corners=False)
            )
        )
        .pow(2)
        .mean()
    )
    got = similarity_loss(x, teacher, common_frames=10, pooling="interpolate")
    torch.testing.assert_close(got, expected)


def test_length_masks_padded_frames():
    torch.manual_seed(5)
    student, teacher = torch.randn(2, 4, 8), torch.randn(2, 6, 8)
    length = torch.tensor([1.0, 0.5])
    got = similarity_loss(
        student, teacher, common_frames=8, length=length, reduction="none"
    )
    full = similarity_loss(student, teacher, common_frames=8, reduction="none")
    torch.testing.assert_close(got[0], full[0])
    half = similarity_loss(
        student[1:, :, :4], teacher[1:, :, :4], common_frames=4
    )
    torch.testing.assert_close(got[1], half)
    # whatever the padding holds
    noisy_pad = teacher.clone()
    noisy_pad[1, :, 4:] = 100 * torch.randn(6, 4)
    torch.testing.assert_close(
        similarity_loss(student, noisy_pad, 8, length=length, reduction="none"),
        got,
    )


def test_gradient_reaches_the_student_only():
    torch.manual_seed(6)
    student = torch.randn(2, 4, 20, requires_grad=True)
    teacher = torch.randn(2, 8, 50, requires_grad=True)
    term = FeatureDistillTerm(
        [("s", ["t"])], SimilarityLoss(common_frames=10), name="cnnc"
    )
    value = term(
        DistillStep.from_tensors(
            torch.zeros(2, 1),
            student_features={"s": student},
            teacher_features={"t": teacher},
        )
    )
    value.backward()
    assert student.grad is not None
    assert student.grad.abs().sum() > 0
    assert teacher.grad is None  # the term detaches the teacher


def test_plugs_into_feature_distill_term_with_length():
    student_net = MANNER(channels=6, depth=3, attention_layers=[2])
    teacher_net = MANNER(channels=6, depth=4, attention_layers=[3])
    pairs = single_view_pairs(
        student_net, teacher_net, [0, 1, 2], [[0], [1], [2, 3]]
    )
    assert pairs[2] == ("encoder.2", ["encoder.2", "encoder.3"])
    assert pairs[5] == ("decoder.2", ["decoder.2", "decoder.3"])
    term = FeatureDistillTerm(pairs, SimilarityLoss(8), name="cnnc")
    torch.manual_seed(7)
    student = {name: torch.randn(2, 3, 40) for name in term.student_taps}
    teacher = {name: torch.randn(2, 5, 30) for name in term.teacher_taps}
    step = DistillStep.from_tensors(
        torch.zeros(2, 1),
        lengths=torch.tensor([1.0, 0.6]),
        student_features=student,
        teacher_features=teacher,
    )
    value = term(step)
    assert value.dim() == 0 and value.item() > 0


def test_half_precision_is_computed_in_float32():
    x = torch.randn(1, 4, 16).half()
    assert similarity_matrix(x).dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs",
    [
        {"distance": "cosine"},
        {"pooling": "nearest"},
        {"common_frames": 0},
        {"common_frames": "teacher"},
    ],
)
def test_bad_options_are_rejected(kwargs):
    with pytest.raises(ValueError):
        SimilarityLoss(**kwargs)


def test_batch_mismatch_is_rejected():
    with pytest.raises(ValueError, match="batch mismatch"):
        similarity_loss(torch.randn(2, 3, 8), torch.randn(3, 3, 8))
