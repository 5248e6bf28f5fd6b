"""Noisy training data from any folder of clean speech and a folder of noise.

:func:`prepare_folder_mix` turns a folder of clean utterances (e.g. the
Harvard sentences of MetricGAN-OKD's listening-enhancement task) and a
folder of noise recordings into fixed noisy mixtures and the JSON
manifests the recipes read (``train.json``, ``valid.json``,
``test.json``: ``clean_wav``, ``noisy_wav``, ``length`` and ``snr`` per
utterance, as :func:`~speechbrain_kd.data.valentini.prepare_valentini`).

* The clean files (``.wav``/``.flac``, searched recursively) are shuffled
  with ``seed`` and split by ``valid_fraction`` and ``test_fraction``.
* Every noise file is split in time: its first ``1 - test_noise_fraction``
  serves training and validation, the rest the test set, so test noise is
  unseen.
* Each utterance gets a noise file, an offset (the noise repeats if it is
  shorter) and an SNR drawn uniformly from ``train_snr`` (train, valid)
  or ``test_snr`` (test), all from ``seed``: the same folders and options
  give the same mixtures. The SNR is exact over the utterance (mean
  powers); a mixture that would clip is scaled down together with its
  clean target.
* Everything is resampled to ``sample_rate`` and down-mixed to mono.

Example
-------
>>> import tempfile, pathlib, numpy as np, soundfile as sf
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> rng = np.random.default_rng(0)
>>> for i in range(5):
...     path = root / "clean" / f"s{i}.wav"
...     path.parent.mkdir(parents=True, exist_ok=True)
...     sf.write(path, 0.1 * rng.standard_normal(8000), 8000)
>>> (root / "noise").mkdir()
>>> sf.write(root / "noise" / "hum.wav", 0.1 * rng.standard_normal(16000), 8000)
>>> manifests = prepare_folder_mix(
...     root / "clean",
...     root / "noise",
...     root / "mix",
...     sample_rate=8000,
...     valid_fraction=0.2,
...     test_fraction=0.2,
... )
>>> {
...     split: len(json.loads(pathlib.Path(p).read_text()))
...     for split, p in manifests.items()
... }
{'train': 3, 'valid': 1, 'test': 1}
"""

import json
import logging
import math
import pathlib

import numpy as np
import soundfile as sf

from speechbrain_kd.audio import AUDIO_SUFFIXES, read_audio

logger = logging.getLogger(__name__)

OPTIONS_FILE = "folder_mix_options.json"


