"""Output health: does an enhancer still emit speech of the right scale?

Cheap per-utterance checks run on every validation and test file, so
that a run whose output collapses (near silence, or a waveform unrelated
to or sign-inverted against the speech) shows in the train log and in a
warning, not only in the final scores.
"""

import math

import numpy as np

from speechbrain_kd.metrics.intrusive import si_sdr

#: A file counts as collapsed below this output/clean RMS ratio ...
MIN_RMS_RATIO = 0.2
#: ... or below this SI-SDR (dB).
MIN_SI_SDR = 0.0
#: The output has collapsed when more than this fraction of files has.
MAX_COLLAPSED_FRACTION = 0.5
#: The summary keys (logged with the metrics of every stage).
HEALTH_KEYS = ("rms_ratio", "si_sdr_median", "collapsed_files")


def rms_ratio(clean, enhanced):
    """Output RMS over clean RMS (NaN for a silent reference).

    Arguments
    ---------
    clean : numpy.ndarray
        Clean waveform (1-D).
    enhanced : numpy.ndarray
        Enhanced waveform (1-D), trimmed to the shorter of the two.

    Returns
    -------
    float
        The ratio.

    Example
    -------
    >>> x = np.array([1.0, -1.0, 1.0, -1.0])
    >>> round(rms_ratio(x, 0.1 * x), 9)
    0.1
    """
    n = min(len(clean), len(enhanced))
    clean = np.asarray(clean[:n], dtype=np.float64)
    enhanced = np.asarray(enhanced[:n], dtype=np.float64)
    reference = math.sqrt(float(np.mean(clean**2))) if n else 0.0
    if reference == 0.0:
        return math.nan
    return math.sqrt(float(np.mean(enhanced**2))) / reference


class OutputHealth:
    """Accumulates RMS ratio and SI-SDR per file; flags a collapse.

    A file is *collapsed* when its output/clean RMS ratio is below
    ``min_rms_ratio`` or its SI-SDR below ``min_si_sdr`` dB; the output as
    a whole when more than half of the files are (:func:`collapsed`).

    Arguments
    ---------
    min_rms_ratio : float
        RMS ratio below which a file is collapsed.
    min_si_sdr : float
        SI-SDR (dB) below which a file is collapsed.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> speech = rng.standard_normal(16000)
    >>> health = OutputHealth()
    >>> health.append(speech, 0.9 * speech + 0.1 * rng.standard_normal(16000))
    >>> health.append(speech, -0.05 * speech)
    >>> summary = health.summarize()
    >>> summary["collapsed_files"], collapsed(summary)
    (0.5, False)
    >>> health.append(speech, 0.01 * speech)
    >>> collapsed(health.summarize())
    True
    """

    def __init__(self, min_rms_ratio=MIN_RMS_RATIO, min_si_sdr=MIN_SI_SDR):
        self.min_rms_ratio = float(min_rms_ratio)
        self.min_si_sdr = float(min_si_sdr)
        self.rms_ratios = []
        self.si_sdrs = []

    def append(self, clean, enhanced):
        """Scores one file.

        Arguments
        ---------
        clean : numpy.ndarray
            Clean waveform (1-D).
        enhanced : numpy.ndarray
            Enhanced waveform (1-D).
        """
        clean = np.asarray(clean, dtype=np.float64)
        enhanced = np.asarray(enhanced, dtype=np.float64)
        self.rms_ratios.append(rms_ratio(clean, enhanced))
        self.si_sdrs.append(si_sdr(clean, enhanced))

    def summarize(self):
        """Medians and the fraction of collapsed files.

        Returns
        -------
        dict
            ``rms_ratio`` and ``si_sdr_median`` (medians over the files,
            NaN ignored) and ``collapsed_files`` (fraction in [0, 1]);
            empty when no file was scored.
        """
        ratios = np.asarray(self.rms_ratios, dtype=np.float64)
        sdrs = np.asarray(self.si_sdrs, dtype=np.float64)
        if not len(ratios):
            return {}
        bad = (ratios < self.min_rms_ratio) | (sdrs < self.min_si_sdr)
        return {
            "rms_ratio": _nanmedian(ratios),
            "si_sdr_median": _nanmedian(sdrs),
            "collapsed_files": float(np.mean(bad)),
        }


def collapsed(summary, max_fraction=MAX_COLLAPSED_FRACTION):
    """Whether more than ``max_fraction`` of the scored files collapsed.

    Arguments
    ---------
    summary : dict
        Holds ``collapsed_files`` (e.g. :meth:`OutputHealth.summarize`);
        a summary without it never counts as collapsed.
    max_fraction : float
        Largest fraction of collapsed files that is still acceptable.

    Returns
    -------
    bool
        The verdict.

    Example
    -------
    >>> collapsed({"collapsed_files": 0.75}), collapsed({})
    (True, False)
    """
    return summary.get("collapsed_files", 0.0) > max_fraction


def _nanmedian(values):
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if len(finite) else math.nan
