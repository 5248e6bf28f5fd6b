"""A small synthetic stand-in for VoiceBank-DEMAND (Valentini), built offline.

:func:`make_mini_valentini` writes, in a few seconds and without any
download, a deterministic dataset in the official 48 kHz VoiceBank-DEMAND
folder layout::

    out_dir/
        clean_trainset_28spk_wav/p226_001.wav ...
        noisy_trainset_28spk_wav/p226_001.wav ...
        clean_testset_wav/p232_001.wav ...
        noisy_testset_wav/p232_001.wav ...
        log_trainset_28spk.txt      # "p226_001 <noise_type> <snr>" per line
        log_testset.txt

so every recipe written for the real dataset runs on it unchanged. The
training speakers are p226, p227, p228, p229, p282 and p287 (p282 and p287
are the default validation speakers of the recipes, so a third of the
training pairs lands in validation), assigned round-robin; the test
speakers are p232 and p257, as in the real test set.

Signal model of the clean speech (all numpy, one seeded
``numpy.random.Generator`` per file, never the global random state):

* **Voice.** Each speaker has a sex, a fundamental-frequency (F0) range
  (male about 100-140 Hz, female about 180-240 Hz) and a vocal-tract length
  factor that scales the formants.
* **Prosody.** An utterance (1.2-1.8 s) starts and ends with 0.1-0.2 s of
  silence; in between come words of one to three syllables separated by
  short pauses, at about 4-5 syllables per second. The F0 contour declines
  over the utterance, carries an accent bump on each syllable and a slow
  random wander.
* **Voiced nuclei.** A harmonic series on the continuous F0 phase, each
  harmonic weighted by a source tilt and a three-formant envelope. The
  formants glide from a consonant locus towards a vowel target inside each
  syllable, so the resonances move over time. A raised-cosine attack and
  decay shape every syllable (the syllable rhythm).
* **Unvoiced sounds.** Band-pass filtered noise bursts before some
  syllables: fricatives (/s/, /sh/, /f/-like bands) and short plosive
  releases.

A pink noise floor 35 dB below the speech (VoiceBank's clean files have
one about 30 dB below) stands for the recording room and microphone, as
in real clean speech; the clean utterance is then scaled to an overall
level of about -25 dBFS. A noise
of one of four kinds is added at a Valentini SNR (train 15/10/5/0 dB, test
17.5/12.5/7.5/2.5 dB, computed over the whole utterance from the clean and
noise powers):

* ``coloured``: Gaussian noise spectrally shaped to 1/f^alpha, alpha in
  [1, 2] (pink to brown);
* ``babble``: the sum of 3-5 other synthetic talkers;
* ``hum``: 50 or 60 Hz mains hum with harmonics, a few tonal components and
  a faint hiss;
* ``bursts``: non-stationary clatter, decaying noise bursts and ringing
  resonances over a faint background.

Noise kinds and SNRs are cycled so that every combination appears. The pair
is scaled jointly (same gain on clean and noisy) so that the noisy peak
stays at or below 0.9, and both files are quantised to 16-bit PCM, so
``noisy - clean`` equals the noise up to int16 rounding.
:func:`describe_dataset` summarises any folder in this layout, including the
real dataset.
"""

import json
import math
import pathlib

import numpy as np
import soundfile as sf
from scipy import signal

SAMPLE_RATE = 48000
TRAIN_SPEAKERS = ("p226", "p227", "p282", "p228", "p229", "p287")
TEST_SPEAKERS = ("p232", "p257")
TRAIN_SNRS = (15.0, 10.0, 5.0, 0.0)
TEST_SNRS = (17.5, 12.5, 7.5, 2.5)
NOISE_TYPES = ("coloured", "babble", "hum", "bursts")
SPLIT_FOLDERS = {
    "train": ("clean_trainset_28spk_wav", "noisy_trainset_28spk_wav"),
    "test": ("clean_testset_wav", "noisy_testset_wav"),
}
LOG_FILES = {"train": "log_trainset_28spk.txt", "test": "log_testset.txt"}

