"""MetricGAN-OKD units: loss, metric targets, discriminator heads, models,
historical set and the Brain's discriminator data."""

import logging
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from speechbrain_kd.brains.historical import HistoricalSet
from speechbrain_kd.distill.okd import (
    OKDLoss,
    check_target_metrics,
    frame_mask,
    masked_mse,
    normalize_metric,
)
from speechbrain_kd.lobes.metricgan import (
    MetricDiscriminator,
    MetricGANGenerator,
    MultiMetricDiscriminator,
    SpectralMaskEnhancer,
)
from speechbrain_kd.pretrained.streaming import StreamingEnhancer


# -- OKD loss ------------------------------------------------------------------
def test_okd_loss_value_by_hand():
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # [1, 2 frames, 2 bins]
    enhanced = [x, 2 * x, 0 * x]
    scores = [torch.tensor([0.5]), torch.tensor([0.0]), torch.tensor([1.0])]
    total, terms = OKDLoss(kd_weight=5.0)(scores, enhanced)
    mean_sq = (1 + 4 + 9 + 16) / 4  # mean(x ** 2) = 7.5
    # generator 0: (0.5-1)^2 + 5 * (mse(x, 2x) + mse(x, 0)) = 0.25 + 5 * 15
    # generator 1: 1 + 5 * (mse(2x, x) + mse(2x, 0)) = 1 + 5 * (7.5 + 30)
    # generator 2: 0 + 5 * (mse(0, x) + mse(0, 2x)) = 5 * 37.5
    assert terms["adversarial"] == [0.25, 1.0, 0.0]
    assert terms["peer"] == [2 * mean_sq, 5 * mean_sq, 5 * mean_sq]
    expected = 0.25 + 5 * 15 + 1 + 5 * 37.5 + 5 * 37.5
    assert float(total) == pytest.approx(expected)


def test_okd_loss_gradient_reaches_only_its_own_generator():
    """Each generator's parameter gets the gradient of its own loss only."""
    x = torch.tensor([[[1.0, -2.0], [0.5, 3.0]]])
    a = torch.tensor(0.7, requires_grad=True)
    b = torch.tensor(-0.4, requires_grad=True)
    critic = torch.tensor([[0.3, -0.2], [0.1, 0.4]])  # fixed "D"

    def score(enhanced):
        return (enhanced * critic).sum(dim=(1, 2))

    enh_a, enh_b = a * x, b * x
    loss = OKDLoss(kd_weight=5.0)
    total, _ = loss([score(enh_a), score(enh_b)], [enh_a, enh_b])
    total.backward()
    # By hand: loss_a = (a s - 1)^2 + 5 mean((a - b)^2 x^2), s = sum(x c)
    s = float((x * critic).sum())
    mean_x2 = float((x**2).mean())
    a0, b0 = 0.7, -0.4
    grad_a = 2 * (a0 * s - 1) * s + 5 * 2 * (a0 - b0) * mean_x2
    grad_b = 2 * (b0 * s - 1) * s + 5 * 2 * (b0 - a0) * mean_x2
    assert float(a.grad) == pytest.approx(grad_a, rel=1e-5)
    assert float(b.grad) == pytest.approx(grad_b, rel=1e-5)


def test_okd_loss_single_generator_is_metricgan_plus():
    total, terms = OKDLoss()([torch.tensor([0.25])], [torch.ones(1, 3, 2)])
    assert float(total) == pytest.approx(0.5625)
    assert terms["peer"] == [0.0]


def test_okd_loss_ignores_padded_frames():
    own = torch.zeros(2, 4, 1)
    other = torch.ones(2, 4, 1)
    other[1, 2:] = 100.0  # padding of the second item
    lengths = torch.tensor([1.0, 0.5])
    assert frame_mask(lengths, 4).sum() == 6
    assert float(masked_mse(own, other, frame_mask(lengths, 4))) == 1.0


# -- metric targets ------------------------------------------------------------
def test_normalize_metric_exact_values():
    assert normalize_metric("pesq", 2.5) == 0.5
    assert normalize_metric("pesq", 4.5) == pytest.approx(
        1 / (1 + math.exp(-3.0))
    )
    assert normalize_metric("pesq", -0.5) == pytest.approx(
        1 / (1 + math.exp(4.5))
    )
    assert normalize_metric("csig", 3.0) == 0.5
    assert normalize_metric("cbak", 1.0) == 0.0
    assert normalize_metric("covl", 5.0) == 1.0
    assert normalize_metric("stoi", 0.83) == 0.83
    assert math.isnan(normalize_metric("pesq", math.nan))


