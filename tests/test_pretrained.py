"""The trained-model package: no training code, one audio door, YAML.

The import test runs in a fresh interpreter, so that modules imported by
other tests do not hide what ``speechbrain_kd.pretrained`` pulls in.
"""

import importlib
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch

from speechbrain_kd.audio import audio_info, read_audio
from speechbrain_kd.hyperyaml import find_module, module_keys, resolved_nodes
from speechbrain_kd.lobes.manner import MANNER
from speechbrain_kd.pretrained import KDEnhancement
from speechbrain_kd.pretrained.folder import (
    INTERFACE_CONFIG,
    MODULE_KEY,
    read_hyperparams,
    write_hyperparams,
    write_parameters,
)
from speechbrain_kd.profiling import load_module_from_hparams

TRAINING_CODE = (
    "speechbrain_kd.brains",
    "speechbrain_kd.distill",
    "speechbrain_kd.metrics",
)


def package_modules(code):
    """The ``speechbrain_kd`` modules loaded by ``code`` in a new process."""
    script = (
        f"{code}\nimport sys\n"
        "print(sorted(m for m in sys.modules "
        "if m.startswith('speechbrain_kd')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return eval(result.stdout.strip().splitlines()[-1])


def test_inference_interface_imports_no_training_code():
    loaded = package_modules("from speechbrain_kd.pretrained import *")
    assert loaded == [
        "speechbrain_kd",
        "speechbrain_kd.audio",
        "speechbrain_kd.hyperyaml",
        "speechbrain_kd.pretrained",
        "speechbrain_kd.pretrained.adapters",
        "speechbrain_kd.pretrained.bundle",
        "speechbrain_kd.pretrained.card",
        "speechbrain_kd.pretrained.checkpoints",
        "speechbrain_kd.pretrained.chunking",
        "speechbrain_kd.pretrained.export",
        "speechbrain_kd.pretrained.folder",
        "speechbrain_kd.pretrained.interface",
        "speechbrain_kd.pretrained.streaming",
    ]


def test_loading_and_running_a_student_imports_no_training_code(tmp_path):
    folder = tmp_path / "model"
    node = resolved_nodes(
        "m: !new:speechbrain_kd.lobes.manner.MANNER\n"
        "    channels: 6\n    depth: 2\n    attention_layers: [1]\n"
    )["m"]
    write_hyperparams(folder, 16000, node)
    write_parameters(folder, MANNER(channels=6, depth=2, attention_layers=[1]))
    wav = tmp_path / "noisy.wav"
    soundfile.write(wav, np.zeros((4000, 2)), 8000)
    loaded = package_modules(
        "from speechbrain_kd.pretrained import KDEnhancement\n"
        f"enhancer = KDEnhancement.from_hparams(source={str(folder)!r}, "
        f"savedir={str(tmp_path / 'collected')!r})\n"
        f"enhancer.enhance_file({str(wav)!r}, {str(tmp_path / 'o.wav')!r})"
    )
    assert "speechbrain_kd.lobes.manner" in loaded
    assert not [m for m in loaded if m.startswith(TRAINING_CODE)]
    assert soundfile.info(str(tmp_path / "o.wav")).frames == 8000


def test_folders_naming_the_old_interface_module_still_load():
    for name in (
        INTERFACE_CONFIG["interface_module"],
        "speechbrain_kd.inference",
    ):
        assert importlib.import_module(name).KDEnhancement is KDEnhancement


# Audio ----------------------------------------------------------------------


def test_audio_door_downmixes_resamples_and_names_bad_files(tmp_path):
    stereo = tmp_path / "stereo.flac"
    left = np.sin(np.arange(8000) / 20) * 0.5
    soundfile.write(stereo, np.stack([left, -left / 2], axis=1), 8000)
    wav = read_audio(stereo, 16000)
    assert wav.dtype == torch.float32 and wav.shape == (16000,)
    native = read_audio(stereo)
    assert native.shape == (8000,)
    assert np.allclose(native.numpy(), left / 4, atol=1e-4)
    assert audio_info(stereo).channels == 2
    with pytest.raises(ValueError, match="stereo.flac has 2 channels"):
        read_audio(stereo, downmix=False)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not audio" * 100)
    with pytest.raises(ValueError, match="cannot read audio file .*garbage"):
        read_audio(garbage)
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0), 16000)
    with pytest.raises(ValueError, match="empty.wav is empty"):
        read_audio(empty)
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        read_audio(tmp_path / "missing.wav")


# YAML -----------------------------------------------------------------------

TRAINING = """\
width: 6
model: !new:torch.nn.Conv1d
    in_channels: 1
    out_channels: !ref <width>
    kernel_size: 3
generator_csig: !new:torch.nn.Linear [4, 2]
modules:
    model: !ref <model>
lr: 0.5
"""


def test_one_module_lookup_for_built_objects_and_yaml_nodes(tmp_path):
    path = tmp_path / "hyperparams.yaml"
    path.write_text(TRAINING)
    nodes = resolved_nodes(TRAINING)
    keys = ["model", "generator_csig", "modules.model"]
    assert module_keys(nodes) == keys
    for key in keys:
        built = load_module_from_hparams(path, key)
        node = find_module(nodes, key, path)
        assert isinstance(built, torch.nn.Module)
        assert node.tag.value.removeprefix("!new:") in (
            "torch.nn.Conv1d",
            "torch.nn.Linear",
        )
    for hparams in (nodes, {"lr": 0.5, "model": torch.nn.ReLU()}):
        with pytest.raises(ValueError, match="'lr' in x is a builtins.float"):
            find_module(hparams, "lr", "x")
        with pytest.raises(ValueError, match="no key 'nope' in x; keys"):
            find_module(hparams, "nope", "x")


def test_written_hyperparams_keep_tags_quotes_and_numbers(tmp_path):
    node = resolved_nodes(
        "m: !new:dict\n"
        "    word: 'null'\n"
        "    answer: 'yes'\n"
        "    number_text: '1.5'\n"
        "    flag: True\n"
        "    small: 1.0e-3\n"
        "    nested: [[1, 2], {a: b}]\n"
        "    activation: !name:torch.nn.ReLU\n"
        "    module: !new:torch.nn.Identity\n"
        "    layers: [!new:torch.nn.Linear [2, 2]]\n"
        "    # a comment of the training file\n"
        "next_key: 1  # not part of the module\n"
    )["m"]
    write_hyperparams(tmp_path, 8000, node, comment="Top\ncomment")
    text = (tmp_path / "hyperparams.yaml").read_text()
    assert text.startswith("# Top\n# comment\n")
    assert "training file" not in text and "next_key" not in text
    built = read_hyperparams(tmp_path)[MODULE_KEY]
    assert built["word"] == "null" and built["answer"] == "yes"
    assert built["number_text"] == "1.5" and built["flag"] is True
    assert built["small"] == 1e-3
    assert built["nested"] == [[1, 2], {"a": "b"}]
    assert built["activation"] is torch.nn.ReLU
    assert isinstance(built["module"], torch.nn.Identity)
    assert isinstance(built["layers"][0], torch.nn.Linear)