_SPLIT_CODES = {"train": 1, "test": 2}
_SPEAKER_SEX = {
    "p226": "male",
    "p227": "male",
    "p228": "female",
    "p229": "female",
    "p282": "female",
    "p287": "male",
    "p232": "male",
    "p257": "female",
}
_F0_CENTRES = {"male": (105.0, 135.0), "female": (190.0, 230.0)}
_FORMANT_SCALES = {"male": (0.95, 1.05), "female": (1.12, 1.22)}
# (F1, F2, F3) targets in Hz of a few adult male vowels.
_VOWELS = (
    (730.0, 1090.0, 2440.0),
    (270.0, 2290.0, 3010.0),
    (300.0, 870.0, 2240.0),
    (530.0, 1840.0, 2480.0),
    (570.0, 840.0, 2410.0),
    (660.0, 1720.0, 2410.0),
    (440.0, 1020.0, 2240.0),
)
_FORMANT_GAINS = np.array([1.0, 0.7, 0.35])
_FORMANT_BANDWIDTHS = np.array([90.0, 110.0, 170.0])
# Pass bands in Hz of the unvoiced sounds: /s/, /sh/, /f/ and a plosive.
_FRICATIVE_BANDS = ((4000.0, 9000.0), (2000.0, 6000.0), (1000.0, 8000.0))
_PLOSIVE_BAND = (500.0, 6000.0)
_CONTROL_STEP_S = 0.005
_HARMONIC_LIMIT_HZ = 7000.0
_DURATION_RANGE_S = (1.2, 1.8)
_SILENCE_RANGE_S = (0.1, 0.2)
_LEVEL_RANGE_DBFS = (-27.0, -23.0)
#: Pink noise floor of the clean recordings, in dB below the speech RMS
#: (VoiceBank's clean test files: about 30 dB in their quietest frames).
_FLOOR_DB = -35.0
_PEAK_LIMIT = 0.9
_MARKER = ".mini_valentini.json"


def make_mini_valentini(
    out_dir, n_train=12, n_test=4, seed=0, sample_rate=SAMPLE_RATE
):
    """Writes a tiny synthetic VoiceBank-DEMAND in the official layout.

    Existing files from an earlier call into the same ``out_dir`` are
    replaced (stale wav files are removed). To protect a real dataset, the
    call refuses a folder whose split folders already hold wav files that
    this function did not write.

    Arguments
    ---------
    out_dir : str or pathlib.Path
        Folder to write into (created if needed).
    n_train : int
        Number of training pairs, spread round-robin over the speakers
        p226, p227, p282, p228, p229 and p287.
    n_test : int
        Number of test pairs, spread over p232 and p257.
    seed : int
        Non-negative seed; the same seed gives byte-identical files.
    sample_rate : int
        Sampling rate of the written files (at least 16000 Hz).

    Returns
    -------
    dict
        ``train`` and ``test`` (number of pairs), ``hours`` (duration of the
        clean utterances of both splits), ``snrs`` (split -> sorted list of
        the SNRs used, in dB), ``noise_types`` (sorted list), ``bytes``
        (total size of the wav and log files) and ``folder``.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     summary = make_mini_valentini(tmp, n_train=4, n_test=2)
    ...     described = describe_dataset(tmp)
    >>> summary["train"], summary["test"]
    (4, 2)
    >>> summary["snrs"]
    {'train': [0.0, 5.0, 10.0, 15.0], 'test': [12.5, 17.5]}
    >>> summary["noise_types"]
    ['babble', 'bursts', 'coloured', 'hum']
    >>> described["train"], described["snrs"] == summary["snrs"]
    (4, True)
    """
    _check_arguments(n_train, n_test, seed, sample_rate)
    out_dir = pathlib.Path(out_dir)
    _prepare_output_folder(out_dir, n_train, n_test, seed, sample_rate)
    plan = {
        "train": _split_plan(TRAIN_SPEAKERS, TRAIN_SNRS, n_train),
        "test": _split_plan(TEST_SPEAKERS, TEST_SNRS, n_test),
    }
    seconds = []
    written = []
    for split, entries in plan.items():
        clean_dir, noisy_dir = (out_dir / name for name in SPLIT_FOLDERS[split])
        for index, (utt_id, speaker, noise_type, snr) in enumerate(entries):
            rng = np.random.default_rng([seed, _SPLIT_CODES[split], index])
            voice = _speaker_voice(seed, speaker)
            clean, noisy = _make_pair(rng, voice, noise_type, snr, sample_rate)
            for folder, audio in ((clean_dir, clean), (noisy_dir, noisy)):
                path = folder / f"{utt_id}.wav"
                _write_pcm16(path, audio, sample_rate)
                written.append(path)
            seconds.append(len(clean) / sample_rate)
        log_path = out_dir / LOG_FILES[split]
        _write_log(log_path, entries)
        written.append(log_path)
    return {
        "train": n_train,
        "test": n_test,
        "hours": math.fsum(seconds) / 3600.0,
        "snrs": {
            split: sorted({entry[3] for entry in entries})
            for split, entries in plan.items()
        },
        "noise_types": sorted(
            {entry[2] for entries in plan.values() for entry in entries}
        ),
        "bytes": sum(path.stat().st_size for path in written),
        "folder": str(out_dir),
    }