def test_unknown_or_repeated_target_metric_is_rejected():
    with pytest.raises(ValueError, match="si_sdr"):
        normalize_metric("si_sdr", 10.0)
    with pytest.raises(ValueError, match="one of"):
        check_target_metrics(["pesq", "snr"])
    with pytest.raises(ValueError, match="repeat"):
        check_target_metrics(["pesq", "PESQ"])


# -- models --------------------------------------------------------------------
def test_generator_parameter_counts():
    assert sum(p.numel() for p in MetricGANGenerator().parameters()) == (
        1_895_514
    )
    causal = MetricGANGenerator(bidirectional=False)
    assert sum(p.numel() for p in causal.parameters()) == 826_714


def test_causal_generator_does_not_look_ahead():
    torch.manual_seed(0)
    generator = MetricGANGenerator(
        n_freq=5, hidden_size=4, linear_size=6, bidirectional=False
    ).eval()
    x = torch.rand(1, 12, 5)
    changed = x.clone()
    changed[:, 8:] += 1.0
    with torch.no_grad():
        a, b = generator(x), generator(changed)
    assert torch.equal(a[:, :8], b[:, :8])
    assert not torch.equal(a[:, 8:], b[:, 8:])


def _causal_enhancer(**kwargs):
    torch.manual_seed(0)
    generator = MetricGANGenerator(
        bidirectional=False, hidden_size=8, linear_size=12
    )
    return SpectralMaskEnhancer(generator, **kwargs).eval()


