"""Model profiling: exact parameter and MAC counts, RTF, memory, the CLI."""

import json

import pytest
import torch
from torch import nn

from speechbrain_kd.cli import main
from speechbrain_kd.profiling import (
    FLOPS_CONVENTION,
    count_macs,
    count_parameters,
    load_module_from_hparams,
    make_example_input,
    measure_rtf,
    peak_memory,
    profile_model,
)

# --------------------------------------------------------------- helpers


class WaveformConv(nn.Module):
    """[batch, time] -> [batch, 3, time]: one Conv1d(1, 3, 5) on samples."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 3, kernel_size=5, padding=2)

    def forward(self, wav):
        return self.conv(wav.unsqueeze(1))


class SpectralLinear(nn.Module):
    """Takes (features [1, 16, frames], lengths): 100 frames per second."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(16, 8)

    def example_input(self, seconds, sample_rate):
        frames = round(seconds * 100)
        return torch.zeros(1, 16, frames), torch.ones(1)

    def forward(self, feats, lengths):
        return self.proj(feats.transpose(1, 2)) * lengths


class GlobalAttention(nn.Module):
    """Frame-by-frame similarity: cost quadratic in the input length."""

    input_signature = None  # set per instance in the test

    def forward(self, frames):
        return frames @ frames.transpose(1, 2)