def describe_dataset(folder):
    """Summarises a folder in the VoiceBank-DEMAND 48 kHz layout.

    Works on the real dataset as well as on :func:`make_mini_valentini`
    output, and on partial copies: a missing split counts zero files and a
    missing log file leaves that split's SNR list empty. Log files are
    looked up in ``folder`` and in ``folder/logfiles``.

    Arguments
    ---------
    folder : str or pathlib.Path
        Root folder holding the ``clean_*``/``noisy_*`` wav folders.

    Returns
    -------
    dict
        ``train`` and ``test`` (number of utterances, counted in the clean
        folder, or in the noisy one when the clean one is missing),
        ``hours`` (duration of those utterances, read from the wav headers),
        ``snrs`` (split -> sorted list of SNRs in the log file),
        ``noise_types`` (sorted noise labels of the log files), ``bytes``
        (total size of the wav and log files) and ``folder``.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = make_mini_valentini(tmp, n_train=4, n_test=2)
    ...     summary = describe_dataset(tmp)
    >>> summary["train"], summary["test"], summary["snrs"]["test"]
    (4, 2, [12.5, 17.5])
    """
    folder = pathlib.Path(folder)
    summary = {"snrs": {}, "noise_types": set(), "bytes": 0}
    seconds = []
    for split, names in SPLIT_FOLDERS.items():
        clean_files, noisy_files = (_wav_files(folder / name) for name in names)
        counted = clean_files or noisy_files
        summary[split] = len(counted)
        seconds.extend(_wav_seconds(path) for path in counted)
        summary["bytes"] += sum(
            path.stat().st_size for path in clean_files + noisy_files
        )
        log_path = _find_log(folder, LOG_FILES[split])
        entries = _read_log(log_path) if log_path is not None else []
        summary["snrs"][split] = sorted({snr for _, _, snr in entries})
        summary["noise_types"].update(noise for _, noise, _ in entries)
        if log_path is not None:
            summary["bytes"] += log_path.stat().st_size
    return {
        "train": summary["train"],
        "test": summary["test"],
        "hours": math.fsum(seconds) / 3600.0,
        "snrs": summary["snrs"],
        "noise_types": sorted(summary["noise_types"]),
        "bytes": summary["bytes"],
        "folder": str(folder),
    }


# --------------------------------------------------------------------------
# Dataset plan and files
# --------------------------------------------------------------------------


def _check_arguments(n_train, n_test, seed, sample_rate):
    """Raises ``ValueError`` on unusable arguments."""
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if int(value) != value or value < 0:
            raise ValueError(f"{name} must be a non-negative integer")
    if int(seed) != seed or seed < 0:
        raise ValueError("seed must be a non-negative integer")
    if sample_rate < 16000:
        raise ValueError("sample_rate must be at least 16000 Hz")


def _prepare_output_folder(out_dir, n_train, n_test, seed, sample_rate):
    """Creates the folders and removes the wav files of an earlier run."""
    marker = out_dir / _MARKER
    folders = [
        out_dir / name for pair in SPLIT_FOLDERS.values() for name in pair
    ]
    old_wavs = [path for folder in folders for path in _wav_files(folder)]
    if old_wavs and not marker.is_file():
        raise FileExistsError(
            f"{out_dir} already holds wav files that make_mini_valentini did "
            "not write; choose an empty folder"
        )
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    settings = {
        "n_train": n_train,
        "n_test": n_test,
        "seed": seed,
        "sample_rate": sample_rate,
    }
    marker.write_text(json.dumps(settings, sort_keys=True) + "\n")
    for path in old_wavs:
        path.unlink()


def _split_plan(speakers, snrs, n_files):
    """Lists ``(utt_id, speaker, noise_type, snr)`` for one split.

    Speakers are taken round-robin. Within each block of four files the
    noise types and the SNRs each appear once; from block to block the noise
    type shifts by one and the SNR by two, so a speaker meets several noise
    types and the first 16 files hold 16 distinct (noise, SNR) combinations.
    """
    counts = dict.fromkeys(speakers, 0)
    entries = []
    for index in range(n_files):
        speaker = speakers[index % len(speakers)]
        counts[speaker] += 1
        slot, block = index % 4, index // 4
        noise_type = NOISE_TYPES[(slot + block) % len(NOISE_TYPES)]
        snr = snrs[(slot + 2 * block) % len(snrs)]
        entries.append(
            (f"{speaker}_{counts[speaker]:03d}", speaker, noise_type, snr)
        )
    return entries


def _write_pcm16(path, audio, sample_rate):
    """Writes ``audio`` (floats in [-1, 1)) as 16-bit PCM mono."""
    scaled = np.round(np.asarray(audio, dtype=np.float64) * 32768.0)
    pcm = np.clip(scaled, -32768, 32767).astype(np.int16)
    sf.write(str(path), pcm, sample_rate, subtype="PCM_16", format="WAV")


