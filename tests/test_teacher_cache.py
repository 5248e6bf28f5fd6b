"""The teacher cache serves what the teacher computes, once per item."""

import pytest
import torch

import speechbrain as sb
from speechbrain.dataio.batch import PaddedBatch
from speechbrain_kd.brains import KDBrain
from speechbrain_kd.distill import (
    ATLoss,
    FeatureDistillTerm,
    FeatureTaps,
    OutputDistillTerm,
    TeacherCache,
    TeacherCacheError,
    mvat_pairs,
)
from speechbrain_kd.lobes.manner import MANNER
from speechbrain_kd.losses import WeightedCleanNoiseLoss

pytestmark = pytest.mark.usefixtures("one_thread")


class CountingTeacher(torch.nn.Module):
    """A MANNER teacher that counts its forward passes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = MANNER(channels=12, depth=2, attention_layers=[1]).eval()
        self.calls = 0

    def forward(self, wav):
        self.calls += 1
        return self.net(wav)


TAPS = ["net.encoder.1.attention.global_view", "net.decoder.0"]


def cache_and_teacher():
    teacher = CountingTeacher()
    taps = FeatureTaps(teacher, TAPS, detach=True)
    return TeacherCache(teacher, taps), teacher, taps


def test_equal_length_batch_matches_the_batched_teacher():
    cache, teacher, taps = cache_and_teacher()
    wav = torch.randn(3, 1600, generator=torch.Generator().manual_seed(1))
    out, features = cache(["a", "b", "c"], wav, torch.ones(3))
    with torch.no_grad():
        taps.clear()
        expected = teacher(wav)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)
    assert sorted(features) == sorted(TAPS)
    for name in TAPS:
        torch.testing.assert_close(
            features[name], taps.features[name], atol=1e-6, rtol=1e-5
        )


def test_second_epoch_serves_the_cache_without_a_teacher_forward():
    cache, teacher, _ = cache_and_teacher()
    wav = torch.randn(2, 1600, generator=torch.Generator().manual_seed(2))
    first, first_features = cache(["a", "b"], wav, torch.ones(2))
    assert teacher.calls == 2  # one forward per item
    again, again_features = cache(["b", "a"], wav.flip(0), torch.ones(2))
    assert teacher.calls == 2
    assert (cache.hits, cache.misses, len(cache)) == (2, 2, 2)
    assert torch.equal(again, first.flip(0))
    for name in TAPS:
        assert torch.equal(again_features[name], first_features[name].flip(0))
    tensors = (first, *first_features.values())  # equal lengths: no padding
    assert cache.nbytes == 4 * sum(tensor.numel() for tensor in tensors)


def test_a_padded_item_is_run_alone_on_its_own_length():
    cache, teacher, taps = cache_and_teacher()
    generator = torch.Generator().manual_seed(3)
    long, short = torch.randn(1600, generator=generator), torch.randn(960)
    batch = PaddedBatch(
        [
            {"id": "long", "noisy_sig": long},
            {"id": "short", "noisy_sig": short},
        ]
    )
    wav, lengths = batch.noisy_sig
    out, features = cache(batch.id, wav, lengths)
    with torch.no_grad():
        taps.clear()
        alone = teacher(short[None])
        alone_features = dict(taps.features)
        taps.clear()
        longest = teacher(long[None])
        longest_features = dict(taps.features)
    assert out.shape == (2, 1600)
    torch.testing.assert_close(out[1, :960], alone[0])
    assert float(out[1, 960:].abs().max()) == 0.0
    torch.testing.assert_close(out[0], longest[0])
    for name in TAPS:
        frames = alone_features[name].shape[-1]
        assert features[name].shape[-1] == longest_features[name].shape[-1]
        torch.testing.assert_close(
            features[name][1, ..., :frames], alone_features[name][0]
        )
        assert float(features[name][1, ..., frames:].abs().max()) == 0.0


def test_a_changed_input_is_an_error_naming_the_item():
    cache, _, _ = cache_and_teacher()
    wav = torch.randn(1, 1600)
    cache(["u7@2"], wav, torch.ones(1))
    with pytest.raises(TeacherCacheError, match=r"'u7@2'.*segment_hop"):
        cache(["u7@2"], wav + 1e-3, torch.ones(1))


def test_a_tap_that_is_not_a_tensor_is_an_error_naming_it():
    class PairTeacher(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(1, 2, batch_first=True)

        def forward(self, wav):
            return self.lstm(wav[..., None])[0][..., 0]

    teacher = PairTeacher()
    cache = TeacherCache(teacher, FeatureTaps(teacher, ["lstm"], detach=True))
    with pytest.raises(TeacherCacheError, match="tap 'lstm' outputs a tuple"):
        cache(["a"], torch.randn(1, 8), torch.ones(1))


def kd_brain(teacher_cache):
    torch.manual_seed(0)
    student = MANNER(channels=6, depth=2, attention_layers=[1])
    torch.manual_seed(1)
    teacher = MANNER(channels=12, depth=2, attention_layers=[1])
    loss = WeightedCleanNoiseLoss()
    terms = [
        FeatureDistillTerm(
            mvat_pairs(student, teacher, [1]), ATLoss(), name="mvat"
        ),
        OutputDistillTerm(loss, name="kd"),
    ]
    return KDBrain(
        modules={"model": student},
        opt_class=lambda params: torch.optim.Adam(params, 1e-3),
        hparams={
            "loss": loss,
            "distill_terms": terms,
            "teacher_cache": teacher_cache,
        },
        run_opts={"device": "cpu", "noprogressbar": True},
        teacher=teacher,
    )


def test_kd_brain_losses_are_the_same_with_and_without_the_cache():
    generator = torch.Generator().manual_seed(4)
    batch = PaddedBatch(
        [
            {
                "id": f"u{index}",
                "noisy_sig": torch.randn(1600, generator=generator),
                "clean_sig": torch.randn(1600, generator=generator),
            }
            for index in range(2)
        ]
    )
    plain, cached = kd_brain(False), kd_brain(True)
    assert plain.teacher_cache is None
    for epoch in range(2):
        losses = []
        for brain in (plain, cached):
            step = brain.compute_forward(batch, sb.Stage.TRAIN)
            losses.append(brain.compute_objectives(step, batch, sb.Stage.TRAIN))
        torch.testing.assert_close(losses[0], losses[1], atol=1e-5, rtol=1e-5)
    assert (cached.teacher_cache.misses, cached.teacher_cache.hits) == (2, 2)