class ModeProbe(nn.Module):
    """Records whether it ran in training mode."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 2)
        self.seen = []

    def forward(self, x):
        self.seen.append(self.training)
        return self.linear(x)


# ------------------------------------------------------------ parameters


def test_parameter_counts_equal_numel_sums_and_skip_frozen():
    model = nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Linear(10, 7))
    expected = sum(p.numel() for p in model.parameters())
    assert expected == (4 * 3 + 4) + (10 * 7 + 7)
    assert count_parameters(model) == {"total": 93, "trainable": 93}
    model[0].requires_grad_(False)
    assert count_parameters(model) == {"total": 93, "trainable": 77}


def test_shared_parameters_are_counted_once():
    first, second = nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False)
    second.weight = first.weight  # tied weights
    model = nn.Sequential(first, second, first)
    assert count_parameters(model) == {"total": 16, "trainable": 16}


# ------------------------------------------------------------------ MACs


def test_macs_of_a_conv_stack_equal_the_hand_count():
    model = nn.Sequential(
        nn.Conv1d(1, 4, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv1d(4, 2, kernel_size=5, padding=2),
    )
    # out positions x out channels x in channels x kernel, per conv
    assert count_macs(model, torch.zeros(1, 1, 100)) == (
        100 * 4 * 1 * 3 + 100 * 2 * 4 * 5
    )


@pytest.mark.parametrize("bias", [True, False])
def test_macs_of_a_linear_layer(bias):
    # addmm (with bias) and mm (without) alike; bias adds are not counted
    layer = nn.Linear(10, 7, bias=bias)
    assert count_macs(layer, torch.zeros(1, 3, 10)) == 3 * 7 * 10


def test_macs_of_2d_and_grouped_convolutions():
    conv2d = nn.Conv2d(2, 3, kernel_size=3, padding=1)
    assert count_macs(conv2d, torch.zeros(1, 2, 8, 8)) == 8 * 8 * 3 * 2 * 9
    grouped = nn.Conv1d(4, 6, kernel_size=3, groups=2)  # 8 out positions
    assert count_macs(grouped, torch.zeros(1, 4, 10)) == 8 * 6 * (4 // 2) * 3


def test_macs_of_transposed_convolutions():
    # Every input position scatters in_ch x out_ch/groups x kernel MACs.
    up = nn.ConvTranspose1d(3, 2, kernel_size=4, stride=2)
    assert count_macs(up, torch.zeros(1, 3, 10)) == 10 * 3 * 2 * 4
    grouped = nn.ConvTranspose1d(4, 6, kernel_size=4, stride=2, groups=2)
    assert count_macs(grouped, torch.zeros(1, 4, 10)) == 10 * 4 * 3 * 4


def test_macs_of_recurrent_layers_are_counted_on_cpu():
    # Per time step and direction, an LSTM layer multiplies the input and
    # the previous hidden state by its 4 gate matrices: 4 H (I + H) MACs.
    steps, inputs, hidden = 10, 5, 4
    lstm = nn.LSTM(inputs, hidden)
    x = torch.zeros(steps, 1, inputs)
    assert count_macs(lstm, x) == 4 * hidden * (inputs + hidden) * steps
    assert count_macs(lstm, x) == 1440
    assert torch.backends.mkldnn.enabled  # oneDNN switched back on
    deep = nn.LSTM(inputs, hidden, num_layers=2, bidirectional=True)
    layer1 = 2 * 4 * hidden * (inputs + hidden) * steps
    layer2 = 2 * 4 * hidden * (2 * hidden + hidden) * steps
    assert count_macs(deep, x) == layer1 + layer2 == 6720
    gru = nn.GRU(inputs, hidden, batch_first=True)  # 3 gates
    gru_input = torch.zeros(1, steps, inputs)
    assert count_macs(gru, gru_input) == 3 * hidden * (inputs + hidden) * 10


def test_macs_of_attention_despite_fused_kernels():
    # In eval mode under no_grad, batch-first MultiheadAttention takes a
    # fused fast path that a plain FlopCounterMode counts as zero.
    embed, heads, length = 8, 2, 5
    attention = nn.MultiheadAttention(embed, heads, batch_first=True)
    x = torch.zeros(1, length, embed)

    class SelfAttention(nn.Module):
        def forward(self, x):
            return attention(x, x, x, need_weights=False)[0]

    projections = 4 * length * embed * embed  # q, k, v and output
    scores = 2 * heads * length * length * (embed // heads)  # QK^T, AV
    assert count_macs(SelfAttention(), x) == projections + scores == 1680
    assert torch.backends.mha.get_fastpath_enabled()

    class Sdpa(nn.Module):
        def forward(self, q):
            return nn.functional.scaled_dot_product_attention(q, q, q)

    q = torch.zeros(1, heads, length, 4)
    assert count_macs(Sdpa(), q) == 2 * heads * length * length * 4


def test_count_macs_runs_in_eval_mode_and_restores_modes():
    probe = ModeProbe()
    model = nn.Sequential(probe, nn.Dropout(0.5))
    model.train()
    model[1].eval()  # mixed modes are restored one by one
    count_macs(model, torch.zeros(3, 2))
    assert probe.seen == [False]
    assert model.training and probe.training and not model[1].training


# ----------------------------------------------------- input signatures


def test_default_example_input_is_a_batch_of_one_waveform():
    wav = make_example_input(nn.Identity(), 0.25, sample_rate=8000)
    assert wav.shape == (1, 2000) and wav.dtype == torch.float32
    assert torch.equal(wav, make_example_input(nn.Identity(), 0.25, 8000))
    with pytest.raises(ValueError, match="positive"):
        make_example_input(nn.Identity(), 0, 8000)


def test_profile_of_a_waveform_model():
    report = profile_model(
        WaveformConv(), seconds=0.5, sample_rate=8000, warmup=1, repeats=2
    )
    assert report["input_shape"] == [1, 4000]
    assert report["params_total"] == report["params_trainable"] == 3 * 5 + 3
    assert report["macs_per_second"] == 8000 * 3 * 5
    assert report["macs_per_input"] == 4000 * 3 * 5
    assert report["gmacs_per_second"] == pytest.approx(120_000 / 1e9)
    assert report["flops_convention"] == FLOPS_CONVENTION
    assert report["flops_convention"] == "FLOPs = 2 x MACs"
    assert report["threads"] == 1 and report["device"] == "cpu"
    assert report["rtf"] > 0 and len(report["forward_times_s"]) == 2
    assert report["peak_memory_bytes"] >= 4000 * 3 * 4  # the output
    json.dumps(report)  # JSON-ready as it is
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            profile_model(WaveformConv(), seconds=0.1, device="cuda")


def test_profile_of_a_model_declaring_its_example_input():
    report = profile_model(SpectralLinear(), seconds=2, warmup=0, repeats=1)
    assert report["input_shape"] == [[1, 16, 200], [1]]
    assert report["macs_per_second"] == 100 * 16 * 8
    assert report["macs_per_input"] == 200 * 16 * 8


def test_cost_not_linear_in_length_is_reported_per_input():
    model = GlobalAttention()
    model.input_signature = lambda seconds, sample_rate: torch.zeros(
        1, round(10 * seconds), 8
    )
    report = profile_model(model, seconds=3, warmup=0, repeats=1)
    assert report["macs_per_second"] == 10 * 10 * 8
    assert report["macs_per_input"] == 30 * 30 * 8  # 9x, not 3x
    model.input_signature = "frames"
    with pytest.raises(ValueError, match="callable"):
        make_example_input(model, 1.0)


# ------------------------------------------------------- RTF and memory


def test_measure_rtf_reports_positive_times_and_restores_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        result = measure_rtf(
            WaveformConv(), torch.zeros(1, 1600), 0.1, threads=1, repeats=3
        )
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    assert result["threads"] == 1 and result["audio_seconds"] == 0.1
    assert len(result["times_s"]) == 3
    assert all(t > 0 for t in result["times_s"])
    assert 0 < result["min_s"] <= result["median_s"]
    assert result["rtf"] == pytest.approx(result["median_s"] / 0.1)
    assert result["rtf_min"] == pytest.approx(result["min_s"] / 0.1)
    with pytest.raises(ValueError):
        measure_rtf(WaveformConv(), torch.zeros(1, 16), 0.0)


class ChainOfExp(nn.Module):
    def __init__(self, free_first):
        super().__init__()
        self.free_first = free_first

    def forward(self, x):
        a = x.exp()
        b = a.exp()
        if self.free_first:
            del a
        return b.exp()


def test_peak_memory_replays_allocations_and_frees():
    x = torch.zeros(1, 1000)  # 4000 bytes per float32 copy
    assert peak_memory(ChainOfExp(free_first=False), x) == 3 * 4000
    assert peak_memory(ChainOfExp(free_first=True), x) == 2 * 4000
    assert peak_memory(nn.Identity(), x) == 0
    # Weights allocated before the pass are not part of it: 10 outputs.
    assert peak_memory(nn.Linear(1000, 10), x) == 10 * 4


# ---------------------------------------------------------- hparams + CLI

HPARAMS = """\
channels: 4
model: !new:torch.nn.Sequential
    - !new:torch.nn.Unflatten [1, [1, -1]]
    - !new:torch.nn.Conv1d
        in_channels: 1
        out_channels: !ref <channels>
        kernel_size: 3
        padding: 1
    - !new:torch.nn.ReLU
    - !new:torch.nn.Conv1d
        in_channels: !ref <channels>
        out_channels: 2
        kernel_size: 5
        padding: 2
