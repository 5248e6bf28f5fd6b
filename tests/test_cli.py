"""The console script and the package import."""

import pathlib
import subprocess
import sys

import pytest

import speechbrain_kd
from speechbrain_kd.cli import SUBCOMMANDS, build_parser, main


def test_console_script_help():
    bin_dir = pathlib.Path(sys.executable).parent
    result = subprocess.run(
        [str(bin_dir / "speechbrain-kd"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "usage: speechbrain-kd" in result.stdout
    for name in SUBCOMMANDS:
        assert name.replace("_", "-") in result.stdout


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert speechbrain_kd.__version__ in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "commands:" in capsys.readouterr().out


def test_user_error_is_a_message_not_a_traceback(tmp_path, capsys):
    # An empty data folder holds no split: a clear error, exit status 2.
    status = main(
        [
            "prepare",
            "--data-folder",
            str(tmp_path),
            "--save-folder",
            str(tmp_path / "out"),
        ]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("speechbrain-kd: error:")
    assert str(tmp_path) in err


def test_every_subcommand_has_help():
    parser = build_parser()
    for name in SUBCOMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([name.replace("_", "-"), "--help"])
        assert exit_info.value.code == 0


def test_make_data_binaural_writes_the_spatial_folders(tmp_path, capsys):
    import json

    import soundfile as sf

    assert (
        main(["make-data", str(tmp_path), "--binaural", "--n-train", "3"]) == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed == {
        "speech_folder": str(tmp_path / "speech"),
        "noise_folder": str(tmp_path / "noise"),
        "ir_folder": str(tmp_path / "irs"),
    }
    assert len(list((tmp_path / "speech").glob("*.wav"))) == 3
    irs = sorted((tmp_path / "irs").glob("*.wav"))
    assert irs and all(sf.info(str(p)).channels == 2 for p in irs)


def test_export_refuses_a_bad_onnx_block_before_any_work(tmp_path, capsys):
    code = main(
        [
            "export",
            "--hparams",
            str(tmp_path / "missing.yaml"),
            "--checkpoint",
            str(tmp_path),
            "--output",
            str(tmp_path / "out"),
            "--onnx",
            "--onnx-block-hops",
            "0",
        ]
    )
    assert code == 2
    assert (
        "--onnx-block-hops must be at least 1, got 0" in capsys.readouterr().err
    )
    assert not (tmp_path / "out").exists()
