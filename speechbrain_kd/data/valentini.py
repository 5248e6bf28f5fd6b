"""VoiceBank-DEMAND (Valentini) preparation for speech enhancement.

The corpus (Valentini-Botinhao et al., Edinburgh DataShare 10283/2791,
CC BY 4.0) ships noisy/clean pairs of 48 kHz, 16-bit mono WAV files in
four folders::

    clean_trainset_28spk_wav/   noisy_trainset_28spk_wav/
    clean_testset_wav/          noisy_testset_wav/

(the larger ``*_trainset_56spk_wav`` training set is accepted as well).
Many copies in circulation are already downsampled to 16 kHz and use the
same names with a ``_16k`` suffix (``clean_testset_wav_16k`` ...); that
layout is accepted too.

:func:`prepare_valentini` validates every pair, resamples it once into a
cache under ``save_folder`` (never inside ``data_folder``) and writes the
SpeechBrain JSON manifests ``train.json``, ``valid.json`` and
``test.json``.
"""

import json
import logging
import math
import os

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional
from tqdm import tqdm

from speechbrain_kd.audio import AUDIO_SUFFIXES, check_samples

logger = logging.getLogger(__name__)

#: Official release archives on Edinburgh DataShare.
DATASHARE_URL = "https://datashare.ed.ac.uk/bitstream/handle/10283/2791/{}.zip"
#: The four folders fetched by ``download=True``.
DOWNLOAD_FOLDERS = (
    "clean_trainset_28spk_wav",
    "noisy_trainset_28spk_wav",
    "clean_testset_wav",
    "noisy_testset_wav",
)
#: Folder-name suffix of each accepted layout, in order of preference.
LAYOUTS = (("48k", ""), ("16k", "_16k"))
#: Training-set variants, in order of preference.
TRAIN_VARIANTS = ("28spk", "56spk")
#: Name of the file that records the options of the last preparation.
STATE_FILE = "valentini_prepare.json"
SPLITS = ("train", "valid", "test")


class ValentiniPrepError(ValueError):
    """Raised when the Valentini data cannot be prepared as found on disk.

    The message names the offending file or folder and what to do about it.
    """