def prepare_folder_mix(
    clean_folder,
    noise_folder,
    save_folder,
    sample_rate=16000,
    train_snr=(-11.0, -3.0),
    test_snr=(-13.0, -1.0),
    valid_fraction=0.1,
    test_fraction=0.2,
    test_noise_fraction=0.3,
    seed=0,
    skip_prep=False,
):
    """Mixes clean utterances with noise; writes wavs and manifests.

    Arguments
    ---------
    clean_folder : str or pathlib.Path
        Folder of clean utterances (searched recursively).
    noise_folder : str or pathlib.Path
        Folder of noise recordings (searched recursively).
    save_folder : str or pathlib.Path
        Where ``clean/``, ``noisy/`` and the manifests go.
    sample_rate : int
        Output sample rate.
    train_snr : tuple of float
        SNR range (dB) of training and validation mixtures.
    test_snr : tuple of float
        SNR range (dB) of test mixtures.
    valid_fraction : float
        Share of the clean files used for validation.
    test_fraction : float
        Share of the clean files used for testing.
    test_noise_fraction : float
        Tail share of every noise file kept for the test mixtures.
    seed : int
        Seed of the split, noise choice, offsets and SNRs.
    skip_prep : bool
        Do nothing (the manifests must exist already).

    Returns
    -------
    dict
        ``{"train"|"valid"|"test": manifest path}``.

    Raises
    ------
    FileNotFoundError
        If a folder is missing or holds no audio.
    ValueError
        If an option is out of range or a split would be empty.
    """
    save_folder = pathlib.Path(save_folder)
    manifests = {
        s: save_folder / f"{s}.json" for s in ("train", "valid", "test")
    }
    if skip_prep:
        return {k: str(v) for k, v in manifests.items()}
    options = {
        "clean_folder": str(pathlib.Path(clean_folder).resolve()),
        "noise_folder": str(pathlib.Path(noise_folder).resolve()),
        "sample_rate": int(sample_rate),
        "train_snr": [float(x) for x in train_snr],
        "test_snr": [float(x) for x in test_snr],
        "valid_fraction": float(valid_fraction),
        "test_fraction": float(test_fraction),
        "test_noise_fraction": float(test_noise_fraction),
        "seed": int(seed),
    }
    if _already_prepared(save_folder, manifests, options):
        logger.info("Mixtures in %s are up to date", save_folder)
        return {k: str(v) for k, v in manifests.items()}
    _check_options(options)
    clean_files = audio_files(clean_folder, "clean_folder")
    noise_files = audio_files(noise_folder, "noise_folder")
    rng = np.random.default_rng(int(seed))
    splits = split_files(clean_files, valid_fraction, test_fraction, rng)
    noises = [
        read_audio(path, sample_rate, max_abs=1.0).numpy()
        for path in noise_files
    ]
    for path, noise in zip(noise_files, noises, strict=False):
        if noise.size < 2:
            raise ValueError(f"noise file {path} is (nearly) empty")
    for split, files in splits.items():
        snr_range = test_snr if split == "test" else train_snr
        entries = {}
        for path in files:
            clean = read_audio(path, sample_rate, max_abs=1.0).numpy()
            choice = int(rng.integers(len(noises)))
            part = noise_part(noises[choice], test_noise_fraction, split)
            snr = float(rng.uniform(*snr_range))
            noisy, clean = mix_at_snr(clean, part, snr, rng)
            uid = _unique_id(path, clean_folder, entries)
            entry = {}
            for kind, audio in (("clean", clean), ("noisy", noisy)):
                out = save_folder / kind / split / f"{uid}.wav"
                out.parent.mkdir(parents=True, exist_ok=True)
                sf.write(out, audio, int(sample_rate), "FLOAT")
                entry[f"{kind}_wav"] = str(out)
            entry["length"] = clean.size / sample_rate
            entry["snr"] = snr
            entry["noise"] = str(noise_files[choice])
            entries[uid] = entry
        manifests[split].write_text(json.dumps(entries, indent=1))
    (save_folder / OPTIONS_FILE).write_text(json.dumps(options, indent=1))
    logger.info(
        "Mixed %d clean files with %d noise files into %s",
        len(clean_files),
        len(noise_files),
        save_folder,
    )
    return {k: str(v) for k, v in manifests.items()}


def audio_files(folder, name, suffixes=AUDIO_SUFFIXES):
    """Sorted audio files under ``folder``.

    Arguments
    ---------
    folder : str or pathlib.Path
        The folder.
    name : str
        Its option name (for error messages).
    suffixes : tuple of str
        The lower-case file suffixes searched for.

    Returns
    -------
    list of pathlib.Path
        The files with those suffixes (``.wav``, ``.flac``), recursively.

    Example
    -------
    >>> import tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> audio_files(root, "noise_folder")
    Traceback (most recent call last):
    ...
    FileNotFoundError: noise_folder ... holds no audio files (.wav, .flac)
    """
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{name} {folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes)
    if not files:
        raise FileNotFoundError(
            f"{name} {folder} holds no audio files ({', '.join(suffixes)})"
        )
    return files


def split_files(files, valid_fraction, test_fraction, rng):
    """Shuffles ``files`` and splits them into train, valid and test.

    Arguments
    ---------
    files : list
        The clean files.
    valid_fraction : float
        Share for validation (at least one file when > 0).
    test_fraction : float
        Share for testing (at least one file when > 0).
    rng : numpy.random.Generator
        Random generator.

    Returns
    -------
    dict
        ``{"train": [...], "valid": [...], "test": [...]}``.

    Example
    -------
    >>> splits = split_files(
    ...     list("abcdefghij"), 0.1, 0.2, np.random.default_rng(0)
    ... )
    >>> {name: len(files) for name, files in splits.items()}
    {'test': 2, 'valid': 1, 'train': 7}
    """
    order = [files[i] for i in rng.permutation(len(files))]
    n_test = max(1, round(test_fraction * len(files))) if test_fraction else 0
    n_valid = (
        max(1, round(valid_fraction * len(files))) if valid_fraction else 0
    )
    if n_test + n_valid >= len(files):
        raise ValueError(
            f"{len(files)} clean files cannot be split into train, valid "
            f"({valid_fraction}) and test ({test_fraction}): add files or "
            "lower the fractions"
        )
    return {
        "test": sorted(order[:n_test]),
        "valid": sorted(order[n_test : n_test + n_valid]),
        "train": sorted(order[n_test + n_valid :]),
    }


