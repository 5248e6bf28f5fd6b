"""Spatial injection's losses (paper 002, Eqs. 1-5) on hand-computed
values."""

import math

import pytest
import torch

from speechbrain_kd.distill.spatial import (
    feature_distance,
    injection_loss,
    reconstruction_loss,
)


def test_eq1_by_hand():
    # one utterance, 2 x 2 bins
    clean = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    estimate = torch.tensor([[[1.0, 2.0], [3.0, 2.0]]])  # one bin off by 2
    clean_phase = torch.zeros(1, 2, 2)
    phase = torch.tensor([[[0.0, math.pi], [math.pi / 2, 0.0]]])
    # magnitude: ||(0, 0, 0, -2)||_2 = 2; phase: (1*1 + 2*(-1) + 3*0 + 4*1) / 4
    expected_phase = (1 - 2 + 0 + 4) / 4
    got = reconstruction_loss(estimate, clean, phase, clean_phase, alpha=0.5)
    assert got.item() == pytest.approx(2 - 0.5 * expected_phase, abs=1e-6)
    mse = reconstruction_loss(
        estimate, clean, phase, clean_phase, alpha=0.5, distance="mse"
    )
    assert mse.item() == pytest.approx(4 / 4 - 0.5 * expected_phase, abs=1e-6)
    with pytest.raises(ValueError, match="norm or mse"):
        reconstruction_loss(estimate, clean, phase, clean_phase, distance="l1")


def test_eq2_3_sum_over_layers_of_the_l1_of_both_ears():
    student = [
        (torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 1.0]])),
        (torch.tensor([[3.0]]), torch.tensor([[-1.0]])),
    ]
    teacher = [
        (torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 1.0]])),
        (torch.tensor([[1.0]]), torch.tensor([[1.0]])),
    ]
    # layer 1: (1, 2) + (-1, 0) = (0, 2) -> 2; layer 2: 2 + (-2) = 0 -> 0
    assert feature_distance(student, teacher).tolist() == [2.0]
    with pytest.raises(ValueError, match="2 tapped layers, the other model 1"):
        feature_distance(student, teacher[:1])


def test_eq4_5_ratio_with_a_floored_denominator():
    ts = torch.tensor([3.0, 1.0], requires_grad=True)
    bs = torch.tensor([1.5, 1e-9], requires_grad=True)
    ratio = injection_loss(ts, bs, floor=1e-3)
    assert ratio.tolist() == pytest.approx([2.0, 1000.0])
    ratio.sum().backward()
    # d(ts / bs)/d bs = -ts / bs^2 where bs is above the floor; 0 below
    assert bs.grad.tolist() == pytest.approx([-3.0 / 2.25, 0.0])
    reconstruction = torch.tensor([0.5, 0.5])
    total = reconstruction + 0.1 * ratio  # Eq. 5 with beta = 0.1
    assert total.tolist() == pytest.approx([0.7, 100.5])
