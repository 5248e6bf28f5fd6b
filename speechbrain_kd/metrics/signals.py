"""Input handling shared by every metric: one conversion, one alignment.

Every metric accepts 1-D numpy arrays or torch tensors of any real dtype.
Integer PCM (``int16``/``int32``) is mapped to [-1, 1) by its full scale;
float input is taken as is. The caller's buffers are never modified: the
conversion always returns a fresh float64 copy.
"""

import numpy as np
import torch


def as_float_signal(signal, name="signal"):
    """Returns a fresh float64 1-D copy of ``signal``.

    Arguments
    ---------
    signal : numpy.ndarray or torch.Tensor
        A mono waveform, 1-D (or with singleton leading dimensions).
        Integer PCM is divided by its full scale (32768 for int16).
    name : str
        Name used in error messages.

    Returns
    -------
    numpy.ndarray
        A float64 copy, safe to modify.

    Example
    -------
    >>> x = np.array([16384, -32768], dtype=np.int16)
    >>> as_float_signal(x)
    array([ 0.5, -1. ])
    >>> as_float_signal(torch.ones(1, 3)).shape
    (3,)
    """
    if isinstance(signal, torch.Tensor):
        # numpy has no bfloat16: widen half-precision tensors first.
        signal = signal.detach().cpu()
        if signal.is_floating_point():
            signal = signal.double()
        signal = signal.numpy()
    array = np.asarray(signal)
    if array.ndim > 1:
        array = array.squeeze()
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D mono waveform, got shape "
            f"{np.asarray(signal).shape}; down-mix multi-channel audio first"
        )
    if np.issubdtype(array.dtype, np.integer):
        full_scale = float(np.iinfo(array.dtype).max) + 1.0
        return array.astype(np.float64) / full_scale
    return np.array(array, dtype=np.float64, copy=True)


def aligned_pair(reference, estimate):
    """Converts a reference/estimate pair and trims both to the shorter.

    Arguments
    ---------
    reference : numpy.ndarray or torch.Tensor
        The clean reference waveform.
    estimate : numpy.ndarray or torch.Tensor
        The processed (enhanced or noisy) waveform.

    Returns
    -------
    tuple of numpy.ndarray
        ``(reference, estimate)`` as float64 copies of equal length.

    Example
    -------
    >>> ref, est = aligned_pair(np.zeros(5), torch.ones(3))
    >>> ref.shape, est.shape
    ((3,), (3,))
    """
    reference = as_float_signal(reference, "reference")
    estimate = as_float_signal(estimate, "estimate")
    length = min(len(reference), len(estimate))
    return reference[:length], estimate[:length]