def prepare_valentini(
    data_folder,
    save_folder,
    valid_speakers=("p282", "p287"),
    sample_rate=16000,
    skip_prep=False,
    download=False,
):
    """Prepares VoiceBank-DEMAND for speech enhancement.

    Steps:

    1. Finds the split folders in ``data_folder``. The official 48 kHz
       layout (``{noisy,clean}_trainset_28spk_wav``,
       ``{noisy,clean}_testset_wav``) and the 16 kHz layout (same names
       with the suffix ``_16k``) are accepted, as is the ``56spk``
       training set. When several candidates exist for a split the
       ``28spk`` training set is preferred over ``56spk`` and the official
       48 kHz folders over the ``_16k`` ones; the choice is logged. A split
       whose folders are absent is left out with a warning.
    2. Pairs every noisy file with its clean twin (same file name) and
       checks each pair with ``soundfile.info`` before any audio is
       decoded: both files must exist, be readable, be mono, be non-empty,
       and share their sample rate and number of samples.
    3. Resamples each file whose rate differs from ``sample_rate`` once,
       into ``save_folder/wav_<sample_rate>/<source folder>/<id>.wav``
       (16-bit PCM). Resampling uses ``torchaudio.functional.resample``
       with torchaudio's defaults: windowed-sinc interpolation with a Hann
       window (``resampling_method="sinc_interp_hann"``),
       ``lowpass_filter_width=6`` and ``rolloff=0.99``; the output has
       ``ceil(n * sample_rate / source_rate)`` samples. Files already at
       ``sample_rate`` are not copied: the manifest points at the
       original. Nothing is ever written inside ``data_folder`` (it may be
       read-only), except by ``download=True``.
    4. Splits the training set by speaker (the part of the file id before
       the first ``_``, e.g. ``p226`` for ``p226_001``): utterances of
       ``valid_speakers`` form the validation set, the others the
       training set. The test folders form the test set.
    5. Writes ``save_folder/{train,valid,test}.json`` (only for the splits
       that exist), each mapping the utterance id (sorted) to
       ``{"noisy_wav": path, "clean_wav": path, "length": seconds}`` with
       absolute paths and the duration of the (resampled) audio.

    The options are stored in ``save_folder/valentini_prepare.json``;
    calling again with the same options while the manifests exist does
    nothing (no audio is read) and logs ``already prepared``. Different
    options prepare again, reusing cached files that are still valid.

    Arguments
    ---------
    data_folder : str or path-like
        Folder holding the corpus folders listed above.
    save_folder : str or path-like
        Where the manifests, the resampled cache and the state file go.
    valid_speakers : sequence of str or None
        Training-set speakers held out for validation. ``None`` or empty:
        no validation set.
    sample_rate : int
        Sample rate of the prepared audio, in Hz.
    skip_prep : bool
        If True, do nothing (no folder is scanned) and return the
        manifests already present in ``save_folder``.
    download : bool
        If True, fetch the official 48 kHz release (the 28-speaker training
        set and the test set) from Edinburgh DataShare into
        ``data_folder`` and unpack it, skipping folders already present.

    Returns
    -------
    dict
        ``{split: manifest_path}`` for the manifests written, or found
        already prepared.

    Raises
    ------
    ValentiniPrepError
        (a ``ValueError``) when no split folder is found or a file is
        missing its twin, unreadable, empty, multi-channel, or disagrees
        with its twin in sample rate or length.

    Example
    -------
    >>> import json, os, tempfile
    >>> import numpy as np, soundfile as sf
    >>> root = tempfile.mkdtemp()
    >>> data = os.path.join(root, "data")
    >>> clean = np.sin(np.arange(4800) * 0.05).astype("float32") * 0.5
    >>> for name, sig in [("clean", clean), ("noisy", clean * 0.8)]:
    ...     os.makedirs(os.path.join(data, name + "_testset_wav"))
    ...     path = os.path.join(data, name + "_testset_wav", "p232_001.wav")
    ...     sf.write(path, sig, 48000, subtype="PCM_16")
    >>> out = prepare_valentini(data, os.path.join(root, "prep"))
    >>> sorted(out)
    ['test']
    >>> with open(out["test"]) as f:
    ...     entry = json.load(f)["p232_001"]
    >>> entry["length"]
    0.1
    >>> sf.info(entry["clean_wav"]).samplerate
    16000
    >>> prepare_valentini(data, os.path.join(root, "prep")) == out
    True
    >>> import shutil
    >>> shutil.rmtree(root)
    """
    save_folder = os.path.abspath(os.fspath(save_folder))
    if skip_prep:
        logger.info("skip_prep=True: Valentini preparation skipped")
        return _existing_manifests(save_folder, SPLITS)

    data_folder = os.path.abspath(os.fspath(data_folder))
    sample_rate = int(sample_rate)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if valid_speakers is None:
        valid_speakers = ()
    elif isinstance(valid_speakers, str):
        valid_speakers = (valid_speakers,)
    valid_speakers = sorted(set(valid_speakers))

    if download:
        download_valentini(data_folder)

    sources = _find_sources(data_folder)
    options = {
        "data_folder": data_folder,
        "save_folder": save_folder,
        "valid_speakers": valid_speakers,
        "sample_rate": sample_rate,
        "sources": {
            name: {"layout": layout, "noisy": noisy, "clean": clean}
            for name, (layout, noisy, clean) in sources.items()
        },
    }

    done = _already_prepared(save_folder, options)
    if done is not None:
        logger.info(
            "Valentini data already prepared in %s (same options); "
            "nothing to do",
            save_folder,
        )
        return done

    # Validate every pair of every split before any audio is decoded.
    pairs = {
        name: _check_pairs(
            os.path.join(data_folder, noisy), os.path.join(data_folder, clean)
        )
        for name, (_, noisy, clean) in sources.items()
    }

    os.makedirs(save_folder, exist_ok=True)
    entries = {
        name: _convert_pairs(pairs[name], save_folder, sample_rate)
        for name in sources
    }

    manifests = {}
    if "trainset" in entries:
        train, valid = _split_by_speaker(entries["trainset"], valid_speakers)
        manifests["train"] = train
        if valid_speakers:
            manifests["valid"] = valid
    if "testset" in entries:
        manifests["test"] = entries["testset"]

    written = {}
    for split in SPLITS:
        path = os.path.join(save_folder, f"{split}.json")
        data = manifests.get(split)
        if data:
            _write_json(path, data)
            written[split] = path
            logger.info("Wrote %s (%d utterances)", path, len(data))
            continue
        if data is not None:
            logger.warning("The %s split is empty; no %s written", split, path)
        if os.path.exists(path):
            logger.info("Removing stale manifest %s", path)
            os.remove(path)

    if not written:
        raise ValentiniPrepError(
            f"No utterance left to write from {data_folder}; check "
            "valid_speakers and the contents of the split folders"
        )
    _write_json(
        os.path.join(save_folder, STATE_FILE),
        {"options": options, "manifests": written},
    )
    return written


