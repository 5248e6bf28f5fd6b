"""Training curves of a recipe run, read from its ``train_log.txt``.

SpeechBrain's ``FileTrainLogger`` writes one line per epoch::

    epoch: 2, lr: 1.00e-03 - train loss: 1.2, train loss_kd: 0.3 - valid pesq: 1.9

:func:`read_train_log` turns those lines into per-epoch series (the last
line of an epoch wins: a resumed run repeats none, a re-run epoch is
replaced); :func:`plot_training_curves` draws every series (train and
valid of one quantity on one panel) into a PNG with matplotlib.
"""

import math
import pathlib
import re

#: Keys of the log that count items rather than measure the model.
COUNT_KEYS = ("n_items", "n_failed")
LOG_FILE = "train_log.txt"
_EPOCH_LINE = re.compile(r"^epoch: (\d+)")
_ENTRY = re.compile(r"^(?:(\w+) )?([^\s:]+): (\S+)$")


def _number(text, path, line_number):
    """A logged value as a float (``nan`` and ``inf`` included)."""
    try:
        return float(text)
    except ValueError:
        raise ValueError(
            f"{path}:{line_number}: cannot read {text!r} as a number"
        ) from None


def _pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, output):
    """Writes ``figure`` as a PNG (parent folders created) and closes it."""
    import matplotlib.pyplot as plt

    output = pathlib.Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=100)
    plt.close(figure)
    return output


def read_train_log(path):
    """Per-epoch series of a SpeechBrain ``train_log.txt``.

    Arguments
    ---------
    path : str or pathlib.Path
        The log, or a run folder holding ``train_log.txt``.

    Returns
    -------
    dict
        ``{"train": {key: {epoch: value}}, "valid": {...}, "epoch": {...}}``
        (``epoch`` holds the epoch line's own entries, e.g. ``lr``).

    Raises
    ------
    FileNotFoundError
        No such log.
    ValueError
        The log holds no epoch line, or a value is not a number (the
        message names the file and line).

    Example
    -------
    >>> import tempfile
    >>> log = pathlib.Path(tempfile.mkdtemp()) / "train_log.txt"
    >>> _ = log.write_text(
    ...     "epoch: 1, lr: 1.00e-03 - train loss: 2.0 - valid pesq: 1.5\\n"
    ...     "epoch: 2, lr: 5.00e-04 - train loss: 1.0 - valid pesq: nan\\n"
    ...     "Epoch loaded: 2 - test pesq: 1.6\\n"
    ... )
    >>> series = read_train_log(log)
    >>> series["train"]["loss"], series["epoch"]["lr"]
    ({1: 2.0, 2: 1.0}, {1: 0.001, 2: 0.0005})
    >>> series["valid"]["pesq"][1]
    1.5
    """
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / LOG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"no training log {path} (a recipe run writes {LOG_FILE} in "
            "its output folder)"
        )
    series = {"epoch": {}, "train": {}, "valid": {}}
    for line_number, line in enumerate(
        path.read_text(encoding="utf-8").splitlines(), start=1
    ):
        match = _EPOCH_LINE.match(line)
        if match is None:
            continue
        epoch = int(match.group(1))
        for part_index, part in enumerate(line.split(" - ")):
            for entry in part.split(", "):
                found = _ENTRY.match(entry.strip())
                if found is None:
                    continue
                stage, key, value = found.groups()
                if part_index == 0:
                    stage = "epoch"
                if key == "epoch" or stage not in series:
                    continue
                value = _number(value, path, line_number)
                series[stage].setdefault(key, {})[epoch] = value
    if not any(series["train"].values()) and not series["valid"]:
        raise ValueError(f"{path} holds no epoch line ('epoch: N - ...')")
    return series


def curve_panels(series, skip=COUNT_KEYS):
    """The panels to draw: one per quantity, its train and valid series.

    Arguments
    ---------
    series : dict
        Output of :func:`read_train_log`.
    skip : tuple of str
        Keys not drawn (item counts).

    Returns
    -------
    list of tuple
        ``(quantity, {stage: {epoch: value}})``, losses first.

    Example
    -------
    >>> series = {
    ...     "epoch": {"lr": {1: 0.1}},
    ...     "train": {"loss": {1: 2.0}},
    ...     "valid": {"loss": {1: 3.0}, "pesq": {1: 1.5}, "n_items": {1: 4}},
    ... }
    >>> [name for name, _ in curve_panels(series)]
    ['loss', 'pesq', 'lr']
    """
    names = []
    for stage in ("train", "valid", "epoch"):
        names += [k for k in series.get(stage, {}) if k not in names]
    # MetricGAN-OKD logs one series per generator: "n_items[pesq]".
    names = [n for n in names if n.split("[")[0] not in skip]
    losses = [n for n in names if n.startswith("loss")]
    others = [n for n in names if not n.startswith("loss")]
    return [
        (
            name,
            {
                stage: series[stage][name]
                for stage in ("train", "valid", "epoch")
                if name in series.get(stage, {})
            },
        )
        for name in losses + others
    ]


