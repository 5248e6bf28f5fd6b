"""DNS Challenge (Interspeech 2020) data: training mixtures synthesised from
the repository's ``clean/`` and ``noise/`` folders, and its synthetic
no-reverb test set.

Layout (``datasets/`` of the DNS-Challenge repository, or any folder with
the same sub-folders)::

    clean/*.wav                                   read-book speech
    noise/*.wav                                   noise clips
    test_set/synthetic/no_reverb/clean/clean_fileid_<N>.wav
    test_set/synthetic/no_reverb/noisy/<...>_fileid_<N>.wav

Nothing is downloaded: the DNS data is distributed through its own
repository (git LFS).
"""

import json
import logging
import math
import pathlib
import re

import numpy as np
import soundfile as sf

from speechbrain_kd.audio import read_audio
from speechbrain_kd.data.folder_mix import audio_files, mix_at_snr

logger = logging.getLogger(__name__)

OPTIONS_FILE = "dns_options.json"
TEST_SUBFOLDER = pathlib.Path("test_set") / "synthetic" / "no_reverb"
_FILEID = re.compile(r"fileid_(\d+)$")


def dns_test_pairs(dns_folder):
    """The synthetic no-reverb test pairs, matched by ``fileid_<N>``.

    Arguments
    ---------
    dns_folder : str or pathlib.Path
        The DNS ``datasets`` folder.

    Returns
    -------
    list of (str, pathlib.Path, pathlib.Path)
        ``(fileid_<N>, clean, noisy)`` sorted by N.

    Raises
    ------
    FileNotFoundError
        If the test folders are missing or a file has no partner.
    """
    root = pathlib.Path(dns_folder) / TEST_SUBFOLDER
    found = {}
    for kind in ("clean", "noisy"):
        folder = root / kind
        if not folder.is_dir():
            raise FileNotFoundError(
                f"DNS test folder {folder} is missing: expected "
                f"{TEST_SUBFOLDER}/{{clean,noisy}} under {dns_folder}"
            )
        for path in sorted(folder.glob("*.wav")):
            match = _FILEID.search(path.stem)
            if match is None:
                raise ValueError(
                    f"{path}: a DNS test file name ends with fileid_<N>"
                )
            found.setdefault(int(match.group(1)), {})[kind] = path
    unpaired = sorted(n for n, v in found.items() if len(v) != 2)
    if unpaired:
        raise FileNotFoundError(
            f"DNS test files without a clean/noisy partner in {root}: "
            + ", ".join(f"fileid_{n}" for n in unpaired[:10])
        )
    if not found:
        raise FileNotFoundError(f"no DNS test pair under {root}")
    return [
        (f"fileid_{n}", v["clean"], v["noisy"])
        for n, v in sorted(found.items())
    ]


def _crop(path, start, frames, sample_rate):
    """``frames`` samples of ``path`` from ``start`` at ``sample_rate``
    (tiled when the file is shorter)."""
    info = sf.info(str(path))
    if info.samplerate == sample_rate and info.channels == 1:
        if info.frames >= start + frames:
            audio, _ = sf.read(
                str(path), start=start, frames=frames, dtype="float64"
            )
            return audio
    audio = read_audio(path, sample_rate, max_abs=1.0).double().numpy()
    if audio.size == 0:
        raise ValueError(f"{path} is empty")
    tiled = np.tile(audio, math.ceil((start + frames) / audio.size))
    return tiled[start : start + frames]


def _clip_plan(clean_files, noise_files, count, seconds, snr, rate, rng):
    """Every clip's clean file, offsets and SNR, drawn up front so that a
    resumed preparation draws the same ones."""
    frames = int(round(seconds * rate))
    lengths = {}

    def length_of(path):
        """Frames of ``path`` at ``rate`` (cached)."""
        if path not in lengths:
            info = sf.info(str(path))
            lengths[path] = math.ceil(info.frames * rate / info.samplerate)
        return lengths[path]

    plan = []
    for _ in range(count):
        clean = clean_files[int(rng.integers(len(clean_files)))]
        noise = noise_files[int(rng.integers(len(noise_files)))]
        clean_start = int(rng.integers(max(1, length_of(clean) - frames + 1)))
        noise_start = int(rng.integers(max(1, length_of(noise) - frames + 1)))
        plan.append(
            {
                "clean": clean,
                "noise": noise,
                "clean_start": clean_start,
                "noise_start": noise_start,
                "snr": float(rng.uniform(*snr)),
                "seed": int(rng.integers(2**31)),
            }
        )
    return plan, frames


