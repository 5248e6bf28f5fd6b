"""Composite speech-quality measures CSIG, CBAK and COVL (Hu & Loizou).

A vectorised numpy implementation of the composite measures of

    Y. Hu and P. C. Loizou, "Evaluation of objective quality measures for
    speech enhancement", IEEE Trans. Audio, Speech and Language Processing,
    16(1):229-238, 2008,

following the conventions of the MATLAB routine ``composite.m`` that
accompanies P. C. Loizou, *Speech Enhancement: Theory and Practice*
(CRC Press, 2007/2013), so that the numbers can be compared with published
CSIG/CBAK/COVL values. The three measures are linear regressions of four
objective measures::

    Csig = 3.093 - 1.029 LLR + 0.603 PESQ - 0.009 WSS
    Cbak = 1.634 + 0.478 PESQ - 0.007 WSS + 0.063 segSNR
    Covl = 1.594 + 0.805 PESQ - 0.512 LLR - 0.007 WSS

Conventions (those of ``composite.m``):

* Both signals are trimmed to their common length and ``eps`` (2.2e-16) is
  added to every sample. Signals are used in their float scale; integer PCM
  is mapped to [-1, 1) by :func:`~speechbrain_kd.metrics.signals.
  as_float_signal`. Nothing is divided by 32768 and the inputs are never
  modified. Scores are identical for ``int16`` input and its float
  equivalent, and for ``x`` and ``32768 * x`` (the only absolute floors,
  ``eps`` and the 1e-10 band-energy floor, matter only on digital silence).
* Frames: ``winlength = round(30 ms * fs)`` (480 at 16 kHz), hop
  ``skiprate = floor(winlength / 4)`` (120), frame ``k`` (0-based) spans
  samples ``[k * skiprate, k * skiprate + winlength)`` and there are
  ``floor((len - winlength) / skiprate)`` frames (MATLAB's
  ``1:num_frames`` with ``num_frames = len/skiprate - winlength/skiprate``).
  Every frame is weighted by MATLAB's ``hanning(winlength)``, i.e.
  ``0.5 * (1 - cos(2 pi n / (winlength + 1)))`` for ``n = 1..winlength``
  (no zeros at the ends, unlike :func:`numpy.hanning`).
* LLR: LPC order 16 (10 below 10 kHz) by Levinson-Durbin on the
  autocorrelation of each windowed frame; per frame
  ``log(a_p R_c a_p' / a_c R_c a_c')`` with ``R_c`` the Toeplitz clean
  autocorrelation. Per-frame values are not clipped (as in ``composite.m``;
  clipping them to [0, 2] does not match the MATLAB reference values).
* WSS: 25 Gaussian critical-band filters on a ``2^nextpow2(2 winlength)``
  point FFT (1024 at 16 kHz), spectral slopes weighted with ``Kmax = 20``
  and ``Klocmax = 1``, including ``composite.m``'s nearest-peak search
  (which, when searching upwards, takes the band just below the peak).
* LLR and WSS are averaged over the lowest ``round(0.95 N)`` of the ``N``
  frame values; segSNR is the mean of all frame values, each clipped to
  [-10, 35] dB (no DC removal, no rescaling of the processed signal).
* PESQ: the ``pesq`` package, wide-band (P.862.2) at 16 kHz and
  narrow-band at 8 kHz. If PESQ fails (silent or too short input) the
  PESQ-based scores are NaN.
"""

import math

import numpy as np
import pesq as pesq_lib
from numpy.lib.stride_tricks import sliding_window_view

from speechbrain_kd.metrics.signals import aligned_pair

__all__ = [
    "composite",
    "critical_band_filters",
    "frame_parameters",
    "hanning",
    "llr",
    "llr_frames",
    "segmental_snr",
    "segsnr_frames",
    "wss",
    "wss_frames",
]

EPS = np.finfo(np.float64).eps
TRIM_FRACTION = 0.95
MIN_SNR, MAX_SNR = -10.0, 35.0
WSS_KMAX, WSS_KLOCMAX = 20.0, 1.0
ENERGY_FLOOR = 1e-10

# Critical-band centre frequencies and bandwidths (Hz) of composite.m.
CENTER_FREQUENCIES = np.array(
    [
        50.0, 120.0, 190.0, 260.0, 330.0, 400.0, 470.0, 540.0, 617.372,
        703.378, 798.717, 904.128, 1020.38, 1148.30, 1288.72, 1442.54,
        1610.70, 1794.16, 1993.93, 2211.08, 2446.71, 2701.97, 2978.04,
        3276.17, 3597.63,
    ]
)  # fmt: skip
BANDWIDTHS = np.array(
    [
        70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 77.3724, 86.0056, 95.3398,
        105.411, 116.256, 127.914, 140.423, 153.823, 168.154, 183.457,
        199.776, 217.153, 235.631, 255.255, 276.072, 298.126, 321.465,
        346.136,
    ]
)  # fmt: skip


