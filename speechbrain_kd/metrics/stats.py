"""SpeechBrain integration: a ``MetricStats`` for enhancement metrics.

:class:`EnhancementMetricStats` replaces the usual
``MetricStats(metric=pesq_eval, n_jobs=..., batch_eval=False)`` of
SpeechBrain's enhancement recipes. It scores with the safe path of this
package (PESQ failures are NaN and counted, parallel workers time out
instead of retrying forever), and it can score several metrics in one
pass per utterance (PESQ computed once). In a Brain's hooks::

    # on_stage_start, for validation and test
    self.pesq_metric = EnhancementMetricStats("pesq", n_jobs=2)
    # compute_objectives, outside training
    self.pesq_metric.append(
        batch.id, predict=enhanced, target=clean, lengths=lens
    )
    # on_stage_end
    pesq = self.pesq_metric.summarize("average")

With ``n_jobs > 1`` the worker processes start at the first ``append``,
are reused by every later one, and stop at ``summarize``, ``clear``,
``close`` or garbage collection. Workers use the ``forkserver`` (or
``spawn``) start method, which re-imports the main script: keep the
recipe's top-level code under ``if __name__ == "__main__":``, as
SpeechBrain recipes do.
"""

import math

import numpy as np
import torch

from speechbrain.utils.metric_stats import MetricStats
from speechbrain_kd.metrics.evaluation import (
    check_metrics,
    evaluate_pair,
    evaluate_pairs,
    is_failure,
)
from speechbrain_kd.metrics.health import OutputHealth
from speechbrain_kd.metrics.pool import DEFAULT_TIMEOUT, SafePool

__all__ = ["EnhancementMetricStats"]


def _cpu(signal):
    """A CPU tensor (half precision widened to float32), or the input."""
    if not isinstance(signal, torch.Tensor):
        return signal
    signal = signal.detach().cpu()
    if signal.dtype in (torch.float16, torch.bfloat16):
        signal = signal.float()  # numpy has no bfloat16
    return signal


def _split_batch(batch, lengths, name):
    """Splits a padded batch into 1-D CPU items trimmed to their lengths.

    ``round(length * T)`` samples are kept of each item, as SpeechBrain's
    ``sequence_evaluation`` does (``T``: the padded time dimension).
    """
    if isinstance(batch, (torch.Tensor, np.ndarray)):
        if batch.ndim == 3 and 1 in batch.shape[1:]:
            # (batch, 1, time) or (batch, time, 1): a mono channel axis.
            axis = 1 if batch.shape[1] == 1 else 2
            batch = batch.squeeze(axis)
        if batch.ndim != 2:
            raise ValueError(
                f"{name} must be a (batch, time) batch of mono signals, got "
                f"shape {tuple(batch.shape)}"
            )
        items = list(_cpu(batch))
    else:
        items = [_cpu(x) for x in batch]
    if lengths is None:
        return items
    lengths = torch.as_tensor(lengths).detach().cpu()
    if len(lengths) != len(items):
        raise ValueError(
            f"{len(lengths)} lengths for a batch of {len(items)} {name} items"
        )
    trimmed = []
    for item, relative in zip(items, lengths, strict=False):
        total = item.shape[-1]
        keep = int(torch.round(relative * total).clamp(0, total))
        trimmed.append(item[..., :keep])
    return trimmed


