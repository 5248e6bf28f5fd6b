"""Two-ear impulse responses from SOFA files (AES69), read with ``sofar``."""

import numpy as np


def read_sofa_irs(path):
    """Every measurement of a SOFA file as a ``[2, taps]`` impulse response.

    Reads ``Data.IR`` (``[measurements, receivers, taps]``) with the
    maintained ``sofar`` reader; a ``Data.Delay`` (in samples, per
    receiver) is applied as leading zeros, rounded to whole samples.

    Arguments
    ---------
    path : str or pathlib.Path
        A SOFA file with ``DataType`` FIR and two receivers (left, right),
        e.g. the SimpleFreeFieldHRIR or SingleRoomSRIR conventions.

    Returns
    -------
    irs : list of numpy.ndarray
        ``[2, taps]`` float64, one per measurement.
    sample_rate : int
        ``Data.SamplingRate``.

    Raises
    ------
    ImportError
        When ``sofar`` is not installed (``speechbrain-kd[binaural]``).
    ValueError
        Naming the file, when it is not FIR data of two receivers.

    Example
    -------
    >>> import tempfile, pathlib, sofar
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "hrir.sofa"
    >>> sofa = sofar.Sofa("SimpleFreeFieldHRIR")
    >>> sofa.Data_IR = np.array([[[1.0, 0.5], [0.0, 0.25]]])
    >>> sofa.Data_SamplingRate = 8000
    >>> sofar.write_sofa(path, sofa)
    >>> irs, rate = read_sofa_irs(path)
    >>> rate, irs[0].tolist()
    (8000, [[1.0, 0.5], [0.0, 0.25]])
    """
    try:
        import sofar
    except ImportError as error:
        raise ImportError(
            f"reading the SOFA file {path} needs sofar: "
            "pip install speechbrain-kd[binaural]"
        ) from error
    sofa = sofar.read_sofa(str(path), verify=False, verbose=False)
    data_type = str(getattr(sofa, "GLOBAL_DataType", "FIR"))
    if not data_type.startswith("FIR"):
        raise ValueError(
            f"SOFA file {path} holds {data_type} data: ir_folder needs "
            "impulse responses (DataType FIR)"
        )
    data = np.asarray(sofa.Data_IR, dtype=np.float64)
    if data.ndim != 3 or data.shape[1] != 2:
        raise ValueError(
            f"SOFA file {path} has Data.IR of shape {list(data.shape)}: "
            "ir_folder needs two receivers (left, right), i.e. "
            "[measurements, 2, taps]"
        )
    rate = int(round(float(np.asarray(sofa.Data_SamplingRate).ravel()[0])))
    delays = np.zeros((data.shape[0], 2), dtype=np.int64)
    if hasattr(sofa, "Data_Delay"):
        given = np.rint(np.asarray(sofa.Data_Delay, dtype=np.float64))
        delays = np.broadcast_to(given, delays.shape).astype(np.int64)
    irs = []
    for measurement, delay in zip(data, delays, strict=True):
        taps = measurement.shape[1] + int(delay.max())
        ears = np.zeros((2, taps))
        for ear in range(2):
            start = int(delay[ear])
            ears[ear, start : start + measurement.shape[1]] = measurement[ear]
        irs.append(ears)
    return irs, rate