def download_valentini(data_folder):
    """Downloads the official 48 kHz VoiceBank-DEMAND release.

    Fetches ``clean_trainset_28spk_wav``, ``noisy_trainset_28spk_wav``,
    ``clean_testset_wav`` and ``noisy_testset_wav`` as zip archives from
    Edinburgh DataShare into ``data_folder`` and unpacks them there. A
    folder that already exists is skipped, as is the download of an
    archive already present.

    Arguments
    ---------
    data_folder : str or path-like
        Destination folder (created if needed).
    """
    from speechbrain.utils.data_utils import download_file

    data_folder = os.path.abspath(os.fspath(data_folder))
    os.makedirs(data_folder, exist_ok=True)
    for name in DOWNLOAD_FOLDERS:
        if os.path.isdir(os.path.join(data_folder, name)):
            logger.info("%s already present; not downloaded", name)
            continue
        archive = os.path.join(data_folder, f"{name}.zip")
        download_file(
            DATASHARE_URL.format(name),
            archive,
            unpack=True,
            dest_unpack=data_folder,
        )
        if not os.path.isdir(os.path.join(data_folder, name)):
            raise ValentiniPrepError(
                f"Unpacking {archive} did not create "
                f"{os.path.join(data_folder, name)}; delete the archive "
                "and download again"
            )


def _find_sources(data_folder):
    """Returns ``{"trainset"|"testset": (layout, noisy_dir, clean_dir)}``.

    Directory names are relative to ``data_folder``.
    """

    def candidates(kind):
        """Folder names a split of ``kind`` may have."""
        variants = TRAIN_VARIANTS if kind == "trainset" else (None,)
        for variant in variants:
            for layout, suffix in LAYOUTS:
                middle = f"{kind}_{variant}" if variant else kind
                yield (
                    layout,
                    f"noisy_{middle}_wav{suffix}",
                    f"clean_{middle}_wav{suffix}",
                )

    def isdir(name):
        """Whether ``name`` is a folder of the dataset."""
        return os.path.isdir(os.path.join(data_folder, name))

    sources = {}
    expected = []
    for kind, split_names in (("trainset", "train/valid"), ("testset", "test")):
        complete = []
        for layout, noisy, clean in candidates(kind):
            expected += [noisy, clean]
            if isdir(noisy) and isdir(clean):
                complete.append((layout, noisy, clean))
            elif isdir(noisy) or isdir(clean):
                present, absent = (
                    (noisy, clean) if isdir(noisy) else (clean, noisy)
                )
                logger.warning(
                    "%s exists in %s but its twin folder %s does not; "
                    "ignoring it",
                    present,
                    data_folder,
                    absent,
                )
        if not complete:
            logger.warning(
                "No %s folders in %s: the %s split(s) will not be prepared",
                kind,
                data_folder,
                split_names,
            )
            continue
        sources[kind] = complete[0]
        if len(complete) > 1:
            logger.info(
                "Using %s and %s for the %s split(s); ignoring %s",
                complete[0][1],
                complete[0][2],
                split_names,
                ", ".join(f"{n} and {c}" for _, n, c in complete[1:]),
            )
    if not sources:
        raise ValentiniPrepError(
            f"No VoiceBank-DEMAND (Valentini) folders found in {data_folder}. "
            "Expected pairs of folders named "
            + ", ".join(expected)
            + ". Point data_folder at the unpacked corpus, or pass "
            "download=True to fetch the official release."
        )
    return sources


def _already_prepared(save_folder, options):
    """Returns the manifests if a preparation with ``options`` is complete."""
    state_path = os.path.join(save_folder, STATE_FILE)
    try:
        with open(state_path, encoding="utf-8") as f:
            state = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("options") != options:
        return None
    manifests = state.get("manifests")
    if not isinstance(manifests, dict) or not manifests:
        return None
    if not all(os.path.isfile(path) for path in manifests.values()):
        return None
    return dict(manifests)


