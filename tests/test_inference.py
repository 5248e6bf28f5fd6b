"""Tests of pretrained inference (``KDEnhancement``) and ``enhance``.

Every test loads a tiny MANNER (channels=6, depth=2, attention_layers=[1])
from a hub-style folder built here, offline (``HF_HUB_OFFLINE=1``).

Chunking tolerance (measured on this model, seed 0, 60 s of a modulated
tone plus noise, chunks of 4 s with 0.5-s overlap against one unchunked
pass): max abs difference 4.0e-4 for an output peak of 0.028, SNR of the
chunked output against the unchunked one 39.7 dB (10-s chunks, 1-s
overlap: 3.5e-5, 67 dB). Asserted: SNR > 20 dB and max abs difference
below 5 % of the output peak. Exact equality is impossible: MANNER
normalises by the std of its whole input and its attention has a global
view; inputs of at most one chunk are compared exactly (< 1e-5).

Peak memory (``speechbrain_kd.profiling.peak_memory``, PyTorch CPU
allocator) of enhancing 60 s: unchunked 137 MiB, 4-s chunks 21 MiB; one
4-s model pass alone 9.2 MiB. Asserted bound for the chunked pass: one
chunk's model peak plus 5 float32 signal-length buffers (input copy,
output, weight sum, batch output, slack), and below half the unchunked
peak.
"""

import json
import math
import pathlib

import numpy as np
import pytest
import soundfile
import torch

from speechbrain_kd.audio import write_wav
from speechbrain_kd.cli import main
from speechbrain_kd.lobes.manner import MANNER
from speechbrain_kd.pretrained import KDEnhancement, ModelLoadError
from speechbrain_kd.pretrained.chunking import chunk_starts, crossfade_weights
from speechbrain_kd.pretrained.folder import INTERFACE_CONFIG
from speechbrain_kd.profiling import peak_memory

RATE = 16000
HPARAMS = """\
sample_rate: 16000
chunk_seconds: 10.0
overlap_seconds: 1.0
enhance_model: !new:speechbrain_kd.lobes.manner.MANNER
    channels: 6
    depth: 2
    attention_layers: [1]
modules:
    enhance_model: !ref <enhance_model>
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        enhance_model: !ref <enhance_model>
"""


def tiny_model():
    """The small MANNER of the test folders (fixed seed)."""
    torch.manual_seed(0)
    return MANNER(channels=6, depth=2, attention_layers=[1]).eval()


