"""Scoring pairs of signals: one pair, many pairs in parallel, summaries.

:func:`evaluate_pair` computes any subset of the metrics for one pair,
running PESQ once and handing its score to the composite measure.
:func:`evaluate_pairs` scores many pairs, optionally in a
:class:`~speechbrain_kd.metrics.pool.SafePool` (per-pair timeout, no
retries). :func:`summarize_scores` turns per-pair rows into means and
standard deviations with failure counts.

A pair *fails* when any requested metric is NaN: PESQ could not score it
(silence, less than 1/4 s of audio), the reference is silent, or its task
crashed or timed out. Summaries average over the pairs that did not fail,
so every metric's mean covers the same utterances.
"""

import logging
import math

import numpy as np
import torch

from speechbrain_kd.metrics.composite import composite, segmental_snr
from speechbrain_kd.metrics.intrusive import (
    PESQ_MODES,
    estoi,
    pesq,
    si_sdr,
    snr,
    stoi,
    undefined,
)
from speechbrain_kd.metrics.pool import DEFAULT_TIMEOUT, SafePool

__all__ = [
    "ALL_METRICS",
    "EXTRA_METRICS",
    "KNOWN_METRICS",
    "check_metrics",
    "evaluate_pair",
    "evaluate_pairs",
    "is_failure",
    "perceptual_rate",
    "summarize_scores",
]

#: PESQ, STOI, ESTOI and the composite measures of audio above 16 kHz
#: are computed after this resampling to 16 kHz (SI-SDR, SNR and SSNR stay
#: at the audio's own rate).
PERCEPTUAL_RESAMPLER = (
    "torchaudio.functional.resample to 16000 Hz (sinc_interp_hann, "
    "lowpass_filter_width 6, rolloff 0.99)"
)
_PERCEPTUAL = frozenset(
    {"pesq", "csig", "cbak", "covl", "stoi", "estoi", "llr", "wss"}
)

logger = logging.getLogger(__name__)

#: The metrics reported by default (the VoiceBank-DEMAND table columns).
ALL_METRICS = (
    "pesq",
    "stoi",
    "estoi",
    "csig",
    "cbak",
    "covl",
    "ssnr",
    "si_sdr",
)
#: Further metrics available on request: the composite's components and
#: the plain SNR.
EXTRA_METRICS = ("llr", "wss", "snr")
KNOWN_METRICS = ALL_METRICS + EXTRA_METRICS

_NEEDS_PESQ = frozenset({"pesq", "csig", "cbak", "covl"})
_FROM_COMPOSITE = frozenset({"csig", "cbak", "covl", "ssnr", "llr", "wss"})


def check_metrics(metrics, sample_rate=None):
    """Validates metric names (and the sample rate PESQ needs).

    Arguments
    ---------
    metrics : str or iterable of str
        Metric names among :data:`KNOWN_METRICS`.
    sample_rate : int, optional
        When given, also checks that PESQ-based metrics can be computed.

    Returns
    -------
    tuple of str
        The names, duplicates removed, in the given order.

    Example
    -------
    >>> check_metrics("pesq")
    ('pesq',)
    >>> check_metrics(["stoi", "pesq", "stoi"])
    ('stoi', 'pesq')
    """
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = tuple(dict.fromkeys(metrics))
    if not metrics:
        raise ValueError("no metric requested")
    unknown = [name for name in metrics if name not in KNOWN_METRICS]
    if unknown:
        raise ValueError(
            f"unknown metric(s) {', '.join(unknown)}; choose among "
            f"{', '.join(KNOWN_METRICS)}"
        )
    if (
        sample_rate is not None
        and perceptual_rate(sample_rate) not in PESQ_MODES
        and _NEEDS_PESQ.intersection(metrics)
    ):
        raise ValueError(
            f"PESQ, CSIG, CBAK and COVL need 8000 Hz or at least 16000 Hz "
            f"audio (higher rates are resampled to 16 kHz), got "
            f"{sample_rate} Hz"
        )
    return metrics


def perceptual_rate(sample_rate):
    """The rate PESQ, STOI and the composite measures are computed at:
    8 or 16 kHz as given, 16 kHz for any higher rate (the audio is then
    resampled by :data:`PERCEPTUAL_RESAMPLER`).

    Arguments
    ---------
    sample_rate : int
        The audio's rate.

    Returns
    -------
    int
        The rate of the perceptual metrics.

    Example
    -------
    >>> perceptual_rate(48000), perceptual_rate(16000), perceptual_rate(8000)
    (16000, 16000, 8000)
    """
    sample_rate = int(sample_rate)
    return 16000 if sample_rate > 16000 else sample_rate


def _resampled(signal, sample_rate, target):
    """``signal`` (1-D) at ``target`` Hz, as float64 numpy."""
    import torchaudio

    tensor = torch.as_tensor(np.asarray(signal, dtype=np.float32))
    out = torchaudio.functional.resample(tensor, sample_rate, target)
    return out.numpy().astype(np.float64)


