"""Binaural and monaural mixtures of spatial injection (paper 002, Sec. 3.1).

Eq. 6-7 give the binaural teacher's input, speech and noise each
convolved with an impulse response per ear; Eq. 8 the monaural input of
the student and the bad student, ``y = x_hat + v_hat``, whose target is
the scaled clean speech ``x_hat``.
"""

import math

import numpy as np
from scipy.signal import fftconvolve


def scale_speech(speech, level_db):
    """``x_hat = nu x`` with ``nu = 10 ** (level / 20) / sigma_x``.

    Arguments
    ---------
    speech : numpy.ndarray
        Clean speech (1-D).
    level_db : float
        Target RMS level in dB (the paper draws it from -35..-15 dB).

    Returns
    -------
    numpy.ndarray
        The scaled speech (float64), of RMS ``10 ** (level_db / 20)``.

    Example
    -------
    >>> scale_speech(np.array([2.0, -2.0]), -20.0)
    array([ 0.1, -0.1])
    """
    speech = np.asarray(speech, dtype=np.float64)
    sigma = math.sqrt(math.fsum(speech**2) / speech.size)
    if sigma == 0.0:
        raise ValueError("the speech is silent: it cannot be set to a level")
    return speech * (10 ** (level_db / 20) / sigma)


def scale_noise(noise, scaled_speech, snr_db):
    """The noise scaled to ``snr_db`` below the scaled speech.

    The paper prints ``theta = 10 ** (-SNR / 10 * sigma_x^2 / sigma_v^2)``;
    the power ratio it stands for is used:
    ``theta = sqrt(sigma_x_hat^2 / (sigma_v^2 * 10 ** (SNR / 10)))``.

    Arguments
    ---------
    noise : numpy.ndarray
        Noise (1-D, at least as long as the speech; cut to its length).
    scaled_speech : numpy.ndarray
        ``x_hat`` (:func:`scale_speech`).
    snr_db : float
        Speech-to-noise power ratio in dB.

    Returns
    -------
    numpy.ndarray
        ``v_hat``, as long as the speech.

    Example
    -------
    >>> v = scale_noise(np.ones(4), np.full(4, 0.1), 20.0)
    >>> np.round(v, 6)
    array([0.01, 0.01, 0.01, 0.01])
    """
    length = len(scaled_speech)
    noise = np.asarray(noise, dtype=np.float64)
    if noise.size < length:
        raise ValueError(
            f"the noise ({noise.size} samples) is shorter than the speech "
            f"({length})"
        )
    noise = noise[:length]
    noise_power = math.fsum(noise**2) / length
    if noise_power == 0.0:
        raise ValueError("the noise is silent: it cannot be set to an SNR")
    speech_power = math.fsum(np.asarray(scaled_speech) ** 2) / length
    return noise * math.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))


def binaural_mixture(speech, noise, speech_irs, noise_irs, level_db, snr_db):
    """One training example of spatial injection (Eqs. 6-8).

    Arguments
    ---------
    speech : numpy.ndarray
        Clean speech (1-D).
    noise : numpy.ndarray
        Noise (1-D, at least as long as the speech).
    speech_irs : numpy.ndarray
        ``[2, taps]``: ``h_x,L`` and ``h_x,R``, from the speaker to each
        ear.
    noise_irs : numpy.ndarray
        ``[2, taps]``: ``h_v,L`` and ``h_v,R``, from the noise source.
    level_db : float
        Speech level (dB RMS).
    snr_db : float
        Speech-to-noise ratio (dB), of ``x_hat`` against ``v_hat``.

    Returns
    -------
    dict
        ``binaural`` ``[2, time]`` (``y_L``, ``y_R``: the teacher's
        input, each convolution cut to the speech's length), ``mono``
        (``y = x_hat + v_hat``: the student's input) and ``clean``
        (``x_hat``: the target), float32.

    Example
    -------
    >>> out = binaural_mixture(
    ...     np.array([1.0, -1.0, 1.0, -1.0]),
    ...     np.ones(4),
    ...     np.array([[1.0, 0.0], [0.0, 0.5]]),
    ...     np.array([[0.5], [1.0]]),
    ...     level_db=-20.0,
    ...     snr_db=0.0,
    ... )
    >>> np.round(out["binaural"].astype(float), 3).tolist()
    [[0.15, -0.05, 0.15, -0.05], [0.1, 0.15, 0.05, 0.15]]
    >>> np.round(out["mono"].astype(float), 3).tolist()
    [0.2, 0.0, 0.2, 0.0]
    """
    clean = scale_speech(speech, level_db)
    noise = scale_noise(noise, clean, snr_db)
    speech_irs = np.asarray(speech_irs, dtype=np.float64)
    noise_irs = np.asarray(noise_irs, dtype=np.float64)
    for name, irs in (("speech_irs", speech_irs), ("noise_irs", noise_irs)):
        if irs.ndim != 2 or irs.shape[0] != 2:
            raise ValueError(
                f"{name} must hold one impulse response per ear, shape "
                f"[2, taps]; got {irs.shape}"
            )
    length = clean.size
    ears = [
        fftconvolve(clean, speech_irs[ear])[:length]
        + fftconvolve(noise, noise_irs[ear])[:length]
        for ear in (0, 1)
    ]
    return {
        "binaural": np.stack(ears).astype(np.float32),
        "mono": (clean + noise).astype(np.float32),
        "clean": clean.astype(np.float32),
    }