def make_hub_folder(folder, state_dict=None, with_ckpt=True):
    """Writes a hub-style model folder; returns (folder, model)."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = tiny_model()
    if with_ckpt:
        torch.save(
            model.state_dict() if state_dict is None else state_dict,
            folder / "enhance_model.ckpt",
        )
    (folder / "hyperparams.yaml").write_text(HPARAMS)
    config = {**INTERFACE_CONFIG, "sample_rate": RATE}
    (folder / "config.json").write_text(json.dumps(config))
    return folder, model


def test_signal(seconds, seed=1):
    """A modulated tone plus noise, [1, time]."""
    generator = torch.Generator().manual_seed(seed)
    n = round(seconds * RATE)
    t = torch.arange(n) / RATE
    envelope = 0.5 + 0.5 * torch.sin(2 * math.pi * 0.7 * t) ** 2
    tone = torch.sin(2 * math.pi * 220 * t + 3 * torch.sin(2 * math.pi * 3 * t))
    noise = torch.randn(n, generator=generator)
    return (0.3 * envelope * tone + 0.05 * noise).unsqueeze(0)


test_signal.__test__ = False  # not a test


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A good model folder, its model, and the loaded interface."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        root = tmp_path_factory.mktemp("hub")
        folder, model = make_hub_folder(root / "model")
        enhancer = KDEnhancement.from_hparams(
            source=str(folder),
            savedir=str(root / "collected"),
            run_opts={"device": "cpu"},
        )
    return folder, model, enhancer


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def write(path, data, rate=RATE, subtype=None):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.asarray(data), rate, subtype=subtype)
    return path


# Loading --------------------------------------------------------------------


def test_loads_parameters_and_config(hub):
    folder, model, enhancer = hub
    loaded = enhancer.model.state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(loaded[key], value), key
    assert not enhancer.model.training
    assert enhancer.sample_rate == RATE
    assert enhancer.chunk_seconds == 10.0
    config = json.loads((folder / "config.json").read_text())
    assert config["speechbrain_interface"] == "KDEnhancement"


def test_missing_checkpoint(tmp_path):
    folder, _ = make_hub_folder(tmp_path / "m", with_ckpt=False)
    with pytest.raises(FileNotFoundError, match="enhance_model.ckpt"):
        KDEnhancement.from_hparams(str(folder), savedir=str(tmp_path / "c"))


def test_unexpected_keys(tmp_path):
    state = tiny_model().state_dict()
    state["in_conv.extra"] = torch.zeros(2)
    state["renamed.weight"] = state.pop("out_conv.weight")
    folder, _ = make_hub_folder(tmp_path / "m", state_dict=state)
    with pytest.raises(ModelLoadError) as info:
        KDEnhancement.from_hparams(str(folder), savedir=str(tmp_path / "c"))
    message = str(info.value)
    assert "unexpected keys" in message and "'renamed.weight'" in message
    assert "'in_conv.extra'" in message
    assert "missing keys ['out_conv.weight']" in message
    assert "enhance_model.ckpt" in message


def test_missing_keys(tmp_path):
    state = tiny_model().state_dict()
    del state["out_conv.bias"]
    folder, _ = make_hub_folder(tmp_path / "m", state_dict=state)
    with pytest.raises(ModelLoadError) as info:
        KDEnhancement.from_hparams(str(folder), savedir=str(tmp_path / "c"))
    assert "missing keys ['out_conv.bias']" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_wrong_shapes(tmp_path):
    state = tiny_model().state_dict()
    state["out_conv.weight"] = torch.zeros(1, 6, 5)
    folder, _ = make_hub_folder(tmp_path / "m", state_dict=state)
    with pytest.raises(ModelLoadError) as info:
        KDEnhancement.from_hparams(str(folder), savedir=str(tmp_path / "c"))
    assert "size mismatch for out_conv.weight" in str(info.value)
    assert "enhance_model.ckpt" in str(info.value)


def test_nonexistent_local_source(tmp_path, monkeypatch):
    import huggingface_hub

    def no_hub(*args, **kwargs):
        raise AssertionError("the hub was queried")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_hub)
    missing = tmp_path / "no" / "such_model"
    with pytest.raises(FileNotFoundError) as info:
        KDEnhancement.from_hparams(str(missing), savedir=str(tmp_path / "c"))
    assert str(missing) in str(info.value)
    assert "does not exist" in str(info.value)


# Enhancement ----------------------------------------------------------------


def test_enhance_batch_equals_model(hub):
    _, model, enhancer = hub
    noisy = test_signal(2.0).repeat(3, 1) * torch.tensor([[1.0], [0.5], [2]])
    with torch.no_grad():
        expected = model(noisy)
    enhanced = enhancer.enhance_batch(noisy)
    assert enhanced.device.type == "cpu"
    assert enhanced.shape == noisy.shape
    assert (enhanced - expected).abs().max() < 1e-5
    assert torch.equal(enhancer(noisy), enhanced)


def test_enhance_batch_relative_lengths(hub):
    _, model, enhancer = hub
    noisy = torch.cat([test_signal(1.0), test_signal(1.0, seed=2)])
    enhanced = enhancer.enhance_batch(noisy, lengths=torch.tensor([1.0, 0.5]))
    with torch.no_grad():
        first = model(noisy[:1])
        half = model(noisy[1:, :8000])
    assert (enhanced[:1] - first).abs().max() < 1e-5
    assert (enhanced[1, :8000] - half[0]).abs().max() < 1e-5
    assert torch.all(enhanced[1, 8000:] == 0)


def test_chunked_matches_unchunked(hub):
    """60 s with 4-s chunks (0.5-s overlap) against one pass."""
    _, model, enhancer = hub
    noisy = test_signal(60.0)
    with torch.no_grad():
        full = model(noisy)
    chunked = enhancer.enhance_batch(
        noisy, chunk_seconds=4, overlap_seconds=0.5
    )
    error = chunked - full
    snr = 10 * torch.log10(full.pow(2).sum() / error.pow(2).sum())
    assert snr > 20, f"chunked vs unchunked SNR {snr:.1f} dB"
    assert error.abs().max() < 0.05 * full.abs().max()


def test_one_chunk_is_exact(hub):
    _, model, enhancer = hub
    noisy = test_signal(4.0)
    with torch.no_grad():
        expected = model(noisy)
    enhanced = enhancer.enhance_batch(noisy, chunk_seconds=4)
    assert (enhanced - expected).abs().max() < 1e-5


def test_crossfade_weights_sum_to_one():
    total, chunk, overlap = 1000, 300, 40
    starts = chunk_starts(total, chunk, overlap)
    assert starts[0] == 0 and starts[-1] + chunk == total
    weight_sum = torch.zeros(total)
    for i, start in enumerate(starts):
        fade_in = starts[i - 1] + chunk - start if i else 0
        fade_out = start + chunk - starts[i + 1] if i + 1 < len(starts) else 0
        assert min(fade_in or overlap, fade_out or overlap) >= overlap
        weights = crossfade_weights(chunk, fade_in, fade_out)
        weight_sum[start : start + chunk] += weights
    assert torch.allclose(weight_sum, torch.ones(total))


def test_chunked_memory_is_bounded(hub):
    _, _, enhancer = hub
    noisy = test_signal(60.0)

    class Enhance(torch.nn.Module):
        def __init__(self, chunk_seconds):
            super().__init__()
            self.chunk_seconds = chunk_seconds

        def forward(self, x):
            return enhancer.enhance_batch(
                x, chunk_seconds=self.chunk_seconds, overlap_seconds=0.5
            )

    unchunked = peak_memory(Enhance(61), noisy)
    chunked = peak_memory(Enhance(4), noisy)
    one_chunk = peak_memory(enhancer.model, noisy[:, : 4 * RATE])
    bound = one_chunk + 5 * 4 * noisy.shape[-1]
    assert chunked < bound, (chunked, bound)
    assert chunked < unchunked / 2, (chunked, unchunked)


def test_empty_input(hub, tmp_path):
    _, _, enhancer = hub
    with pytest.raises(ValueError, match="0 samples"):
        enhancer.enhance_batch(torch.zeros(1, 0))
    path = write(tmp_path / "empty.wav", np.zeros(0, dtype="float32"))
    with pytest.raises(ValueError, match="empty.wav"):
        enhancer.enhance_file(path)


def test_unreadable_audio(hub, tmp_path):
    _, _, enhancer = hub
    path = tmp_path / "garbage.wav"
    path.write_bytes(b"this is not audio" * 50)
    with pytest.raises(ValueError, match="cannot read audio file .*garbage"):
        enhancer.enhance_file(path)
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        enhancer.enhance_file(tmp_path / "missing.wav")


def test_8khz_input(hub, tmp_path):
    _, _, enhancer = hub
    n = 8000
    path = write(tmp_path / "in8k.wav", test_signal(1.0)[0, ::2].numpy(), 8000)
    out = tmp_path / "out" / "e.wav"
    enhanced = enhancer.enhance_file(path, out)
    assert abs(enhanced.shape[0] - n * 2) <= 1
    info = soundfile.info(str(out))
    assert info.samplerate == RATE and info.subtype == "PCM_16"
    assert info.frames == enhanced.shape[0]
    kept = enhancer.enhance_file(path, tmp_path / "k.wav", keep_rate=True)
    assert kept.shape[0] == n
    info = soundfile.info(str(tmp_path / "k.wav"))
    assert (info.samplerate, info.frames) == (8000, n)


def test_stereo_input_is_downmixed(hub, tmp_path):
    _, _, enhancer = hub
    left, right = test_signal(1.0)[0], test_signal(1.0, seed=3)[0]
    stereo = torch.stack([left, right], dim=1).numpy()
    path = write(tmp_path / "stereo.wav", stereo, subtype="FLOAT")
    enhanced = enhancer.enhance_file(path)
    expected = enhancer.enhance_batch(((left + right) / 2).unsqueeze(0))[0]
    assert enhanced.dim() == 1
    assert (enhanced - expected).abs().max() < 1e-5


# Command line ---------------------------------------------------------------


def test_cli_enhance(hub, tmp_path, capsys):
    folder, _, _ = hub
    inputs = tmp_path / "in"
    write(inputs / "a.wav", test_signal(0.5)[0].numpy())
    write(inputs / "sub" / "b.flac", test_signal(0.5, seed=2)[0].numpy())
    (inputs / "bad.wav").write_bytes(b"garbage" * 100)
    write(inputs / "empty.wav", np.zeros(0, dtype="float32"))
    out = tmp_path / "out"
    code = main(
        [
            "enhance",
            "--source",
            str(folder),
            str(inputs),
            "--output-dir",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert (out / "a.wav").is_file()
    assert (out / "sub" / "b.wav").is_file()
    assert not (out / "bad.wav").exists() and not (out / "empty.wav").exists()
    assert "2 file(s) written" in captured.out and "2 failed" in captured.out
    assert "bad.wav: cannot read audio file" in captured.err
    assert "empty.wav" in captured.err and "0 samples" in captured.err
    assert soundfile.info(str(out / "a.wav")).frames == 8000

    code = main(
        [
            "enhance",
            "--source",
            str(folder),
            str(inputs / "a.wav"),
            "--output-dir",
            str(tmp_path / "out2"),
            "--keep-rate",
        ]
    )
    assert code == 0 and (tmp_path / "out2" / "a.wav").is_file()


def test_cli_missing_source(tmp_path, capsys):
    missing = tmp_path / "nope"
    write(tmp_path / "in" / "a.wav", test_signal(0.1)[0].numpy())
    out = str(tmp_path / "out")
    code = main(
        [
            "enhance",
            "--source",
            str(missing),
            str(tmp_path / "in"),
            "--output-dir",
            out,
        ]
    )
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


RT_HPARAMS = """\
sample_rate: 16000
enhance_model: !new:speechbrain_kd.lobes.rt_senet.RTSENet
    channels: 6
    depth: 2
    attention_layers: [1]
