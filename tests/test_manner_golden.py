"""Our MANNER computes what the official MANNER computes, and loads its
checkpoints (issue 11).

Golden outputs of the official code (``../shared/reference/golden``, see
its README): official weights, loaded through
:mod:`speechbrain_kd.lobes.manner_official` strictly, must reproduce every
attention view and MA block output to 1e-5 and the model output to 1e-6
(relative: norm of the difference over norm of the reference), in eval
mode, batch 2, for a length that is a multiple of the chunk hop at the
first layer and one that is not at any layer.
"""

import functools
import pathlib

import pytest
import torch

from speechbrain_kd.lobes.manner import MANNER, AttentionTap, MultiViewAttention
from speechbrain_kd.lobes.manner_official import (
    convert_official_state_dict,
    load_official_checkpoint,
    official_state_dict,
    preset_for_official_state_dict,
)

FIXTURES = {
    # file: (our preset arguments, MA block count)
    "manner_all_ma_n12_d3.pt": (
        dict(channels=12, depth=3, attention_layers=(0, 1, 2)),
        6,
    ),
    "manner_small_n12_d4.pt": (
        dict(channels=12, depth=4, attention_layers=(3,)),
        2,
    ),
}
VIEW_TOLERANCE = 1e-5
OUTPUT_TOLERANCE = 1e-6


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread (small forwards, busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.cache
def _load(path):
    return torch.load(path)


@pytest.fixture(params=sorted(FIXTURES))
def fixture(request, golden):
    """``(file name, golden dict)`` of each official golden file."""
    return request.param, _load(str(golden / request.param))


def relative_error(ours, reference):
    """``||ours - reference|| / ||reference||``."""
    assert ours.shape == reference.shape
    return float((ours - reference).norm() / reference.norm())


def official_layer_name(path, depth):
    """Official name (``encoder.i`` / ``decoder.j``) of our layer path:
    official ``decoder.j`` runs ``j``-th from the bottleneck."""
    part, index = path.split(".")[:2]
    index = int(index)
    if part == "decoder":
        index = depth - 1 - index
    return f"{part}.{index}"


def capture_views(model):
    """Forward hooks: official view name -> our captured tensor."""
    captured = {}
    for path, module in model.named_modules():
        if isinstance(module, AttentionTap):
            view = path.rsplit(".", 1)[1].removesuffix("_view")
            key = f"{official_layer_name(path, model.depth)}.{view}"
        elif isinstance(module, MultiViewAttention):
            key = f"{official_layer_name(path, model.depth)}.block"
        else:
            continue
        module.register_forward_hook(
            lambda m, i, o, key=key: captured.__setitem__(key, o)
        )
    return captured


def loaded_model(golden_dict):
    """Our MANNER of the golden file's preset, official weights, eval."""
    preset = preset_for_official_state_dict(golden_dict["state_dict"])
    model = MANNER(**preset)
    load_official_checkpoint(golden_dict["state_dict"], model)
    return model.eval()


def test_preset_inferred_from_shapes(fixture):
    name, golden_dict = fixture
    expected, blocks = FIXTURES[name]
    preset = preset_for_official_state_dict(golden_dict["state_dict"])
    for key, value in expected.items():
        assert preset[key] == value
    config = golden_dict["config"]
    assert preset["channels"] == config["hidden"]
    assert preset["depth"] == config["depth"]
    assert preset["kernel_size"] == config["kernel_size"]
    assert preset["stride"] == config["stride"]
    assert preset["growth"] == config["growth"]
    assert preset["chunk_size"] == config["segment_len"]
    assert len(config["ma_layers"]) == blocks


def test_conversion_is_exact_and_strict(fixture):
    _, golden_dict = fixture
    official = golden_dict["state_dict"]
    converted = convert_official_state_dict(official)
    assert len(converted) == len(official)
    model = loaded_model(golden_dict)
    ours = model.state_dict()
    assert ours.keys() == converted.keys()
    for key, value in converted.items():
        assert torch.equal(ours[key], value), key
    # The inverse map gives back the official keys and tensors.
    back = official_state_dict(model)
    assert back.keys() == official.keys()
    assert all(torch.equal(back[key], official[key]) for key in official)


def test_views_blocks_and_output_match_official(fixture):
    name, golden_dict = fixture
    model = loaded_model(golden_dict)
    captured = capture_views(model)
    assert len(golden_dict["cases"]) == 2
    for case in golden_dict["cases"]:
        assert case["input"].shape[0] == 2
        captured.clear()
        with torch.no_grad():
            output = model(case["input"])
        length = case["input"].shape[-1]
        assert set(captured) == set(case["views"]), (name, length)
        errors = {
            key: relative_error(captured[key], reference)
            for key, reference in case["views"].items()
        }
        worst = max(errors, key=errors.get)
        assert errors[worst] <= VIEW_TOLERANCE, (name, length, worst, errors)
        error = relative_error(output, case["output"])
        assert error <= OUTPUT_TOLERANCE, (name, length, error)


def test_mismatched_model_names_the_fitting_preset(golden):
    golden_dict = _load(str(golden / "manner_small_n12_d4.pt"))
    # The MV-AT student layout (depth 3, MA in the deepest layer).
    student = MANNER(channels=12, depth=3, attention_layers=(2,))
    with pytest.raises(ValueError) as error:
        load_official_checkpoint(golden_dict["state_dict"], student)
    message = str(error.value)
    assert "depth=3" in message.split("it needs")[0]
    assert "channels=12, depth=4" in message
    assert "attention_layers=(3,)" in message
    # Same widths, wrong MA layout (MA everywhere vs deepest only).
    everywhere = MANNER(channels=12, depth=4, attention_layers=(0, 1, 2, 3))
    with pytest.raises(ValueError, match=r"attention_layers=\(3,\)"):
        load_official_checkpoint(golden_dict["state_dict"], everywhere)


def test_mismatch_names_our_preset_file():
    # An official MANNER-S layout (N=60, MA in the deepest layer only)
    # offered to a MANNER-B: the message names hparams/models/manner_s.
    torch.manual_seed(0)
    small = MANNER(channels=60, depth=4, attention_layers=(3,), rescale=None)
    official = official_state_dict(small)
    base = MANNER(channels=60, depth=4, attention_layers=(0, 1, 2, 3))
    with pytest.raises(ValueError, match=r"hparams/models/manner_s\.yaml"):
        load_official_checkpoint(official, base)


def test_training_checkpoint_file_format(fixture, tmp_path):
    name, golden_dict = fixture
    official = golden_dict["state_dict"]
    # The official training script saves {'loss', 'state_dict',
    # 'optimizer'}; DataParallel adds 'module.' prefixes.
    optimizer_state = {
        "state": {0: {"step": torch.tensor(3.0)}},
        "param_groups": [{"lr": 1e-3, "params": [0]}],
    }
    for prefix in ("", "module."):
        path = tmp_path / f"{prefix or 'plain'}_{name}"
        torch.save(
            {
                "loss": 0.25,
                "state_dict": {prefix + k: v for k, v in official.items()},
                "optimizer": optimizer_state,
            },
            path,
        )
        preset = preset_for_official_state_dict(torch.load(path))
        model = load_official_checkpoint(path, MANNER(**preset))
        reference = loaded_model(golden_dict)
        for key, value in reference.state_dict().items():
            assert torch.equal(model.state_dict()[key], value), key
    # A bare state dict file loads too.
    path = tmp_path / f"bare_{name}"
    torch.save(official, path)
    model = load_official_checkpoint(str(path), MANNER(**preset))
    assert torch.equal(
        model.out_conv.weight, official["manner_block.out_conv.0.weight"]
    )


def test_unknown_key_is_an_error():
    model = MANNER(channels=12, depth=2, attention_layers=(1,))
    official = official_state_dict(model)
    official["manner_block.encoder.0.extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="unknown official MANNER key"):
        convert_official_state_dict(official)


def test_known_presets_are_the_preset_yamls():
    """The converter's preset table must not drift from hparams/models."""
    from hyperpyyaml import load_hyperpyyaml

    from speechbrain_kd.lobes.manner_official import KNOWN_PRESETS

    folder = pathlib.Path(__file__).resolve().parents[1] / "hparams" / "models"
    found = {}
    for path in sorted(folder.glob("manner_*.yaml")):
        with open(path, encoding="utf-8") as fin:
            model = load_hyperpyyaml(fin)["model"]
        found[path.stem] = dict(
            channels=model.channels,
            depth=model.depth,
            attention_layers=tuple(model.attention_layers),
        )
    assert found == KNOWN_PRESETS
