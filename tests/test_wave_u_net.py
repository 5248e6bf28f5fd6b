"""The Wave-U-Net lobe of the KDRL recipes."""

import pytest
import torch

from speechbrain_kd.lobes.wave_u_net import (
    LIGHT_PRESET_WIDTHS,
    PRESET_WIDTHS,
    SeparableConvBlock,
    SqueezeExcitation,
    WaveUNet,
    wave_u_net_preset,
)

# Parameter counts of the presets (the paper's Table 2 says 10.3 M, 7.9 M,
# 5.1 M, 2.6 M and 1.1 M).
COUNTS = {
    "teacher": 10_132_802,
    "75": 7_759_292,
    "50": 5_086_572,
    "student": 2_536_322,
    "12": 1_128_642,
    "light-24": 1_680_425,
    "light-12": 436_445,
}


@pytest.mark.parametrize("name", sorted([*PRESET_WIDTHS, *LIGHT_PRESET_WIDTHS]))
def test_preset_parameter_counts(name):
    model = wave_u_net_preset(name)
    assert sum(p.numel() for p in model.parameters()) == COUNTS[name]


@pytest.mark.parametrize("length", [1, 999, 1024, 16384])
def test_any_length_in_same_length_out(length):
    torch.manual_seed(0)
    model = WaveUNet(width=2, depth=4).eval()
    out = model(torch.randn(2, length))
    assert out.shape == (2, length)
    assert out.abs().max() <= 1.0
    assert model(torch.randn(3, 1, length)).shape == (3, 1, length)


def test_short_input_is_zero_padded_to_a_multiple_of_2_to_the_depth():
    torch.manual_seed(0)
    model = WaveUNet(width=2, depth=3).eval()
    x = torch.randn(1, 60)
    padded = torch.nn.functional.pad(x, (0, 4))  # 64 = 8 * 8
    assert torch.equal(model(x), model(padded)[:, :60])


def test_taps_mirror_the_encoder():
    model = WaveUNet(width=2, depth=3)
    features = {}
    for name in ("encoder.0", "decoder.0", "encoder.2", "decoder.2"):
        module = dict(model.named_modules())[
            model.tap_path(name.split(".")[0], int(name[-1]))
        ]
        module.register_forward_hook(
            lambda m, i, o, name=name: features.__setitem__(name, o.shape)
        )
    model(torch.randn(1, 80))
    assert features["encoder.0"] == features["decoder.0"] == (1, 2, 80)
    assert features["encoder.2"] == features["decoder.2"] == (1, 6, 20)
    with pytest.raises(ValueError, match="taps are"):
        model.tap_path("encoder", 0, "local_view")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"width": 0}, "width and depth >= 1"),
        ({"encoder_kernel": 4}, "encoder_kernel must be odd"),
        ({"block": "dense"}, "block must be one of"),
        ({"block": "separable", "se_reduction": 0}, "se_reduction must be"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WaveUNet(**kwargs)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="known: teacher, 75, 50, student"):
        wave_u_net_preset("huge")


def separable_count(c_in, c_out, kernel, r=4):
    """Depthwise (no bias) + pointwise + BN + squeeze-excitation."""
    hidden = max(1, c_out // r)
    se = c_out * hidden + hidden + hidden * c_out + c_out
    return c_in * kernel + (c_in * c_out + c_out) + 2 * c_out + se


@pytest.mark.parametrize(
    "width, depth, r", [(24, 12, 4), (12, 12, 4), (5, 3, 2)]
)
def test_light_parameter_count_by_hand(width, depth, r):
    channels = [width * i for i in range(1, depth + 1)]
    deeper = [*channels[1:], channels[-1]]
    expected = (
        sum(
            separable_count(c_in, c_out, 15, r)
            for c_in, c_out in zip([1, *channels[:-1]], channels, strict=True)
        )
        + separable_count(channels[-1], channels[-1], 15, r)
        + sum(
            separable_count(b + s, s, 5, r)
            for b, s in zip(deeper, channels, strict=True)
        )
        + (width + 1)
        + 1  # output 1x1 conv
    )
    model = WaveUNet(
        width=width, depth=depth, block="separable", se_reduction=r
    )
    assert sum(p.numel() for p in model.parameters()) == expected
    plain = WaveUNet(width=width, depth=depth)
    assert model.tap_paths() == plain.tap_paths()
    assert model(torch.randn(2, 777)).shape == (2, 777)


def test_squeeze_excitation_by_hand():
    se = SqueezeExcitation(4, reduction=2)
    x = torch.randn(3, 4, 10)
    first, _, second, _ = se.gate
    gate = torch.sigmoid(second(torch.relu(first(x.mean(-1)))))
    torch.testing.assert_close(se(x), x * gate.unsqueeze(-1))


def test_separable_block_is_depthwise_then_pointwise():
    torch.manual_seed(0)
    block = SeparableConvBlock(3, 5, 15).eval()
    depthwise, pointwise, norm, _, se = block
    assert depthwise.groups == 3 and depthwise.weight.shape == (3, 1, 15)
    assert depthwise.bias is None and pointwise.kernel_size == (1,)
    x = torch.randn(2, 3, 40)
    manual = torch.nn.functional.conv1d(
        x, depthwise.weight, padding=7, groups=3
    )
    manual = torch.nn.functional.leaky_relu(norm(pointwise(manual)), 0.1)
    torch.testing.assert_close(block(x), se(manual))