def _existing_manifests(save_folder, splits):
    """``{split: path}`` of the manifests present in ``save_folder``."""
    out = {}
    for split in splits:
        path = os.path.join(save_folder, f"{split}.json")
        if os.path.isfile(path):
            out[split] = path
    return out


def _list_audio(folder):
    """``{stem: path}`` of the ``.wav`` and ``.flac`` files in ``folder``.

    Raises ``ValentiniPrepError`` for a stem present in both formats.
    """
    out = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in AUDIO_SUFFIXES or name.startswith("."):
            continue
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        if stem in out:
            raise ValentiniPrepError(
                f"{out[stem]} and {path} are the same utterance in two "
                "formats; keep one of them"
            )
        out[stem] = path
    return out


def _other_files(folder):
    """A short description of the non-audio files in ``folder``."""
    suffixes = sorted(
        {
            os.path.splitext(name)[1].lower() or name
            for name in os.listdir(folder)
            if not name.startswith(".")
        }
    )
    return ", ".join(suffixes[:5])


def _twin(folder, uid, other):
    """The expected path of ``uid``'s twin: the other file's suffix."""
    return os.path.join(folder, uid + os.path.splitext(other)[1])


def _check_pairs(noisy_dir, clean_dir):
    """Pairs and validates the files of one split.

    Returns a list of ``(id, noisy_path, clean_path, rate, frames)``
    sorted by id.
    """
    noisy = _list_audio(noisy_dir)
    clean = _list_audio(clean_dir)
    lonely_noisy = sorted(set(noisy) - set(clean))
    if lonely_noisy:
        uid = lonely_noisy[0]
        raise ValentiniPrepError(
            f"Noisy file {noisy[uid]} has no clean twin (expected "
            f"{_twin(clean_dir, uid, noisy[uid])})"
            + _more(lonely_noisy)
            + ". Restore the missing clean file(s), e.g. by unpacking "
            f"{os.path.basename(clean_dir)} again, or remove the unpaired "
            "noisy file(s)."
        )
    lonely_clean = sorted(set(clean) - set(noisy))
    if lonely_clean:
        uid = lonely_clean[0]
        raise ValentiniPrepError(
            f"Clean file {clean[uid]} has no noisy twin (expected "
            f"{_twin(noisy_dir, uid, clean[uid])})"
            + _more(lonely_clean)
            + ". Restore the missing noisy file(s), e.g. by unpacking "
            f"{os.path.basename(noisy_dir)} again, or remove the unpaired "
            "clean file(s)."
        )
    if not noisy:
        found = _other_files(noisy_dir) or _other_files(clean_dir)
        raise ValentiniPrepError(
            f"{noisy_dir} and {clean_dir} contain no .wav or .flac file"
            + (
                f" (found {found}: convert them to .wav or .flac, e.g. "
                "with sox or ffmpeg)"
                if found
                else "; unpack the corpus into them or remove the empty folders"
            )
            + "."
        )

    pairs = []
    for uid in tqdm(sorted(noisy), desc="Checking pairs", leave=False):
        n_info = _checked_info(noisy[uid], clean[uid])
        c_info = _checked_info(clean[uid], noisy[uid])
        if n_info.samplerate != c_info.samplerate:
            raise ValentiniPrepError(
                f"Sample-rate mismatch in pair {uid}: {noisy[uid]} is "
                f"{n_info.samplerate} Hz but {clean[uid]} is "
                f"{c_info.samplerate} Hz. Both files of a pair must have "
                "the same rate; replace them with the original corpus files."
            )
        if n_info.frames != c_info.frames:
            raise ValentiniPrepError(
                f"Length mismatch in pair {uid}: {noisy[uid]} has "
                f"{n_info.frames} samples but {clean[uid]} has "
                f"{c_info.frames}. Both files of a pair must be sample-"
                "aligned; replace them with the original corpus files."
            )
        pairs.append(
            (uid, noisy[uid], clean[uid], n_info.samplerate, n_info.frames)
        )
    return pairs


def _more(items):
    return f" (and {len(items) - 1} more)" if len(items) > 1 else ""


