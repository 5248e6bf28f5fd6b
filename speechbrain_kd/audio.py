"""Reading and writing audio files: the one door for files of any format.

:func:`read_audio` reads a file with SpeechBrain's reader
(``speechbrain.dataio.dataio.read_audio`` and ``audio_io.info``,
soundfile underneath), down-mixes it to mono (mean over channels) and
resamples it with ``torchaudio.functional.resample`` (see
:data:`RESAMPLER`). Inference, export, evaluation and data preparation
all read audio through it.

torch is imported by the functions that need it, so that the command
line's ``--help`` (which shows :data:`RESAMPLER`) stays fast.
"""

import logging
import pathlib

logger = logging.getLogger(__name__)

#: File name suffixes taken as audio when searching folders.
AUDIO_SUFFIXES = (".wav", ".flac")
#: The resampler used everywhere, as reports name it.
RESAMPLER = (
    "torchaudio.functional.resample (windowed sinc, Hann window, "
    "lowpass_filter_width=6, rolloff=0.99)"
)


def audio_info(path):
    """Sample rate, frame count and channels of an audio file.

    Arguments
    ---------
    path : str or pathlib.Path
        An audio file (anything libsndfile reads: wav, flac, ...).

    Returns
    -------
    speechbrain.dataio.audio_io.AudioInfo
        With ``sample_rate``, ``frames`` and ``channels``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is not readable audio (the message names the file).

    Example
    -------
    >>> import tempfile, numpy, soundfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.wav"
    >>> soundfile.write(path, numpy.zeros((80, 2)), 8000)
    >>> info = audio_info(path)
    >>> info.sample_rate, info.frames, info.channels
    (8000, 80, 2)
    """
    # Not dataio.read_audio_info: in SpeechBrain 1.1.2 it fails on a file
    # of 0 frames (it sets a read-only property), which we report instead.
    from speechbrain.dataio.audio_io import info

    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"audio file {path} does not exist")
    try:
        return info(str(path))
    except RuntimeError as error:
        raise ValueError(
            f"cannot read audio file {path}: {error.__cause__ or error}"
        ) from None


def check_samples(samples, path, max_abs=None):
    """Raises if ``samples`` hold a non-finite value (or one beyond
    ``max_abs``), naming the file.

    Arguments
    ---------
    samples : numpy.ndarray or torch.Tensor
        Audio samples, any shape.
    path : str or pathlib.Path
        The file they came from (for the message).
    max_abs : float, optional
        The largest magnitude allowed (``None``: any finite value).

    Raises
    ------
    ValueError
        On a NaN or infinite sample, or one beyond ``max_abs``.

    Example
    -------
    >>> import numpy
    >>> check_samples(numpy.zeros(4), "a.wav")
    >>> check_samples(numpy.array([0.0, numpy.nan, 1.0]), "a.wav")
    Traceback (most recent call last):
    ...
    ValueError: audio file a.wav holds 1 non-finite sample (NaN or infinite; the first at sample 1): repair or remove the file
    >>> check_samples(numpy.array([0.5, -2.0]), "b.wav", max_abs=1.0)
    Traceback (most recent call last):
    ...
    ValueError: audio file b.wav holds 1 sample beyond +-1.0 (the largest magnitude is 2): rescale or remove the file
    """
    import numpy as np

    values = np.asarray(samples, dtype=np.float64).reshape(-1)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        plural = "s" if bad.size > 1 else ""
        raise ValueError(
            f"audio file {path} holds {bad.size} non-finite sample{plural} "
            f"(NaN or infinite; the first at sample {bad[0]}): repair or "
            "remove the file"
        )
    if max_abs is not None and values.size:
        over = int(np.count_nonzero(np.abs(values) > max_abs))
        if over:
            plural = "s" if over > 1 else ""
            raise ValueError(
                f"audio file {path} holds {over} sample{plural} beyond "
                f"+-{max_abs} (the largest magnitude is "
                f"{np.abs(values).max():g}): rescale or remove the file"
            )