def _write_log(path, entries):
    """Writes a Valentini-style log: ``utt_id noise_type snr`` per line."""
    lines = [f"{utt_id} {noise} {snr:g}\n" for utt_id, _, noise, snr in entries]
    path.write_text("".join(sorted(lines)))


def _wav_files(folder):
    """Sorted wav files of ``folder`` (empty list when it does not exist)."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.glob("*.wav") if path.is_file())


def _wav_seconds(path):
    """Duration of a wav file in seconds, read from its header."""
    info = sf.info(str(path))
    return info.frames / info.samplerate


def _find_log(folder, name):
    """Path of log file ``name`` in ``folder`` or ``folder/logfiles``."""
    for candidate in (folder / name, folder / "logfiles" / name):
        if candidate.is_file():
            return candidate
    return None


def _read_log(path):
    """Parses ``utt_id noise_type snr`` lines; other lines are skipped."""
    entries = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        try:
            snr = float(fields[2])
        except ValueError:
            continue
        entries.append((fields[0], fields[1], snr))
    return entries


# --------------------------------------------------------------------------
# Clean speech
# --------------------------------------------------------------------------


def _speaker_voice(seed, speaker):
    """Draws the fixed voice (sex, F0 range, formant scale) of a speaker."""
    sex = _SPEAKER_SEX.get(speaker, "male")
    rng = np.random.default_rng([seed, 0, int(speaker.lstrip("p"))])
    centre = rng.uniform(*_F0_CENTRES[sex])
    return {
        "f0_range": (0.85 * centre, 1.15 * centre),
        "formant_scale": rng.uniform(*_FORMANT_SCALES[sex]),
    }


def _random_voice(rng):
    """Draws a voice of random sex (for babble talkers)."""
    sex = "female" if rng.random() < 0.5 else "male"
    centre = rng.uniform(*_F0_CENTRES[sex])
    return {
        "f0_range": (0.85 * centre, 1.15 * centre),
        "formant_scale": rng.uniform(*_FORMANT_SCALES[sex]),
    }


def _speech_like(rng, voice, n_samples, sample_rate, lead_s, trail_s):
    """Synthesises a speech-like signal of ``n_samples`` (unit voiced RMS)."""
    duration = n_samples / sample_rate
    syllables, unvoiced = _plan_syllables(rng, lead_s, duration - trail_s)
    f0 = _f0_contour(rng, voice, syllables, n_samples, sample_rate)
    phase = 2.0 * np.pi * np.cumsum(f0) / sample_rate
    speech = np.zeros(n_samples)
    for syllable in syllables:
        _add_voiced_syllable(
            speech, syllable, phase, f0, voice, sample_rate, rng
        )
    voiced_rms = _rms(speech[speech != 0.0])
    speech /= max(voiced_rms, 1e-12)
    for start_s, end_s, band in unvoiced:
        _add_unvoiced(speech, rng, start_s, end_s, band, sample_rate)
    return speech


def _plan_syllables(rng, start_s, end_s):
    """Lays out words of 1-3 syllables between ``start_s`` and ``end_s``.

    Returns the voiced syllables ``(start_s, end_s, vowel, locus, stress)``
    and the unvoiced sounds ``(start_s, end_s, band)``.
    """
    syllables, unvoiced = [], []
    time = start_s
    while time < end_s - 0.15:
        for _ in range(int(rng.integers(1, 4))):
            onset = _draw_onset(rng)
            length = rng.uniform(0.13, 0.2)
            onset_s = 0.0 if onset is None else onset[0]
            if time + onset_s + length > end_s:
                break
            if onset is not None:
                unvoiced.append((time, time + onset_s, onset[1]))
                time += 0.8 * onset_s
            vowel = np.array(_VOWELS[int(rng.integers(len(_VOWELS)))])
            locus = rng.uniform(
                [250.0, 1100.0, 2200.0], [450.0, 1900.0, 2900.0]
            )
            stress = rng.uniform(0.6, 1.0)
            syllables.append((time, time + length, vowel, locus, stress))
            time += length + rng.uniform(0.0, 0.03)
        time += rng.uniform(0.06, 0.15)
    return syllables, unvoiced


def _draw_onset(rng):
    """Draws an unvoiced syllable onset ``(length_s, band)`` or ``None``."""
    draw = rng.random()
    if draw < 0.35:
        band = _FRICATIVE_BANDS[int(rng.integers(len(_FRICATIVE_BANDS)))]
        return rng.uniform(0.04, 0.08), band
    if draw < 0.55:
        return rng.uniform(0.01, 0.02), _PLOSIVE_BAND
    return None


def _f0_contour(rng, voice, syllables, n_samples, sample_rate):
    """F0 in Hz per sample: declination, syllable accents and a wander."""
    n_control = int(n_samples / (_CONTROL_STEP_S * sample_rate)) + 2
    times = np.arange(n_control) * _CONTROL_STEP_S
    low, high = voice["f0_range"]
    start = rng.uniform(low + 0.4 * (high - low), high)
    contour = start * (1.0 - 0.15 * times / max(times[-1], 1e-9))
    for start_s, end_s, *_ in syllables:
        centre = 0.5 * (start_s + end_s)
        bump = rng.uniform(0.0, 0.12) * start
        contour += bump * np.exp(-0.5 * ((times - centre) / 0.06) ** 2)
    wander = np.cumsum(rng.normal(0.0, 0.004, n_control))
    contour *= 1.0 + wander - wander.mean()
    contour = np.clip(contour, 0.8 * low, 1.3 * high)
    sample_times = np.arange(n_samples) / sample_rate
    return np.interp(sample_times, times, contour)


def _add_voiced_syllable(speech, syllable, phase, f0, voice, sample_rate, rng):
    """Adds one harmonic syllable nucleus to ``speech`` in place."""
    start_s, end_s, vowel, locus, stress = syllable
    first = int(start_s * sample_rate)
    last = min(int(end_s * sample_rate), len(speech))
    if last - first < 2:
        return
    step = int(_CONTROL_STEP_S * sample_rate)
    n_control = (last - first) // step + 2
    control_idx = np.minimum(first + np.arange(n_control) * step, len(f0) - 1)
    f0_control = f0[control_idx]
    progress = (control_idx - first) / max(last - first, 1)
    formants = _formant_track(vowel, locus, progress) * voice["formant_scale"]
    amplitudes = _harmonic_amplitudes(f0_control, formants, sample_rate)
    position = np.arange(last - first) / step
    index = position.astype(int)
    frac = position - index
    numbers = np.arange(1, amplitudes.shape[0] + 1)[:, None]
    weights = (
        amplitudes[:, index] * (1.0 - frac) + amplitudes[:, index + 1] * frac
    )
    nucleus = np.sum(weights * np.sin(numbers * phase[first:last]), axis=0)
    envelope = _syllable_envelope(last - first, sample_rate, rng)
    speech[first:last] += stress * envelope * nucleus


def _formant_track(vowel, locus, progress):
    """Formant frequencies (3, n) gliding from ``locus`` to ``vowel``."""
    glide = np.clip(progress / 0.6, 0.0, 1.0)
    glide = 0.5 - 0.5 * np.cos(np.pi * glide)
    start = 0.55 * locus + 0.45 * vowel
    return start[:, None] + (vowel - start)[:, None] * glide[None, :]


def _harmonic_amplitudes(f0_control, formants, sample_rate):
    """Amplitude of every harmonic (K, n) from source tilt and formants."""
    limit = min(_HARMONIC_LIMIT_HZ, 0.45 * sample_rate)
    n_harmonics = int(limit / f0_control.min())
    numbers = np.arange(1, n_harmonics + 1)[:, None]
    freqs = numbers * f0_control[None, :]
    envelope = np.full(freqs.shape, 0.02)
    for gain, bandwidth, track in zip(
        _FORMANT_GAINS, _FORMANT_BANDWIDTHS, formants, strict=False
    ):
        detune = (freqs - track[None, :]) / (0.5 * bandwidth)
        envelope += gain / np.sqrt(1.0 + detune**2)
    taper = np.clip((limit - freqs) / (0.2 * limit), 0.0, 1.0)
    amplitudes = envelope * taper / numbers**0.8
    return np.concatenate([amplitudes, amplitudes[:, -1:]], axis=1)


def _syllable_envelope(length, sample_rate, rng):
    """Raised-cosine attack and decay of a syllable of ``length`` samples."""
    attack = min(int(rng.uniform(0.015, 0.03) * sample_rate), length // 3)
    decay = min(int(rng.uniform(0.04, 0.07) * sample_rate), length // 2)
    envelope = np.ones(length)
    envelope[:attack] = 0.5 - 0.5 * np.cos(np.pi * np.arange(attack) / attack)
    envelope[length - decay :] = 0.5 + 0.5 * np.cos(
        np.pi * np.arange(decay) / decay
    )
    return envelope


def _add_unvoiced(speech, rng, start_s, end_s, band, sample_rate):
    """Adds a band-pass noise burst (fricative or plosive) in place."""
    first = int(start_s * sample_rate)
    last = min(int(end_s * sample_rate), len(speech))
    if last - first < 8:
        return
    noise = _band_noise(rng, last - first + 256, band, sample_rate)[256:]
    window = signal.windows.tukey(last - first, alpha=0.5)
    level = rng.uniform(0.2, 0.45)
    speech[first:last] += level * window * noise / max(_rms(noise), 1e-12)


def _band_noise(rng, n_samples, band, sample_rate):
    """White Gaussian noise through a 4th-order Butterworth band-pass."""
    low = band[0]
    high = min(band[1], 0.45 * sample_rate)
    sos = signal.butter(
        4, [low, high], btype="bandpass", fs=sample_rate, output="sos"
    )
    return signal.sosfilt(sos, rng.standard_normal(n_samples))


def _clean_utterance(rng, voice, sample_rate):
    """Draws one clean utterance scaled to about -25 dBFS."""
    duration = rng.uniform(*_DURATION_RANGE_S)
    n_samples = int(round(duration * sample_rate))
    lead = rng.uniform(*_SILENCE_RANGE_S)
    trail = rng.uniform(*_SILENCE_RANGE_S)
    speech = _speech_like(rng, voice, n_samples, sample_rate, lead, trail)
    speech /= _rms(speech)
    # A recording's noise floor: without one, the silences are digital
    # zeros and the LPC fits of the composite measures (LLR) break down.
    floor = _coloured_noise(rng, n_samples, sample_rate, alpha=1.0)
    speech += floor * 10.0 ** (_FLOOR_DB / 20.0) / _rms(floor)
    level = 10.0 ** (rng.uniform(*_LEVEL_RANGE_DBFS) / 20.0)
    return speech * level / _rms(speech)


# --------------------------------------------------------------------------
# Noise and mixing
# --------------------------------------------------------------------------


def _make_pair(rng, voice, noise_type, snr_db, sample_rate):
    """Builds one (clean, noisy) pair at ``snr_db``, peak-limited jointly."""
    clean = _clean_utterance(rng, voice, sample_rate)
    noise = _NOISE_MAKERS[noise_type](rng, len(clean), sample_rate)
    noisy = clean + _scale_to_snr(clean, noise, snr_db)
    gain = min(1.0, _PEAK_LIMIT / np.max(np.abs(noisy)))
    return clean * gain, noisy * gain


def _scale_to_snr(clean, noise, snr_db):
    """Scales ``noise`` so that the clean-to-noise power ratio is ``snr_db``."""
    clean_power = np.mean(clean**2)
    noise_power = np.mean(noise**2)
    return noise * np.sqrt(clean_power / (noise_power * 10 ** (snr_db / 10)))


def _coloured_noise(rng, n_samples, sample_rate, alpha=None):
    """Gaussian noise with a 1/f^alpha power spectrum (alpha drawn in
    [1, 2] unless given)."""
    if alpha is None:
        alpha = rng.uniform(1.0, 2.0)
    spectrum = np.fft.rfft(rng.standard_normal(n_samples))
    freqs = np.fft.rfftfreq(n_samples, 1.0 / sample_rate)
    spectrum *= np.maximum(freqs, 40.0) ** (-alpha / 2.0)
    spectrum[0] = 0.0
    return np.fft.irfft(spectrum, n=n_samples)


def _babble_noise(rng, n_samples, sample_rate):
    """The sum of 3-5 synthetic talkers, each at its own level."""
    babble = np.zeros(n_samples)
    for _ in range(int(rng.integers(3, 6))):
        talker = _speech_like(
            rng,
            _random_voice(rng),
            n_samples,
            sample_rate,
            lead_s=rng.uniform(0.0, 0.3),
            trail_s=0.0,
        )
        babble += rng.uniform(0.6, 1.0) * talker / max(_rms(talker), 1e-12)
    return babble


def _hum_noise(rng, n_samples, sample_rate):
    """Mains hum with harmonics, a few tones and a faint hiss."""
    times = np.arange(n_samples) / sample_rate
    mains = 50.0 if rng.random() < 0.5 else 60.0
    hum = np.zeros(n_samples)
    for harmonic in range(1, int(rng.integers(6, 13)) + 1):
        weight = harmonic ** -rng.uniform(0.7, 1.5) * (
            1.5 if harmonic % 2 else 1.0
        )
        phase = rng.uniform(0.0, 2.0 * np.pi)
        hum += weight * np.sin(2.0 * np.pi * mains * harmonic * times + phase)
    for _ in range(int(rng.integers(2, 5))):
        freq = rng.uniform(200.0, 4000.0)
        wobble = 1.0 + 0.3 * np.sin(2.0 * np.pi * rng.uniform(0.2, 2.0) * times)
        phase = rng.uniform(0.0, 2.0 * np.pi)
        tone = np.sin(2.0 * np.pi * freq * times + phase)
        hum += rng.uniform(0.1, 0.4) * wobble * tone
    hiss = rng.standard_normal(n_samples)
    return hum / _rms(hum) + 0.05 * hiss


def _burst_noise(rng, n_samples, sample_rate):
    """Non-stationary clatter: decaying bursts and rings on a faint floor."""
    floor = _coloured_noise(rng, n_samples, sample_rate)
    noise = 0.03 * floor / max(_rms(floor), 1e-12)
    n_bursts = int(rng.integers(4, 9) * n_samples / sample_rate) + 1
    for _ in range(n_bursts):
        length = int(rng.uniform(0.01, 0.15) * sample_rate)
        start = int(rng.integers(0, max(n_samples - length, 1)))
        length = min(length, n_samples - start)
        decay = np.exp(-np.arange(length) / (rng.uniform(0.1, 0.4) * length))
        noise[start : start + length] += (
            rng.uniform(0.3, 1.0)
            * decay
            * _burst_source(rng, length, sample_rate)
        )
    return noise


def _burst_source(rng, length, sample_rate):
    """Unit-RMS excitation of one burst: band noise or a ringing tone."""
    if rng.random() < 0.5:
        low = rng.uniform(200.0, 3000.0)
        band = (low, low * rng.uniform(1.5, 4.0))
        source = _band_noise(rng, length, band, sample_rate)
    else:
        freq = rng.uniform(800.0, 6000.0)
        source = np.sin(2.0 * np.pi * freq * np.arange(length) / sample_rate)
    return source / max(_rms(source), 1e-12)


_NOISE_MAKERS = {
    "coloured": _coloured_noise,
    "babble": _babble_noise,
    "hum": _hum_noise,
    "bursts": _burst_noise,
}


def _rms(values):
    """Root mean square of an array (0.0 for an empty one)."""
    if values.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(values))))


def make_timit_noisex(root, sentences=3, seconds=1.0, seed=0):
    """Tiny TIMIT and NOISEX-92 folders in their original layouts.

    TIMIT: ``TIMIT/{TRAIN,TEST}/DR1/MABC0/SX<k>.WAV`` (NIST SPHERE, 16-bit,
    16 kHz, speech-like signals); NOISEX-92: ``NOISEX-92/<type>.wav`` for
    every noise type of KDRL's protocol (RIFF, 19.98 kHz, filtered noise).
    For tests: nothing here is TIMIT or NOISEX audio.

    Arguments
    ---------
    root : str or pathlib.Path
        Where the two folders go.
    sentences : int
        Sentences per TIMIT split.
    seconds : float
        Length of each sentence.
    seed : int
        Seed of the signals.

    Returns
    -------
    tuple of pathlib.Path
        ``(timit_folder, noisex_folder)``.

    Example
    -------
    >>> import tempfile
    >>> timit, noisex = make_timit_noisex(tempfile.mkdtemp(), sentences=1)
    >>> sorted(p.name for p in (timit / "TEST" / "DR1" / "MABC0").iterdir())
    ['SX1.WAV']
    """
    from speechbrain_kd.data.timit_noisex import TEST_NOISES, TRAIN_NOISES

    root = pathlib.Path(root)
    rng = np.random.default_rng(seed)
    timit, noisex = root / "TIMIT", root / "NOISEX-92"
    samples = int(seconds * 16000)
    for split in ("TRAIN", "TEST"):
        folder = timit / split / "DR1" / "MABC0"
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(sentences):
            speech = _speech_like(
                rng, _random_voice(rng), samples, 16000, 0.1, 0.1
            )
            speech = np.clip(0.1 * speech, -0.99, 0.99)
            sf.write(
                folder / f"SX{index + 1}.WAV",
                speech,
                16000,
                format="NIST",
                subtype="PCM_16",
            )
    noisex.mkdir(parents=True, exist_ok=True)
    rate = 19980
    for index, name in enumerate((*TRAIN_NOISES, *TEST_NOISES)):
        noise = rng.standard_normal(2 * rate)
        smoothing = 1 + index % 4  # a different colour per type
        noise = np.convolve(noise, np.ones(smoothing) / smoothing, "same")
        noise = 0.3 * noise / np.max(np.abs(noise))
        sf.write(noisex / f"{name}.wav", noise, rate, subtype="PCM_16")
    return timit, noisex


def make_binaural_folders(root, utterances=8, seed=0, sample_rate=16000):
    """Tiny speech, noise and two-channel impulse-response folders.

    ``speech/`` holds speech-like utterances of several voices,
    ``noise/`` three noise recordings (coloured, babble, hum), ``irs/``
    four two-channel impulse responses: a direct path with an interaural
    time (up to 0.6 ms) and level difference for a source at a random
    azimuth, plus an exponentially decaying diffuse tail (about 0.2 s of
    RT60) that differs between the ears. For tests and the embedded demo:
    none of it is measured audio.

    Arguments
    ---------
    root : str or pathlib.Path
        Where the three folders go.
    utterances : int
        Speech files.
    seed : int
        Seed of every draw.
    sample_rate : int
        Rate of the files.

    Returns
    -------
    tuple of pathlib.Path
        ``(speech_folder, noise_folder, ir_folder)``.

    Example
    -------
    >>> import tempfile
    >>> speech, noise, irs = make_binaural_folders(tempfile.mkdtemp(), 2)
    >>> sf.info(str(next(irs.glob("*.wav")))).channels
    2
    """
    root = pathlib.Path(root)
    rng = np.random.default_rng(int(seed))
    folders = [root / name for name in ("speech", "noise", "irs")]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    for index in range(int(utterances)):
        voice = _random_voice(rng)
        speech = _clean_utterance(rng, voice, sample_rate)
        sf.write(folders[0] / f"utt{index:03d}.wav", speech, sample_rate)
    length = 4 * sample_rate
    noises = {
        "coloured": _coloured_noise(rng, length, sample_rate),
        "babble": _babble_noise(rng, length, sample_rate),
        "hum": _hum_noise(rng, length, sample_rate),
    }
    for name, noise in noises.items():
        noise = 0.1 * noise / _rms(noise)
        sf.write(folders[1] / f"{name}.wav", noise, sample_rate)
    taps = int(0.25 * sample_rate)
    decay = np.exp(-6.9 * np.arange(taps) / (0.2 * sample_rate))
    for index in range(4):
        azimuth = rng.uniform(-np.pi / 2, np.pi / 2)
        delay = int(round(abs(np.sin(azimuth)) * 0.0006 * sample_rate))
        near, far = 1.0, 10 ** (-6 * abs(np.sin(azimuth)) / 20)
        ir = 0.05 * rng.standard_normal((taps, 2)) * decay[:, None]
        ir[:8] = 0.0
        ears = (0, 1) if azimuth < 0 else (1, 0)
        ir[0, ears[0]] += near
        ir[delay, ears[1]] += far
        sf.write(folders[2] / f"ir{index}.wav", ir, sample_rate, "FLOAT")
    return tuple(folders)


def make_dns_folder(root, n_clean=3, n_noise=2, n_test=2, seconds=3.0, seed=0):
    """A tiny folder in the layout of the DNS Challenge (2020) ``datasets``:
    ``clean/``, ``noise/`` and ``test_set/synthetic/no_reverb/{clean,noisy}``
    with ``fileid_<N>`` pairing, 16 kHz, speech-like signals. For tests:
    nothing here is DNS audio.

    Arguments
    ---------
    root : str or pathlib.Path
        The ``datasets`` folder to write.
    n_clean : int
        Clean speech files.
    n_noise : int
        Noise files.
    n_test : int
        Test pairs.
    seconds : float
        Length of each file.
    seed : int
        Seed of the signals.

    Example
    -------
    >>> import tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> make_dns_folder(root, n_test=1)
    >>> sorted(
    ...     p.name
    ...     for p in (
    ...         root / "test_set" / "synthetic" / "no_reverb" / "noisy"
    ...     ).iterdir()
    ... )
    ['book_00000_chp_0001_reader_00001_snr5_fileid_0.wav']
    """
    root = pathlib.Path(root)
    rng = np.random.default_rng(seed)
    rate, samples = 16000, int(seconds * 16000)

    def speech():
        """A speech-like file at about -20 dBFS."""
        signal = _speech_like(rng, _random_voice(rng), samples, rate, 0.1, 0.1)
        return np.clip(0.1 * signal / _rms(signal), -0.99, 0.99)

    def noise(index):
        """A noise file, a different type per index."""
        makers = list(_NOISE_MAKERS.values())
        signal = makers[index % len(makers)](rng, samples, rate)
        return 0.05 * signal / _rms(signal)

    for folder in ("clean", "noise"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for index in range(n_clean):
        name = f"book_{index:05d}_chp_0001_reader_{index:05d}_{index}.wav"
        sf.write(root / "clean" / name, speech(), rate, subtype="PCM_16")
    for index in range(n_noise):
        sf.write(root / "noise" / f"noise_{index}.wav", noise(index), rate)
    test = root / "test_set" / "synthetic" / "no_reverb"
    for kind in ("clean", "noisy"):
        (test / kind).mkdir(parents=True, exist_ok=True)
    for index in range(n_test):
        clean = speech()
        noisy = np.clip(clean + noise(index), -0.99, 0.99)
        sf.write(test / "clean" / f"clean_fileid_{index}.wav", clean, rate)
        name = f"book_{index:05d}_chp_0001_reader_{index + 1:05d}_snr5"
        sf.write(test / "noisy" / f"{name}_fileid_{index}.wav", noisy, rate)
