"""The Conv-TasNet enhancer built from SpeechBrain's lobe."""

import pytest
import torch

from speechbrain_kd.lobes.conv_tasnet import (
    ConvTasNetEnhancer,
    conv_tasnet_preset,
)


@pytest.mark.parametrize(
    "name, count", [("teacher", 8_782_912), ("student", 2_228_768)]
)
def test_preset_parameter_counts(name, count):
    """The paper: 8.5 M and 2.2 M."""
    model = conv_tasnet_preset(name)
    assert sum(p.numel() for p in model.parameters()) == count


@pytest.mark.parametrize("length", [3, 8, 1000, 1001])
def test_any_length_in_same_length_out(length):
    torch.manual_seed(0)
    model = ConvTasNetEnhancer(N=8, L=8, B=4, H=8, P=3, X=2, R=1)
    assert model(torch.randn(2, length)).shape == (2, length)


def test_padding_only_extends_the_last_frame():
    torch.manual_seed(0)
    model = ConvTasNetEnhancer(
        N=8, L=8, B=4, H=8, P=3, X=2, R=1, norm_type="cLN"
    )
    x = torch.randn(1, 1000)  # (1000 - 8) / 4 + 1 = 249 frames: no padding
    padded = torch.nn.functional.pad(x, (0, 4))
    out = model(x)
    assert torch.allclose(out[:, :990], model(padded)[:, :990], atol=1e-6)


def test_odd_filter_length_and_unknown_preset_are_named():
    with pytest.raises(ValueError, match="even L >= 2"):
        ConvTasNetEnhancer(L=7)
    with pytest.raises(ValueError, match="known: teacher, student"):
        conv_tasnet_preset("large")
