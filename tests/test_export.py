"""``speechbrain-kd export``: a trained run becomes a hub-ready folder.

The acceptance test trains a tiny student with the real recipe, exports
it, loads the folder with ``KDEnhancement.from_hparams`` offline and checks
that the loaded model computes what the trained one does.
"""

import json
import pathlib

import numpy as np
import pytest
import soundfile
import torch

from speechbrain_kd.cli import main
from speechbrain_kd.lobes.manner import MANNER
from speechbrain_kd.pretrained import KDEnhancement, export_model
from speechbrain_kd.pretrained.checkpoints import find_checkpoint_file
from speechbrain_kd.pretrained.folder import EXPORTED_FILES
from speechbrain_kd.profiling import load_module_from_hparams

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(recipe_runs):
    """The ``manner_baseline.yaml`` row's debug run (a tiny student)."""
    return recipe_runs("hparams/manner_baseline.yaml").run


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory):
    """The run exported with the command line (default key ``model``)."""
    out = tmp_path_factory.mktemp("exported") / "manner-tiny"
    code = main(
        [
            "export",
            "--hparams",
            str(run / "hyperparams.yaml"),
            "--checkpoint",
            str(run),
            "--output",
            str(out),
            "--repo-id",
            "speechbrain-kd/manner-tiny",
        ]
    )
    assert code == 0
    return out


def export_args(run, checkpoint, out, *extra):
    return [
        "export",
        "--hparams",
        str(run / "hyperparams.yaml"),
        "--checkpoint",
        str(checkpoint),
        "--output",
        str(out),
        *extra,
    ]


