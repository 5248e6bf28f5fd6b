"""Tests of the causal RT-SENet lobe, its streaming API and presets."""

import functools
import pathlib

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml

from speechbrain_kd.lobes.rt_senet import (
    CausalConvTranspose1d,
    CausalDepthwise,
    CausalMultiViewAttention,
    RTSENet,
)
from speechbrain_kd.pretrained import StreamingEnhancer

MODELS = pathlib.Path(__file__).resolve().parents[1] / "hparams" / "models"
PRESET_PARAMS = {
    "rt_senet_s": 229_633,
    "rt_senet_m": 888_481,
    "rt_senet_l": 6_199_564,
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def trained_like(model):
    """Random BN statistics and affine maps, as after training: the
    streaming paths fold BN into kernels, which identity BN would hide."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            size = module.num_features
            uniform = torch.rand(4, size, generator=generator)
            module.running_mean.copy_(uniform[0] - 0.5)
            module.running_var.copy_(0.5 + 1.5 * uniform[1])
            module.weight.data.copy_(0.5 + uniform[2])
            module.bias.data.copy_(0.4 * uniform[3] - 0.2)
    return model.eval()


@functools.cache
def preset(name):
    """Loads a preset in eval mode (seeded, cached, trained-like BN)."""
    torch.manual_seed(0)
    with open(MODELS / f"{name}.yaml") as stream:
        model = load_hyperpyyaml(stream)["model"]
    return trained_like(model)


def small_model():
    """A tiny model with MA blocks in both layers."""
    torch.manual_seed(0)
    model = RTSENet(
        channels=6,
        depth=2,
        attention_layers=(0, 1),
        pool_window=8,
        attention_window=4,
    )
    return trained_like(model)


@pytest.mark.parametrize("name", sorted(PRESET_PARAMS))
def test_preset_params(name):
    model = preset(name)
    assert sum(p.numel() for p in model.parameters()) == PRESET_PARAMS[name]


def test_preset_latency():
    assert preset("rt_senet_s").latency_samples == 64
    assert preset("rt_senet_s").latency_ms(16000) == 4.0
    assert preset("rt_senet_m").latency_ms(16000) == 4.0
    assert preset("rt_senet_l").latency_ms(16000) == 16.0


@pytest.mark.parametrize("name", ["rt_senet_s", "rt_senet_m"])
def test_streaming_enhancer_equals_offline(name):
    model = preset(name)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(48000, generator=generator)
    with torch.no_grad():
        reference = model(x[None])[0]
    buffer = StreamingEnhancer(model)
    outs, start = [], 0
    while start < x.shape[0]:
        size = int(torch.randint(1, 16001, (1,), generator=generator))
        outs.append(buffer.process(x[start : start + size]))
        start += size
    outs.append(buffer.flush())
    out = torch.cat(outs)
    assert out.shape == x.shape
    assert (out - reference).abs().max() <= 1e-5


def test_forward_step_equals_offline_per_hop_and_batched():
    model = small_model()
    x = torch.randn(2, 1, 40 * model.hop)
    with torch.no_grad():
        reference = model(x)
        state = model.init_state(batch_size=2)
        outs = []
        for piece in x.split(3 * model.hop, dim=-1):
            out, state = model.forward_step(piece, state)
            outs.append(out)
    assert (torch.cat(outs, -1) - reference).abs().max() <= 1e-5


def test_forward_step_rejects_partial_hop():
    model = small_model()
    with pytest.raises(ValueError, match="multiple of the hop"):
        model.forward_step(torch.zeros(1, 5), model.init_state())


@pytest.mark.parametrize("name", ["small", "rt_senet_s"])
def test_causality(name):
    model = small_model() if name == "small" else preset(name)
    length = 8 * model.hop + 37
    x1 = torch.randn(1, length)
    for t in (0, model.hop - 1, model.hop, 3 * model.hop + 5, length - 40):
        x2 = x1.clone()
        x2[:, t + 1 :] += torch.randn(1, length - t - 1)
        with torch.no_grad():
            diff = (model(x1) - model(x2)).abs()[0]
        # Output m depends on inputs <= m + lookahead only.
        same = t - model.lookahead_samples + 1
        if same > 0:
            assert diff[:same].max() <= 1e-6
        assert model.latency_samples > model.lookahead_samples
        # Bound is tight: the sample right after it does change.
        assert diff[max(same, 0) :].max() > 0


@pytest.mark.parametrize("length", [1, 63, 65, 1001])
def test_odd_lengths(length):
    model = small_model()
    with torch.no_grad():
        assert model(torch.randn(1, length)).shape == (1, length)
        assert model(torch.randn(1, 1, length)).shape == (1, 1, length)


def test_taps_shapes():
    model = small_model()
    names = model.attention_tap_names()
    assert len(names) == 12
    shapes = {}
    modules = dict(model.named_modules())
    for name in names:
        modules[name].register_forward_hook(
            lambda m, i, o, name=name: shapes.__setitem__(name, o.shape)
        )
    with torch.no_grad():
        model(torch.randn(1, 16 * 10))
    assert shapes["encoder.0.attention.channel_view"] == (1, 4, 40)
    assert shapes["encoder.1.attention.global_view"] == (1, 8, 10)
    assert shapes["decoder.1.attention.local_view"] == (1, 4, 40)
    assert shapes["decoder.0.attention.local_view"] == (1, 2, 160)


def test_gradients_flow():
    model = small_model().train()
    model(torch.randn(2, 200)).pow(2).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


def test_ma_block_rejects_bad_channels():
    with pytest.raises(ValueError, match="multiple of 3"):
        CausalMultiViewAttention(8)


def test_compiled_streaming_equals_offline():
    model = preset("rt_senet_s")
    x = torch.randn(5000, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        reference = model(x[None])[0]
    streamer = StreamingEnhancer(model, block_hops=8, compile=True)
    assert streamer.compiled_step is not None
    out = torch.cat(
        [streamer.process(p) for p in x.split(777)] + [streamer.flush()]
    )
    assert out.shape == x.shape
    assert (out - reference).abs().max() <= 1e-5


@pytest.mark.parametrize("kernel_size,stride", [(8, 4), (6, 4), (4, 4)])
def test_transposed_conv_polyphase_stream_equals_offline(kernel_size, stride):
    torch.manual_seed(0)
    layer = CausalConvTranspose1d(3, 2, kernel_size, stride).eval()
    x = torch.randn(1, 3, 12)
    with torch.no_grad():
        offline = layer(x)
        state = {layer.state_key: layer.init_state(1)}
        pieces = [layer(piece, state) for piece in x.split([5, 1, 6], -1)]
    assert offline.shape == (1, 2, 12 * stride)
    assert torch.allclose(torch.cat(pieces, -1), offline, atol=1e-6)


def test_depthwise_stream_folds_eval_batch_norm():
    torch.manual_seed(0)
    layer = trained_like(CausalDepthwise(4, 5))
    layer.conv.state_key = "dw"
    x = torch.randn(1, 4, 20)
    with torch.no_grad():
        offline = layer(x)
        state = {"dw": layer.conv.init_state(1)}
        pieces = [layer(piece, state) for piece in x.split([7, 13], -1)]
    assert torch.allclose(torch.cat(pieces, -1), offline, atol=1e-6)
