"""``speechbrain-kd plot``: training curves from a run's ``train_log.txt``
(parsing, and the pixels of a known curve)."""

import numpy as np
import pytest

from speechbrain_kd.cli import main
from speechbrain_kd.plotting import (
    curve_panels,
    plot_training_curves,
    read_train_log,
)

LOG = (
    "epoch: 1, lr: 1.00e-03 - train loss: 4.0, train loss_kd: 2.0 - "
    "valid loss: 5.0, valid pesq: 1.2, valid n_items: 8\n"
    "epoch: 2, lr: 1.00e-03 - train loss: 3.0, train loss_kd: 1.5 - "
    "valid loss: 4.5, valid pesq: 1.4, valid n_items: 8\n"
    "epoch: 2, lr: 5.00e-04 - train loss: 2.5, train loss_kd: 1.0 - "
    "valid loss: 4.0, valid pesq: 1.5, valid n_items: 8\n"
    "Epoch loaded: 2 - test loss: 4.1, test pesq: 1.6\n"
)


def test_log_lines_become_series_and_a_rerun_epoch_replaces_the_first(
    tmp_path,
):
    (tmp_path / "train_log.txt").write_text(LOG)
    series = read_train_log(tmp_path)
    assert series["train"] == {
        "loss": {1: 4.0, 2: 2.5},
        "loss_kd": {1: 2.0, 2: 1.0},
    }
    assert series["valid"]["pesq"] == {1: 1.2, 2: 1.5}
    assert series["epoch"]["lr"] == {1: 1e-3, 2: 5e-4}
    assert "test" not in series
    panels = dict(curve_panels(series))
    assert list(panels) == ["loss", "loss_kd", "pesq", "lr"]
    assert set(panels["loss"]) == {"train", "valid"}


def test_bad_logs_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no training log"):
        read_train_log(tmp_path)
    log = tmp_path / "train_log.txt"
    log.write_text("Epoch loaded: 2 - test pesq: 1.6\n")
    with pytest.raises(ValueError, match="holds no epoch line"):
        read_train_log(log)
    log.write_text("epoch: 1 - train loss: 1.0\nepoch: 2 - train loss: abc\n")
    with pytest.raises(ValueError, match=r"train_log.txt:2: .*'abc'"):
        read_train_log(log)
    assert main(["plot", str(tmp_path / "missing")]) == 2


def test_a_known_curve_is_drawn_where_it_should_be(tmp_path):
    import matplotlib.image

    # One panel: a train loss falling from 4 to 1 over 4 epochs.
    (tmp_path / "train_log.txt").write_text(
        "".join(
            f"epoch: {e} - train loss: {v}\n"
            for e, v in enumerate([4.0, 3.0, 2.0, 1.0], 1)
        )
    )
    png = plot_training_curves(tmp_path, tmp_path / "curve.png")
    pixels = matplotlib.image.imread(png)[..., :3]
    blue = np.array([0x1F, 0x77, 0xB4]) / 255  # tab:blue, the train colour
    rows, columns = np.nonzero(np.abs(pixels - blue).sum(-1) < 0.05)
    assert rows.size > 200  # a line, not a speck
    orange = np.array([0xFF, 0x7F, 0x0E]) / 255
    assert not (np.abs(pixels - orange).sum(-1) < 0.05).any()  # no valid
    # Falling loss: the left end of the line is higher (smaller row).
    left = rows[columns < np.percentile(columns, 10)].mean()
    right = rows[columns > np.percentile(columns, 90)].mean()
    assert left < right - 100
    # A straight line: the middle of the line is halfway in height.
    middle = rows[np.abs(columns - np.median(columns)) < 3].mean()
    assert abs(middle - (left + right) / 2) < 15


def test_command_writes_the_png(tmp_path, capsys):
    (tmp_path / "train_log.txt").write_text(LOG)
    out = tmp_path / "figures" / "curves.png"
    assert main(["plot", str(tmp_path), "--output", str(out)]) == 0
    assert out.stat().st_size > 10_000
    assert f"Wrote {out}" in capsys.readouterr().out