def read_audio(path, sample_rate=None, downmix=True, max_abs=None):
    """Reads an audio file as a mono float32 waveform.

    Arguments
    ---------
    path : str or pathlib.Path
        An audio file (anything libsndfile reads: wav, flac, ...; integer
        PCM is mapped to [-1, 1)).
    sample_rate : int, optional
        The rate wanted; a file at another rate is resampled with
        ``torchaudio.functional.resample``. ``None``: the file's rate.
    downmix : bool
        Average the channels of a multi-channel file. ``False``: a file
        with more than one channel is an error.
    max_abs : float, optional
        Refuse a file with a sample beyond this magnitude (data
        preparation passes 1.0). Non-finite samples are always refused.

    Returns
    -------
    torch.Tensor
        ``[time]`` float32 samples (CPU).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is not readable audio, holds 0 samples or a non-finite
        sample (or one beyond ``max_abs``), or has several channels and
        ``downmix`` is False (the message names the file).

    Example
    -------
    >>> import tempfile, numpy, soundfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "stereo.wav"
    >>> soundfile.write(path, numpy.full((800, 2), 0.25), 8000)
    >>> wav = read_audio(path, 16000)
    >>> wav.shape, round(float(wav[800]), 3)
    (torch.Size([1600]), 0.25)
    >>> read_audio(path, downmix=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: .../stereo.wav has 2 channels; mono audio is needed...
    """
    from speechbrain.dataio.dataio import read_audio as speechbrain_read

    info = audio_info(path)
    path = pathlib.Path(path).expanduser()
    if info.frames == 0:
        raise ValueError(f"audio file {path} is empty (0 samples)")
    if info.channels > 1 and not downmix:
        raise ValueError(
            f"{path} has {info.channels} channels; mono audio is needed "
            "(down-mix or pick a channel first)"
        )
    try:
        wav = speechbrain_read(str(path))
    except RuntimeError as error:
        raise ValueError(
            f"cannot read audio file {path}: {error.__cause__ or error}"
        ) from None
    wav = wav.float()
    check_samples(wav, path, max_abs)
    if wav.dim() == 2:  # [time, channels]
        wav = wav.mean(dim=1)
    if sample_rate is not None and info.sample_rate != int(sample_rate):
        wav = resample(wav, info.sample_rate, int(sample_rate))
    return wav


def resample(wav, orig_rate, new_rate):
    """Resamples the last dimension of ``wav`` (see :data:`RESAMPLER`).

    Arguments
    ---------
    wav : torch.Tensor
        Waveform(s), time last.
    orig_rate : int
        Its rate.
    new_rate : int
        The rate wanted.

    Returns
    -------
    torch.Tensor
        The resampled waveform(s).

    Example
    -------
    >>> import torch
    >>> resample(torch.zeros(1600), 16000, 8000).shape
    torch.Size([800])
    """
    import torchaudio.functional

    if int(orig_rate) == int(new_rate):
        return wav
    return torchaudio.functional.resample(wav, int(orig_rate), int(new_rate))


def fit_length(wav, length):
    """Crops or zero-pads the last dimension of ``wav`` to ``length``.

    Arguments
    ---------
    wav : torch.Tensor
        A waveform.
    length : int
        Wanted number of samples.

    Returns
    -------
    torch.Tensor
        The waveform with ``length`` samples.

    Example
    -------
    >>> import torch
    >>> fit_length(torch.ones(3), 5).tolist()
    [1.0, 1.0, 1.0, 0.0, 0.0]
    """
    import torch

    if wav.shape[-1] >= length:
        return wav[..., :length]
    return torch.nn.functional.pad(wav, (0, length - wav.shape[-1]))


def write_wav(path, wav, sample_rate):
    """Writes a mono waveform as 16-bit PCM wav (clipped to [-1, 1]).

    Arguments
    ---------
    path : str or pathlib.Path
        Output file; parent folders are created.
    wav : torch.Tensor
        ``[time]`` waveform.
    sample_rate : int
        Its rate.

    Raises
    ------
    ValueError
        If ``wav`` holds a NaN or an infinity (nothing is written: clipping
        would turn it into full-scale samples).

    Example
    -------
    >>> import tempfile, soundfile, torch
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a" / "x.wav"
    >>> write_wav(path, torch.zeros(160), 16000)
    >>> soundfile.info(str(path)).subtype
    'PCM_16'
    """
    import soundfile
    import torch

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = torch.as_tensor(wav).detach().cpu().float().reshape(-1)
    bad = int((~torch.isfinite(wav)).sum())
    if bad:
        raise ValueError(
            f"not writing {path}: the enhanced audio holds {bad} non-finite "
            "samples (NaN or infinite)"
        )
    if wav.numel() and wav.abs().max() > 1:
        logger.warning("%s: audio clipped to [-1, 1]", path)
    soundfile.write(
        str(path),
        wav.clamp(-1, 1).numpy(),
        int(sample_rate),
        subtype="PCM_16",
    )