def test_exported_model_loads_offline_and_matches_training_model(
    run, exported, tmp_path, monkeypatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enhancer = KDEnhancement.from_hparams(
        source=str(exported),
        savedir=str(tmp_path / "collected"),
        run_opts={"device": "cpu"},
    )
    trained = load_module_from_hparams(
        run / "hyperparams.yaml", key="model", overrides="data_folder: x"
    )
    best = find_checkpoint_file(run)
    state_dict = torch.load(best, map_location="cpu", weights_only=True)
    trained.load_state_dict(state_dict, strict=True)
    trained.eval()
    noisy = 0.1 * torch.randn(
        1, 16000, generator=torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        expected = trained(noisy)
    enhanced = enhancer.enhance_batch(noisy)
    assert enhanced.shape == expected.shape
    assert (enhanced - expected).abs().max().item() < 1e-5


def test_exported_folder_has_the_hub_files(run, exported):
    for name in EXPORTED_FILES:
        assert (exported / name).is_file(), f"{name} missing"
    config = json.loads((exported / "config.json").read_text())
    assert config["speechbrain_interface"] == "KDEnhancement"
    assert config["interface_module"] == "speechbrain_kd.pretrained"
    assert config["model_class"] == "speechbrain_kd.lobes.manner.MANNER"
    assert config["model_kwargs"]["channels"] == 6
    info = soundfile.info(str(exported / "example.wav"))
    assert info.samplerate == 16000 and info.subtype == "PCM_16"
    assert abs(info.duration - 3.0) < 0.01
    hparams = (exported / "hyperparams.yaml").read_text()
    for line in ("sample_rate: 16000", "pretrainer: !new:", "modules:"):
        assert line in hparams
    # Inference only: nothing of the training setup.
    for word in ("data_folder", "checkpointer", "opt_class", "teacher"):
        assert word not in hparams


def test_model_card_reports_size_cost_and_test_metrics(run, exported):
    card = (exported / "README.md").read_text()
    assert card.startswith("---\nlicense: apache-2.0\n")
    assert "library_name: speechbrain" in card
    params = sum(
        p.numel()
        for p in MANNER(channels=6, depth=3, attention_layers=[2]).parameters()
    )
    assert f"- Parameters: {params:,}" in card
    assert "- MACs per 1 s of audio: " in card and "FLOPs = 2 x MACs" in card
    assert "RTF on CPU" in card and "1 thread, 4 s input" in card
    summary = json.loads((run / "test_summary.json").read_text())
    assert f"| PESQ | {summary['pesq']:.3f} |" in card
    assert f"| SI-SDR (dB) | {summary['si_sdr']:.3f} |" in card
    assert "Validation PESQ of the exported checkpoint: 1." in card
    assert "train_teacher.py hparams/manner_baseline.yaml" in card
    assert "KDEnhancement.from_hparams(" in card
    assert 'pymodule_file="custom_interface.py"' in card
    assert 'classname="KDEnhancement"' in card and "foreign_class(" in card
    assert "park2022manner" in card and "shin2022mvat" not in card
    # the snippet loads the repo id; no path of the exporting machine
    assert 'source="speechbrain-kd/manner-tiny"' in card
    assert 'output_filename="enhanced.wav"' in card
    assert str(exported.parent) not in card and str(run) not in card
    front_matter = card.split("---")[1]
    assert "datasets:\n  - " in front_matter
    # example.wav is the noisy input (as in SpeechBrain's hub repos)
    noisy = soundfile.read(str(exported / "example.wav"))[0]
    enhanced = soundfile.read(str(exported / "example_enhanced.wav"))[0]
    assert noisy.shape == enhanced.shape and not np.allclose(noisy, enhanced)
    enhancer = KDEnhancement.from_hparams(
        source=str(exported), savedir=str(exported.parent / "card_check")
    )
    out = exported.parent / "from_card.wav"
    enhancer.enhance_file(str(exported / "example.wav"), output_filename=out)
    assert soundfile.info(str(out)).frames == noisy.shape[0]


def test_export_from_ckpt_folder_and_file(run, exported, tmp_path):
    best = find_checkpoint_file(run)
    reference = torch.load(exported / "enhance_model.ckpt", weights_only=True)
    for source in (best.parent, best):
        out = export_model(
            run / "hyperparams.yaml",
            source,
            tmp_path / source.name,
            rtf_seconds=0.25,
        )
        state_dict = torch.load(out / "enhance_model.ckpt", weights_only=True)
        assert state_dict.keys() == reference.keys()
        assert all(torch.equal(state_dict[k], reference[k]) for k in reference)


def test_non_empty_output_needs_force(run, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(export_args(run, run, out)) == 2
    assert "not empty" in capsys.readouterr().err
    assert not (out / "enhance_model.ckpt").exists()
    assert main(export_args(run, run, out, "--force")) == 0
    assert (out / "enhance_model.ckpt").is_file()
    assert (out / "notes.txt").read_text() == "mine"


def test_wrong_key_lists_the_modules(run, tmp_path, capsys):
    assert main(export_args(run, run, tmp_path / "o", "--key", "nope")) == 2
    error = capsys.readouterr().err
    assert "no key 'nope'" in error
    listed = error.split("keys holding a torch.nn.Module: ")[1].strip()
    # the student preset included as ``student`` holds the same model
    assert listed.split(", ") == [
        "student.model",
        "model",
        "modules.model",
        "loss",
    ]


def test_teacher_of_a_kd_run_is_not_checkpointed(run, tmp_path, capsys):
    hparams = tmp_path / "hyperparams.yaml"
    hparams.write_text(
        (run / "hyperparams.yaml").read_text()
        + "teacher: !new:speechbrain_kd.lobes.manner.MANNER\n"
        "    channels: 6\n    depth: 3\n    attention_layers: [2]\n"
    )
    args = export_args(run, run, tmp_path / "o", "--key", "teacher")
    args[2] = str(hparams)
    assert main(args) == 2
    error = capsys.readouterr().err
    assert "no teacher.ckpt" in error
    assert "export the teacher from its own training run" in error


def test_checkpoint_that_does_not_fit_is_refused(run, tmp_path):
    other = MANNER(channels=12, depth=3, attention_layers=[2])
    ckpt = tmp_path / "model.ckpt"
    torch.save(other.state_dict(), ckpt)
    with pytest.raises(ValueError, match="shape mismatch"):
        export_model(run / "hyperparams.yaml", ckpt, tmp_path / "out")
    torch.save({"weight": torch.zeros(1)}, ckpt)
    with pytest.raises(ValueError, match="missing keys"):
        export_model(run / "hyperparams.yaml", ckpt, tmp_path / "out2")


def test_missing_inputs_are_clear_errors(run, tmp_path):
    with pytest.raises(FileNotFoundError, match="hparams file not found"):
        export_model(tmp_path / "none.yaml", run, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        export_model(run / "hyperparams.yaml", tmp_path / "no", tmp_path / "o")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no checkpoint"):
        export_model(run / "hyperparams.yaml", empty, tmp_path / "o2")


def test_example_input_is_enhanced(run, tmp_path):
    noisy = 0.05 * torch.randn(8000, generator=torch.Generator().manual_seed(0))
    wav = tmp_path / "noisy.wav"
    soundfile.write(str(wav), noisy.numpy(), 8000, subtype="PCM_16")
    out = export_model(
        run / "hyperparams.yaml",
        run,
        tmp_path / "out",
        example_input=wav,
        rtf_seconds=0.5,
    )
    info = soundfile.info(str(out / "example.wav"))
    assert info.samplerate == 16000 and info.frames == 16000
    assert "`noisy.wav`" in (out / "README.md").read_text()


def test_official_manner_checkpoint_exports_and_enhances_as_official(
    golden, tmp_path, monkeypatch
):
    """An official training checkpoint -> export -> KDEnhancement gives the
    official model's own output (golden, eval mode, batch 2)."""
    fixture = torch.load(golden / "manner_all_ma_n12_d3.pt")
    official = tmp_path / "best_model.pth"
    torch.save(
        {"loss": 0.5, "state_dict": fixture["state_dict"], "optimizer": {}},
        official,
    )
    hparams = tmp_path / "hyperparams.yaml"
    hparams.write_text(
        "sample_rate: 16000\n"
        "model: !new:speechbrain_kd.lobes.manner.MANNER\n"
        "    channels: 12\n"
        "    depth: 3\n"
        "    attention_layers: [0, 1, 2]\n",
        encoding="utf-8",
    )
    out = export_model(hparams, official, tmp_path / "export", rtf_seconds=0.25)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enhancer = KDEnhancement.from_hparams(
        source=str(out),
        savedir=str(tmp_path / "collected"),
        run_opts={"device": "cpu"},
    )
    case = fixture["cases"][0]
    enhanced = enhancer.enhance_batch(case["input"][:, 0])
    reference = case["output"][:, 0]
    error = (enhanced - reference).norm() / reference.norm()
    assert error.item() < 1e-6


def test_stock_waveform_enhancement_refuses_or_returns_the_whole_batch(
    exported, tmp_path, monkeypatch
):
    import sys

    from speechbrain.inference.enhancement import WaveformEnhancement

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # hyperparams.yaml names custom_interface.MANNER: without the folder's
    # custom_interface.py importable, SpeechBrain refuses (never a silent
    # wrong result).
    with pytest.raises(ImportError, match="custom_interface.MANNER"):
        WaveformEnhancement.from_hparams(
            source=str(exported), savedir=str(tmp_path / "refused")
        )
    monkeypatch.syspath_prepend(str(exported))
    try:
        stock = WaveformEnhancement.from_hparams(
            source=str(exported), savedir=str(tmp_path / "stock")
        )
        ours = KDEnhancement.from_hparams(
            source=str(exported), savedir=str(tmp_path / "ours")
        )
        noisy = 0.1 * torch.randn(
            2, 16000, generator=torch.Generator().manual_seed(3)
        )
        batch = stock.enhance_batch(noisy)
        assert batch.shape == (2, 16000)  # before: one item for two
        torch.testing.assert_close(batch, ours.enhance_batch(noisy))
        written = tmp_path / "enhanced.wav"
        single = stock.enhance_file(
            str(exported / "example.wav"), output_filename=str(written)
        )
        assert written.is_file() and single.dim() == 1
        assert type(stock.mods.enhance_model).__module__ == "custom_interface"
        assert ours.model is ours.mods["enhance_model"].model
        assert type(ours.model) is MANNER  # the package's own class
    finally:
        sys.modules.pop("custom_interface", None)
