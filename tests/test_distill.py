"""Exact checks of feature taps, attention transfer and distillation terms."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from speechbrain_kd.distill import (
    ATLoss,
    DistillStep,
    FeatureDistillTerm,
    FeatureTaps,
    OutputDistillTerm,
    at_loss,
    attention_map,
    collect_taps,
    mvat_pairs,
    single_view_pairs,
)
from speechbrain_kd.lobes.manner import MANNER
from speechbrain_kd.losses import WeightedCleanNoiseLoss

A = torch.tensor([[[1.0, 2.0, 0.0], [3.0, 0.0, 4.0]]])  # [1, 2, 3]

# --------------------------------------------------------------------------
# attention maps and AT loss


def test_attention_map_hand_values():
    assert attention_map(A, normalize=False).tolist() == [[10.0, 4.0, 16.0]]
    expected = torch.tensor([[10.0, 4.0, 16.0]]) / math.sqrt(372.0)
    assert torch.allclose(attention_map(A), expected)
    assert torch.allclose(attention_map(A).norm(dim=-1), torch.ones(1))


def test_attention_map_p1_and_scale_invariance():
    assert attention_map(A, p=1, normalize=False).tolist() == [[4.0, 2.0, 4.0]]
    assert torch.allclose(attention_map(-A, p=1), attention_map(A, p=1))
    assert torch.allclose(attention_map(5 * A), attention_map(A))
    assert torch.allclose(attention_map(5 * A, p=1), attention_map(A, p=1))
    # p changes the map
    assert not torch.allclose(attention_map(A, p=1), attention_map(A, p=2))


def test_attention_map_length_mask_and_zero_input():
    masked = attention_map(A, normalize=False, length=torch.tensor([2 / 3]))
    assert masked.tolist() == [[10.0, 4.0, 0.0]]
    normed = attention_map(A, length=torch.tensor([2 / 3]))
    assert torch.allclose(normed, torch.tensor([[10.0, 4.0, 0]]) / 116**0.5)
    zero = attention_map(torch.zeros(1, 2, 3))
    assert torch.equal(zero, torch.zeros(1, 3))


def test_at_loss_l1_l2_hand_values():
    s = A
    t = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])  # map [1, 0, 0]
    s_hat = torch.tensor([10.0, 4.0, 16.0]) / math.sqrt(372.0)
    t_hat = torch.tensor([1.0, 0.0, 0.0])
    l1 = (t_hat - s_hat).abs().sum()
    l2 = (t_hat - s_hat).pow(2).sum().sqrt()  # the norm, not squared
    assert at_loss(s, t, distance="l1").item() == pytest.approx(l1.item())
    assert at_loss(s, t, distance="l2").item() == pytest.approx(l2.item())
    assert ATLoss(distance="l2")(s, t).item() == pytest.approx(l2.item())
    # batch mean
    batch_s = torch.cat([s, t])
    batch_t = torch.cat([t, t])
    assert at_loss(batch_s, batch_t).item() == pytest.approx(l1.item() / 2)


def test_at_loss_identical_and_channel_mismatch():
    x = torch.randn(3, 6, 10)
    for distance in ("l1", "l2"):
        assert at_loss(x, x, distance=distance).item() == 0.0
        assert at_loss(x, 2 * x, distance=distance).item() == pytest.approx(
            0.0, abs=1e-6
        )
    # different channel counts are fine: maps sum over channels
    assert at_loss(x, torch.randn(3, 20, 10)).shape == ()


def test_at_loss_options_validated():
    with pytest.raises(ValueError):
        ATLoss(distance="l3")
    with pytest.raises(ValueError):
        ATLoss(common_length="longest")
    with pytest.raises(ValueError):
        at_loss(torch.randn(2, 3, 4), torch.randn(3, 3, 4))


def test_dual_depth_interpolation_and_sum():
    torch.manual_seed(0)
    s = torch.randn(2, 3, 4)
    t8 = torch.randn(2, 5, 8)
    t2 = torch.randn(2, 5, 2)

    def by_hand(student, teacher, size):
        def prep(x):
            fmap = x.pow(2).sum(1, keepdim=True)  # [B, 1, T]
            if fmap.shape[-1] != size:
                fmap = F.interpolate(
                    fmap, size=size, mode="linear", align_corners=False
                )
            fmap = fmap.squeeze(1)
            return fmap / fmap.norm(dim=-1, keepdim=True)

        return (prep(teacher) - prep(student)).abs().sum(-1).mean()

    # common length "max", per (student, teacher) pair: the student map is
    # upsampled to 8 frames against t8, t2's map to 4 frames against s
    expected = by_hand(s, t8, 8) + by_hand(s, t2, 4)
    got = ATLoss()(s, [t8, t2])
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    single = at_loss(s, t8) + at_loss(s, t2)
    assert got.item() == pytest.approx(single.item(), rel=1e-6)
    # common length "student": 4 frames
    expected4 = by_hand(s, t8, 4) + by_hand(s, t2, 4)
    got4 = ATLoss(common_length="student")(s, [t8, t2])
    assert got4.item() == pytest.approx(expected4.item(), rel=1e-6)
    # linear interpolation with align_corners=False, checked by hand:
    # [a, b] -> [a, .75a + .25b, .25a + .75b, b]
    two = torch.tensor([[[1.0, 3.0]]])  # map [1, 9]
    four = torch.tensor([[[1.0, 3.0, 5.0, 3.0]]]).sqrt()  # map [1, 3, 5, 3]
    hand = torch.tensor([1.0, 3.0, 7.0, 9.0])
    hand = hand / hand.norm()
    mine = torch.tensor([1.0, 3.0, 5.0, 3.0])
    mine = mine / mine.norm()
    got_small = at_loss(four, two, distance="l1")
    assert got_small.item() == pytest.approx((hand - mine).abs().sum().item())


def test_at_loss_gradient():
    s = torch.randn(2, 3, 8, requires_grad=True)
    t = torch.randn(2, 4, 4)
    loss = ATLoss(distance="l2")(s, [t, s.detach()])
    loss.backward()
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


# --------------------------------------------------------------------------
# pair builders


# The models say which modules may be tapped; the builders ask them.
STUDENT_NET = MANNER(channels=6, depth=3, attention_layers=[1, 2])
TEACHER_NET = MANNER(channels=6, depth=4, attention_layers=[0, 1, 2, 3])


def test_mvat_pairs_dual_depth():
    pairs = mvat_pairs(
        STUDENT_NET, TEACHER_NET, student_layers=[2], teacher_layers=[[2, 3]]
    )
    views = ("channel_view", "global_view", "local_view")
    expected = [
        (
            f"{side}.2.attention.{view}",
            [f"{side}.2.attention.{view}", f"{side}.3.attention.{view}"],
        )
        for side in ("encoder", "decoder")
        for view in views
    ]
    assert pairs == expected
    modules = dict(TEACHER_NET.named_modules())
    assert all(t in modules for _, ts in pairs for t in ts)


def test_mvat_pairs_single_depth():
    pairs = mvat_pairs(STUDENT_NET, TEACHER_NET, [2], [[3]], sides=["encoder"])
    assert pairs == [
        (
            "encoder.2.attention.channel_view",
            ["encoder.3.attention.channel_view"],
        ),
        (
            "encoder.2.attention.global_view",
            ["encoder.3.attention.global_view"],
        ),
        ("encoder.2.attention.local_view", ["encoder.3.attention.local_view"]),
    ]
    assert mvat_pairs(STUDENT_NET, TEACHER_NET, [2], [3], ["encoder"]) == pairs
    assert mvat_pairs(STUDENT_NET, TEACHER_NET, [1])[0] == (
        "encoder.1.attention.channel_view",
        ["encoder.1.attention.channel_view"],
    )
    with pytest.raises(ValueError, match="teacher layer"):
        mvat_pairs(STUDENT_NET, TEACHER_NET, [1, 2], [[1]])


def test_pairs_name_what_a_model_does_not_offer():
    with pytest.raises(ValueError, match=r"no MA block.*\(1, 2\)"):
        mvat_pairs(STUDENT_NET, TEACHER_NET, [0])
    with pytest.raises(ValueError, match="layers 0..2"):
        single_view_pairs(STUDENT_NET, TEACHER_NET, [3])
    with pytest.raises(TypeError, match="tap_path"):
        single_view_pairs(torch.nn.Linear(1, 1), TEACHER_NET, [0])
    no_views = MANNER(channels=6, depth=3, attention_layers=())
    no_views.attention_views = ()
    with pytest.raises(ValueError, match="attention views"):
        mvat_pairs(no_views, TEACHER_NET, [2])


def test_single_view_pairs():
    assert single_view_pairs(
        STUDENT_NET, TEACHER_NET, [0, 2], [[0], [2, 3]]
    ) == [
        ("encoder.0", ["encoder.0"]),
        ("encoder.2", ["encoder.2", "encoder.3"]),
        ("decoder.0", ["decoder.0"]),
        ("decoder.2", ["decoder.2", "decoder.3"]),
    ]


# --------------------------------------------------------------------------
# feature taps


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 3, padding=1)
        self.attention = nn.ModuleDict(
            {"channel_view": nn.ReLU(), "global_view": nn.Tanh()}
        )

    def forward(self, x):
        x = self.conv(x)
        return self.attention["channel_view"](x) + self.attention[
            "global_view"
        ](x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.ModuleList([Block()])
        self.out = nn.Conv1d(4, 1, 1)

    def forward(self, x):
        return self.out(self.encoder[0](x))


class Wrapper:
    """A DDP-like wrapper: not a module itself, holds one in ``.module``."""

    def __init__(self, module):
        self.module = module


def test_taps_capture_sequential():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(5, 3)
    taps = FeatureTaps(net, ["0", "2", "0"])
    assert taps.names == ["0", "2"]  # deduplicated
    out = net(x)
    assert torch.equal(taps["2"], out)
    assert torch.equal(taps.features["0"], net[0](x))
    taps.clear()
    assert taps.features == {}
    with pytest.raises(KeyError, match="'0'"):
        taps["0"]


def test_taps_nested_names_and_gradient():
    net = Net()
    names = ["encoder.0.attention.channel_view", "encoder.0.conv"]
    taps = FeatureTaps(net, names)
    net(torch.randn(2, 2, 8))
    assert set(taps.features) == set(names)
    assert taps[names[0]].shape == (2, 4, 8)
    assert taps[names[0]].requires_grad
    taps[names[0]].sum().backward()
    assert net.encoder[0].conv.weight.grad.abs().sum() > 0


def test_taps_teacher_detach():
    net = Net()
    taps = FeatureTaps(net, ["encoder.0.conv"], detach=True)
    net(torch.randn(2, 2, 8))
    assert not taps["encoder.0.conv"].requires_grad


def test_taps_unknown_name_lists_close_names():
    with pytest.raises(ValueError) as info:
        FeatureTaps(Net(), ["encoder.0.attention.chanel_view"])
    message = str(info.value)
    assert "encoder.0.attention.channel_view" in message
    assert "Net" in message


def test_taps_through_wrappers():
    net = Net()
    for wrapped in (Wrapper(net), nn.DataParallel(net)):
        taps = FeatureTaps(wrapped, ["encoder.0.conv"])
        assert taps.model is net
        net(torch.randn(1, 2, 8))
        assert "encoder.0.conv" in taps
        taps.remove()
    # full DDP-style names also resolve on the wrapper itself
    taps = FeatureTaps(nn.DataParallel(net), ["module.encoder.0.conv"])
    net(torch.randn(1, 2, 8))
    assert "module.encoder.0.conv" in taps
    taps.remove()


def test_taps_remove_and_context_manager():
    net = Net()
    taps = FeatureTaps(net, ["out"])
    taps.remove()
    net(torch.randn(1, 2, 8))
    assert len(taps) == 0 and not taps.active
    assert len(net.out._forward_hooks) == 0
    with FeatureTaps(net, ["out"]) as taps:
        net(torch.randn(1, 2, 8))
        assert "out" in taps
    assert len(net.out._forward_hooks) == 0


# --------------------------------------------------------------------------
# distillation terms


def features(student, teacher, lengths=None):
    """A step holding only tapped features (batch of their size)."""
    first = next(iter({**student, **teacher}.values()))
    return DistillStep.from_tensors(
        torch.zeros(first.shape[0], 1),
        lengths=lengths,
        student_features=student,
        teacher_features=teacher,
    )


def test_feature_term_hand_value():
    s = torch.tensor([[[1.0, 0.0]]])  # map [1, 0]
    t = torch.tensor([[[0.0, 1.0]]])  # map [0, 1]
    term = FeatureDistillTerm(
        [("s.a", ["t.a", "t.b"]), ("s.b", "t.a")],
        ATLoss(distance="l1"),
        weight=0.25,
        name="mvat",
    )
    assert term.student_taps == ["s.a", "s.b"]
    assert term.teacher_taps == ["t.a", "t.b"]
    value = term(features({"s.a": s, "s.b": s}, {"t.a": t, "t.b": s}))
    # pairs: (s,t) = 2, (s,s) = 0, (s,t) = 2 -> sum 4, times 0.25
    assert value.item() == pytest.approx(1.0)
    assert term.name == "mvat"


def test_feature_term_passes_length():
    s = torch.tensor([[[1.0, 0.0, 5.0]]])
    t = torch.tensor([[[1.0, 0.0, -7.0]]])
    term = FeatureDistillTerm([("s", "t")], ATLoss())
    assert term(features({"s": s}, {"t": t})).item() > 0
    masked = term(features({"s": s}, {"t": t}, torch.tensor([2 / 3])))
    assert masked.item() == 0.0
    # a plain callable without ``length`` still works when length is given
    plain = FeatureDistillTerm([("s", "t")], lambda a, b: (a - b).abs().sum())
    assert plain(features({"s": s}, {"t": t})).item() == 12.0


def test_feature_term_missing_feature():
    term = FeatureDistillTerm([("s", "t")], ATLoss())
    x = torch.randn(1, 2, 3)
    with pytest.raises(KeyError, match="'t'"):
        term(features({"s": x}, {}))
    with pytest.raises(KeyError, match="'s'"):
        term(features({}, {"t": x}))


def test_output_term_is_weighted_loss_against_teacher():
    torch.manual_seed(0)
    student = torch.randn(2, 3000, requires_grad=True)
    teacher = torch.randn(2, 3000)
    noisy = torch.randn(2, 3000)
    length = torch.tensor([1.0, 0.7])
    term = OutputDistillTerm(WeightedCleanNoiseLoss(), weight=0.3)
    expected = 0.3 * WeightedCleanNoiseLoss()(student, teacher, noisy, length)
    step = DistillStep.from_tensors(
        noisy, lengths=length, student_out=student, teacher_out=teacher
    )
    value = term(step)
    assert value.item() == pytest.approx(expected.item())
    assert term.name == "output_kd"
    value.backward()
    assert torch.isfinite(student.grad).all()


def test_collect_taps():
    a = FeatureDistillTerm(
        mvat_pairs(STUDENT_NET, TEACHER_NET, [2], [[2, 3]], ["encoder"]), None
    )
    b = FeatureDistillTerm(
        single_view_pairs(STUDENT_NET, TEACHER_NET, [2], [[3]]), None
    )
    student, teacher = collect_taps([a, OutputDistillTerm(None), b])
    assert student == a.student_taps + ["encoder.2", "decoder.2"]
    assert teacher == a.teacher_taps + ["encoder.3", "decoder.3"]
    assert collect_taps([]) == ([], [])


def test_attention_map_shapes_and_half_precision():
    with pytest.raises(ValueError):
        attention_map(torch.randn(2, 5))
    big = torch.full((1, 4, 3), 300.0, dtype=torch.float16)  # 300² overflows
    fmap = attention_map(big, normalize=False)
    assert fmap.dtype == torch.float32 and torch.isfinite(fmap).all()
    assert attention_map(torch.randn(2, 3, 4, 5)).shape == (2, 20)
