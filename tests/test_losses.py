"""Exact checks of the waveform losses in ``speechbrain_kd.losses``."""

import numpy as np
import pytest
import torch

from speechbrain_kd.losses import (
    MANNER_RESOLUTIONS,
    MultiResolutionSTFTLoss,
    WeightedCleanNoiseLoss,
    absolute_lengths,
    l1_loss_masked,
)


def numpy_stft_magnitude(signal, n_fft, hop, win, eps=1e-7):
    """|STFT| with centre reflect padding and a periodic Hann window."""
    signal = np.asarray(signal, dtype=np.float64)
    padded = np.pad(signal, n_fft // 2, mode="reflect")
    n = np.arange(win)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / win)
    left = (n_fft - win) // 2
    full = np.zeros(n_fft)
    full[left : left + win] = window
    frames = 1 + (len(padded) - n_fft) // hop
    spec = np.stack(
        [
            np.fft.rfft(padded[k * hop : k * hop + n_fft] * full)
            for k in range(frames)
        ],
        axis=1,
    )
    return np.sqrt(np.maximum(np.abs(spec) ** 2, eps))


def numpy_sc_mag(pred, target, n_fft, hop, win):
    est = numpy_stft_magnitude(pred, n_fft, hop, win)
    ref = numpy_stft_magnitude(target, n_fft, hop, win)
    sc = np.linalg.norm(ref - est) / np.linalg.norm(ref)
    mag = np.mean(np.abs(np.log(ref) - np.log(est)))
    return sc, mag


def test_absolute_lengths_round():
    lengths = torch.tensor([1.0, 0.5, 1 / 3])
    assert absolute_lengths(lengths, 9, 3).tolist() == [9, 4, 3]


def test_l1_identical_is_zero_and_masking():
    x = torch.randn(2, 50)
    assert l1_loss_masked(x, x).item() == 0.0
    length = torch.tensor([1.0, 0.6])
    base = l1_loss_masked(x, torch.zeros_like(x), length, "none")
    changed = x.clone()
    changed[1, 30:] = 1e3  # padded samples of utterance 1
    after = l1_loss_masked(changed, torch.zeros_like(x), length, "none")
    assert torch.equal(base, after)
    assert torch.allclose(base[1], x[1, :30].abs().mean())


def test_mrstft_identical_is_zero():
    x = torch.randn(2, 4000)
    loss = MultiResolutionSTFTLoss()
    assert loss(x, x).item() == 0.0
    assert loss(x, x, torch.tensor([1.0, 0.5])).item() == 0.0


def test_mrstft_tiny_example_against_numpy():
    torch.manual_seed(1)
    pred = torch.randn(1, 8, dtype=torch.float64)
    target = torch.randn(1, 8, dtype=torch.float64)
    loss = MultiResolutionSTFTLoss(resolutions=[(4, 2, 4)])
    sc, mag = numpy_sc_mag(pred[0].numpy(), target[0].numpy(), 4, 2, 4)
    got = loss(pred, target).item()
    assert got == pytest.approx(0.5 * sc + 0.5 * mag, rel=1e-12)
    only_sc = MultiResolutionSTFTLoss([(4, 2, 4)], factor_sc=1, factor_mag=0)
    assert only_sc(pred, target).item() == pytest.approx(sc, rel=1e-12)


def test_mrstft_manner_resolutions_against_numpy():
    torch.manual_seed(2)
    pred = torch.randn(1, 3000, dtype=torch.float64)
    target = torch.randn(1, 3000, dtype=torch.float64)
    expected = np.mean(
        [
            0.5 * sc + 0.5 * mag
            for sc, mag in (
                numpy_sc_mag(pred[0].numpy(), target[0].numpy(), *r)
                for r in MANNER_RESOLUTIONS
            )
        ]
    )
    got = MultiResolutionSTFTLoss()(pred, target).item()
    assert got == pytest.approx(expected, rel=1e-10)