modules:
    enhance_model: !ref <enhance_model>
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        enhance_model: !ref <enhance_model>
"""


@pytest.mark.parametrize("compiled", [False, True])
def test_enhance_streaming_cli_equals_offline(tmp_path, compiled):
    from speechbrain_kd.lobes.rt_senet import RTSENet

    torch.manual_seed(0)
    model = RTSENet(channels=6, depth=2, attention_layers=[1]).eval()
    folder = tmp_path / "rt_model"
    folder.mkdir()
    torch.save(model.state_dict(), folder / "enhance_model.ckpt")
    (folder / "hyperparams.yaml").write_text(RT_HPARAMS)
    (folder / "config.json").write_text(json.dumps(INTERFACE_CONFIG))
    noisy = test_signal(1.3)[0]
    write(tmp_path / "in" / "a.wav", noisy.numpy(), subtype="FLOAT")
    status = main(
        [
            "enhance",
            "--source",
            str(folder),
            str(tmp_path / "in"),
            "--output-dir",
            str(tmp_path / "out"),
            "--streaming",
            "--block-hops",
            "3",
        ]
        + (["--compile"] if compiled else [])
    )
    assert status == 0
    streamed, rate = soundfile.read(tmp_path / "out" / "a.wav")
    with torch.no_grad():
        offline = model(noisy[None])[0].numpy()
    assert rate == RATE and streamed.shape == offline.shape
    # the file is 16-bit: compare at the quantisation step
    assert np.abs(streamed - np.clip(offline, -1, 1)).max() <= 1.0 / 32768


def test_streaming_needs_a_step_api(hub):
    from speechbrain_kd.pretrained import StreamingEnhancer

    _, _, enhancer = hub
    with pytest.raises(ValueError, match="step API"):
        StreamingEnhancer(enhancer)


# Non-finite and degenerate inputs (issue 18) ---------------------------------


def test_cli_enhance_counts_nonfinite_input_as_failed(hub, tmp_path, capsys):
    """A NaN sample used to give full-scale DC and "0 failed"."""
    folder, _, _ = hub
    inputs = tmp_path / "in"
    write(inputs / "good.wav", test_signal(0.5)[0].numpy())
    spoilt = test_signal(0.5, seed=3)[0].numpy().copy()
    spoilt[1000] = np.nan
    write(inputs / "nan.wav", spoilt, subtype="FLOAT")
    out = tmp_path / "out"
    code = main(
        [
            "enhance",
            "--source",
            str(folder),
            str(inputs),
            "--output-dir",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "1 file(s) written" in captured.out and "1 failed" in captured.out
    assert "nan.wav holds 1 non-finite sample" in captured.err
    assert (out / "good.wav").is_file() and not (out / "nan.wav").exists()


@pytest.mark.parametrize("samples", [1, 2, 160])
def test_silent_and_very_short_inputs_give_finite_silence(hub, samples):
    _, model, enhancer = hub
    silent = enhancer.enhance_batch(torch.zeros(1, samples))
    assert silent.shape == (1, samples) and torch.equal(
        silent, torch.zeros(1, samples)
    )
    short = enhancer.enhance_batch(0.1 * torch.ones(1, samples))
    assert torch.isfinite(short).all()


def test_nonfinite_output_is_never_written(tmp_path):
    with pytest.raises(ValueError, match="2 non-finite samples"):
        write_wav(
            tmp_path / "x.wav",
            torch.tensor([0.0, float("nan"), float("inf")]),
            RATE,
        )
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize("kind", ["file", "read-only"])
def test_cli_unusable_output_dir_fails_before_loading(tmp_path, capsys, kind):
    """Was a NotADirectoryError / PermissionError traceback."""
    write(tmp_path / "in" / "a.wav", test_signal(0.1)[0].numpy())
    if kind == "file":
        out = tmp_path / "out.wav"
        out.write_bytes(b"")
    else:
        out = pathlib.Path("/sys/sbkd_enhanced")
    # The source does not exist: the output folder is checked first.
    code = main(
        [
            "enhance",
            "--source",
            str(tmp_path / "no_model"),
            str(tmp_path / "in"),
            "--output-dir",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"speechbrain-kd: error: --output-dir {out} is not ")
    assert ("is a file" if kind == "file" else "cannot write there") in err