def _matlab_round(value):
    """MATLAB ``round``: halves away from zero (for non-negative values)."""
    return int(math.floor(value + 0.5))


def frame_parameters(sample_rate):
    """Returns the frame length and hop of ``composite.m`` at a rate.

    Arguments
    ---------
    sample_rate : int
        Sampling rate in Hz.

    Returns
    -------
    tuple of int
        ``(winlength, skiprate)``: ``round(30 ms * fs)`` and a quarter of it.

    Example
    -------
    >>> frame_parameters(16000), frame_parameters(8000)
    ((480, 120), (240, 60))
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    winlength = _matlab_round(30 * sample_rate / 1000)
    return winlength, winlength // 4


def hanning(length):
    """MATLAB's ``hanning(length)`` window (no zero end points).

    Arguments
    ---------
    length : int
        Number of points.

    Returns
    -------
    numpy.ndarray
        ``0.5 * (1 - cos(2 pi n / (length + 1)))`` for ``n = 1..length``.

    Example
    -------
    >>> hanning(3)
    array([0.5, 1. , 0.5])
    """
    n = np.arange(1, length + 1)
    return 0.5 * (1.0 - np.cos(2.0 * np.pi * n / (length + 1)))


def _fft_length(winlength):
    """``2^nextpow2(2 * winlength)``."""
    return 1 << int(math.ceil(math.log2(2 * winlength)))


def critical_band_filters(sample_rate=16000):
    """The 25 Gaussian critical-band filters of the WSS measure.

    Arguments
    ---------
    sample_rate : int
        Sampling rate in Hz; sets the FFT length ``2^nextpow2(2 winlength)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(25, n_fft // 2)``: the weight of FFT bin ``j`` in band
        ``i``, ``exp(-11 ((j - floor(f0)) / bw)^2 + log(70 / bandwidth))``
        with ``f0`` and ``bw`` in bins, set to 0 where it is not above
        ``exp(-30 / (2 * 2.303))``.

    Example
    -------
    >>> filters = critical_band_filters(16000)
    >>> filters.shape, int(filters[0].argmax()), float(filters[0].max())
    ((25, 512), 3, 1.0)
    """
    winlength, _ = frame_parameters(sample_rate)
    half = _fft_length(winlength) // 2
    max_freq = sample_rate / 2.0
    min_factor = math.exp(-30.0 / (2.0 * 2.303))
    centre_bins = np.floor(CENTER_FREQUENCIES / max_freq * half)
    widths = BANDWIDTHS / max_freq * half
    norm = np.log(BANDWIDTHS[0]) - np.log(BANDWIDTHS)
    bins = np.arange(half)
    filters = np.exp(
        -11.0 * ((bins[None, :] - centre_bins[:, None]) / widths[:, None]) ** 2
        + norm[:, None]
    )
    return np.where(filters > min_factor, filters, 0.0)


def _prepare(clean, enhanced):
    """Aligns, converts and offsets (``+ eps``) a pair as composite.m does."""
    clean, enhanced = aligned_pair(clean, enhanced)
    return clean + EPS, enhanced + EPS


def _windowed_frames(signal, sample_rate):
    """Hanning-weighted frames, shape ``(num_frames, winlength)``."""
    winlength, skiprate = frame_parameters(sample_rate)
    num_frames = max((len(signal) - winlength) // skiprate, 0)
    if num_frames == 0:
        return np.zeros((0, winlength))
    frames = sliding_window_view(signal, winlength)[::skiprate][:num_frames]
    return frames * hanning(winlength)


def _trimmed_mean(values, fraction=TRIM_FRACTION):
    """Mean of the lowest ``round(fraction * N)`` values (NaN sorted last)."""
    count = _matlab_round(len(values) * fraction)
    if count == 0:
        return math.nan
    return float(np.mean(np.sort(values)[:count]))


# ----------------------------------------------------------------- LLR


def _autocorrelation(frames, order):
    """``R[:, k] = sum_n x[n] x[n + k]`` for ``k = 0..order``."""
    length = frames.shape[1]
    lags = [
        np.einsum("fn,fn->f", frames[:, : length - k], frames[:, k:])
        for k in range(order + 1)
    ]
    return np.stack(lags, axis=1)


def _lpc_polynomials(autocorr):
    """Levinson-Durbin over all frames at once.

    Returns the prediction-error filters ``[1, -a_1, ..., -a_P]`` of shape
    ``(num_frames, P + 1)`` for autocorrelations of shape
    ``(num_frames, P + 1)``.
    """
    num_frames, order = autocorr.shape[0], autocorr.shape[1] - 1
    coeffs = np.zeros((num_frames, order))
    error = autocorr[:, 0].copy()
    for i in range(order):
        past = coeffs[:, :i].copy()
        # Prediction of lag i + 1 from lags i, i - 1, ..., 1.
        predicted = np.einsum("fj,fj->f", past, autocorr[:, i:0:-1])
        reflection = (autocorr[:, i + 1] - predicted) / error
        coeffs[:, i] = reflection
        coeffs[:, :i] = past - reflection[:, None] * past[:, ::-1]
        error = error * (1.0 - reflection * reflection)
    return np.concatenate([np.ones((num_frames, 1)), -coeffs], axis=1)


def _llr_from_frames(clean_frames, enhanced_frames, sample_rate):
    """Per-frame LLR of already windowed frames."""
    order = 10 if sample_rate < 10000 else 16
    r_clean = _autocorrelation(clean_frames, order)
    r_enhanced = _autocorrelation(enhanced_frames, order)
    with np.errstate(divide="ignore", invalid="ignore"):
        a_clean = _lpc_polynomials(r_clean)
        a_enhanced = _lpc_polynomials(r_enhanced)
        index = np.arange(order + 1)
        toeplitz = r_clean[:, np.abs(index[:, None] - index[None, :])]
        numerator = np.einsum("fi,fij,fj->f", a_enhanced, toeplitz, a_enhanced)
        denominator = np.einsum("fi,fij,fj->f", a_clean, toeplitz, a_clean)
        return np.log(numerator / denominator)


def llr_frames(clean, enhanced, sample_rate=16000):
    """Per-frame log-likelihood ratio (LPC distance) of ``composite.m``.

    Arguments
    ---------
    clean : numpy.ndarray or torch.Tensor
        Clean reference waveform (1-D).
    enhanced : numpy.ndarray or torch.Tensor
        Processed waveform (1-D); both are trimmed to the shorter.
    sample_rate : int
        Sampling rate in Hz (LPC order 16, or 10 below 10 kHz).

    Returns
    -------
    numpy.ndarray
        One LLR value per frame (not clipped).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal(16000)
    >>> llr_frames(x, x).shape, float(np.abs(llr_frames(x, x)).max()) < 1e-9
    ((129,), True)
    """
    clean, enhanced = _prepare(clean, enhanced)
    return _llr_from_frames(
        _windowed_frames(clean, sample_rate),
        _windowed_frames(enhanced, sample_rate),
        sample_rate,
    )


def llr(clean, enhanced, sample_rate=16000):
    """Log-likelihood ratio as used by the composite measure.

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
        Mean of the lowest 95 % of the per-frame LLR values (NaN when the
        signals are shorter than two frames' worth of samples).

    Example
    -------
    >>> from scipy.signal import lfilter
    >>> rng = np.random.default_rng(0)
    >>> x = 0.02 * lfilter([1.0], [1.0, -1.6, 0.8], rng.standard_normal(16000))
    >>> round(llr(x, x + 0.02 * rng.standard_normal(16000)), 3)
    0.447
    """
    return _trimmed_mean(llr_frames(clean, enhanced, sample_rate))


# ----------------------------------------------------------------- WSS


def _band_energies_db(frames, filters, n_fft):
    """Critical-band energies in dB, shape ``(num_frames, 25)``."""
    half = n_fft // 2
    power = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)[:, :half]) ** 2
    return 10.0 * np.log10(np.maximum(power @ filters.T, ENERGY_FLOOR))


def _nearest_peaks(energy, slope):
    """The nearest-peak search of composite.m for bands ``0..num_crit-2``.

    A band on a rising slope walks up while the slope stays positive and,
    as in composite.m, takes the energy of the band *below* the one where
    the walk stops; a band on a falling (or flat) slope walks down to the
    last rising slope and takes the band above it.
    """
    num_slopes = slope.shape[1]
    index = np.broadcast_to(np.arange(num_slopes), slope.shape)
    # First n >= i with slope[n] <= 0 (num_slopes when there is none).
    stop_up = np.where(slope <= 0, index, num_slopes)
    stop_up = np.minimum.accumulate(stop_up[:, ::-1], axis=1)[:, ::-1]
    # Last n <= i with slope[n] > 0 (-1 when there is none).
    stop_down = np.maximum.accumulate(np.where(slope > 0, index, -1), axis=1)
    peak_index = np.where(slope > 0, stop_up - 1, stop_down + 1)
    return np.take_along_axis(energy, peak_index, axis=1)


def _slope_weights(energy, slope):
    """WSS weights ``Wmax * Wlocmax`` of one signal, per frame and band."""
    peaks = _nearest_peaks(energy, slope)
    below = energy[:, :-1]
    db_max = energy.max(axis=1, keepdims=True)
    w_max = WSS_KMAX / (WSS_KMAX + db_max - below)
    w_loc = WSS_KLOCMAX / (WSS_KLOCMAX + peaks - below)
    return w_max * w_loc


def _wss_from_frames(clean_frames, enhanced_frames, sample_rate):
    """Per-frame weighted spectral slope distance of windowed frames."""
    winlength, _ = frame_parameters(sample_rate)
    n_fft = _fft_length(winlength)
    filters = critical_band_filters(sample_rate)
    e_clean = _band_energies_db(clean_frames, filters, n_fft)
    e_enhanced = _band_energies_db(enhanced_frames, filters, n_fft)
    s_clean = np.diff(e_clean, axis=1)
    s_enhanced = np.diff(e_enhanced, axis=1)
    weights = 0.5 * (
        _slope_weights(e_clean, s_clean)
        + _slope_weights(e_enhanced, s_enhanced)
    )
    distance = np.sum(weights * (s_clean - s_enhanced) ** 2, axis=1)
    return distance / np.sum(weights, axis=1)


def wss_frames(clean, enhanced, sample_rate=16000):
    """Per-frame weighted spectral slope (WSS) distance of ``composite.m``.

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
    numpy.ndarray
        One WSS distance per frame.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal(16000)
    >>> float(wss_frames(x, 0.5 * x).max()) < 1e-9
    True
    """
    clean, enhanced = _prepare(clean, enhanced)
    return _wss_from_frames(
        _windowed_frames(clean, sample_rate),
        _windowed_frames(enhanced, sample_rate),
        sample_rate,
    )


def wss(clean, enhanced, sample_rate=16000):
    """Weighted spectral slope distance as used by the composite measure.

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
        Mean of the lowest 95 % of the per-frame WSS distances.

    Example
    -------
    >>> from scipy.signal import lfilter
    >>> rng = np.random.default_rng(0)
    >>> x = 0.02 * lfilter([1.0], [1.0, -1.6, 0.8], rng.standard_normal(16000))
    >>> round(wss(x, x + 0.02 * rng.standard_normal(16000)), 2)
    2.59
    """
    return _trimmed_mean(wss_frames(clean, enhanced, sample_rate))


# -------------------------------------------------------------- segSNR


def _segsnr_from_frames(clean_frames, enhanced_frames):
    """Per-frame SNR in dB of windowed frames, clipped to [-10, 35]."""
    signal_energy = np.sum(clean_frames**2, axis=1)
    noise_energy = np.sum((clean_frames - enhanced_frames) ** 2, axis=1)
    with np.errstate(divide="ignore"):
        snr = 10.0 * np.log10(signal_energy / (noise_energy + EPS) + EPS)
    return np.clip(snr, MIN_SNR, MAX_SNR)


def segsnr_frames(clean, enhanced, sample_rate=16000):
    """Per-frame segmental SNR of ``composite.m`` (clipped to [-10, 35]).

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
    numpy.ndarray
        ``10 log10(E_clean / (E_noise + eps) + eps)`` per Hanning-weighted
        frame, clipped to [-10, 35] dB.

    Example
    -------
    >>> x = np.sin(0.05 * np.arange(16000))
    >>> np.round(segsnr_frames(x, 0.5 * x)[:3], 4)
    array([6.0206, 6.0206, 6.0206])
    """
    clean, enhanced = _prepare(clean, enhanced)
    return _segsnr_from_frames(
        _windowed_frames(clean, sample_rate),
        _windowed_frames(enhanced, sample_rate),
    )


def segmental_snr(clean, enhanced, sample_rate=16000):
    """Segmental SNR (dB) as used by the composite measure (Cbak).

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
        Mean over all frames of the clipped per-frame SNR (no trimming).

    Example
    -------
    >>> x = np.sin(0.05 * np.arange(16000))
    >>> segmental_snr(x, x), round(segmental_snr(x, -x), 4)
    (35.0, -6.0206)
    """
    values = segsnr_frames(clean, enhanced, sample_rate)
    return float(np.mean(values)) if len(values) else math.nan


# ----------------------------------------------------------- composite


def _pesq_or_nan(clean, enhanced, sample_rate):
    """PESQ (wide-band at 16 kHz, narrow-band at 8 kHz), NaN on failure.

    Besides its ``PesqError`` family (no utterances, buffer too short), the
    pesq package raises a bare ``ValueError`` on a silent degraded signal
    ("cannot convert float NaN to integer"); the rate and the shapes are
    validated before this call, so a ``ValueError`` here is a PESQ failure.
    """
    if len(clean) == 0:
        return math.nan
    mode = "wb" if sample_rate == 16000 else "nb"
    try:
        # The pesq package divides by the peak, 0/0 on digital silence.
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(pesq_lib.pesq(sample_rate, clean, enhanced, mode))
    except (pesq_lib.PesqError, ValueError):
        return math.nan


def composite(clean, enhanced, sample_rate=16000, clip=True, pesq_score=None):
    """CSIG, CBAK and COVL of Hu & Loizou (2008), with their components.

    Arguments
    ---------
    clean : numpy.ndarray or torch.Tensor
        Clean reference waveform (1-D, float in [-1, 1] or integer PCM).
    enhanced : numpy.ndarray or torch.Tensor
        Processed waveform (1-D); both are trimmed to the shorter.
    sample_rate : int
        Sampling rate in Hz. PESQ is computed at 16000 (wide-band) and
        8000 (narrow-band) only; pass ``pesq_score`` for other rates.
    clip : bool
        Clip CSIG, CBAK and COVL to [1, 5] (``False`` returns the raw
        regression values, as MATLAB's ``composite.m`` does).
    pesq_score : float, optional
        A precomputed PESQ score to use instead of computing one.

    Returns
    -------
    dict
        ``csig``, ``cbak``, ``covl``, ``pesq``, ``llr``, ``wss``, ``ssnr``
        as floats. If PESQ fails (silent or too short input) ``pesq``,
        ``csig``, ``cbak`` and ``covl`` are NaN; ``llr``, ``wss`` and
        ``ssnr`` are NaN when the input is shorter than two frames.

    Example
    -------
    >>> from scipy.signal import lfilter
    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(32000) / 16000
    >>> clean = lfilter([1.0], [1.0, -1.6, 0.8], rng.standard_normal(len(t)))
    >>> clean *= 0.02 * (1.2 + np.sin(2 * np.pi * 2 * t))  # a "syllable" rate
    >>> noisy = clean + 0.02 * rng.standard_normal(len(t))
    >>> scores = composite(clean, noisy)
    >>> {key: round(value, 2) for key, value in scores.items()}
    ... # doctest: +NORMALIZE_WHITESPACE
    {'csig': 4.15, 'cbak': 3.58, 'covl': 3.5, 'pesq': 2.75, 'llr': 0.55,
     'wss': 4.07, 'ssnr': 10.53}
    >>> composite(clean, noisy, pesq_score=4.5)["csig"]  # raw value above 5
    5.0
    """
    if pesq_score is None and sample_rate not in (8000, 16000):
        raise ValueError(
            "PESQ needs a sample rate of 8000 or 16000 Hz, got "
            f"{sample_rate}; resample or pass pesq_score"
        )
    clean, enhanced = aligned_pair(clean, enhanced)
    if pesq_score is None:
        pesq_score = _pesq_or_nan(clean, enhanced, sample_rate)
    pesq_score = float(pesq_score)

    clean_frames = _windowed_frames(clean + EPS, sample_rate)
    enhanced_frames = _windowed_frames(enhanced + EPS, sample_rate)
    llr_mean = _trimmed_mean(
        _llr_from_frames(clean_frames, enhanced_frames, sample_rate)
    )
    wss_mean = _trimmed_mean(
        _wss_from_frames(clean_frames, enhanced_frames, sample_rate)
    )
    seg = _segsnr_from_frames(clean_frames, enhanced_frames)
    ssnr = float(np.mean(seg)) if len(seg) else math.nan

    csig = 3.093 - 1.029 * llr_mean + 0.603 * pesq_score - 0.009 * wss_mean
    cbak = 1.634 + 0.478 * pesq_score - 0.007 * wss_mean + 0.063 * ssnr
    covl = 1.594 + 0.805 * pesq_score - 0.512 * llr_mean - 0.007 * wss_mean
    if clip:
        # NaN stays NaN under min/max clipping with numpy.
        csig, cbak, covl = (
            float(np.clip(value, 1.0, 5.0)) for value in (csig, cbak, covl)
        )
    return {
        "csig": float(csig),
        "cbak": float(cbak),
        "covl": float(covl),
        "pesq": pesq_score,
        "llr": llr_mean,
        "wss": wss_mean,
        "ssnr": ssnr,
    }