other: !new:torch.nn.Linear [3, 2]
modules:
    enhancer: !ref <model>
lr: 0.1
"""


@pytest.fixture
def hparams_file(tmp_path):
    path = tmp_path / "hparams.yaml"
    path.write_text(HPARAMS)
    return path


def test_load_module_from_hparams(hparams_file, tmp_path):
    model = load_module_from_hparams(hparams_file)
    assert isinstance(model, nn.Sequential)
    assert load_module_from_hparams(hparams_file, "modules.enhancer")[1]
    wider = load_module_from_hparams(hparams_file, overrides="channels: 8")
    assert wider[1].out_channels == 8
    with pytest.raises(ValueError, match="keys holding a torch.nn.Module: "):
        load_module_from_hparams(hparams_file, key="generator")
    with pytest.raises(ValueError, match="float, not a torch.nn.Module"):
        load_module_from_hparams(hparams_file, key="lr")
    missing = tmp_path / "absent.yaml"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        load_module_from_hparams(missing)


@pytest.mark.parametrize("seconds", [1, 2])
def test_cli_profile_writes_exact_counts(
    hparams_file, tmp_path, capsys, seconds
):
    out = tmp_path / "reports" / "profile.json"
    status = main(
        [
            "profile",
            str(hparams_file),
            "--seconds",
            str(seconds),
            "--json",
            str(out),
            "--warmup",
            "0",
            "--repeats",
            "2",
        ]
    )
    assert status == 0
    report = json.loads(out.read_text())
    assert report["params_total"] == (1 * 4 * 3 + 4) + (4 * 2 * 5 + 2) == 58
    assert report["params_trainable"] == 58
    per_sample = 4 * 1 * 3 + 2 * 4 * 5  # both convs keep the length
    assert report["macs_per_second"] == 16000 * per_sample == 832_000
    assert report["macs_per_input"] == 16000 * seconds * per_sample
    assert report["input_shape"] == [1, 16000 * seconds]
    assert report["key"] == "model" and report["threads"] == 1
    printed = capsys.readouterr().out
    assert "58 total, 58 trainable" in printed
    assert "(832,000)" in printed
    assert "FLOPs = 2 × MACs" in printed
    assert f"1 thread, {seconds} s input" in printed
    assert "MiB" in printed


def test_cli_profile_overrides_and_unknown_key(hparams_file, tmp_path, capsys):
    out = tmp_path / "wide.json"
    args = ["profile", str(hparams_file), "--seconds", "1", "--repeats", "1"]
    status = main(args + ["--overrides", "{channels: 8}", "--json", str(out)])
    assert status == 0
    assert json.loads(out.read_text())["params_total"] == 32 + 82
    capsys.readouterr()
    assert main(args + ["--key", "generator"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("speechbrain-kd: error: no key 'generator'")
    assert "model, other, modules.enhancer" in err


def test_recipe_yaml_with_placeholders_profiles_a_metricgan_generator():
    """A training recipe's data folders are filled in for profiling; the
    generator's MACs equal the hand count (BLSTM 2 x 200 + two linears
    per frame, 63 frames in 1 s at hop 256)."""
    import pathlib

    recipe = pathlib.Path(__file__).resolve().parents[1] / "hparams"
    generator = load_module_from_hparams(
        recipe / "okd.yaml", key="generator_pesq"
    )
    per_frame = (
        2 * 4 * 200 * (257 + 200)  # layer 1, both directions
        + 2 * 4 * 200 * (400 + 200)  # layer 2
        + 400 * 300
        + 300 * 257
    )
    assert count_macs(generator, torch.zeros(1, 16000)) == 63 * per_frame
