"""Regression tests of the distilled-student collapse (issue 20).

Cause (measured): a freshly initialised MANNER emits a random-sign
projection of its input; the KD yamls built the teacher first, which gave
their students another (sign-inverted) initialisation than the no-KD
baseline of the same seed, and MANNER's STFT-dominated loss barely sees
the sign, so those students stayed near-silent and sign-inverted. On top,
BatchNorm running statistics (momentum 0.01) lagged far behind the
weights in short runs, so eval-mode outputs were several times too quiet.
"""

import logging

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.utils.epoch_loop import EpochCounter
from speechbrain_kd.brains import EnhanceBrain, KDBrain
from speechbrain_kd.brains.batchnorm import recalibrate_batchnorm
from speechbrain_kd.distill import OutputDistillTerm
from speechbrain_kd.lobes.manner import MANNER
from speechbrain_kd.lobes.rt_senet import RTSENet
from speechbrain_kd.losses import WeightedCleanNoiseLoss
from speechbrain_kd.metrics import EnhancementMetricStats
from speechbrain_kd.recipe import load_hparams_file

SR = 16000
RUN_OPTS = {"device": "cpu", "noprogressbar": True}
REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def speech(shared_data):
    """Two 1-s noisy/clean crops of a real VoiceBank-DEMAND utterance."""
    folder = shared_data / "vbd_16k_25"
    clean, rate = sf.read(folder / "clean" / "p232_003.wav", dtype="float32")
    noisy, _ = sf.read(folder / "noisy" / "p232_003.wav", dtype="float32")
    assert rate == SR
    items = {}
    for index in range(2):
        start = SR // 2 + index * SR
        items[f"s{index}"] = {
            "noisy_sig": torch.from_numpy(noisy[start : start + SR]),
            "clean_sig": torch.from_numpy(clean[start : start + SR]),
        }
    return items


def correlation_and_rms(model, items, train_mode=False):
    """Mean correlation with the clean crops and mean RMS ratio."""
    model.train(train_mode)
    scores = []
    with torch.no_grad():
        for item in items.values():
            out = model(item["noisy_sig"][None])[0].double()
            clean = item["clean_sig"].double()
            out_c, clean_c = out - out.mean(), clean - clean.mean()
            corr = out_c @ clean_c / (out_c.norm() * clean_c.norm())
            rms = out.pow(2).mean().sqrt() / clean.pow(2).mean().sqrt()
            scores.append((float(corr), float(rms)))
    return np.mean(scores, axis=0)


class CleanPlusNoiseTeacher(torch.nn.Module):
    """A fixed teacher: maps each known noisy crop to its clean crop plus
    a little noise (-40 dB re full scale)."""

    def __init__(self, items):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.pairs = [
            (
                item["noisy_sig"],
                item["clean_sig"] + 0.01 * torch.randn(SR, generator=generator),
            )
            for item in items.values()
        ]

    def forward(self, noisy):
        out = []
        for x in noisy:
            (target,) = [t for n, t in self.pairs if torch.equal(n, x)]
            out.append(target)
        return torch.stack(out)


def train_student(items, seed, teacher=None, epochs=16):
    """A MANNER student (6 channels) trained 8 steps per epoch."""
    torch.manual_seed(seed)
    model = MANNER(channels=6, depth=3, attention_layers=[2])
    counter = EpochCounter(epochs)
    data = DynamicItemDataset(
        {f"{k}_{r}": v for r in range(4) for k, v in items.items()},
        output_keys=["id", "noisy_sig", "clean_sig"],
    )
    # Validation only logs; the two distinct crops are enough.
    valid = DynamicItemDataset(
        dict(items), output_keys=["id", "noisy_sig", "clean_sig"]
    )
    hparams = {
        "loss": WeightedCleanNoiseLoss(),
        "epoch_counter": counter,
        "valid_metrics": ["si_sdr"],
    }
    options = {
        "modules": {"model": model},
        "opt_class": lambda params: torch.optim.Adam(params, 3e-3),
        "run_opts": RUN_OPTS,
    }
    if teacher is None:
        brain = EnhanceBrain(hparams=hparams, **options)
    else:
        terms = [OutputDistillTerm(WeightedCleanNoiseLoss())]
        brain = KDBrain(
            hparams={**hparams, "distill_terms": terms},
            teacher=teacher,
            **options,
        )
    brain.fit(
        counter,
        data,
        valid,
        train_loader_kwargs={"batch_size": 2},
        valid_loader_kwargs={"batch_size": 2},
    )
    return model


