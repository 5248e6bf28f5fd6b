"""Binaural spatial-injection data from folders of speech, noise and
two-channel impulse responses (paper 002, Sec. 3.1).

:func:`prepare_binaural` writes, per utterance, the binaural teacher input
(``binaural_wav``, two channels), the monaural student input
(``noisy_wav``) and the target (``clean_wav``, the scaled dry speech) with
:func:`~speechbrain_kd.data.binaural.binaural_mixture`, and the manifests
``train.json``, ``valid.json``, ``test.json`` plus one ``test_snr<N>.json``
per test SNR (Table 1 reports each SNR apart). Levels, SNRs, noise files
and offsets and the impulse responses of speech and noise are drawn from
``seed``; every file is written once (atomically) and a rerun with the
same options skips what exists, so an interrupted preparation resumes.
"""

import json
import logging
import os
import pathlib

import numpy as np
import soundfile as sf
import torch

from speechbrain_kd.audio import AUDIO_SUFFIXES, read_audio, resample
from speechbrain_kd.data.binaural import binaural_mixture
from speechbrain_kd.data.folder_mix import (
    _unique_id,
    audio_files,
    noise_part,
    split_files,
)
from speechbrain_kd.data.sofa import read_sofa_irs

logger = logging.getLogger(__name__)

OPTIONS_FILE = "binaural_options.json"
#: The paper's protocol: speech levels -35..-15 dB in 1-dB steps, test
#: SNRs of Table 1.
LEVELS_DB = (-35, -15)
TEST_SNRS_DB = (-5, 0, 5, 10)


def read_impulse_responses(ir_folder, sample_rate):
    """Every two-channel impulse response of ``ir_folder``.

    Arguments
    ---------
    ir_folder : str or pathlib.Path
        Folder of two-channel (left, right) wav/flac files and of SOFA
        files (every measurement of a file is one response,
        :func:`~speechbrain_kd.data.sofa.read_sofa_irs`), searched
        recursively.
    sample_rate : int
        Rate they are resampled to (keeping each filter's gain: the taps
        are scaled by the ratio of the rates).

    Returns
    -------
    list of numpy.ndarray
        ``[2, taps]`` each, in file-name (then measurement) order.

    Raises
    ------
    ValueError
        Naming a file that does not have two channels.

    Example
    -------
    >>> import tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> ir = np.array([[1.0, 0.5], [0.0, 0.25]])
    >>> sf.write(root / "a.wav", ir, 8000, "FLOAT")
    >>> read_impulse_responses(root, 8000)[0].tolist()
    [[1.0, 0.0], [0.5, 0.25]]
    """
    irs = []
    suffixes = (*AUDIO_SUFFIXES, ".sofa")
    for path in audio_files(ir_folder, "ir_folder", suffixes):
        if path.suffix.lower() == ".sofa":
            measured, rate = read_sofa_irs(path)
        else:
            audio, rate = sf.read(str(path), dtype="float64", always_2d=True)
            if audio.shape[1] != 2:
                raise ValueError(
                    f"impulse response {path} has {audio.shape[1]} "
                    "channel(s): ir_folder must hold two-channel (left, "
                    "right) files"
                )
            measured = [audio.T]
        for ears in measured:
            ears = torch.from_numpy(np.ascontiguousarray(ears))
            if rate != sample_rate:  # the taps scale with the rate: a
                # filter keeps its gain (an impulse stays a unit impulse)
                ears = resample(ears, rate, int(sample_rate))
                ears = ears * (rate / int(sample_rate))
            irs.append(ears.numpy().astype(np.float64))
    return irs