def test_mrstft_padded_batch_equals_separate():
    torch.manual_seed(3)
    pred = torch.randn(2, 5000, dtype=torch.float64)
    target = torch.randn(2, 5000, dtype=torch.float64)
    length = torch.tensor([1.0, 3100 / 5000], dtype=torch.float64)
    loss = MultiResolutionSTFTLoss()
    per_utt = loss(pred, target, length, reduction="none")
    first = loss(pred[:1], target[:1])
    second = loss(pred[1:, :3100], target[1:, :3100])
    assert torch.allclose(per_utt, torch.stack([first, second]), rtol=1e-12)
    mean = loss(pred, target, length)
    assert mean.item() == pytest.approx((first + second).item() / 2)
    # padded samples do not matter
    changed = pred.clone()
    changed[1, 3100:] = 7.0
    assert torch.equal(loss(changed, target, length, "none"), per_utt)


def test_weight_hand_computed():
    clean = torch.tensor([[1.0, -1.0, 1.0, 0.0]])
    noisy = torch.tensor([[1.0, -1.0, 1.0, 1.0]])  # noise power 1
    loss = WeightedCleanNoiseLoss()
    assert loss.clean_weight(clean, noisy).item() == pytest.approx(0.75)
    # the padded sample (the noise) is ignored with length 3/4
    half = loss.clean_weight(clean, noisy, torch.tensor([0.75]))
    assert half.item() == pytest.approx(1.0)


def test_weighted_loss_composition():
    torch.manual_seed(4)
    clean = torch.randn(1, 2000, dtype=torch.float64)
    noisy = clean + 0.5 * torch.randn(1, 2000, dtype=torch.float64)
    enhanced = clean + 0.1 * torch.randn(1, 2000, dtype=torch.float64)
    mr = MultiResolutionSTFTLoss()
    noise, noise_est = noisy - clean, noisy - enhanced
    clean_loss = (enhanced - clean).abs().mean() + mr(enhanced, clean)
    noise_loss = (noise_est - noise).abs().mean() + mr(noise_est, noise)
    a = clean.pow(2).sum() / (clean.pow(2).sum() + noise.pow(2).sum())
    expected = a * clean_loss + (1 - a) * noise_loss
    got = WeightedCleanNoiseLoss()(enhanced, clean, noisy)
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)


def test_weighted_loss_identical_is_zero_and_shapes():
    clean = torch.randn(2, 1, 3000)
    noisy = torch.randn(2, 1, 3000)
    loss = WeightedCleanNoiseLoss()
    assert loss(clean, clean, noisy).item() == 0.0
    assert loss(noisy, clean, noisy, reduction="none").shape == (2,)
    with pytest.raises(ValueError):
        loss(clean[:, :, :100], clean, noisy)


def test_weighted_loss_padded_batch_equals_separate():
    torch.manual_seed(5)
    clean = torch.randn(2, 4000, dtype=torch.float64)
    noisy = clean + torch.randn(2, 4000, dtype=torch.float64)
    enhanced = clean + 0.3 * torch.randn(2, 4000, dtype=torch.float64)
    length = torch.tensor([2500 / 4000, 1.0], dtype=torch.float64)
    loss = WeightedCleanNoiseLoss()
    batch = loss(enhanced, clean, noisy, length)
    first = loss(enhanced[:1, :2500], clean[:1, :2500], noisy[:1, :2500])
    second = loss(enhanced[1:], clean[1:], noisy[1:])
    assert batch.item() == pytest.approx((first + second).item() / 2)


def test_weighted_loss_gradient_finite():
    torch.manual_seed(6)
    clean = torch.randn(2, 3000)
    noisy = clean + torch.randn(2, 3000)
    enhanced = clean.clone().requires_grad_(True)  # exact match: worst case
    enhanced.data[1, 1000:] = 0.0
    loss = WeightedCleanNoiseLoss()(
        enhanced, clean, noisy, torch.tensor([1, 0.8])
    )
    loss.backward()
    assert torch.isfinite(enhanced.grad).all()
    assert enhanced.grad.abs().sum() > 0
    # silence target: still finite
    silent = torch.zeros(1, 3000, requires_grad=True)
    value = WeightedCleanNoiseLoss()(silent, torch.zeros(1, 3000), silent * 0)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(silent.grad).all()


