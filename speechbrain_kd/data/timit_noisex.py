"""TIMIT + NOISEX-92 mixtures, KDRL's protocol (paper 003, Sec. IV-A).

Training: the first 250 TIMIT training sentences x babble, destroyerops,
f16, pink, volvo x -10/-5/0/5/10 dB; test: the first 25 TIMIT test
sentences x leopard, white, machinegun, hfchannel, destroyerengine,
factory1, factory2, buccaneer1, buccaneer2 x -7.5/-2.5/2.5/7.5 dB. Every
choice can be changed. Both corpora are licensed: nothing is downloaded.
"""

import json
import logging
import os
import pathlib

import numpy as np
import soundfile as sf
from tqdm import tqdm

from speechbrain_kd.audio import read_audio
from speechbrain_kd.data.folder_mix import mix_at_snr

logger = logging.getLogger(__name__)

TRAIN_NOISES = ("babble", "destroyerops", "f16", "pink", "volvo")
TEST_NOISES = (
    "leopard",
    "white",
    "machinegun",
    "hfchannel",
    "destroyerengine",
    "factory1",
    "factory2",
    "buccaneer1",
    "buccaneer2",
)
TRAIN_SNRS = (-10.0, -5.0, 0.0, 5.0, 10.0)
TEST_SNRS = (-7.5, -2.5, 2.5, 7.5)
OPTIONS_FILE = "timit_noisex_options.json"


def timit_sentences(timit_folder, split):
    """The sentences of one TIMIT split, in path order.

    Arguments
    ---------
    timit_folder : str or pathlib.Path
        The corpus root, holding ``TRAIN/`` and ``TEST/`` (any case), as
        ``TRAIN/DR1/FCJF0/SA1.WAV`` (NIST SPHERE or RIFF).
    split : str
        ``train`` or ``test``.

    Returns
    -------
    list of pathlib.Path
        The ``.wav`` files (any case) under the split, sorted by their
        path relative to it (case-insensitive).

    Raises
    ------
    FileNotFoundError
        If the split folder is missing or holds no sentence.

    Example
    -------
    >>> import tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> timit_sentences(root, "train")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: TIMIT folder ... has no TRAIN/ folder ...
    """
    root = pathlib.Path(timit_folder)
    folders = [
        p
        for p in (root.iterdir() if root.is_dir() else ())
        if p.is_dir() and p.name.lower() == split.lower()
    ]
    if not folders:
        raise FileNotFoundError(
            f"TIMIT folder {root} has no {split.upper()}/ folder (expected "
            f"{split.upper()}/DR1/<speaker>/<sentence>.WAV); point "
            "timit_folder at the corpus root"
        )
    folder = folders[0]
    files = sorted(
        (p for p in folder.rglob("*") if p.suffix.lower() == ".wav"),
        key=lambda p: str(p.relative_to(folder)).lower(),
    )
    if not files:
        raise FileNotFoundError(f"{folder} holds no .WAV sentence")
    return files


def noisex_files(noisex_folder, names):
    """The NOISEX-92 recording of each noise type.

    Arguments
    ---------
    noisex_folder : str or pathlib.Path
        A folder of wav files named by noise type (``babble.wav``...).
    names : sequence of str
        Noise types.

    Returns
    -------
    dict
        Noise type -> path.

    Raises
    ------
    FileNotFoundError
        Naming every missing noise and what the folder holds.

    Example
    -------
    >>> import tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "Babble.WAV").write_bytes(b"")
    >>> noisex_files(folder, ["babble"])["babble"].name
    'Babble.WAV'
    """
    folder = pathlib.Path(noisex_folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"NOISEX-92 folder {folder} does not exist")
    found = {
        p.stem.lower(): p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() == ".wav"
    }
    missing = [n for n in names if n.lower() not in found]
    if missing:
        raise FileNotFoundError(
            f"NOISEX-92 folder {folder} lacks {', '.join(f'{n}.wav' for n in missing)}"
            f" (it holds: {', '.join(sorted(found)) or 'no wav file'})"
        )
    return {n: found[n.lower()] for n in names}


