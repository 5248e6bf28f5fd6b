"""The causal full-band (48 kHz) student: bands, causality, exact streaming."""

import random

import pytest
import torch

from speechbrain_kd.lobes.full_band import (
    CausalInstanceNorm,
    FullBandNet,
    band_matrix,
)
from speechbrain_kd.pretrained import StreamingEnhancer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return FullBandNet().eval()


def test_default_preset_size_and_latency(model):
    assert sum(p.numel() for p in model.parameters()) == 112_211
    assert (model.win, model.hop, model.sample_rate) == (960, 480, 48000)
    assert model.latency_ms() == 20.0  # window: hop buffering + overlap-add
    assert model.delay_samples == 480


def test_bands_are_a_partition_of_unity_without_empty_bands():
    weights = band_matrix(481, 32, 48000)
    torch.testing.assert_close(weights.sum(0), torch.ones(481))
    assert bool((weights.sum(1) > 0).all())
    peaks = weights.argmax(1)
    assert bool((peaks[1:] > peaks[:-1]).all())  # centres strictly rise
    with pytest.raises(ValueError, match="bands must be in"):
        band_matrix(9, 12, 16000)


def test_causal_instance_norm_by_hand_and_in_pieces():
    norm = CausalInstanceNorm(1, eps=0.0)
    # [batch, time, freq, channels]: frames (1, 3), (3, 5), (5, 7)
    x = torch.tensor([[1.0, 3.0], [3.0, 5.0], [5.0, 7.0]]).reshape(1, 3, 2, 1)
    y, _ = norm(x)
    # frame 0: values {1, 3}: mean 2, std 1 -> (-1, 1)
    torch.testing.assert_close(y[0, 0, :, 0], torch.tensor([-1.0, 1.0]))
    # frame 1: values {1, 3, 3, 5}: mean 3, var 2
    expected = torch.tensor([0.0, 2.0]) / 2**0.5
    torch.testing.assert_close(y[0, 1, :, 0], expected)
    first, state = norm(x[:, :2])
    second, _ = norm(x[:, 2:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), y)


@pytest.mark.parametrize("length", [1, 479, 480, 4801])
def test_offline_is_the_causal_output_realigned(model, length):
    x = torch.randn(2, length)
    with torch.no_grad():
        aligned = model(x)
        causal = model.forward_causal(torch.nn.functional.pad(x, (0, 480)))
    assert aligned.shape == x.shape
    assert torch.equal(aligned, causal[:, 480 : 480 + length])
    assert model(x[:, None]).shape == (2, 1, length)


def test_future_samples_change_no_earlier_output(model):
    x = torch.randn(1, 9600)
    with torch.no_grad():
        before = model.forward_causal(x)
        for start in (4800, 5000):
            changed = x.clone()
            changed[:, start:] += torch.randn(1, 9600 - start)
            after = model.forward_causal(changed)
            # outputs of earlier hops never move
            block = start - start % model.hop
            assert torch.equal(after[:, :block], before[:, :block])
            assert not torch.equal(after[:, block:], before[:, block:])


@pytest.mark.parametrize("seed", [0, 1])
def test_streaming_equals_offline_for_random_piece_sizes(model, seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(3 * 48000 // 2, generator=generator)
    sizes = random.Random(seed)
    with torch.no_grad():
        reference = model.forward_causal(x[None])[0]
    streamer = StreamingEnhancer(model, block_hops=1, sample_rate=48000)
    pieces, start = [], 0
    while start < x.shape[0]:
        size = sizes.choice([1, 7, 480, 481, 1500, 4000])
        pieces.append(streamer.process(x[start : start + size]))
        start += size
    pieces.append(streamer.flush())
    out = torch.cat(pieces)
    assert out.shape == x.shape
    assert (out - reference).abs().max().item() < 1e-5
    assert streamer.latency_ms == 20.0


def test_traced_streaming_equals_offline(model):
    x = torch.randn(9600)
    with torch.no_grad():
        reference = model.forward_causal(x[None])[0]
    streamer = StreamingEnhancer(model, 2, 48000, compile=True)
    out = torch.cat([streamer.process(x[:5000]), streamer.process(x[5000:])])
    out = torch.cat([out, streamer.flush()])
    assert (out - reference).abs().max().item() < 1e-5


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="win must be 2 \\* hop"):
        FullBandNet(win=900, hop=480)
    with pytest.raises(ValueError, match="multiple of 2 \\*\\* 2"):
        FullBandNet(bands=30)
    with pytest.raises(ValueError, match="one look_back per encoder layer"):
        FullBandNet(look_back=[1])
    with pytest.raises(ValueError, match="whole number of hops"):
        FullBandNet().forward_step(torch.zeros(1, 100), None)


def test_it_trains_and_offers_its_latent(model):
    from speechbrain_kd.distill.latent import tap_widths

    student = FullBandNet(channels=(8, 8), hidden=16)
    out = student(torch.randn(2, 4800))
    out.pow(2).mean().backward()
    assert all(p.grad is not None for p in student.parameters())
    assert tap_widths(model, ["latent"], samples=4800) == [24 * 8]
    assert model.tap_paths() == ["decoder.0", "decoder.1", "latent"]