def noise_part(noise, test_noise_fraction, split):
    """The training or the test part of a noise recording.

    Arguments
    ---------
    noise : numpy.ndarray
        The recording.
    test_noise_fraction : float
        Tail share reserved for the test set.
    split : str
        ``train``, ``valid`` or ``test``.

    Returns
    -------
    numpy.ndarray
        The part (at least one sample).

    Example
    -------
    >>> noise = np.arange(10.0)
    >>> noise_part(noise, 0.3, "train"), noise_part(noise, 0.3, "test")
    (array([0., 1., 2., 3., 4., 5., 6.]), array([7., 8., 9.]))
    """
    cut = int(round(noise.size * (1.0 - test_noise_fraction)))
    cut = min(max(cut, 1), noise.size - 1) if noise.size > 1 else noise.size
    return noise[cut:] if split == "test" else noise[:cut]


def mix_at_snr(clean, noise, snr_db, rng):
    """Adds a random stretch of ``noise`` to ``clean`` at ``snr_db``.

    Arguments
    ---------
    clean : numpy.ndarray
        Clean utterance.
    noise : numpy.ndarray
        Noise (repeated when shorter than the utterance).
    snr_db : float
        Clean-to-noise power ratio over the utterance.
    rng : numpy.random.Generator
        For the offset.

    Returns
    -------
    noisy : numpy.ndarray
        The mixture (float32).
    clean : numpy.ndarray
        The clean target (scaled like the mixture if it had to be scaled
        to avoid clipping).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> clean = np.sin(np.arange(1000) / 5.0)
    >>> noisy, target = mix_at_snr(clean, rng.standard_normal(300), -5.0, rng)
    >>> noise = noisy - target
    >>> snr = 10 * np.log10(np.mean(target**2) / np.mean(noise**2))
    >>> round(float(snr), 3)
    -5.0
    """
    length = clean.size
    repeats = math.ceil((length + noise.size) / noise.size)
    tiled = np.tile(noise, repeats)
    offset = int(rng.integers(noise.size))
    stretch = tiled[offset : offset + length].astype(np.float64)
    clean = clean.astype(np.float64)
    # Exactly rounded sums: numpy's SIMD sums change in the last bit with
    # the arrays' memory alignment, and mixtures must be reproducible.
    clean_power = math.fsum(clean**2) / length
    noise_power = math.fsum(stretch**2) / length
    if clean_power == 0 or noise_power == 0:
        gain = 0.0 if noise_power == 0 else 1.0
    else:
        gain = math.sqrt(clean_power / (noise_power * 10 ** (snr_db / 10)))
    noisy = clean + gain * stretch
    peak = np.max(np.abs(noisy))
    if peak > 0.99:
        noisy, clean = noisy * (0.99 / peak), clean * (0.99 / peak)
    return noisy.astype(np.float32), clean.astype(np.float32)


def _unique_id(path, root, taken):
    """An utterance id from the file's path under ``root``."""
    relative = pathlib.Path(path).relative_to(pathlib.Path(root))
    uid = "_".join(relative.with_suffix("").parts)
    base, count = uid, 1
    while uid in taken:
        count += 1
        uid = f"{base}_{count}"
    return uid


def _check_options(options):
    """Rejects out-of-range options with a message naming them."""
    for key in ("train_snr", "test_snr"):
        low, high = options[key]
        if low > high:
            raise ValueError(f"{key} {options[key]}: low above high")
    for key in ("valid_fraction", "test_fraction"):
        if not 0.0 <= options[key] < 1.0:
            raise ValueError(f"{key} must be in [0, 1), got {options[key]}")
    if not 0.0 < options["test_noise_fraction"] < 1.0:
        raise ValueError(
            "test_noise_fraction must be in (0, 1), got "
            f"{options['test_noise_fraction']}"
        )


def _already_prepared(save_folder, manifests, options):
    """True if the manifests exist and were made with ``options``."""
    options_file = save_folder / OPTIONS_FILE
    if not options_file.is_file() or not all(
        p.is_file() for p in manifests.values()
    ):
        return False
    return json.loads(options_file.read_text()) == options