def prepare_timit_noisex(
    timit_folder,
    noisex_folder,
    save_folder,
    sample_rate=16000,
    train_sentences=250,
    valid_sentences=25,
    test_sentences=25,
    train_noises=TRAIN_NOISES,
    test_noises=TEST_NOISES,
    train_snrs=TRAIN_SNRS,
    test_snrs=TEST_SNRS,
    seed=0,
    skip_prep=False,
):
    """Mixes TIMIT sentences with NOISEX-92 noises; writes wavs and
    manifests, once.

    Every mixture is one (sentence, noise, SNR) of its split, with a noise
    stretch at an offset drawn from a generator seeded by ``seed`` and the
    mixture's indices, so each file is the same whatever was written
    before. A file already written (complete: written to a temporary name
    and renamed) is kept, so a killed preparation resumes; other options
    prepare again. Validation: the ``valid_sentences`` training sentences
    after the first ``train_sentences``, with the training noises and
    SNRs (the paper has no validation set).

    Arguments
    ---------
    timit_folder : str or pathlib.Path
        TIMIT root (``TRAIN/``, ``TEST/``).
    noisex_folder : str or pathlib.Path
        NOISEX-92 wav files named by noise type.
    save_folder : str or pathlib.Path
        Where ``{clean,noisy}/<split>/`` and the manifests go.
    sample_rate : int
        Output rate (NOISEX-92 is resampled from its 19.98 kHz).
    train_sentences, valid_sentences, test_sentences : int
        Sentences per split.
    train_noises, test_noises : sequence of str
        Noise types (training noises also mix validation).
    train_snrs, test_snrs : sequence of float
        SNRs in dB.
    seed : int
        Seed of the noise offsets.
    skip_prep : bool
        Do nothing (the manifests must exist).

    Returns
    -------
    dict
        ``{"train"|"valid"|"test": manifest path}``.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_kd.data.synthetic import make_timit_noisex
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> timit, noisex = make_timit_noisex(root, sentences=3)
    >>> out = prepare_timit_noisex(
    ...     timit,
    ...     noisex,
    ...     root / "mix",
    ...     train_sentences=2,
    ...     valid_sentences=1,
    ...     test_sentences=1,
    ...     train_noises=["babble"],
    ...     test_noises=["white"],
    ...     train_snrs=[0.0],
    ...     test_snrs=[5.0],
    ... )
    >>> sorted(json.loads(pathlib.Path(out["test"]).read_text()))
    ['DR1_MABC0_SX1_white_5dB']
    """
    save_folder = pathlib.Path(save_folder)
    manifests = {
        s: save_folder / f"{s}.json" for s in ("train", "valid", "test")
    }
    if skip_prep:
        return {k: str(v) for k, v in manifests.items()}
    options = {
        "timit_folder": str(pathlib.Path(timit_folder).resolve()),
        "noisex_folder": str(pathlib.Path(noisex_folder).resolve()),
        "sample_rate": int(sample_rate),
        "train_sentences": int(train_sentences),
        "valid_sentences": int(valid_sentences),
        "test_sentences": int(test_sentences),
        "train_noises": list(train_noises),
        "test_noises": list(test_noises),
        "train_snrs": [float(x) for x in train_snrs],
        "test_snrs": [float(x) for x in test_snrs],
        "seed": int(seed),
    }
    options_file = save_folder / OPTIONS_FILE
    state = _read_state(options_file)
    same = state is not None and state.get("options") == options
    if (
        same
        and state.get("complete")
        and all(p.is_file() for p in manifests.values())
    ):
        logger.info(
            "TIMIT + NOISEX-92 mixtures in %s are up to date", save_folder
        )
        return {k: str(v) for k, v in manifests.items()}
    # Files of other options are rewritten; those of a killed run with
    # these options are kept.
    stale = state is not None and not same
    train = timit_sentences(timit_folder, "train")
    test = timit_sentences(timit_folder, "test")
    needed = int(train_sentences) + int(valid_sentences)
    for name, files, count in (
        ("training", train, needed),
        ("test", test, int(test_sentences)),
    ):
        if len(files) < count:
            raise ValueError(
                f"TIMIT has {len(files)} {name} sentences, {count} asked for"
            )
    splits = {
        "train": (train[:train_sentences], train_noises, train_snrs, "TRAIN"),
        "valid": (
            train[train_sentences:needed],
            train_noises,
            train_snrs,
            "TRAIN",
        ),
        "test": (test[:test_sentences], test_noises, test_snrs, "TEST"),
    }
    noise_paths = noisex_files(
        noisex_folder, list(dict.fromkeys([*train_noises, *test_noises]))
    )
    noises = {
        name: read_audio(path, sample_rate, max_abs=1.0).numpy()
        for name, path in noise_paths.items()
    }
    save_folder.mkdir(parents=True, exist_ok=True)
    options_file.write_text(
        json.dumps({"options": options, "complete": False}, indent=1)
    )
    for split_index, (split, (files, names, snrs, folder)) in enumerate(
        splits.items()
    ):
        entries = {}
        total = len(files) * len(names) * len(snrs)
        with tqdm(total=total, desc=f"TIMIT+NOISEX {split}") as bar:
            for i, path in enumerate(files):
                clean = None
                base = _sentence_id(path, folder)
                for j, noise in enumerate(names):
                    for k, snr in enumerate(snrs):
                        uid = f"{base}_{noise}_{snr:g}dB"
                        out = {
                            kind: save_folder / kind / split / f"{uid}.wav"
                            for kind in ("clean", "noisy")
                        }
                        if stale or not all(p.is_file() for p in out.values()):
                            if clean is None:
                                clean = read_audio(
                                    path, sample_rate, max_abs=1.0
                                ).numpy()
                            rng = np.random.default_rng(
                                [int(seed), split_index, i, j, k]
                            )
                            mixed, target = mix_at_snr(
                                clean, noises[noise], float(snr), rng
                            )
                            for kind, audio in (
                                ("clean", target),
                                ("noisy", mixed),
                            ):
                                _write_atomic(out[kind], audio, sample_rate)
                        frames = sf.info(str(out["clean"])).frames
                        entries[uid] = {
                            "noisy_wav": str(out["noisy"]),
                            "clean_wav": str(out["clean"]),
                            "length": frames / sample_rate,
                            "snr": float(snr),
                            "noise": noise,
                            "sentence": str(path),
                        }
                        bar.update()
        manifests[split].write_text(json.dumps(entries, indent=1))
    options_file.write_text(
        json.dumps({"options": options, "complete": True}, indent=1)
    )
    return {k: str(v) for k, v in manifests.items()}


def _read_state(path):
    """The preparation state (options, complete), None if unreadable."""
    try:
        state = json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _sentence_id(path, split_folder_name):
    """``DR1_FCJF0_SA1`` for ``.../TRAIN/DR1/FCJF0/SA1.WAV``."""
    parts = pathlib.Path(path).with_suffix("").parts
    lowered = [p.lower() for p in parts]
    start = len(parts) - 1 - lowered[::-1].index(split_folder_name.lower())
    return "_".join(parts[start + 1 :])


def _write_atomic(path, audio, sample_rate):
    """Writes a float wav under a temporary name, then renames it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    sf.write(tmp, audio, int(sample_rate), "FLOAT", format="WAV")
    os.replace(tmp, path)
