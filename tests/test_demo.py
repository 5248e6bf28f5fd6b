"""``make demo`` end to end at a tiny size: the committed demo teacher,
both students, the table, ``results.json`` and ``demo.png``."""

import json
import re
import sys
import time

import numpy as np
import pytest

from speechbrain_kd import demo
from speechbrain_kd.pretrained import KDEnhancement


def test_the_committed_teacher_loads_and_is_small(tmp_path):
    folder = demo.DEMO_TEACHER
    size = (folder / "enhance_model.ckpt").stat().st_size
    assert size < 10_000_000  # a few MB
    teacher = KDEnhancement.from_hparams(
        source=str(folder), savedir=str(tmp_path / "collected")
    )
    assert sum(p.numel() for p in teacher.model.parameters()) > 2_000_000
    log = (folder / "train_log.txt").read_text()
    assert log.count("valid pesq") == 6  # the six epochs it trained


def test_the_teacher_card_says_how_it_was_built():
    # The card's command is the one train_demo_teacher runs today.
    card = (demo.DEMO_TEACHER / "README.md").read_text()
    assert card.endswith(demo._reproduce_section())


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    """The demo with two epochs of students on 6 + 2 pairs."""
    settings = {
        **demo.DEMO_SETTINGS,
        "n_train": 6,
        "n_test": 2,
        # The demo's own student flags, two epochs.
        "epochs": 2,
    }
    patch = pytest.MonkeyPatch()
    patch.setattr(demo, "DEMO_SETTINGS", settings)
    output = tmp_path_factory.mktemp("demo")
    try:
        rows = demo.run_demo(output)
    finally:
        patch.undo()
    return output, rows


def test_demo_prints_four_rows_and_writes_its_files(tiny_demo, capsys):
    output, rows = tiny_demo
    names = [name for name, _ in rows]
    assert names == [
        "noisy input",
        "teacher (MANNER, N=18)",
        "student MV-AT + KD",
        "student, no KD",
    ]
    # --ckpt_max_key=epoch: both students are tested at their last epoch.
    for run in ("student_mvat", "student_baseline"):
        log = (output / run / "train_log.txt").read_text()
        assert "Epoch loaded: 2 " in log
        saved = (output / run / "hyperparams.yaml").read_text()
        assert "ckpt_max_key: epoch" in saved
    # The KD student's teacher ran once per training segment (4 of them).
    cache = re.findall(
        r"Teacher cache: (\d+) items, .* (\d+) hits, (\d+) misses",
        (output / "student_mvat" / "log.txt").read_text(),
    )
    assert cache == [("4", "0", "4"), ("4", "4", "4")]
    results = json.loads((output / "results.json").read_text())
    assert list(results) == names
    for name in names:
        assert 1.0 <= results[name]["pesq"] <= 4.64
        assert 0.0 < results[name]["stoi"] <= 1.0
    # The noisy input's composite measures are off their floor.
    assert results["noisy input"]["csig"] > 2.0
    assert (
        results["student MV-AT + KD"]["params"]
        == results["student, no KD"]["params"]
    )


def test_demo_figure_has_spectrograms_and_curves(tiny_demo):
    import matplotlib.image

    output, _ = tiny_demo
    png = output / "demo.png"
    assert png.stat().st_size > 50_000
    pixels = matplotlib.image.imread(png)[..., :3]
    height = pixels.shape[0]
    # Top half: five spectrograms (coloured, not blank); bottom: curves.
    top = pixels[: height // 2]
    assert np.std(top) > 0.1
    assert (np.abs(top - 1.0).sum(-1) > 0.1).mean() > 0.4
    bottom = pixels[height // 2 :]
    blue = np.array([0x1F, 0x77, 0xB4]) / 255
    assert (np.abs(bottom - blue).sum(-1) < 0.05).sum() > 100


def test_a_missing_demo_teacher_is_named_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEMO_TEACHER", tmp_path / "no_teacher")
    with pytest.raises(FileNotFoundError, match="demo --train-teacher"):
        demo.run_demo(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_failed_parallel_run_is_named_and_stops_the_others(
    tmp_path, monkeypatch
):
    programs = {
        "slow": "import time; time.sleep(60)",
        "broken": "print('boom: no such key'); raise SystemExit(3)",
    }

    def command(script, hparams, output_folder, data, extra):
        return [sys.executable, "-c", programs[script]]

    monkeypatch.setattr(demo, "recipe_command", command)
    jobs = [
        (name, f"{name}.yaml", tmp_path / name, [])
        for name in ("slow", "broken")
    ]
    start = time.time()
    with pytest.raises(RuntimeError) as error:
        demo.run_recipes_in_parallel(jobs, data={}, epochs=1)
    assert time.time() - start < 30  # the slow run was stopped
    message = str(error.value)
    assert "broken broken.yaml failed (exit 3)" in message
    assert str(tmp_path / "broken" / "stdout.txt") in message
    assert message.endswith("boom: no such key")


def test_the_background_work_runs_on_a_freed_slot(tmp_path, monkeypatch):
    done = []

    def command(script, hparams, output_folder, data, extra):
        seconds = {"short": 0, "long": 3}[script]
        return [sys.executable, "-c", f"import time; time.sleep({seconds})"]

    def background():
        import torch

        done.append(time.time())
        return torch.get_num_threads()

    monkeypatch.setattr(demo, "recipe_command", command)
    jobs = [(name, "x.yaml", tmp_path / name, []) for name in ("long", "short")]
    start = time.time()
    assert demo.run_recipes_in_parallel(jobs, {}, 1, background=background) == 1
    # Started once the short run had ended, before the long one.
    assert done and done[0] - start < 3

    def failing():
        raise ValueError("teacher folder unreadable")

    with pytest.raises(ValueError, match="teacher folder unreadable"):
        demo.run_recipes_in_parallel(jobs[1:], {}, 1, background=failing)