def _checked_info(path, twin):
    """``soundfile.info`` of ``path``, checked: readable, mono, non-empty."""
    try:
        info = sf.info(path)
    except Exception as err:  # libsndfile raises several error types
        raise ValentiniPrepError(
            f"Cannot read {path} ({err}). The file is corrupt or not audio: "
            "restore it from the original archive, or remove it together "
            f"with its twin {twin}."
        ) from err
    if info.frames <= 0:
        raise ValentiniPrepError(
            f"{path} is empty (0 samples). Restore it from the original "
            f"archive, or remove it together with its twin {twin}."
        )
    if info.channels != 1:
        raise ValentiniPrepError(
            f"{path} has {info.channels} channels; VoiceBank-DEMAND files "
            "are mono. Replace it with the mono original, or remove it "
            f"together with its twin {twin}."
        )
    return info


def _resampled_length(frames, orig_rate, new_rate):
    """Number of samples ``torchaudio.functional.resample`` returns."""
    g = math.gcd(orig_rate, new_rate)
    return -(-frames * (new_rate // g) // (orig_rate // g))


def _convert_pairs(pairs, save_folder, sample_rate):
    """Resamples the pairs if needed; returns the manifest entries."""
    entries = {}
    todo = [p for p in pairs if p[3] != sample_rate]
    bar = tqdm(
        total=2 * len(todo),
        desc=f"Resampling to {sample_rate} Hz",
        disable=not todo,
    )
    with bar:
        for uid, noisy, clean, rate, frames in pairs:
            if rate == sample_rate:
                for src in (noisy, clean):
                    _check_file(src)
                entries[uid] = _entry(noisy, clean, frames / sample_rate)
                continue
            out_frames = _resampled_length(frames, rate, sample_rate)
            paths = []
            for src in (noisy, clean):
                dst = os.path.join(
                    save_folder,
                    f"wav_{sample_rate}",
                    os.path.basename(os.path.dirname(src)),
                    os.path.splitext(os.path.basename(src))[0] + ".wav",
                )
                if not _cache_valid(dst, src, out_frames, sample_rate):
                    _resample_file(src, dst, rate, sample_rate)
                paths.append(dst)
                bar.update(1)
            entries[uid] = _entry(*paths, out_frames / sample_rate)
    return entries


def _entry(noisy, clean, seconds):
    return {"noisy_wav": noisy, "clean_wav": clean, "length": seconds}


def _cache_valid(dst, src, frames, sample_rate):
    """True if ``dst`` is a complete resampled copy newer than ``src``."""
    try:
        if os.path.getmtime(dst) < os.path.getmtime(src):
            return False
        info = sf.info(dst)
    except Exception:
        return False
    return (
        info.samplerate == sample_rate
        and info.channels == 1
        and info.frames == frames
    )


def _resample_file(src, dst, orig_rate, new_rate):
    """Resamples ``src`` to ``new_rate`` into the 16-bit PCM file ``dst``."""
    data, rate = sf.read(src, dtype="float32", always_2d=False)
    assert rate == orig_rate, (src, rate, orig_rate)
    check_samples(data, src, max_abs=1.0)
    wav = torchaudio.functional.resample(
        torch.from_numpy(data), orig_rate, new_rate
    )
    pcm = np.clip(np.round(wav.numpy() * 32768.0), -32768, 32767)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    part = dst + ".part"
    sf.write(
        part, pcm.astype(np.int16), new_rate, format="WAV", subtype="PCM_16"
    )
    os.replace(part, dst)


def _check_file(path):
    """Refuses a source file with non-finite or out-of-range samples."""
    data, _ = sf.read(path, dtype="float32", always_2d=False)
    check_samples(data, path, max_abs=1.0)


def _split_by_speaker(entries, valid_speakers):
    """Splits training entries into (train, valid) by speaker."""
    train, valid = {}, {}
    for uid, entry in entries.items():
        speaker = uid.split("_", 1)[0]
        (valid if speaker in valid_speakers else train)[uid] = entry
    found = {uid.split("_", 1)[0] for uid in valid}
    for speaker in valid_speakers:
        if speaker not in found:
            logger.warning(
                "Validation speaker %s has no utterance in the training set",
                speaker,
            )
    return train, valid


def _write_json(path, data):
    """Writes ``data`` as sorted, indented JSON, atomically."""
    part = path + ".part"
    with open(part, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(part, path)