def is_failure(scores, metrics=None):
    """Whether a pair failed: any requested metric is NaN.

    Arguments
    ---------
    scores : dict
        Metric name to score, as returned by :func:`evaluate_pair`.
    metrics : iterable of str, optional
        The metrics to check (default: every key of ``scores``).

    Returns
    -------
    bool
        True when a requested score is NaN (or missing).

    Example
    -------
    >>> is_failure({"pesq": float("nan"), "stoi": 0.9})
    True
    >>> is_failure({"pesq": float("nan"), "stoi": 0.9}, ["stoi"])
    False
    """
    metrics = scores.keys() if metrics is None else metrics
    return any(math.isnan(scores.get(name, math.nan)) for name in metrics)


def evaluate_pair(
    clean, enhanced, sample_rate=16000, metrics=ALL_METRICS, clip=True
):
    """Scores one clean/enhanced pair on the requested metrics.

    PESQ (wide-band at 16 kHz, narrow-band at 8 kHz) is computed once and
    passed to :func:`~speechbrain_kd.metrics.composite.composite`; the
    composite is skipped unless one of its outputs is requested.

    Arguments
    ---------
    clean : numpy.ndarray or torch.Tensor
        Clean reference waveform (1-D).
    enhanced : numpy.ndarray or torch.Tensor
        Processed waveform (1-D); both are trimmed to the shorter.
    sample_rate : int
        Sampling rate in Hz. Above 16 kHz, PESQ, STOI, ESTOI and the
        composite measures are computed after resampling to 16 kHz
        (:data:`PERCEPTUAL_RESAMPLER`); SI-SDR, SNR and SSNR at this rate.
    metrics : str or iterable of str
        Names among :data:`KNOWN_METRICS` (default :data:`ALL_METRICS`).
    clip : bool
        Clip CSIG, CBAK and COVL to [1, 5].

    Returns
    -------
    dict
        Metric name to float, in the order of ``metrics``; NaN marks a
        metric that is undefined for the pair (see :func:`is_failure`).

    Example
    -------
    >>> t = np.arange(16000) / 16000
    >>> clean = np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 2 * t)
    >>> noisy = clean + 0.05 * np.random.default_rng(0).standard_normal(16000)
    >>> scores = evaluate_pair(clean, noisy, metrics=["pesq", "si_sdr"])
    >>> sorted(scores), round(scores["si_sdr"], 1)
    (['pesq', 'si_sdr'], 20.0)
    >>> evaluate_pair(clean[:1600], noisy[:1600], metrics="pesq")
    {'pesq': nan}
    """
    metrics = check_metrics(metrics, sample_rate)
    scores = {}
    pesq_score = math.nan
    rate = perceptual_rate(sample_rate)
    heard_clean, heard_enhanced = clean, enhanced
    if rate != sample_rate and _PERCEPTUAL.intersection(metrics):
        heard_clean = _resampled(clean, sample_rate, rate)
        heard_enhanced = _resampled(enhanced, sample_rate, rate)
    if _NEEDS_PESQ.intersection(metrics):
        pesq_score = pesq(heard_clean, heard_enhanced, rate)
    scores["pesq"] = pesq_score
    if _FROM_COMPOSITE.intersection(metrics):
        scores.update(
            composite(
                heard_clean,
                heard_enhanced,
                sample_rate=rate,
                clip=clip,
                pesq_score=pesq_score,
            )
        )
        if rate != sample_rate and "ssnr" in metrics:
            scores["ssnr"] = segmental_snr(clean, enhanced, sample_rate)
    if "stoi" in metrics:
        scores["stoi"] = stoi(heard_clean, heard_enhanced, rate)
    if "estoi" in metrics:
        scores["estoi"] = estoi(heard_clean, heard_enhanced, rate)
    if "si_sdr" in metrics:
        scores["si_sdr"] = si_sdr(clean, enhanced)
    if "snr" in metrics:
        scores["snr"] = snr(clean, enhanced)
    for name in _FROM_COMPOSITE.intersection(metrics):
        if math.isnan(scores[name]):
            if name in _NEEDS_PESQ and math.isnan(pesq_score):
                undefined(name, "needs PESQ, which is undefined")
            else:
                undefined(name, "shorter than two analysis frames")
    return {name: float(scores[name]) for name in metrics}


def _portable(signal):
    """A CPU numpy view of a signal, fit to travel to a worker process."""
    if isinstance(signal, torch.Tensor):
        signal = signal.detach().cpu()
        if signal.dtype in (torch.float16, torch.bfloat16):
            signal = signal.float()  # numpy has no bfloat16
        return signal.numpy()
    return np.asarray(signal)


