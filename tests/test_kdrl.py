"""KDRL's equations (paper 003, Sec. III) on hand-computed values."""

import itertools

import pytest
import torch

from speechbrain_kd.distill.kdrl import (
    PolicyNetwork,
    policy_loss,
    policy_state,
    progress,
    reward,
    target_weights,
)


def test_state_concatenates_the_two_differences():
    clean = torch.tensor([[1.0, 2.0]])
    student = torch.tensor([[0.5, 0.5]])
    teacher = torch.tensor([[2.0, 0.0]])
    z = policy_state(clean, student, teacher)
    assert z.tolist() == [[[0.5, 1.5], [1.5, -0.5]]]


@pytest.mark.parametrize(
    "method, hard, soft",
    [
        ("A", [0.8, 0.3], [0.2, 0.7]),
        ("B", [0.2, 0.7], [1.0, 1.0]),
        ("C", [1.0, 1.0], [0.2, 0.7]),
    ],
)
def test_eq7_weights(method, hard, soft):
    alpha = torch.tensor([0.2, 0.7])
    gamma_hard, gamma_soft = target_weights(alpha, method)
    assert gamma_hard.tolist() == pytest.approx(hard)
    assert gamma_soft.tolist() == pytest.approx(soft)


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="one of \\('A', 'B', 'C'\\), got 'D'"):
        target_weights(torch.tensor([0.5]), "D")


# Every strict ordering of (D_R1, D_R2, D_S) drawn from {1, 2, 4}.
ORDERINGS = {
    # R1 closest: D_R1 - D_S
    (1.0, 2.0, 4.0): -3.0,
    (1.0, 4.0, 2.0): -1.0,
    # R2 closest: D_S - D_R2
    (2.0, 1.0, 4.0): 3.0,
    (4.0, 1.0, 2.0): 1.0,
    # student closest: 0
    (2.0, 4.0, 1.0): 0.0,
    (4.0, 2.0, 1.0): 0.0,
}


def test_eq8_every_strict_ordering():
    assert sorted(ORDERINGS) == sorted(itertools.permutations((1.0, 2.0, 4.0)))
    d_soft, d_hard, d_student = (
        torch.tensor(column) for column in zip(*ORDERINGS, strict=True)
    )
    assert reward(d_soft, d_hard, d_student).tolist() == list(
        ORDERINGS.values()
    )


@pytest.mark.parametrize(
    "distances",
    [
        (1.0, 1.0, 3.0),  # the references tie for the best
        (1.0, 3.0, 1.0),  # R1 ties the student
        (3.0, 1.0, 1.0),  # R2 ties the student
        (2.0, 2.0, 2.0),  # all equal
    ],
)
def test_eq8_ties_for_the_best_give_zero(distances):
    d_soft, d_hard, d_student = (torch.tensor([d]) for d in distances)
    assert reward(d_soft, d_hard, d_student).item() == 0.0


def test_eq9_progress_is_a_fraction_of_the_original_distance():
    rewards = torch.tensor([-3.0, 1.0, 0.0])
    original = torch.tensor([6.0, -4.0, 2.0])  # -SI-SDR can be negative
    delta = progress(rewards, original, epochs=5)
    assert delta.tolist() == pytest.approx([-0.1, 0.05, 0.0])
    # a zero distance is floored, not a division by zero
    assert progress(torch.tensor([1e-9]), torch.tensor([0.0]), 1).item() == (
        pytest.approx(0.1)
    )
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        progress(rewards, original, epochs=0)


def test_eq10_11_clipped_target_and_gradient():
    alpha = torch.tensor([0.5, 0.95, 0.05], requires_grad=True)
    delta = torch.tensor([0.2, 0.2, -0.2])
    loss = policy_loss(alpha, delta)
    # targets: 0.7, clip(1.15) = 1, clip(-0.15) = 0
    assert loss.tolist() == pytest.approx([0.04, 0.0025, 0.0025])
    loss.sum().backward()
    # d/d alpha (alpha - target)^2 with the target stopped: 2 (alpha - t)
    assert alpha.grad.tolist() == pytest.approx([-0.4, -0.1, 0.1])


@pytest.mark.parametrize(
    "length, flat", [(16009, 999 * 4), (16384, 1022 * 4), (4000, 248 * 4)]
)
def test_policy_sizes_follow_the_crop_length(length, flat):
    torch.manual_seed(0)
    policy = PolicyNetwork(length)
    assert policy.flat_features == flat
    assert policy.head[0].in_features == flat
    alpha = policy(torch.randn(3, 2, length))
    assert alpha.shape == (3,) and ((alpha > 0) & (alpha < 1)).all()
    # shorter and longer states are padded / cut to the crop length
    assert policy.eval()(torch.randn(2, 2, length // 2)).shape == (2,)
    assert policy(torch.randn(2, 2, length + 7)).shape == (2,)


def test_policy_too_short_input_is_named():
    with pytest.raises(ValueError, match="input_length 30 is too short"):
        PolicyNetwork(30)