def prepare_dns(
    dns_folder,
    save_folder,
    sample_rate=16000,
    hours=50.0,
    segment_seconds=10.0,
    snr=(0.0, 20.0),
    valid_fraction=0.02,
    seed=0,
    skip_prep=False,
):
    """Synthesises DNS training mixtures once and writes the manifests.

    ``hours`` of ``segment_seconds`` clips: each a random stretch of a
    random clean file plus a random stretch of a random noise file at an
    SNR drawn uniformly from ``snr`` (dB), all from ``seed``. The last
    ``valid_fraction`` of the clips is the validation split. The test
    manifest lists the synthetic no-reverb test pairs as they are (resampled
    into ``save_folder`` only when ``sample_rate`` is not their rate).

    Clips already written (complete, same options) are kept, so an
    interrupted preparation resumes; a ``save_folder`` prepared with other
    options is refused.

    Arguments
    ---------
    dns_folder : str or pathlib.Path
        The DNS ``datasets`` folder (``clean/``, ``noise/``, ``test_set/``).
    save_folder : str or pathlib.Path
        Where the mixtures and ``train.json``, ``valid.json``, ``test.json``
        go.
    sample_rate : int
        Rate of the mixtures.
    hours : float
        Total duration of the training + validation clips.
    segment_seconds : float
        Length of a clip.
    snr : tuple of float
        SNR range in dB (the paper's test set spans 0..20 dB).
    valid_fraction : float
        Share of the clips held out for validation.
    seed : int
        Seed of every draw.
    skip_prep : bool
        Only return the manifest paths.

    Returns
    -------
    dict
        ``{"train"|"valid"|"test": manifest path}``.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_kd.data.synthetic import make_dns_folder
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> make_dns_folder(root / "dns", n_test=2)
    >>> manifests = prepare_dns(
    ...     root / "dns", root / "prep", hours=0.005, segment_seconds=2.0
    ... )
    >>> (
    ...     len(json.load(open(manifests["train"]))),
    ...     sorted(json.load(open(manifests["test"]))),
    ... )
    (9, ['fileid_0', 'fileid_1'])
    """
    save_folder = pathlib.Path(save_folder)
    manifests = {
        s: save_folder / f"{s}.json" for s in ("train", "valid", "test")
    }
    if skip_prep:
        return {k: str(v) for k, v in manifests.items()}
    dns_folder = pathlib.Path(dns_folder)
    low, high = (float(x) for x in snr)
    if low > high:
        raise ValueError(f"snr {list(snr)}: low above high")
    if hours <= 0 or segment_seconds <= 0:
        raise ValueError(
            f"hours and segment_seconds must be positive, got {hours} and "
            f"{segment_seconds}"
        )
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError(
            f"valid_fraction must be in [0, 1), got {valid_fraction}"
        )
    options = {
        "dns_folder": str(dns_folder.resolve()),
        "sample_rate": int(sample_rate),
        "hours": float(hours),
        "segment_seconds": float(segment_seconds),
        "snr": [low, high],
        "valid_fraction": float(valid_fraction),
        "seed": int(seed),
    }
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
            logger.info("DNS mixtures in %s are up to date", save_folder)
            return {k: str(v) for k, v in manifests.items()}
    clean_files = audio_files(dns_folder / "clean", "DNS clean folder")
    noise_files = audio_files(dns_folder / "noise", "DNS noise folder")
    pairs = dns_test_pairs(dns_folder)
    save_folder.mkdir(parents=True, exist_ok=True)
    options_file.write_text(json.dumps(options, indent=1))

    rate = int(sample_rate)
    count = max(1, round(hours * 3600 / segment_seconds))
    rng = np.random.default_rng(int(seed))
    plan, frames = _clip_plan(
        clean_files, noise_files, count, segment_seconds, (low, high), rate, rng
    )
    n_valid = int(round(count * valid_fraction))
    splits = {
        "train": plan[: count - n_valid],
        "valid": plan[count - n_valid :],
    }
    from tqdm import tqdm

    for split, clips in splits.items():
        entries = {}
        start_index = 0 if split == "train" else count - n_valid
        for offset, clip in enumerate(
            tqdm(clips, desc=f"DNS {split} mixtures", disable=not clips)
        ):
            uid = f"clip_{start_index + offset:06d}"
            paths = {
                kind: save_folder / split / kind / f"{uid}.wav"
                for kind in ("clean", "noisy")
            }
            if not all(
                p.is_file() and sf.info(str(p)).frames == frames
                for p in paths.values()
            ):
                clean = _crop(clip["clean"], clip["clean_start"], frames, rate)
                noise = _crop(clip["noise"], clip["noise_start"], frames, rate)
                noisy, clean = mix_at_snr(
                    clean,
                    noise,
                    clip["snr"],
                    np.random.default_rng(clip["seed"]),
                )
                for kind, audio in (("clean", clean), ("noisy", noisy)):
                    paths[kind].parent.mkdir(parents=True, exist_ok=True)
                    partial = paths[kind].with_suffix(".part.wav")
                    sf.write(partial, audio, rate, "FLOAT")
                    partial.replace(paths[kind])
            entries[uid] = {
                "clean_wav": str(paths["clean"]),
                "noisy_wav": str(paths["noisy"]),
                "length": frames / rate,
                "snr": clip["snr"],
                "clean_source": str(clip["clean"]),
                "noise_source": str(clip["noise"]),
            }
        manifests[split].write_text(json.dumps(entries, indent=1))

    test = {}
    for uid, clean_path, noisy_path in pairs:
        entry = {}
        for kind, path in (("clean", clean_path), ("noisy", noisy_path)):
            if sf.info(str(path)).samplerate != rate:
                out = save_folder / f"test_{rate}" / kind / f"{uid}.wav"
                if not out.is_file():
                    out.parent.mkdir(parents=True, exist_ok=True)
                    audio = read_audio(path, rate).numpy()
                    sf.write(out, audio, rate, "FLOAT")
                path = out
            entry[f"{kind}_wav"] = str(path)
        entry["length"] = sf.info(entry["clean_wav"]).frames / rate
        test[uid] = entry
    manifests["test"].write_text(json.dumps(test, indent=1))
    logger.info(
        "DNS: %d training and %d validation clips of %g s, %d test pairs in %s",
        count - n_valid,
        n_valid,
        segment_seconds,
        len(test),
        save_folder,
    )
    return {k: str(v) for k, v in manifests.items()}