def plot_training_curves(run, output=None, title=None):
    """Draws every logged series of a run into a PNG.

    Arguments
    ---------
    run : str or pathlib.Path
        A run folder (with ``train_log.txt``) or the log itself.
    output : str or pathlib.Path, optional
        The PNG (default: ``training_curves.png`` beside the log).
    title : str, optional
        Figure title (default: the run folder's name).

    Returns
    -------
    pathlib.Path
        The written PNG.

    Example
    -------
    >>> import tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "train_log.txt").write_text(
    ...     "epoch: 1 - train loss: 2.0 - valid loss: 2.5, valid pesq: 1.2\\n"
    ...     "epoch: 2 - train loss: 1.0 - valid loss: 2.0, valid pesq: 1.4\\n"
    ... )
    >>> plot_training_curves(folder).name
    'training_curves.png'
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    run = pathlib.Path(run)
    log = run / LOG_FILE if run.is_dir() else run
    panels = curve_panels(read_train_log(log))
    output = (
        pathlib.Path(output) if output else log.parent / "training_curves.png"
    )
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(4.2 * columns, 2.8 * rows + 0.4),
        squeeze=False,
        layout="constrained",
    )
    colours = {"train": "tab:blue", "valid": "tab:orange", "epoch": "tab:green"}
    for axis, (name, stages) in zip(axes.flat, panels, strict=False):
        for stage, values in stages.items():
            epochs = sorted(values)
            axis.plot(
                epochs,
                [values[e] for e in epochs],
                marker="o",
                markersize=3,
                color=colours[stage],
                label=stage,
            )
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_title(name, fontsize=10)
        axis.set_xlabel("epoch", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
        if len(stages) > 1:
            axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    figure.suptitle(title or f"{log.parent.parent.name}/{log.parent.name}")
    return _save(figure, output)


def plot_demo(spectrogram_files, curves, output, sample_rate=16000):
    """The demo's figure: spectrograms of one utterance and validation
    PESQ per epoch of the runs.

    Arguments
    ---------
    spectrogram_files : list of tuple
        ``(label, audio file)`` drawn left to right (e.g. clean, noisy,
        teacher, students), on one colour scale.
    curves : list of tuple
        ``(label, run folder or train_log.txt)`` whose ``valid pesq`` is
        drawn per epoch.
    output : str or pathlib.Path
        The PNG.
    sample_rate : int
        Rate the files are read at.

    Returns
    -------
    pathlib.Path
        The written PNG.

    Example
    -------
    >>> import tempfile, torch
    >>> from speechbrain_kd.audio import write_wav
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_wav(folder / "a.wav", 0.1 * torch.randn(8000), 16000)
    >>> _ = (folder / "train_log.txt").write_text(
    ...     "epoch: 1 - valid pesq: 1.2\\nepoch: 2 - valid pesq: 1.4\\n"
    ... )
    >>> plot_demo(
    ...     [("a", folder / "a.wav")], [("run", folder)], folder / "d.png"
    ... ).name
    'd.png'
    """
    plt = _pyplot()
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    from speechbrain_kd.audio import read_audio

    count = len(spectrogram_files)
    figure = plt.figure(figsize=(3.2 * count, 6.4), layout="constrained")
    grid = figure.add_gridspec(2, count, height_ratios=(1.0, 0.9))
    power = []
    for label, path in spectrogram_files:
        wav = read_audio(path, sample_rate).double().numpy()
        window = np.hanning(512)
        frames = np.lib.stride_tricks.sliding_window_view(wav, 512)[::128]
        spectrum = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2
        power.append((label, 10 * np.log10(spectrum.T + 1e-10)))
    top = max(p.max() for _, p in power)
    for index, (label, db) in enumerate(power):
        axis = figure.add_subplot(grid[0, index])
        seconds = db.shape[1] * 128 / sample_rate
        axis.imshow(
            db,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=top - 80,
            vmax=top,
            extent=(0, seconds, 0, sample_rate / 2000),
        )
        axis.set_title(label, fontsize=10)
        axis.set_xlabel("time (s)", fontsize=8)
        if index == 0:
            axis.set_ylabel("frequency (kHz)", fontsize=8)
        axis.tick_params(labelsize=7)
    axis = figure.add_subplot(grid[1, :])
    for label, run in curves:
        pesq = read_train_log(run)["valid"].get("pesq", {})
        epochs = sorted(pesq)
        axis.plot(epochs, [pesq[e] for e in epochs], marker="o", label=label)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("epoch", fontsize=9)
    axis.set_ylabel("validation PESQ", fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, output)