def evaluate_pairs(
    pairs,
    sample_rate=16000,
    metrics=ALL_METRICS,
    n_jobs=1,
    timeout=DEFAULT_TIMEOUT,
    progress=True,
    clip=True,
    names=None,
    function=None,
    pool=None,
):
    """Scores many pairs, in parallel when ``n_jobs > 1``, never hanging.

    With ``n_jobs > 1`` every pair is one task of a
    :class:`~speechbrain_kd.metrics.pool.SafePool`: a pair whose task
    raises, crashes its worker or runs longer than ``timeout`` seconds
    gets NaN for every metric (a counted failure) and is not retried.
    With ``n_jobs=1`` pairs are scored in this process (no timeout).

    Arguments
    ---------
    pairs : iterable of (clean, enhanced)
        1-D numpy arrays or tensors (tensors are moved to the CPU).
    sample_rate : int
        Sampling rate of every pair in Hz.
    metrics : str or iterable of str
        Names among :data:`KNOWN_METRICS` (default :data:`ALL_METRICS`).
    n_jobs : int
        Worker processes.
    timeout : float
        Seconds one pair may take (``n_jobs > 1``).
    progress : bool
        Show a tqdm progress bar.
    clip : bool
        Clip CSIG, CBAK and COVL to [1, 5].
    names : list of str, optional
        Pair names used in log messages.
    function : callable, optional
        Module-level replacement for :func:`evaluate_pair`, called as
        ``function(clean, enhanced, sample_rate, metrics, clip)``.
    pool : SafePool, optional
        A pool to reuse (its ``n_jobs`` and ``timeout`` apply); it is
        left open.

    Returns
    -------
    list of dict
        One ``{metric: score}`` row per pair, in order.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> clean = rng.standard_normal(16000)
    >>> pairs = [
    ...     (clean, clean + 0.1 * rng.standard_normal(16000)),
    ...     (np.zeros(16000), clean),
    ... ]
    >>> rows = evaluate_pairs(pairs, metrics=["snr"], progress=False)
    >>> [round(row["snr"]) for row in rows[:1]], rows[1]
    ([20], {'snr': nan})
    """
    metrics = check_metrics(metrics, sample_rate)
    function = evaluate_pair if function is None else function
    pairs = list(pairs)
    if names is None:
        names = [f"pair {index}" for index in range(len(pairs))]
    owns_pool = pool is None
    if owns_pool:
        pool = SafePool(function, n_jobs=n_jobs, timeout=timeout)
    elif pool.function is not function:
        raise ValueError("the pool runs another function than `function`")
    # Numpy arrays travel to workers; half-precision tensors are widened.
    pairs = [(_portable(a), _portable(b)) for a, b in pairs]
    tasks = [
        (clean, enhanced, sample_rate, metrics, clip)
        for clean, enhanced in pairs
    ]
    try:
        results = pool.map(tasks, progress=progress, desc="scoring")
    finally:
        if owns_pool:
            pool.close()
    rows = []
    for name, result in zip(names, results, strict=False):
        if result.ok:
            row = {m: float(result.value.get(m, math.nan)) for m in metrics}
        else:
            logger.warning("%s: metrics failed (%s)", name, result.error)
            row = dict.fromkeys(metrics, math.nan)
        if result.ok and is_failure(row):
            failed = ", ".join(m for m in metrics if math.isnan(row[m]))
            logger.info("%s: undefined metric(s): %s", name, failed)
        rows.append(row)
    return rows


def summarize_scores(rows, metrics=None):
    """Per-utterance means and standard deviations over successful pairs.

    Arguments
    ---------
    rows : list of dict
        Per-pair scores (as from :func:`evaluate_pairs`).
    metrics : iterable of str, optional
        Metrics to summarise (default: the keys of the first row).

    Returns
    -------
    dict
        ``<metric>`` (mean) and ``<metric>_std`` (population standard
        deviation) over the pairs where no requested metric failed, plus
        ``n_files`` and ``n_failed``. Means are NaN when every pair failed.

    Example
    -------
    >>> rows = [{"pesq": 2.0}, {"pesq": 3.0}, {"pesq": float("nan")}]
    >>> summarize_scores(rows)
    {'pesq': 2.5, 'pesq_std': 0.5, 'n_files': 3, 'n_failed': 1}
    """
    if metrics is None:
        metrics = tuple(rows[0]) if rows else ()
    metrics = tuple(metrics)
    good = [row for row in rows if not is_failure(row, metrics)]
    summary = {}
    for name in metrics:
        values = np.array([row[name] for row in good], dtype=np.float64)
        summary[name] = float(values.mean()) if len(values) else math.nan
        summary[f"{name}_std"] = (
            float(values.std()) if len(values) else math.nan
        )
    summary["n_files"] = len(rows)
    summary["n_failed"] = len(rows) - len(good)
    return summary