def test_half_precision_inputs_computed_in_float32():
    x = torch.randn(2, 3000)
    noisy = torch.randn(2, 3000)
    value = WeightedCleanNoiseLoss()(x.half(), x.half(), noisy.half())
    assert value.dtype == torch.float32 and value.item() == 0.0


def test_short_signals_do_not_crash():
    torch.manual_seed(7)
    short = torch.randn(2, 800)  # shorter than n_fft // 2 = 1024
    target = torch.randn(2, 800)
    loss = MultiResolutionSTFTLoss()
    assert loss(short, short).item() == 0.0
    value = loss(short, target, torch.tensor([1.0, 0.5]), "none")
    assert torch.isfinite(value).all()
    alone = loss(short[1:, :400], target[1:, :400])
    assert value[1].item() == pytest.approx(alone.item(), rel=1e-5)
    clean = torch.ones(1, 800)
    assert WeightedCleanNoiseLoss()(clean, clean, clean).item() == 0.0


def test_second_target_reuses_the_estimate_stfts_with_same_values_and_grads():
    """KD scores one output against the clean speech and the teacher with
    one loss object: the shared STFTs change neither values nor gradients
    (compared with a fresh loss object per target)."""
    torch.manual_seed(0)
    noisy = torch.randn(2, 3000)
    clean, teacher = torch.randn(2, 3000), torch.randn(2, 3000)
    lengths = torch.tensor([1.0, 0.8])
    weights = torch.randn(2, 3000, requires_grad=True)

    def total(shared):
        loss_a = WeightedCleanNoiseLoss()
        loss_b = loss_a if shared else WeightedCleanNoiseLoss()
        calls = []
        for stft_loss in {loss_a.stft_loss, loss_b.stft_loss}:
            inner = stft_loss._magnitudes
            stft_loss._magnitudes = lambda *a, f=inner: calls.append(1) or f(*a)
        enhanced = weights * noisy
        value = loss_a(enhanced, clean, noisy, lengths)
        value = value + loss_b(enhanced, teacher, noisy, lengths.clone())
        (grad,) = torch.autograd.grad(value, weights)
        return value.detach(), grad, len(calls)

    separate, grad_separate, calls_separate = total(shared=False)
    shared, grad_shared, calls_shared = total(shared=True)
    assert torch.allclose(shared, separate, rtol=1e-6)
    assert torch.allclose(grad_shared, grad_separate, rtol=1e-5, atol=1e-9)
    # 3 resolutions: estimate + target per call, the estimate once if shared
    assert (calls_separate, calls_shared) == (12, 9)


def test_estimate_memo_sees_in_place_changes():
    loss = WeightedCleanNoiseLoss()
    clean, noisy = torch.randn(1, 2000), torch.randn(1, 2000)
    enhanced = clean.clone()
    assert loss(enhanced, clean, noisy).item() == 0.0
    enhanced.mul_(0.5)  # same tensor object, new values
    fresh = WeightedCleanNoiseLoss()(enhanced.clone(), clean, noisy)
    assert torch.allclose(loss(enhanced, clean, noisy), fresh)


def test_same_output_scored_again_after_a_backward_pass():
    """The memo holds graph nodes that a backward pass frees: scoring the
    same tensor again afterwards recomputes (no 'backward through the
    graph a second time' error) and gives the same gradient."""
    enhanced = torch.randn(1, 2000, requires_grad=True)
    clean, noisy = torch.randn(1, 2000), torch.randn(1, 2000)
    cases = [
        (WeightedCleanNoiseLoss(), (enhanced, clean, noisy)),
        (MultiResolutionSTFTLoss(), (enhanced, clean)),
    ]
    for loss, args in cases:
        grads = []
        for _ in range(2):
            loss(*args).backward()
            grads.append(enhanced.grad.clone())
            enhanced.grad = None
        assert torch.allclose(grads[0], grads[1])
