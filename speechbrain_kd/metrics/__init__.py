"""Reference-grade speech-enhancement metrics.

The public API (``EnhancementMetricStats`` is imported on first use, so
that metric worker processes do not pay for SpeechBrain's import):

* :func:`pesq`, :func:`stoi`, :func:`estoi`, :func:`si_sdr`, :func:`snr`
  (:mod:`~speechbrain_kd.metrics.intrusive`);
* :func:`composite`: CSIG, CBAK, COVL with LLR, WSS and segmental SNR
  (:mod:`~speechbrain_kd.metrics.composite`);
* :func:`evaluate_pair`, :func:`evaluate_pairs`, :func:`summarize_scores`
  and :data:`ALL_METRICS` (:mod:`~speechbrain_kd.metrics.evaluation`);
* :class:`SafePool` (:mod:`~speechbrain_kd.metrics.pool`);
* :class:`EnhancementMetricStats`, a SpeechBrain ``MetricStats``
  (:mod:`~speechbrain_kd.metrics.stats`).

Example
-------
>>> import numpy as np
>>> from speechbrain_kd.metrics import ALL_METRICS, si_sdr
>>> ALL_METRICS
('pesq', 'stoi', 'estoi', 'csig', 'cbak', 'covl', 'ssnr', 'si_sdr')
>>> si_sdr(np.array([1.0, -1.0, 2.0]), np.array([2.0, -2.0, 4.0])) > 100
True
"""

import importlib

# ``composite`` is both a submodule and a function: importing the function
# here makes the package attribute the function, whoever imports the
# submodule later.
from speechbrain_kd.metrics.composite import composite
from speechbrain_kd.metrics.evaluation import (
    ALL_METRICS,
    KNOWN_METRICS,
    evaluate_pair,
    evaluate_pairs,
    summarize_scores,
)
from speechbrain_kd.metrics.intrusive import estoi, pesq, si_sdr, snr, stoi
from speechbrain_kd.metrics.pool import SafePool

__all__ = [
    "ALL_METRICS",
    "KNOWN_METRICS",
    "EnhancementMetricStats",
    "SafePool",
    "composite",
    "estoi",
    "evaluate_pair",
    "evaluate_pairs",
    "pesq",
    "si_sdr",
    "snr",
    "stoi",
    "summarize_scores",
]


def __getattr__(name):
    """Imports :class:`EnhancementMetricStats` (and SpeechBrain) on demand."""
    if name == "EnhancementMetricStats":
        module = importlib.import_module(f"{__name__}.stats")
        globals()[name] = module.EnhancementMetricStats
        return module.EnhancementMetricStats
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"EnhancementMetricStats"})
