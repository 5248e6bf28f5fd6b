"""MHCA-CRN and SJEN: shapes, sizes, causality, the per-ear encoders."""

import pytest
import torch

from speechbrain_kd.lobes.crn import CrossEarAttention, Spectrogram
from speechbrain_kd.lobes.mhca_crn import MHCACRN
from speechbrain_kd.lobes.sjen import SJEN, SpectralLayerNorm

SMALL = {"channels": [16, 32], "hidden": 32}
#: One STFT window: how far ahead a frame-causal STFT model looks.
LOOKAHEAD = 512


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_default_sizes_match_the_paper_table_2_student():
    assert count(SJEN()) == 1_580_895  # paper: 1.56 M
    assert count(SJEN(phase_module=False)) == 1_549_905
    assert count(SJEN(shared_encoders=True)) == 1_515_567
    assert count(MHCACRN()) == 1_605_073


@pytest.mark.parametrize("samples", [257, 4000, 4321])
def test_any_input_length(samples):
    torch.manual_seed(0)
    student, teacher = SJEN(**SMALL).eval(), MHCACRN(**SMALL).eval()
    with torch.no_grad():
        assert student(torch.randn(2, samples)).shape == (2, samples)
        assert teacher(torch.randn(2, samples, 2)).shape == (2, samples)


def test_teacher_refuses_mono_input():
    with pytest.raises(ValueError, match=r"\[batch, time, 2\].*\(2, 4000\)"):
        MHCACRN(**SMALL)(torch.randn(2, 4000))


@pytest.mark.parametrize("kind", ["student", "teacher"])
def test_causal_up_to_one_window(kind):
    torch.manual_seed(0)
    if kind == "student":
        model, x = SJEN(**SMALL).eval(), torch.randn(1, 8000)
    else:
        model, x = MHCACRN(**SMALL).eval(), torch.randn(1, 8000, 2)
    cut = 5000
    changed = x.clone()
    changed[:, cut:] = torch.randn_like(changed[:, cut:])
    with torch.no_grad():
        before, after = model(x), model(changed)
    past = cut - LOOKAHEAD
    assert torch.allclose(before[:, :past], after[:, :past], atol=1e-6)
    assert not torch.allclose(before[:, cut:], after[:, cut:], atol=1e-3)


def test_global_phase_norm_is_not_causal_and_frame_norm_is():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 5, 6)
    changed = x.clone()
    changed[..., 4:] += 5.0
    frame, whole = SpectralLayerNorm(2, "frame"), SpectralLayerNorm(2, "global")
    assert torch.equal(frame(x)[..., :4], frame(changed)[..., :4])
    assert not torch.allclose(whole(x)[..., :4], whole(changed)[..., :4])


def test_student_ears_have_separate_weights():
    torch.manual_seed(0)
    model = SJEN(**SMALL)
    assert model.ear_tap_paths() == [
        ("left_encoder.0", "right_encoder.0"),
        ("left_encoder.1", "right_encoder.1"),
    ]
    left = model.left_encoder.features(torch.rand(1, 1, 257, 3))
    right = model.right_encoder.features(torch.rand(1, 1, 257, 3))
    assert not torch.equal(left[0], right[0])
    shared = SJEN(shared_encoders=True, **SMALL)
    assert shared.ear_tap_paths()[1] == ("left_encoder.1", "left_encoder.1")
    assert not hasattr(shared, "right_encoder")


def test_teacher_taps_carry_the_other_ear():
    torch.manual_seed(0)
    model = MHCACRN(**SMALL).eval()
    names = dict(model.named_modules())
    left_path, _ = model.ear_tap_paths()[0]
    seen = {}
    names[left_path].register_forward_hook(
        lambda m, i, o: seen.__setitem__("left", o)
    )
    x = torch.randn(1, 4000, 2)
    changed = x.clone()
    changed[..., 1] = torch.randn(1, 4000)
    with torch.no_grad():
        model(x)
        first = seen["left"]
        model(changed)
    assert not torch.allclose(first, seen["left"])


def test_cross_ear_attention_queries_come_from_the_other_ear():
    torch.manual_seed(0)
    attention = CrossEarAttention(16, heads=8)
    own = torch.randn(1, 16, 10, 2)
    out_a = attention(own, torch.randn(1, 16, 10, 2))
    out_b = attention(own, torch.randn(1, 16, 10, 2))
    assert not torch.allclose(out_a, out_b)
    # frames are independent: changing frame 1 of the other ear leaves
    # frame 0 alone
    other = torch.randn(1, 16, 10, 2)
    moved = other.clone()
    moved[..., 1] += 1.0
    assert torch.equal(
        attention(own, other)[..., 0], attention(own, moved)[..., 0]
    )


def test_estimate_taps_are_what_the_waveform_is_made_of():
    torch.manual_seed(0)
    model = SJEN(**SMALL).eval()
    seen = {}
    for name in ("magnitude_out", "phase_out"):
        getattr(model, name).register_forward_hook(
            lambda m, i, o, name=name: seen.__setitem__(name, o)
        )
    x = torch.randn(1, 4000)
    with torch.no_grad():
        y = model(x)
    spectrogram = Spectrogram()
    rebuilt = spectrogram.synthesise(
        seen["magnitude_out"], seen["phase_out"], 4000
    )
    assert seen["magnitude_out"].shape == (1, 1, 257, 16)
    assert torch.allclose(rebuilt, y, atol=1e-6)


def test_without_phase_module_the_noisy_phase_is_kept():
    torch.manual_seed(0)
    model = SJEN(phase_module=False, **SMALL).eval()
    seen = {}
    model.phase_out.register_forward_hook(
        lambda m, i, o: seen.__setitem__("phase", o)
    )
    x = torch.randn(1, 4000)
    with torch.no_grad():
        model(x)
    _, noisy_phase = Spectrogram().analyse(x)
    assert torch.equal(seen["phase"], noisy_phase)


def test_teacher_masks_the_spectrum_of_the_ears_mean():
    torch.manual_seed(0)
    model = MHCACRN(**SMALL).eval()
    seen = {}
    model.magnitude_out.register_forward_hook(
        lambda m, i, o: seen.__setitem__("magnitude", o)
    )
    model.phase_out.register_forward_hook(
        lambda m, i, o: seen.__setitem__("phase", o)
    )
    x = torch.randn(1, 4000, 2)
    with torch.no_grad():
        model(x)
    magnitude, phase = Spectrogram().analyse(x.mean(dim=-1))
    assert torch.all(seen["magnitude"] <= magnitude + 1e-5)
    strong = magnitude > 1e-2
    difference = torch.remainder(seen["phase"] - phase + torch.pi, 2 * torch.pi)
    assert torch.allclose(
        difference[strong],
        torch.full_like(difference[strong], torch.pi),
        atol=1e-3,
    )