def prepare_binaural(
    speech_folder,
    noise_folder,
    ir_folder,
    save_folder,
    sample_rate=16000,
    levels_db=LEVELS_DB,
    train_snr=(-5, 10),
    test_snrs=TEST_SNRS_DB,
    valid_fraction=0.1,
    test_fraction=0.1,
    test_noise_fraction=0.3,
    seed=0,
    skip_prep=False,
):
    """Simulates binaural and monaural mixtures; writes wavs and manifests.

    Speech files are shuffled and split by ``valid_fraction`` and
    ``test_fraction``; noise recordings are split in time
    (``test_noise_fraction`` of each for the test set, as
    :func:`~speechbrain_kd.data.folder_mix.noise_part`). Each utterance
    draws a level (integer dB in ``levels_db``), a noise file and offset
    (the noise repeats when shorter), an impulse-response pair for the
    speech and another one for the noise; train and valid SNRs are integer
    dB in ``train_snr``, test SNRs cycle through ``test_snrs``.

    Arguments
    ---------
    speech_folder : str or pathlib.Path
        Clean speech (e.g. WSJ0).
    noise_folder : str or pathlib.Path
        Noise recordings (e.g. NOISEX-92).
    ir_folder : str or pathlib.Path
        Two-channel impulse responses (:func:`read_impulse_responses`).
    save_folder : str or pathlib.Path
        Output folder.
    sample_rate : int
        Rate of everything written.
    levels_db : tuple of int
        Speech level range (inclusive).
    train_snr : tuple of int
        Train/valid SNR range (inclusive).
    test_snrs : sequence of int
        Test SNRs.
    valid_fraction : float
        Share of speech files for validation.
    test_fraction : float
        Share of speech files for the test.
    test_noise_fraction : float
        Tail share of each noise file kept for the test.
    seed : int
        Seed of every draw.
    skip_prep : bool
        Return the manifests without checking them.

    Returns
    -------
    dict
        Split name (``train``, ``valid``, ``test``, ``test_snr<N>``) ->
        manifest path.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_kd.data.synthetic import make_binaural_folders
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> folders = make_binaural_folders(root, utterances=6)
    >>> manifests = prepare_binaural(*folders, root / "prep", test_snrs=[0])
    >>> sorted(manifests)
    ['test', 'test_snr0', 'train', 'valid']
    >>> item = json.loads(pathlib.Path(manifests["test"]).read_text())
    >>> sorted(next(iter(item.values())))
    ['binaural_wav', 'clean_wav', 'length', 'level', 'noisy_wav', 'snr']
    """
    save_folder = pathlib.Path(save_folder)
    test_snrs = [int(s) for s in test_snrs]
    names = ["train", "valid", "test"] + [f"test_snr{s}" for s in test_snrs]
    manifests = {name: save_folder / f"{name}.json" for name in names}
    if skip_prep:
        return {k: str(v) for k, v in manifests.items()}
    options = {
        "speech_folder": str(speech_folder),
        "noise_folder": str(noise_folder),
        "ir_folder": str(ir_folder),
        "sample_rate": int(sample_rate),
        "levels_db": [int(v) for v in levels_db],
        "train_snr": [int(v) for v in train_snr],
        "test_snrs": test_snrs,
        "valid_fraction": float(valid_fraction),
        "test_fraction": float(test_fraction),
        "test_noise_fraction": float(test_noise_fraction),
        "seed": int(seed),
    }
    for key in ("levels_db", "train_snr"):
        low, high = options[key]
        if low > high:
            raise ValueError(f"{key} {options[key]}: low above high")
    options_file = save_folder / OPTIONS_FILE
    if options_file.is_file():
        previous = json.loads(options_file.read_text())
        if previous != options:
            changed = sorted(
                k for k in options if previous.get(k) != options[k]
            )
            raise ValueError(
                f"{save_folder} was prepared with other options ({changed}); "
                "choose another prepare_folder or delete it"
            )
        if all(p.is_file() for p in manifests.values()):
            return {k: str(v) for k, v in manifests.items()}
    save_folder.mkdir(parents=True, exist_ok=True)
    options_file.write_text(json.dumps(options, indent=1))

    rng = np.random.default_rng(int(seed))
    speech_files = audio_files(speech_folder, "speech_folder")
    noise_files = audio_files(noise_folder, "noise_folder")
    irs = read_impulse_responses(ir_folder, sample_rate)
    noises = [read_audio(p, sample_rate).numpy() for p in noise_files]
    splits = split_files(speech_files, valid_fraction, test_fraction, rng)
    entries = {name: {} for name in names}
    for split, files in splits.items():
        for index, path in enumerate(files):
            uid = _unique_id(path, speech_folder, entries[split])
            speech = read_audio(path, sample_rate).numpy()
            level = int(rng.integers(levels_db[0], levels_db[1] + 1))
            if split == "test":
                snr = test_snrs[index % len(test_snrs)]
            else:
                snr = int(rng.integers(train_snr[0], train_snr[1] + 1))
            choice = int(rng.integers(len(noises)))
            part = noise_part(noises[choice], test_noise_fraction, split)
            offset = int(rng.integers(part.size))
            noise = np.resize(np.roll(part, -offset), speech.size)
            speech_ir, noise_ir = rng.integers(len(irs), size=2)
            entry = _write_example(
                save_folder / split,
                uid,
                speech,
                noise,
                irs[speech_ir],
                irs[noise_ir],
                level,
                snr,
                sample_rate,
            )
            entries[split][uid] = entry
            if split == "test":
                entries[f"test_snr{snr}"][uid] = entry
    for name, path in manifests.items():
        _write_atomic_text(path, json.dumps(entries[name], indent=1))
    logger.info(
        "Simulated %d binaural mixtures into %s",
        len(speech_files),
        save_folder,
    )
    return {k: str(v) for k, v in manifests.items()}


def _write_example(
    folder, uid, speech, noise, speech_ir, noise_ir, level, snr, rate
):
    """Writes one example's three files (skipping existing ones)."""
    paths = {
        kind: folder / kind / f"{uid}.wav"
        for kind in ("binaural", "noisy", "clean")
    }
    if not all(p.is_file() for p in paths.values()):
        out = binaural_mixture(speech, noise, speech_ir, noise_ir, level, snr)
        audio = {
            "binaural": out["binaural"].T,
            "noisy": out["mono"],
            "clean": out["clean"],
        }
        for kind, path in paths.items():
            if path.is_file():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial.wav")
            sf.write(partial, audio[kind], int(rate), "FLOAT")
            os.replace(partial, path)
    entry = {f"{kind}_wav": str(path) for kind, path in paths.items()}
    entry.update(length=speech.size / rate, level=level, snr=snr)
    return entry


def _write_atomic_text(path, text):
    partial = pathlib.Path(f"{path}.partial")
    partial.write_text(text)
    os.replace(partial, path)