def test_causal_stream_is_the_offline_output_one_hop_later():
    model = _causal_enhancer()
    x = 0.1 * torch.randn(
        1, 20 * 256, generator=torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        offline = model(x)
        causal = model.forward_causal(F.pad(x, (0, 256)))
    assert model.delay_samples == 256 and model.latency_ms(16000) == 32.0
    assert (causal[:, 256:] - offline).abs().max() < 1e-6
    assert offline.abs().max() > 0.05
    # A partial last hop: torch.istft normalises it by one frame only.
    short = x[:, :5000]
    with torch.no_grad():
        offline = model(short)
        causal = model.forward_causal(F.pad(short, (0, 256)))[:, 256:]
    assert (causal - offline)[:, : 19 * 256].abs().max() < 1e-6


def test_causal_enhancer_streams_piece_by_piece():
    model = _causal_enhancer()
    x = 0.1 * torch.randn(3000, generator=torch.Generator().manual_seed(2))
    streamer = StreamingEnhancer(model, block_hops=2)
    pieces = [streamer.process(x[:700]), streamer.process(x[700:2999])]
    out = torch.cat([*pieces, streamer.process(x[2999:]), streamer.flush()])
    with torch.no_grad():
        causal = model.forward_causal(x[None])[0]
    assert out.shape == (3000,)
    assert (out - causal).abs().max() < 1e-6
    assert streamer.latency_ms == 48.0


def test_enhancers_that_cannot_stream_say_why():
    bidirectional = SpectralMaskEnhancer(
        MetricGANGenerator(n_freq=9, hidden_size=4, linear_size=6),
        n_fft=16,
        hop_length=8,
    )
    with pytest.raises(ValueError, match="bidirectional: False"):
        bidirectional.init_state(1)
    with pytest.raises(ValueError, match="pad_mode='constant'"):
        _causal_enhancer(pad_mode="reflect").init_state(1)
    with pytest.raises(ValueError, match="n_fft = 2 \\* hop_length"):
        _causal_enhancer(hop_length=128).init_state(1)
    with pytest.raises(ValueError, match="whole number of hops"):
        model = _causal_enhancer()
        model.forward_step(torch.zeros(1, 100), model.init_state(1))


def test_shared_discriminator_has_one_head_per_metric():
    disc = MultiMetricDiscriminator(2, shared=True)
    assert len(disc.discriminators) == 1
    # BN(2) 4; convs 2->16->32->64->128 (5x5, bias); Linear 128-50-10-2
    convs = (2 * 16 + 16 * 32 + 32 * 64 + 64 * 128) * 25 + 16 + 32 + 64 + 128
    linears = 128 * 50 + 50 + 50 * 10 + 10 + 10 * 2 + 2
    assert sum(p.numel() for p in disc.parameters()) == 4 + convs + linears
    last = disc.discriminators[0].linears[-1]
    assert last.weight_orig.shape == (2, 10)  # spectral norm on the head


def test_separate_discriminators_score_their_own_metric():
    torch.manual_seed(0)
    disc = MultiMetricDiscriminator(3, shared=False, channels=(4, 4, 4, 4))
    disc.eval()
    assert len(disc.discriminators) == 3
    clean, test = torch.rand(2, 20, 257), torch.rand(2, 20, 257)
    with torch.no_grad():
        before = disc(clean, test)
        disc.discriminators[1].linears[-1].bias.add_(1.0)
        after = disc(clean, test)
    assert before.shape == (2, 3)
    assert torch.allclose(after[:, 1], before[:, 1] + 1.0)
    assert torch.equal(after[:, [0, 2]], before[:, [0, 2]])


def test_discriminator_pads_very_short_inputs():
    disc = MetricDiscriminator(channels=(2, 2, 2, 2), n_outputs=1)
    assert disc(torch.rand(1, 3, 257), torch.rand(1, 3, 257)).shape == (1, 1)


def test_mask_enhancer_floor_and_resynthesis():
    torch.manual_seed(0)
    generator = MetricGANGenerator(n_freq=257, hidden_size=4, linear_size=4)
    enhancer = SpectralMaskEnhancer(generator).eval()
    noisy = 0.1 * torch.randn(2, 8000)
    with torch.no_grad():
        log_mag = enhancer.log_magnitude(noisy)
        enhanced = enhancer(noisy, output="log_magnitude")
        wav = enhancer(noisy)
        resynth = enhancer.log_magnitude(wav)
    assert log_mag.shape == (2, 8000 // 256 + 1, 257)
    assert bool((enhanced >= 0.05 * log_mag - 1e-7).all())
    assert bool((enhanced <= 1.2 * log_mag + 1e-6).all())
    assert wav.shape == noisy.shape
    # the waveform carries the enhanced magnitudes, up to the consistency
    # of a masked STFT (overlapping frames disagree a little)
    error = (resynth - enhanced).abs().mean() / enhanced.abs().mean()
    assert float(error) < 0.05


def test_identity_mask_gives_back_the_input():
    class Ones(torch.nn.Module):
        def forward(self, x, lengths=None):
            return torch.ones_like(x)

    enhancer = SpectralMaskEnhancer(Ones())
    noisy = 0.1 * torch.randn(1, 4000)
    assert torch.allclose(enhancer(noisy), noisy, atol=1e-5)


# -- historical set ------------------------------------------------------------
def write_epochs(root, epochs, per_epoch):
    """Writes ``epochs`` epochs of ``per_epoch`` utterances."""
    history = HistoricalSet(root, sample_rate=8000)
    for epoch in range(1, epochs + 1):
        items = [
            (
                f"e{epoch}u{i}",
                np.full(400, 0.01 * i, dtype=np.float32),
                {"pesq": 1.0 + i, "csig": math.nan if i == 0 else 2.0},
            )
            for i in range(per_epoch)
        ]
        history.write_epoch(epoch, "generator_pesq", items)
    return history


def test_historical_set_written_and_reread_after_resume(tmp_path):
    write_epochs(tmp_path, epochs=3, per_epoch=4)
    resumed = HistoricalSet(tmp_path, sample_rate=8000)  # a new process
    assert resumed.complete_epochs() == [1, 2, 3]
    records = resumed.records(before_epoch=3)
    assert [r.uid for r in records][:2] == ["e1u0", "e1u1"]
    assert len(records) == 8 and {r.epoch for r in records} == {1, 2}
    assert records[1].scores == {"pesq": 2.0, "csig": 2.0}
    assert math.isnan(records[0].scores["csig"])  # a failed metric
    audio = records[2].load()
    assert audio.shape == (400,) and abs(audio[0] - 0.02) < 1e-4


def test_incomplete_epoch_is_ignored_and_rewritten(tmp_path):
    history = write_epochs(tmp_path, epochs=2, per_epoch=2)
    (history.epoch_folder(2) / "index.json").unlink()  # killed mid-write
    assert history.complete_epochs() == [1]
    assert len(history.records(before_epoch=10)) == 2
    history.write_epoch(2, "generator_csig", [("x", np.zeros(10), {})])
    assert [r.uid for r in history.epoch_records(2)] == ["x"]


def test_historical_replay_samples_twenty_percent(tmp_path):
    history = write_epochs(tmp_path, epochs=5, per_epoch=10)
    sample = history.sample(before_epoch=6, fraction=0.2, seed=3)
    assert len(sample) == 10  # 20 % of 50
    assert len({(r.epoch, r.uid) for r in sample}) == 10
    again = history.sample(before_epoch=6, fraction=0.2, seed=3)
    assert [r.uid for r in again] == [r.uid for r in sample]
    assert len(history.sample(before_epoch=3, fraction=0.2)) == 4
    assert history.sample(before_epoch=1, fraction=0.2) == []
    # utterance 0 of every epoch has no CSIG: it cannot be replayed
    usable = history.sample(6, 0.2, seed=3, metrics=["pesq", "csig"])
    assert len(usable) == 9 and all(r.uid[-2:] != "u0" for r in usable)


def test_noisy_scores_cache_round_trip(tmp_path):
    history = HistoricalSet(tmp_path)
    history.save_noisy_scores({"u": {"pesq": 1.2, "csig": math.nan}})
    cached = HistoricalSet(tmp_path).noisy_scores()
    assert cached["u"]["pesq"] == 1.2 and math.isnan(cached["u"]["csig"])


# -- the Brain ---------------------------------------------------------------
class FixedScores:
    """Stands in for EnhancementMetricStats with fixed means."""

    def __init__(self, **means):
        self.metrics = list(means)
        self.means = means

    def summarize(self):
        return {**self.means, "n_failed": 0, "n_items": 1}


def small_brain(tmp_path, **hparams):
    import speechbrain as sb
    from speechbrain_kd.brains import OKDMetricGANBrain

    def generator():
        return SpectralMaskEnhancer(
            MetricGANGenerator(hidden_size=4, linear_size=4)
        )

    modules = {
        "generator_pesq": generator(),
        "generator_csig": generator(),
        "discriminator": MultiMetricDiscriminator(2, channels=(2, 2, 2, 2)),
    }
    checkpointer = sb.utils.checkpoints.Checkpointer(
        tmp_path / "save", recoverables=modules
    )
    brain = OKDMetricGANBrain(
        modules=modules,
        hparams={
            "target_metrics": ["pesq", "csig"],
            "okd_loss": OKDLoss(),
            "output_folder": str(tmp_path),
            **hparams,
        },
        checkpointer=checkpointer,
    )
    return brain, checkpointer


def test_each_generator_is_tested_from_its_own_best_epoch(tmp_path):
    """As the official ``best_model{i}``: every generator is selected by
    its own PESQ (the first generator's best used to decide for all)."""
    import speechbrain as sb

    brain, checkpointer = small_brain(tmp_path, selection_start_epoch=3)
    pesq_of = {  # validation PESQ of each generator, by epoch
        "pesq": {1: 3.0, 2: 2.9, 3: 2.0, 4: 2.5, 5: 2.2},
        "csig": {1: 4.0, 2: 4.0, 3: 3.5, 4: 1.2, 5: 1.1},
    }
    for epoch in range(1, 6):
        for name in brain.generator_names:  # weights that name the epoch
            for param in brain.modules[name].parameters():
                param.data.fill_(float(epoch))
        brain.generator_metrics = {
            metric: FixedScores(pesq=scores[epoch], csig=1.0)
            for metric, scores in pesq_of.items()
        }
        brain.on_stage_end(sb.Stage.VALID, 0.0, epoch)
    kept = sorted(c.meta["epoch"] for c in checkpointer.list_checkpoints())
    assert kept == [3, 4, 5]  # each generator's best and the most recent
    brain.on_evaluate_start(max_key="selection_score")
    assert brain.selected_epochs == {"generator_pesq": 4, "generator_csig": 3}
    for name, epoch in brain.selected_epochs.items():
        for param in brain.modules[name].parameters():
            assert torch.all(param == float(epoch)), name


def test_export_takes_each_generator_from_its_own_best(tmp_path):
    import speechbrain as sb
    from speechbrain_kd.pretrained.export import _checkpoint_file

    brain, _ = small_brain(tmp_path)
    for epoch, (pesq_gen, csig_gen) in enumerate([(1.0, 3.0), (2.0, 1.0)]):
        brain.generator_metrics = {
            "pesq": FixedScores(pesq=pesq_gen, csig=1.0),
            "csig": FixedScores(pesq=csig_gen, csig=1.0),
        }
        brain.on_stage_end(sb.Stage.VALID, 0.0, epoch + 1)
    for key, epoch in (("generator_pesq", 2), ("generator_csig", 1)):
        found = _checkpoint_file(tmp_path / "save", key, "selection_score")
        meta = (found.parent / "CKPT.yaml").read_text()
        assert found.name == f"{key}.ckpt" and f"epoch: {epoch}" in meta


def tiny_training_set():
    from speechbrain.dataio.dataset import DynamicItemDataset

    dataset = DynamicItemDataset({f"u{i}": {"index": i} for i in range(2)})

    @sb_takes_provides("index", "noisy_sig", "clean_sig")
    def signals(index):
        generator = torch.Generator().manual_seed(index)
        clean = torch.randn(2048, generator=generator) * 0.1
        yield clean + 0.05 * torch.randn(2048, generator=generator)
        yield clean

    dataset.add_dynamic_item(signals)
    dataset.set_output_keys(["id", "noisy_sig", "clean_sig"])
    return dataset


def sb_takes_provides(takes, *provides):
    import speechbrain as sb

    def decorate(function):
        return sb.utils.data_pipeline.provides(*provides)(
            sb.utils.data_pipeline.takes(takes)(function)
        )

    return decorate


def test_generator_phase_comes_first_and_starts_at_epoch_2(tmp_path):
    """Official order: (from epoch 2) the generators train, then the
    critic trains on what the updated generators produce."""
    brain, _ = small_brain(
        tmp_path,
        g_opt_class=lambda params: torch.optim.Adam(params, 1e-3),
        d_opt_class=lambda params: torch.optim.Adam(params, 1e-3),
        utterances_per_epoch=2,
    )
    events = []
    brain.discriminator_phase = lambda epoch: events.append(("D", epoch))
    forward, stage_start = brain.compute_forward, brain.on_stage_start

    def recording_forward(batch, stage):
        events.append("G")
        return forward(batch, stage)

    def recording_stage_start(stage, epoch=None):
        events.append(("epoch", epoch))
        return stage_start(stage, epoch)

    brain.compute_forward = recording_forward
    brain.on_stage_start = recording_stage_start
    brain.fit([1, 2], tiny_training_set(), train_loader_kwargs={})
    assert events == [
        ("epoch", 1),
        ("D", 1),  # epoch 1: the critic only
        ("epoch", 2),
        "G",
        "G",
        ("D", 2),  # the critic after the generators
    ]
    assert "loss" in brain.train_stats
    assert brain.generator_phase_skipped(1)
    assert not brain.generator_phase_skipped(2)
    brain.hparams.generator_start_epoch = 1
    assert not brain.generator_phase_skipped(1)


def test_discriminator_examples_and_phase_optimizers(tmp_path):
    brain, _ = small_brain(
        tmp_path,
        g_opt_class=lambda params: torch.optim.Adam(params, 1e-3),
        d_opt_class=lambda params: torch.optim.Adam(params, 1e-3),
    )
    clean = torch.zeros(800)
    example = brain.example(clean, clean, {"pesq": 2.5, "csig": 3.0}, "x")
    assert example.targets.tolist() == [0.5, 0.5]
    assert brain.example(clean, clean, None, "clean").targets.tolist() == [
        1.0,
        1.0,
    ]
    failed = {"pesq": math.nan, "csig": 3.0}
    assert brain.example(clean, clean, failed, "x") is None
    assert brain.example(clean, clean, {"pesq": 2.0}, "x") is None
    brain.init_optimizers()
    assert set(brain.optimizers_dict) == {
        "generator_pesq",
        "generator_csig",
        "discriminator",
    }
    assert set(brain.freeze_optimizers(brain.optimizers_dict)) == {
        "generator_pesq",
        "generator_csig",
    }
    brain.phase = "discriminator"
    assert set(brain.freeze_optimizers(brain.optimizers_dict)) == {
        "discriminator"
    }


def test_brain_rejects_mismatched_modules(tmp_path):
    from speechbrain_kd.brains import OKDMetricGANBrain

    with pytest.raises(ValueError, match="generator_csig"):
        OKDMetricGANBrain(
            modules={
                "generator_pesq": torch.nn.Linear(1, 1),
                "discriminator": MultiMetricDiscriminator(2),
            },
            hparams={"target_metrics": ["pesq", "csig"]},
        )
    with pytest.raises(ValueError, match="n_metrics"):
        OKDMetricGANBrain(
            modules={
                "generator_pesq": torch.nn.Linear(1, 1),
                "discriminator": MultiMetricDiscriminator(3),
            },
            hparams={"target_metrics": ["pesq"]},
        )


def test_generator_stft_pads_with_zeros_as_the_official_code():
    enhancer = SpectralMaskEnhancer(
        MetricGANGenerator(hidden_size=4, linear_size=4)
    )
    wav = torch.randn(1, 4000, generator=torch.Generator().manual_seed(0))
    half = enhancer.n_fft // 2
    first = torch.cat([torch.zeros(half), wav[0, :half]]) * enhancer.window
    expected = torch.fft.rfft(first)
    torch.testing.assert_close(enhancer.spectrum(wav)[0, 0], expected)
    reflect = SpectralMaskEnhancer(
        MetricGANGenerator(hidden_size=4, linear_size=4), pad_mode="reflect"
    )
    assert not torch.allclose(reflect.spectrum(wav)[0, 0], expected)
    with pytest.raises(ValueError, match="pad_mode"):
        SpectralMaskEnhancer(MetricGANGenerator(), pad_mode="edge")


def test_critic_stays_in_training_mode_in_the_generator_phase(tmp_path):
    brain, _ = small_brain(tmp_path)
    critic = brain.modules["discriminator"]
    for phase, option, training in (
        ("generator", False, True),  # the official scheme (default)
        ("discriminator", False, True),
        ("generator", True, False),  # the documented alternative
        ("discriminator", True, True),
    ):
        brain.hparams.critic_eval_in_generator_phase = option
        brain.phase = phase
        critic.train(not training)  # start from the other mode
        brain.on_fit_batch_start(None, True)
        assert critic.training is training, (phase, option)


def test_historical_pass_holds_only_clean_enhanced_pairs():
    from speechbrain_kd.brains.okd_metricgan import (
        DiscriminatorExample,
        discriminator_passes,
    )

    def example(kind):
        zero = torch.zeros(4)
        return DiscriminatorExample(zero, zero, torch.ones(1), kind)

    current = [example(k) for k in ("enhanced", "noisy", "clean") * 2]
    replay = ["h1", "h2", "h3"]
    first, middle, last = discriminator_passes(current, replay)
    assert first == current and last == current
    assert middle[:3] == replay
    assert [e.kind for e in middle[3:]] == ["enhanced", "enhanced"]


def test_nonfinite_discriminator_update_is_skipped_and_named(tmp_path, caplog):
    brain, _ = small_brain(
        tmp_path,
        g_opt_class=lambda params: torch.optim.Adam(params, 1e-3),
        d_opt_class=lambda params: torch.optim.Adam(params, 1e-3),
    )
    brain.init_optimizers()
    brain.modules["discriminator"].train()
    before = {
        k: v.clone()
        for k, v in brain.modules["discriminator"].state_dict().items()
    }
    clean = 0.1 * torch.randn(4000, generator=torch.Generator().manual_seed(0))
    test = clean.clone()
    test[100] = float("nan")
    example = brain.example(clean, test, None, "clean", "u7")
    brain.phase = "discriminator"
    with caplog.at_level(logging.WARNING):
        brain.discriminator_update(example)
    assert "non-finite loss" in caplog.text and "Utterances: u7" in caplog.text
    after = brain.modules["discriminator"].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_nonfinite_generator_output_stays_out_of_the_history(tmp_path, caplog):
    brain, _ = small_brain(tmp_path, metric_jobs=1)
    items = [tiny_training_set()[i] for i in range(2)]
    nan_input = dict(items[1])
    nan_input["noisy_sig"] = torch.full_like(items[1]["noisy_sig"], math.nan)
    history = brain.historical_set
    with caplog.at_level(logging.WARNING):
        brain.write_current_set(3, 0, [items[0], nan_input], history)
    assert "generator_pesq's output for u1 is not finite" in caplog.text
    assert [r.uid for r in history.epoch_records(3)] == ["u0"]
