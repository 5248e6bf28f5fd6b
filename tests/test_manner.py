"""Tests of the MANNER lobe and its presets (``hparams/models/manner_*``)."""

import functools
import pathlib

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml

from speechbrain_kd.lobes.manner import (
    MANNER,
    MultiViewAttention,
    attention_tap_names,
)

MODELS = pathlib.Path(__file__).resolve().parents[1] / "hparams" / "models"

# Exact counts: the three published teacher counts, and our students
# (paper: 0.26 M, 0.90 M, 1.38 M).
PRESET_PARAMS = {
    "manner_b": 24_068_671,
    "manner_s": 21_253_921,
    "manner_l": 95_498_941,
    "manner_s_1.5gf": 257_785,
    "manner_s_5.3gf": 901_777,
    "manner_s_8.1gf": 1_380_901,
}
PAPER_STUDENT_MPARAMS = {
    "manner_s_1.5gf": 0.26,
    "manner_s_5.3gf": 0.90,
    "manner_s_8.1gf": 1.38,
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: these small forwards gain nothing from more,
    and on a busy 2-core machine spinning worker threads make them slow."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load_preset(name):
    """Instantiates the ``model`` of a preset file."""
    with open(MODELS / f"{name}.yaml") as stream:
        return load_hyperpyyaml(stream)["model"]


@functools.cache
def preset_for_counting(name):
    """A shared (read-only) instance for structure and count checks."""
    return load_preset(name)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def small(**kwargs):
    """A tiny MANNER with MA blocks in both layers (cheap forward)."""
    options = dict(channels=6, depth=2, attention_layers=(0, 1))
    options.update(kwargs)
    torch.manual_seed(0)
    return MANNER(**options)


@pytest.mark.parametrize("name", sorted(PRESET_PARAMS))
def test_preset_parameter_counts_exact(name):
    model = preset_for_counting(name)
    assert isinstance(model, MANNER)
    assert n_params(model) == PRESET_PARAMS[name]
    if name in PAPER_STUDENT_MPARAMS:
        paper = PAPER_STUDENT_MPARAMS[name] * 1e6
        assert abs(n_params(model) - paper) / paper < 0.03


def test_preset_structure():
    assert preset_for_counting("manner_b").attention_layers == (0, 1, 2, 3)
    assert preset_for_counting("manner_s").attention_layers == (3,)
    student = preset_for_counting("manner_s_1.5gf")
    assert (student.depth, student.channels) == (3, 12)
    assert student.attention_layers == (2,)
    modules = dict(student.named_modules())
    assert "encoder.1.attention" not in modules
    assert "decoder.0.attention" not in modules


@pytest.fixture(scope="module")
def small_eval():
    return small().eval()


@pytest.mark.parametrize(
    "batch, length",
    [(1, 16001), (1, 12345), (1, 3 * 16000 + 7), (1, 1000), (2, 16001)],
)
def test_output_length_small(small_eval, batch, length):
    model = small_eval
    with torch.no_grad():
        out = model(torch.randn(batch, length))
        assert out.shape == (batch, length)
        out = model(torch.randn(batch, 1, length))
        assert out.shape == (batch, 1, length)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("length", [16001, 3 * 16000 + 7])
def test_output_length_student_preset(length):
    model = load_preset("manner_s_1.5gf").eval()
    with torch.no_grad():
        assert model(torch.randn(1, length)).shape == (1, length)


def test_tap_names_and_shapes():
    model = load_preset("manner_s_1.5gf").eval()
    names = model.attention_tap_names()
    assert names == attention_tap_names(3, [2])
    assert len(names) == 6
    assert "encoder.2.attention.channel_view" in names
    modules = dict(model.named_modules())
    captured, block_inputs = {}, {}
    for name in names:
        modules[name].register_forward_hook(
            lambda m, i, o, name=name: captured.__setitem__(name, o)
        )
    for part in ("encoder", "decoder"):
        block = f"{part}.2.attention"
        assert isinstance(modules[block], MultiViewAttention)
        modules[block].register_forward_hook(
            lambda m, i, o, block=block: block_inputs.__setitem__(block, i[0])
        )
    with torch.no_grad():
        model(torch.randn(2, 8001))
    assert set(captured) == set(names)
    for name, tensor in captured.items():
        block = name.rsplit(".", 1)[0]
        batch, channels, frames = block_inputs[block].shape
        assert tensor.shape == (batch, channels // 3, frames)
    # Encoder layer 2 of N=12 works on 96 channels, decoder layer 2 on 48.
    assert block_inputs["encoder.2.attention"].shape[1] == 96
    assert block_inputs["decoder.2.attention"].shape[1] == 48


def test_every_ma_block_has_three_views():
    model = preset_for_counting("manner_b")
    modules = dict(model.named_modules())
    blocks = [
        name
        for name, module in modules.items()
        if isinstance(module, MultiViewAttention)
    ]
    assert len(blocks) == 8
    names = model.attention_tap_names()
    assert len(names) == 3 * len(blocks)
    for block in blocks:
        for view in ("channel", "global", "local"):
            assert f"{block}.{view}_view" in names
            assert f"{block}.{view}_view" in modules


def test_batch_one_equals_batch_two():
    model = small().eval()
    torch.manual_seed(1)
    x = torch.randn(2, 5001)
    with torch.no_grad():
        both = model(x)
        one = model(x[:1])
    torch.testing.assert_close(one, both[:1], rtol=1e-4, atol=1e-5)
    # The channel attention on its own, at batch size 1.
    attention = model.encoder[1].attention.channel_attention
    features = torch.randn(2, attention.mlp[0].in_features, 37)
    with torch.no_grad():
        torch.testing.assert_close(
            attention(features[1:]), attention(features)[1:]
        )


def test_deterministic_in_eval_mode():
    model = small().eval()
    x = torch.randn(1, 4003)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)


def test_gradients_reach_every_parameter():
    model = small().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(2, 4001)
    loss = (model(x) - x).abs().mean()
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name
    optimizer.step()


def test_output_scales_with_input():
    model = small().eval()
    x = torch.randn(1, 6000)
    with torch.no_grad():
        reference = model(x)
        scaled = model(10.0 * x)
    # Exact up to the 1e-3 floor of the normalisation.
    torch.testing.assert_close(
        scaled, 10.0 * reference, rtol=1e-2, atol=1e-2 * reference.abs().max()
    )


def test_without_normalisation_and_without_attention():
    model = small(attention_layers=(), channels=8, normalize=False).eval()
    assert model.attention_tap_names() == []
    with torch.no_grad():
        assert model(torch.randn(1, 999)).shape == (1, 999)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(depth=2, attention_layers=(2,)), "0..1"),
        (dict(channels=10, attention_layers=(0,)), "multiple of 3"),
        (dict(conv_kernel_size=30), "odd"),
        (dict(chunk_size=63), "even"),
        (dict(attention_layers=(1, 1)), "duplicate"),
    ],
)
def test_invalid_arguments(options, message):
    kwargs = dict(channels=12, depth=2, attention_layers=(0, 1))
    kwargs.update(options)
    with pytest.raises(ValueError, match=message):
        MANNER(**kwargs)