def test_output_kd_student_learns_like_the_student_without_kd(speech):
    # Seed 0 is a sign-inverted initialisation without output orientation.
    torch.manual_seed(0)
    raw = MANNER(channels=6, depth=3, attention_layers=[2], orient_output=False)
    assert correlation_and_rms(raw, speech, train_mode=True)[0] < -0.2

    alone = train_student(speech, seed=0)
    distilled = train_student(
        speech, seed=0, teacher=CleanPlusNoiseTeacher(speech)
    )
    corr_alone, rms_alone = correlation_and_rms(alone, speech)
    corr_kd, rms_kd = correlation_and_rms(distilled, speech)
    # Before the fix: KD corr -0.3 ... 0.6 and RMS ratio 0.08 (eval mode).
    assert corr_alone > 0.8 and 0.5 < rms_alone < 2.0
    assert corr_kd >= corr_alone - 0.02
    assert 0.5 < rms_kd < 2.0


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: MANNER(channels=12, depth=3, attention_layers=[2], **kw),
        lambda **kw: MANNER(channels=6, depth=4, attention_layers=[3], **kw),
        lambda **kw: RTSENet(channels=12, depth=3, **kw),
    ],
    ids=["manner_s", "manner_d4", "rt_senet_s"],
)
def test_every_initialisation_starts_with_the_speech_sign(speech, make):
    raw, oriented = [], []
    for seed in range(8):
        torch.manual_seed(seed)
        unoriented = make(orient_output=False)
        raw.append(correlation_and_rms(unoriented, speech, train_mode=True))
        torch.manual_seed(seed)
        model = make()
        oriented.append(correlation_and_rms(model, speech, train_mode=True))
        # The probe leaves the global RNG where the unoriented model did.
        after = torch.rand(1)
        torch.manual_seed(seed)
        make(orient_output=False)
        assert torch.equal(after, torch.rand(1))
    raw, oriented = np.array(raw), np.array(oriented)
    assert (raw[:, 0] < -0.1).any()  # the coin flip the orientation removes
    assert (oriented[:, 0] > -0.05).all()
    # Orientation negates the output or leaves it alone, nothing else.
    np.testing.assert_allclose(
        np.abs(oriented[:, 0]), np.abs(raw[:, 0]), atol=1e-6
    )
    np.testing.assert_allclose(oriented[:, 1], raw[:, 1], rtol=1e-5)


def test_kd_and_no_kd_recipes_start_from_the_same_student():
    def student(name, **overrides):
        hparams = load_hparams_file(
            REPO / "hparams" / name, {"data_folder": "unused", **overrides}
        )
        return hparams["model"].state_dict()

    baseline = student("manner_baseline.yaml")
    for name in ("mvat.yaml", "kd_only.yaml", "mvat_no_kd.yaml"):
        kd = student(name, teacher_channels=6)
        assert kd.keys() == baseline.keys()
        for key in kd:
            assert torch.equal(kd[key], baseline[key]), (name, key)


def test_recalibration_sets_exact_batch_averages_and_nothing_else():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Unflatten(1, (1, -1)),
        torch.nn.Conv1d(1, 3, 5),
        torch.nn.BatchNorm1d(3, momentum=0.01),
    )
    data = [{"noisy_sig": torch.randn(64) * (i + 1)} for i in range(5)]
    params = {k: v.clone() for k, v in model.named_parameters()}
    model.eval()
    state = torch.get_rng_state()
    used = recalibrate_batchnorm(
        model, data, lambda b: model(b.noisy_sig.data), batches=2, batch_size=2
    )
    assert used == 2
    assert torch.equal(torch.get_rng_state(), state)  # no random draw
    assert not model.training and model[2].momentum == 0.01
    for key, value in model.named_parameters():
        assert torch.equal(value, params[key])
    with torch.no_grad():
        means, variances = [], []
        for start in (0, 2):
            x = torch.stack([d["noisy_sig"] for d in data[start : start + 2]])
            features = model[1](x[:, None])
            means.append(features.mean(dim=(0, 2)))
            variances.append(features.var(dim=(0, 2), unbiased=True))
    torch.testing.assert_close(model[2].running_mean, sum(means) / 2)
    torch.testing.assert_close(model[2].running_var, sum(variances) / 2)


def test_validation_logs_health_and_warns_on_a_collapsed_output(speech, caplog):
    class Quiet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = torch.nn.Parameter(torch.tensor(-0.05))

        def forward(self, x):
            return self.gain * x

    model = Quiet()
    logged = []

    class Logger:
        def log_stats(self, stats_meta, **stats):
            logged.append(stats)

    counter = EpochCounter(1)
    brain = EnhanceBrain(
        modules={"model": model},
        opt_class=lambda params: torch.optim.SGD(params, 0.0),
        hparams={
            "loss": WeightedCleanNoiseLoss(),
            "epoch_counter": counter,
            "valid_metrics": ["stoi"],
            "train_logger": Logger(),
        },
        run_opts=RUN_OPTS,
    )
    data = DynamicItemDataset(
        dict(speech), output_keys=["id", "noisy_sig", "clean_sig"]
    )
    with caplog.at_level(logging.WARNING):
        brain.fit(counter, data, data, train_loader_kwargs={"batch_size": 1})
    valid = logged[0]["valid_stats"]
    metrics = EnhancementMetricStats(["stoi"])
    for item in speech.values():
        metrics.append(
            ["x"],
            predict=[-0.05 * item["noisy_sig"]],
            target=[item["clean_sig"]],
        )
    expected = metrics.summarize()
    assert valid["collapsed_files"] == 1.0
    assert valid["rms_ratio"] == pytest.approx(expected["rms_ratio"])
    assert valid["si_sdr_median"] == pytest.approx(expected["si_sdr_median"])
    warnings = [r.getMessage() for r in caplog.records]
    assert any(
        "valid, epoch 1: the output collapsed on 100% of 2 files" in w
        for w in warnings
    ), warnings


@pytest.mark.parametrize("value", [-1, 2.5, "many", True])
def test_bad_recalibration_setting_is_a_clear_error(value):
    brain = EnhanceBrain(
        modules={"model": torch.nn.BatchNorm1d(1)},
        hparams={
            "loss": WeightedCleanNoiseLoss(),
            "bn_recalibration_batches": value,
        },
        run_opts=RUN_OPTS,
    )
    brain.recalibration_data = ([], 1)
    with pytest.raises(ValueError, match="bn_recalibration_batches"):
        brain.recalibrate_batchnorm()