class EnhancementMetricStats(MetricStats):
    """Collects enhancement metrics per utterance and summarises them.

    Arguments
    ---------
    metric : str or list of str
        One metric name or several (``"pesq"``, ``"stoi"``, ``"estoi"``,
        ``"csig"``, ``"cbak"``, ``"covl"``, ``"ssnr"``, ``"si_sdr"``,
        ``"llr"``, ``"wss"``, ``"snr"``). The first is the *primary*
        metric, the one behind ``average``, ``min_score`` and ``max_score``.
    sample_rate : int
        Sampling rate of the signals (16000: wide-band PESQ; 8000:
        narrow-band).
    n_jobs : int
        Worker processes (1: score in this process).
    timeout : float
        Seconds one utterance may take when ``n_jobs > 1``; a slower one
        scores NaN and counts as failed.
    clip : bool
        Clip CSIG, CBAK and COVL to [1, 5].

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> clean = torch.tensor(rng.standard_normal((2, 16000)))
    >>> noisy = clean + 0.1 * torch.tensor(rng.standard_normal((2, 16000)))
    >>> stats = EnhancementMetricStats(["snr", "si_sdr"])
    >>> stats.append(
    ...     ["a", "b"],
    ...     predict=noisy,
    ...     target=clean,
    ...     lengths=torch.tensor([1.0, 0.5]),
    ... )
    >>> summary = stats.summarize()
    >>> round(summary["average"]), round(summary["si_sdr"]), summary["n_failed"]
    (20, 20, 0)
    >>> stats.append(["silent"], predict=noisy[:1], target=0 * clean[:1])
    >>> stats.summarize("n_failed"), stats.failed_ids
    (1, ['silent'])
    """

    def __init__(
        self,
        metric="pesq",
        sample_rate=16000,
        n_jobs=1,
        timeout=DEFAULT_TIMEOUT,
        clip=True,
    ):
        self.metrics = check_metrics(metric, sample_rate)
        self.sample_rate = sample_rate
        self.timeout = timeout
        self.clip = clip
        self._pool = None
        self.health = OutputHealth()
        super().__init__(
            metric=self.metrics[0], n_jobs=n_jobs, batch_eval=False
        )

    def clear(self):
        """Removes every stored score (and stops idle workers)."""
        self.close()
        self.ids = []
        self.rows = []
        self.scores = []
        self.durations = []
        self.summary = {}
        self.health = OutputHealth()

    def close(self):
        """Stops the worker processes, if any (they restart on demand)."""
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.close()
            self._pool = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_pool"] = None  # processes do not travel
        return state

    def append(self, ids, predict, target, lengths=None):
        """Scores a batch and stores one row of scores per id.

        Arguments
        ---------
        ids : list of str
            Utterance ids.
        predict : torch.Tensor or list
            Enhanced signals, ``(batch, time)`` (a singleton channel axis
            is dropped) or a list of 1-D signals.
        target : torch.Tensor or list
            Clean signals, same layout.
        lengths : torch.Tensor, optional
            Relative lengths in [0, 1]; item ``i`` keeps
            ``round(lengths[i] * T)`` samples of each signal.
        """
        predict = _split_batch(predict, lengths, "predict")
        target = _split_batch(target, lengths, "target")
        ids = list(ids)
        if not len(ids) == len(predict) == len(target):
            raise ValueError(
                f"{len(ids)} ids, {len(predict)} predictions and "
                f"{len(target)} targets: the batch sizes differ"
            )
        if self.n_jobs > 1 and self._pool is None:
            self._pool = SafePool(
                evaluate_pair, n_jobs=self.n_jobs, timeout=self.timeout
            )
        rows = evaluate_pairs(
            list(zip(target, predict, strict=False)),
            sample_rate=self.sample_rate,
            metrics=self.metrics,
            progress=False,
            clip=self.clip,
            names=ids,
            pool=self._pool,
            n_jobs=self.n_jobs,
        )
        self.ids.extend(ids)
        self.rows.extend(rows)
        self.scores.extend(row[self.metrics[0]] for row in rows)
        self.durations.extend(len(t) / self.sample_rate for t in target)
        for clean, enhanced in zip(target, predict, strict=False):
            self.health.append(clean, enhanced)

    @property
    def failed_ids(self):
        """Ids of the utterances where a requested metric failed."""
        return [
            utt_id
            for utt_id, row in zip(self.ids, self.rows, strict=False)
            if is_failure(row, self.metrics)
        ]

    def summarize(self, field=None):
        """Summarises the scores over the utterances that did not fail.

        Stops the worker processes (they restart if ``append`` is called
        again).

        Arguments
        ---------
        field : str, optional
            Return only this entry of the summary.

        Returns
        -------
        dict or float
            ``average``, ``min_score``, ``min_id``, ``max_score``,
            ``max_id`` of the primary metric; the mean of every metric
            under its own name; ``n_failed`` (utterances with any NaN
            metric) and ``n_items``. Means ignore failed utterances and
            are NaN when there is none left. The output health
            (:class:`~speechbrain_kd.metrics.health.OutputHealth`:
            ``rms_ratio``, ``si_sdr_median``, ``collapsed_files``) over
            every utterance.
        """
        self.close()
        good = [
            index
            for index, row in enumerate(self.rows)
            if not is_failure(row, self.metrics)
        ]
        primary = [self.rows[index][self.metrics[0]] for index in good]
        summary = {}
        if good:
            low = good[int(np.argmin(primary))]
            high = good[int(np.argmax(primary))]
            summary.update(
                average=float(np.mean(primary)),
                min_score=float(self.scores[low]),
                min_id=self.ids[low],
                max_score=float(self.scores[high]),
                max_id=self.ids[high],
            )
        else:
            summary.update(
                average=math.nan,
                min_score=math.nan,
                min_id=None,
                max_score=math.nan,
                max_id=None,
            )
        for name in self.metrics:
            values = [self.rows[index][name] for index in good]
            summary[name] = float(np.mean(values)) if good else math.nan
        summary["n_failed"] = len(self.rows) - len(good)
        summary["n_items"] = len(self.rows)
        summary.update(self.health.summarize())
        self.summary = summary
        if field is not None:
            return summary[field]
        return summary

    def write_stats(self, filestream, verbose=False):
        """Writes the summary, the per-metric means and the failures.

        Arguments
        ---------
        filestream : file-like object
            A text stream to write to.
        verbose : bool
            Also print the text.

        Example
        -------
        >>> import io
        >>> stats = EnhancementMetricStats("snr")
        >>> stats.append(["a"], predict=[np.ones(4)], target=[np.ones(4)])
        >>> stream = io.StringIO()
        >>> stats.write_stats(stream)
        >>> print(stream.getvalue().splitlines()[0])
        Average snr: 120.0000 over 1 utterances (0 failed)
        """
        summary = self.summarize()
        primary = self.metrics[0]
        lines = [
            f"Average {primary}: {summary['average']:.4f} over "
            f"{summary['n_items']} utterances ({summary['n_failed']} failed)",
            f"Min {primary}: {summary['min_score']:.4f} "
            f"id: {summary['min_id']}",
            f"Max {primary}: {summary['max_score']:.4f} "
            f"id: {summary['max_id']}",
        ]
        lines += [
            f"Average {name}: {summary[name]:.4f}" for name in self.metrics[1:]
        ]
        if summary["n_failed"]:
            lines.append("Failed ids: " + " ".join(self.failed_ids))
        message = "\n".join(lines) + "\n"
        filestream.write(message)
        if verbose:
            print(message)
