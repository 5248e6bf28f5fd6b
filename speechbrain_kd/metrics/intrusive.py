"""Intrusive speech metrics: PESQ, STOI, ESTOI, SI-SDR and SNR.

Every function takes a clean reference and a processed ("enhanced")
signal as 1-D numpy arrays or torch tensors of any real dtype, converts
them with :func:`~speechbrain_kd.metrics.signals.aligned_pair` (integer
PCM is mapped to [-1, 1), both are trimmed to the shorter) and never
modifies the caller's buffers.

Scale: all five measures are invariant to a common gain. Before scoring,
both signals are multiplied by the same power of two that brings their
joint peak into [0.5, 1); this is exact in floating point, so ``x``,
``32768 * x`` and the ``int16`` version of ``x`` score bit-identically,
and the small ``eps`` floors act relative to the signal level.

Failures never raise: a measure that is undefined for an input (digital
silence, non-finite samples, audio too short for the measure) returns NaN
and logs the reason at debug level (collected per metric inside
:func:`undefined_reasons`). Invalid arguments (an unsupported
sample rate or PESQ mode) raise ``ValueError``.
"""

import contextlib
import contextvars
import logging
import math
import warnings

import numpy as np
import pesq as pesq_lib
from pystoi import stoi as pystoi_stoi

from speechbrain_kd.metrics.signals import aligned_pair

__all__ = [
    "PESQ_MODES",
    "estoi",
    "pesq",
    "si_sdr",
    "snr",
    "stoi",
    "undefined_reasons",
]

logger = logging.getLogger(__name__)

#: Default PESQ mode per sample rate: P.862.2 wide-band at 16 kHz,
#: P.862 narrow-band at 8 kHz.
PESQ_MODES = {16000: "wb", 8000: "nb"}

#: Energy floor of SI-SDR and SNR, relative to a peak in [0.5, 1).
EPS = 1e-12

# pystoi returns 1e-5 with this warning when fewer than 30 STFT frames
# remain after silent-frame removal (about 400 ms of active speech).
_STOI_TOO_SHORT = "Not enough STFT frames"
# 30 frames of 256 samples, hop 128, at pystoi's 10 kHz: shorter input can
# never be scored (and very short input makes pystoi raise).
_STOI_MIN_SECONDS = (29 * 128 + 256) / 10000


_REASONS = contextvars.ContextVar("undefined_metric_reasons", default=None)


@contextlib.contextmanager
def undefined_reasons():
    """Collects why metrics computed inside the block were undefined.

    Yields
    ------
    dict
        Filled with ``{metric: reason}`` for every metric that returned
        NaN in the block (the first reason of each).

    Example
    -------
    >>> with undefined_reasons() as reasons:
    ...     score = pesq(np.zeros(16000), np.zeros(16000))
    >>> reasons
    {'pesq': 'silent reference (all zeros)'}
    """
    reasons = {}
    token = _REASONS.set(reasons)
    try:
        yield reasons
    finally:
        _REASONS.reset(token)


def undefined(metric, reason):
    """Logs (and collects) why ``metric`` is undefined; returns NaN.

    Arguments
    ---------
    metric : str
        Metric name, e.g. ``pesq``.
    reason : str
        Why it cannot be computed.

    Returns
    -------
    float
        NaN.

    Example
    -------
    >>> undefined("snr", "silent reference")
    nan
    """
    logger.debug("%s is undefined for this pair: %s", metric, reason)
    reasons = _REASONS.get()
    if reasons is not None:
        reasons.setdefault(metric, reason)
    return math.nan


def _normalised_pair(clean, enhanced):
    """Aligned float64 copies scaled by a common power of two.

    The joint peak is brought into [0.5, 1). Multiplying by a power of two
    is exact, so the result does not depend on the input's scale.

    Returns ``(clean, enhanced, reason)`` where ``reason`` is ``None`` or
    a string saying why the pair cannot be scored.
    """
    clean, enhanced = aligned_pair(clean, enhanced)
    if len(clean) == 0:
        return clean, enhanced, "empty input"
    if not (np.all(np.isfinite(clean)) and np.all(np.isfinite(enhanced))):
        return clean, enhanced, "non-finite samples (NaN or inf)"
    peak = max(np.max(np.abs(clean)), np.max(np.abs(enhanced)))
    if peak > 0:
        exponent = np.frexp(peak)[1]
        scale = np.ldexp(1.0, -int(exponent))
        clean = clean * scale
        enhanced = enhanced * scale
    if not np.any(clean):
        return clean, enhanced, "silent reference (all zeros)"
    return clean, enhanced, None


