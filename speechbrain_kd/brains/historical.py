"""The MetricGAN historical set: past enhanced utterances, kept on disk.

MetricGAN's discriminator replays enhanced utterances of earlier epochs
(with their metric scores) so that it does not forget what earlier
generators produced. Here they live under the training output folder, so
a resumed run finds them again:

``ROOT/epoch_0007/`` holds the enhanced wavs of epoch 7 (16-bit, named by
utterance id) and ``index.json`` (the generator that made them and the raw
metric scores of every utterance, ``null`` where a metric failed). The
index is written last, through a temporary file and a rename, so an epoch
without ``index.json`` (a run killed while writing it) is ignored and
rewritten when the epoch runs again. ``ROOT/noisy_scores.json`` caches the
scores of the noisy inputs, which never change.

Example
-------
>>> import tempfile
>>> history = HistoricalSet(tempfile.mkdtemp(), sample_rate=8000)
>>> history.write_epoch(1, "pesq", [("u1", np.zeros(800), {"pesq": 1.5})])
>>> [(r.epoch, r.uid, r.scores) for r in history.records(before_epoch=2)]
[(1, 'u1', {'pesq': 1.5})]
>>> history.records(before_epoch=1)
[]
"""

import dataclasses
import json
import math
import os
import pathlib
import random

import numpy as np
import soundfile as sf

INDEX = "index.json"
NOISY_SCORES = "noisy_scores.json"


@dataclasses.dataclass
class HistoricalRecord:
    """One enhanced utterance of an earlier epoch.

    Arguments
    ---------
    epoch : int
        Epoch that produced it.
    uid : str
        Utterance id.
    path : pathlib.Path
        The enhanced wav.
    scores : dict
        Raw metric scores (NaN where a metric failed).
    """

    epoch: int
    uid: str
    path: pathlib.Path
    scores: dict

    def load(self):
        """The enhanced waveform as float32 numpy.

        Returns
        -------
        numpy.ndarray
            ``[time]``.
        """
        audio, _ = sf.read(self.path, dtype="float32")
        return audio


class HistoricalSet:
    """Disk-backed MetricGAN historical set under ``root``.

    Arguments
    ---------
    root : str or pathlib.Path
        Folder (created on first write).
    sample_rate : int
        Sample rate of the stored wavs.

    Example
    -------
    >>> import tempfile
    >>> history = HistoricalSet(tempfile.mkdtemp())
    >>> for epoch in (1, 2):
    ...     history.write_epoch(
    ...         epoch,
    ...         "generator_pesq",
    ...         [(f"u{i}", np.zeros(160), {"pesq": 2.0}) for i in range(5)],
    ...     )
    >>> history.complete_epochs(), len(history.sample(3, fraction=0.2))
    ([1, 2], 2)
    """

    def __init__(self, root, sample_rate=16000):
        self.root = pathlib.Path(root)
        self.sample_rate = int(sample_rate)

    def epoch_folder(self, epoch):
        """The folder of one epoch.

        Arguments
        ---------
        epoch : int
            Epoch number.

        Returns
        -------
        pathlib.Path
            ``root/epoch_XXXX``.
        """
        return self.root / f"epoch_{int(epoch):04d}"

    def write_epoch(self, epoch, generator, items):
        """Stores the enhanced utterances of one epoch (replacing any).

        Arguments
        ---------
        epoch : int
            Epoch number.
        generator : str
            Name of the generator that enhanced them.
        items : iterable of (str, numpy.ndarray, dict)
            ``(utterance id, enhanced waveform, raw scores)``.
        """
        folder = self.epoch_folder(epoch)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / INDEX).unlink(missing_ok=True)
        records = []
        for uid, audio, scores in items:
            name = f"{uid}.wav"
            audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
            sf.write(folder / name, audio, self.sample_rate, "PCM_16")
            records.append(
                {"id": uid, "file": name, "scores": _to_json(scores)}
            )
        index = {"epoch": int(epoch), "generator": generator}
        index["records"] = records
        _write_json_atomic(folder / INDEX, index)

    def complete_epochs(self):
        """Epochs whose index was written.

        Returns
        -------
        list of int
            Sorted epoch numbers.
        """
        if not self.root.is_dir():
            return []
        epochs = []
        for folder in self.root.glob("epoch_*"):
            if (folder / INDEX).is_file():
                epochs.append(int(folder.name.split("_")[1]))
        return sorted(epochs)

    def records(self, before_epoch):
        """Every stored utterance of the complete epochs < ``before_epoch``.

        Arguments
        ---------
        before_epoch : int
            First epoch not to include (the current one).

        Returns
        -------
        list of HistoricalRecord
            In epoch order.
        """
        records = []
        for epoch in self.complete_epochs():
            if epoch < before_epoch:
                records.extend(self.epoch_records(epoch))
        return records

    def epoch_records(self, epoch):
        """The stored utterances of one complete epoch.

        Arguments
        ---------
        epoch : int
            Epoch number.

        Returns
        -------
        list of HistoricalRecord
            In the order they were written.

        Raises
        ------
        FileNotFoundError
            If the epoch has no index (not written, or incomplete).
        """
        folder = self.epoch_folder(epoch)
        index = json.loads((folder / INDEX).read_text())
        return [
            HistoricalRecord(
                epoch=int(epoch),
                uid=item["id"],
                path=folder / item["file"],
                scores=_from_json(item["scores"]),
            )
            for item in index["records"]
        ]

    def sample(self, before_epoch, fraction, seed=0, metrics=None):
        """A random ``fraction`` of the historical records.

        Arguments
        ---------
        before_epoch : int
            The current epoch (records of earlier epochs only).
        fraction : float
            Share of the records to draw (MetricGAN+: 0.2), rounded.
        seed : int
            Seed (combined with ``before_epoch`` for a reproducible draw).
        metrics : sequence of str, optional
            Only records with a finite score for each of these count
            (the others cannot train the discriminator).

        Returns
        -------
        list of HistoricalRecord
            ``round(fraction * len(records))`` distinct records.
        """
        records = self.records(before_epoch)
        if metrics is not None:
            records = [
                r
                for r in records
                if all(
                    math.isfinite(r.scores.get(m, math.nan)) for m in metrics
                )
            ]
        count = int(round(fraction * len(records)))
        rng = random.Random(int(seed) * 1_000_003 + int(before_epoch))
        return rng.sample(records, count)

    def noisy_scores(self):
        """The cached raw scores of noisy inputs.

        Returns
        -------
        dict
            ``{utterance id: {metric: score}}``.
        """
        path = self.root / NOISY_SCORES
        if not path.is_file():
            return {}
        cached = json.loads(path.read_text())
        return {uid: _from_json(scores) for uid, scores in cached.items()}

    def save_noisy_scores(self, scores):
        """Replaces the cache of noisy-input scores.

        Arguments
        ---------
        scores : dict
            ``{utterance id: {metric: score}}``.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        cached = {uid: _to_json(row) for uid, row in scores.items()}
        _write_json_atomic(self.root / NOISY_SCORES, cached)


def _to_json(scores):
    """Scores with NaN as None."""
    return {
        k: (None if v is None or math.isnan(v) else float(v))
        for k, v in scores.items()
    }


def _from_json(scores):
    """Scores with None as NaN."""
    return {k: (math.nan if v is None else float(v)) for k, v in scores.items()}


def _write_json_atomic(path, data):
    """Writes JSON through a temporary file and a rename."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
