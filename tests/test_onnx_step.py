"""ONNX streaming steps with exposed state: an ONNX Runtime stream of
random piece sizes equals the PyTorch output within 1e-4."""

import json
import pathlib
import random

import numpy as np
import pytest
import torch
from hyperpyyaml import load_hyperpyyaml

from speechbrain_kd.lobes.full_band import FullBandNet
from speechbrain_kd.lobes.metricgan import (
    MetricGANGenerator,
    SpectralMaskEnhancer,
)
from speechbrain_kd.pretrained.onnx_step import (
    STATE_FILE,
    OnnxStreamer,
    export_onnx_step,
)

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = pathlib.Path(__file__).resolve().parents[1]


def preset(name):
    """A model preset of ``hparams/models`` (random weights)."""
    with open(REPO / "hparams" / "models" / f"{name}.yaml") as stream:
        return load_hyperpyyaml(stream)["model"]


MODELS = {
    **{
        size: (lambda size=size: preset(size))
        for size in ("rt_senet_s", "rt_senet_m", "rt_senet_l")
    },
    "full_band": lambda: FullBandNet(channels=(8, 8), hidden=16),
    "metricgan_causal": lambda: SpectralMaskEnhancer(
        MetricGANGenerator(bidirectional=False, hidden_size=16, linear_size=24)
    ),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_stream_equals_pytorch(name, tmp_path):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    export_onnx_step(model, tmp_path, block_hops=2)
    layout = json.loads((tmp_path / STATE_FILE).read_text())
    state = model.init_state(1)
    assert [e["name"] for e in layout["state"]] == list(state)
    assert [e["shape"] for e in layout["state"]] == [
        list(v.shape) for v in state.values()
    ]
    assert layout["block"] == 2 * model.hop
    rate = getattr(model, "sample_rate", 16000)
    x = 0.1 * torch.randn(rate // 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        offline = (
            model.forward_causal(x[None])
            if hasattr(model, "forward_causal")
            else model(x[None])
        )[0].numpy()
    streamer = OnnxStreamer(tmp_path)
    sizes = random.Random(0)
    pieces, start = [], 0
    while start < x.shape[0]:
        size = sizes.choice([1, 13, model.hop, 3 * model.hop + 5, 2000])
        pieces.append(streamer.process(x[start : start + size].numpy()))
        start += size
    pieces.append(streamer.flush())
    out = np.concatenate(pieces)
    assert out.shape == offline.shape
    assert np.abs(out - offline).max() < 1e-4
    assert streamer.latency_ms == pytest.approx(
        model.latency_ms(rate) + model.hop * 1000 / rate
    )


def test_an_offline_model_is_refused(tmp_path):
    from speechbrain_kd.lobes.manner import MANNER

    with pytest.raises(ValueError, match="step API"):
        export_onnx_step(
            MANNER(channels=4, depth=2, attention_layers=()), tmp_path
        )


def test_export_command_writes_the_step_of_a_trained_causal_student(
    recipe_runs, tmp_path
):
    from speechbrain_kd.cli import main
    from speechbrain_kd.pretrained import KDEnhancement

    run = recipe_runs("hparams/cnnc.yaml").run  # RT-SENet-S student
    out = tmp_path / "exported"
    command = [
        "export",
        "--hparams",
        str(run / "hyperparams.yaml"),
        "--checkpoint",
        str(run),
        "--output",
        str(out),
        "--onnx",
        "--onnx-block-hops",
        "8",
    ]
    assert main(command) == 0
    layout = json.loads((out / STATE_FILE).read_text())
    assert layout["block"] == 8 * 64 and layout["latency_ms"] == 32.0
    model = KDEnhancement.from_hparams(
        source=str(out), savedir=str(tmp_path / "collected")
    ).model
    x = 0.1 * torch.randn(16000, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        offline = model(x[None])[0].numpy()
    streamer = OnnxStreamer(out)
    out_audio = np.concatenate(
        [streamer.process(x[:7000].numpy()), streamer.process(x[7000:].numpy())]
        + [streamer.flush()]
    )
    assert np.abs(out_audio - offline).max() < 1e-4


def test_export_command_writes_the_step_of_the_causal_metricgan_generator(
    recipe_runs, tmp_path
):
    from speechbrain_kd.cli import main
    from speechbrain_kd.pretrained import KDEnhancement

    run = recipe_runs("hparams/okd_causal.yaml").run
    out = tmp_path / "exported"
    command = [
        "export",
        "--hparams",
        str(run / "hyperparams.yaml"),
        "--checkpoint",
        str(run),
        "--key",
        "generator_pesq",
        "--output",
        str(out),
        "--onnx",
    ]
    assert main(command) == 0
    layout = json.loads((out / STATE_FILE).read_text())
    assert layout["block"] == 256 and layout["latency_ms"] == 32.0
    assert [e["name"] for e in layout["state"]] == [
        "input",
        "tail",
        "generator.h",
        "generator.c",
    ]
    model = KDEnhancement.from_hparams(
        source=str(out), savedir=str(tmp_path / "collected")
    ).model
    x = 0.1 * torch.randn(16000, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        causal = model.forward_causal(x[None])[0].numpy()
    streamer = OnnxStreamer(out)
    streamed = np.concatenate(
        [streamer.process(x[:5001].numpy()), streamer.process(x[5001:].numpy())]
        + [streamer.flush()]
    )
    assert np.abs(streamed - causal).max() < 1e-4