def _pesq_mode(sample_rate, mode):
    """Validates the PESQ mode for a sample rate (``None``: the default)."""
    if sample_rate not in PESQ_MODES:
        raise ValueError(
            f"PESQ is defined at 8000 Hz (narrow-band) and 16000 Hz "
            f"(wide-band) only, got {sample_rate} Hz: resample to 8 or "
            "16 kHz first"
        )
    if mode is None:
        return PESQ_MODES[sample_rate]
    if mode not in ("wb", "nb"):
        raise ValueError(f"PESQ mode must be 'wb' or 'nb', got {mode!r}")
    if mode == "wb" and sample_rate != 16000:
        raise ValueError("wide-band PESQ (P.862.2) needs 16000 Hz input")
    return mode


def pesq(clean, enhanced, sample_rate=16000, mode=None):
    """Perceptual evaluation of speech quality (MOS-LQO), NaN on failure.

    Uses the ``pesq`` package (ITU-T reference code). By default the mode
    follows the rate: wide-band P.862.2 at 16 kHz, narrow-band P.862 at
    8 kHz; ``mode="nb"`` at 16 kHz is allowed explicitly.

    Arguments
    ---------
    clean : numpy.ndarray or torch.Tensor
        Clean reference waveform (1-D).
    enhanced : numpy.ndarray or torch.Tensor
        Processed waveform (1-D); both are trimmed to the shorter.
    sample_rate : int
        8000 or 16000 (anything else raises ``ValueError``).
    mode : str, optional
        ``"wb"`` or ``"nb"``; ``None`` picks the mode from the rate.

    Returns
    -------
    float
        The PESQ score, or NaN when PESQ cannot score the pair: no
        utterance detected (silence), input shorter than 1/4 s, a silent
        reference or processed signal, non-finite samples, or any other
        ``pesq.PesqError``. The reason is logged at debug level.

    Example
    -------
    >>> t = np.arange(16000) / 16000
    >>> tone = np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 2 * t)
    >>> pesq(tone, tone) > 4.5
    True
    >>> pesq(tone[:1600], tone[:1600])  # 0.1 s: too short
    nan
    """
    mode = _pesq_mode(sample_rate, mode)
    clean, enhanced, reason = _normalised_pair(clean, enhanced)
    if reason is None and not np.any(enhanced):
        reason = "silent processed signal (all zeros)"
    if reason is None:
        try:
            return float(pesq_lib.pesq(sample_rate, clean, enhanced, mode))
        except (pesq_lib.PesqError, ValueError) as error:
            # ValueError: the C code met NaN internally (e.g. silence).
            reason = f"{type(error).__name__}: {error}"
    return undefined("pesq", _pesq_reason(reason))


def _pesq_reason(reason):
    """A plain-words PESQ failure (the pesq package's names are cryptic)."""
    if "NoUtterances" in reason:
        return f"no speech found by PESQ's voice activity detector ({reason})"
    if "BufferTooShort" in reason:
        return f"shorter than PESQ's minimum of 1/4 s ({reason})"
    return reason


def _stoi(clean, enhanced, sample_rate, extended):
    """pystoi with NaN for silent, non-finite or too-short input."""
    name = "ESTOI" if extended else "STOI"
    clean, enhanced, reason = _normalised_pair(clean, enhanced)
    if reason is None and len(clean) < _STOI_MIN_SECONDS * sample_rate:
        reason = f"shorter than {_STOI_MIN_SECONDS} s"
    if reason is None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            score = float(pystoi_stoi(clean, enhanced, sample_rate, extended))
        if any(_STOI_TOO_SHORT in str(w.message) for w in caught):
            reason = "fewer than 30 frames of speech after silence removal"
        elif not math.isfinite(score):
            reason = "non-finite score"
        else:
            return score
    return undefined(name.lower(), reason)


