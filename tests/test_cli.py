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