def stoi(clean, enhanced, sample_rate=16000):
    """Short-time objective intelligibility (Taal et al., 2011).

    Computed with ``pystoi`` (which matches Taal's MATLAB code and
    resamples internally to 10 kHz).

    Arguments
    ---------
    clean : numpy.ndarray or torch.Tensor
        Clean reference waveform (1-D).
    enhanced : numpy.ndarray or torch.Tensor
        Processed waveform (1-D); both are trimmed to the shorter.
    sample_rate : int
        Sampling rate in Hz.

    Returns
    -------
    float
        STOI in [-1, 1] (typically [0, 1]), or NaN when undefined: silent
        reference, non-finite samples, or fewer than 30 frames (0.3968 s)
        of speech after silence removal (pystoi returns 1e-5 there, or
        raises on still shorter input).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal(16000)
    >>> round(stoi(x, x), 6)
    1.0
    >>> stoi(np.zeros(16000), x)
    nan
    """
    return _stoi(clean, enhanced, sample_rate, extended=False)


def estoi(clean, enhanced, sample_rate=16000):
    """Extended STOI (Jensen & Taal, 2016), via ``pystoi(extended=True)``.

    Arguments
    ---------
    clean : numpy.ndarray or torch.Tensor
        Clean reference waveform (1-D).
    enhanced : numpy.ndarray or torch.Tensor
        Processed waveform (1-D); both are trimmed to the shorter.
    sample_rate : int
        Sampling rate in Hz.

    Returns
    -------
    float
        ESTOI, or NaN when undefined (as for :func:`stoi`).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal(16000)
    >>> round(estoi(x, x), 6)
    1.0
    """
    return _stoi(clean, enhanced, sample_rate, extended=True)


def si_sdr(clean, enhanced, eps=EPS):
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al.).

    Convention: both signals are made zero-mean first, then
    ``alpha = <s_hat, s> / (||s||^2 + eps)``, ``target = alpha s``,
    ``residual = s_hat - target`` and
    ``SI-SDR = 10 log10((||target||^2 + eps) / (||residual||^2 + eps))``,
    after the common power-of-two normalisation of this module (so ``eps``
    is relative to a peak in [0.5, 1)).

    Arguments
    ---------
    clean : numpy.ndarray or torch.Tensor
        Clean reference waveform (1-D).
    enhanced : numpy.ndarray or torch.Tensor
        Processed waveform (1-D); both are trimmed to the shorter.
    eps : float
        Energy floor guarding the ratio.

    Returns
    -------
    float
        SI-SDR in dB; NaN for a silent (or constant) reference or
        non-finite samples. A silent estimate scores 0 dB.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal(16000)
    >>> si_sdr(x, 0.5 * x) > 100
    True
    >>> noise = rng.standard_normal(16000)
    >>> round(si_sdr(x, x + 0.1 * noise), 1)  # about 20 dB
    20.0
    """
    clean, enhanced, reason = _normalised_pair(clean, enhanced)
    if reason is None:
        clean = clean - np.mean(clean)
        enhanced = enhanced - np.mean(enhanced)
        clean_energy = float(np.dot(clean, clean))
        if clean_energy == 0.0:
            reason = "constant reference"
    if reason is not None:
        return undefined("si_sdr", reason)
    alpha = float(np.dot(enhanced, clean)) / (clean_energy + eps)
    target = alpha * clean
    residual = enhanced - target
    return 10.0 * math.log10(
        (float(np.dot(target, target)) + eps)
        / (float(np.dot(residual, residual)) + eps)
    )


def snr(clean, enhanced, eps=EPS):
    """Signal-to-noise ratio in dB: ``10 log10(sum s^2 / sum (s - s_hat)^2)``.

    No mean removal and no rescaling: the noise is ``clean - enhanced``.
    ``eps`` is added to both energies (after the power-of-two
    normalisation of this module).

    Arguments
    ---------
    clean : numpy.ndarray or torch.Tensor
        Clean reference waveform (1-D).
    enhanced : numpy.ndarray or torch.Tensor
        Processed waveform (1-D); both are trimmed to the shorter.
    eps : float
        Energy floor guarding the ratio.

    Returns
    -------
    float
        SNR in dB; NaN for a silent reference or non-finite samples.

    Example
    -------
    >>> x = np.array([1.0, -1.0, 1.0, -1.0])
    >>> round(snr(x, 0.9 * x), 3)  # noise = 0.1 x: 20 dB
    20.0
    """
    clean, enhanced, reason = _normalised_pair(clean, enhanced)
    if reason is not None:
        return undefined("snr", reason)
    noise = clean - enhanced
    return 10.0 * math.log10(
        (float(np.dot(clean, clean)) + eps)
        / (float(np.dot(noise, noise)) + eps)
    )
