"""SpeechBrain data pipelines for speech enhancement.

The datasets read the manifests written by
:func:`speechbrain_kd.data.valentini.prepare_valentini` (``{id: {"noisy_wav",
"clean_wav", "length"}}``) and yield ``id``, ``noisy_sig`` and ``clean_sig``
(float32, mono, 1-D tensors). Batch them with
``speechbrain.dataio.batch.PaddedBatch``.

Training items are fixed-length segments, either a random crop per read
(default) or, when ``segment_hop_seconds`` is given, a deterministic list of
overlapping segments per utterance (as in MANNER). Validation and test items
are whole utterances.
"""

import contextlib
import os
import pathlib

import numpy as np
import soundfile as sf
import torch

from speechbrain.dataio.dataio import load_data_json
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.utils.data_pipeline import provides, takes

OUTPUT_KEYS = ["id", "noisy_sig", "clean_sig"]


def dataio_prep(
    train_json=None,
    valid_json=None,
    test_json=None,
    sample_rate=16000,
    segment_seconds=4.0,
    segment_hop_seconds=None,
    replacements=None,
    binaural=False,
):
    """Builds the enhancement datasets from JSON manifests.

    Training items (``train``) are segments of ``segment_seconds``:

    * default (``segment_hop_seconds=None``): a random crop, taken at the
      same offset in the noisy and the clean file; a fresh offset is drawn
      with ``torch.randint`` each time the item is read, so SpeechBrain's
      global seeding (``sb.utils.seed_everything`` / the ``seed`` of a
      recipe) makes the crops reproducible, and DataLoader workers draw
      from their own seeded generators.
    * ``segment_hop_seconds=h``: every utterance is expanded once into
      deterministic segments starting every ``h`` seconds (see
      :func:`expand_segments`); the segment ids are ``<id>@<k>``.

    Utterances (or last segments) shorter than ``segment_seconds`` are
    returned whole, not padded inside the item: ``PaddedBatch`` zero-pads
    them to the longest item of the batch, and its relative lengths
    (``batch.noisy_sig.lengths``) tell the loss where the real audio ends,
    so the padding can be masked out.

    Validation (``valid``) and test (``test``) items are whole utterances
    in manifest order; each data point keeps its ``length`` (seconds), so
    ``ds.filtered_sorted(sort_key="length")`` can sort them.

    Arguments
    ---------
    train_json, valid_json, test_json : str or path-like, optional
        Manifests; a dataset is built for each one given.
    sample_rate : int
        Expected sample rate of every file; a file at another rate raises
        ``ValueError`` when it is read.
    segment_seconds : float or None
        Length of the training segments; ``None`` trains on whole
        utterances.
    segment_hop_seconds : float or None
        Hop between deterministic training segments; ``None`` for random
        crops.
    replacements : dict, optional
        ``str.format`` replacements applied to the manifest strings, e.g.
        ``{"data_root": "/data"}`` for paths written as ``{data_root}/...``.
    binaural : bool
        Items also hold ``binaural_sig`` (``[time, 2]``, left and right),
        read from the manifest's ``binaural_wav`` (a two-channel file) at
        the same span as the noisy and clean files.

    Returns
    -------
    dict
        ``{"train"|"valid"|"test": DynamicItemDataset}`` for the manifests
        given, each with output keys ``["id", "noisy_sig", "clean_sig"]``
        (and ``binaural_sig``).

    Example
    -------
    >>> import json, os, tempfile
    >>> import numpy as np, soundfile as sf
    >>> root = tempfile.mkdtemp()
    >>> clean = np.linspace(-0.5, 0.5, 16000, dtype="float32")
    >>> manifest = {}
    >>> for name, sig in [("clean", clean), ("noisy", clean * 0.5)]:
    ...     sf.write(os.path.join(root, name + ".wav"), sig, 16000)
    ...     manifest[name + "_wav"] = "{root}/" + name + ".wav"
    >>> manifest["length"] = 1.0
    >>> path = os.path.join(root, "train.json")
    >>> with open(path, "w") as f:
    ...     json.dump({"utt1": manifest}, f)
    >>> sets = dataio_prep(
    ...     train_json=path,
    ...     valid_json=path,
    ...     segment_seconds=0.25,
    ...     replacements={"root": root},
    ... )
    >>> item = sets["train"][0]
    >>> item["id"], item["noisy_sig"].shape, item["clean_sig"].shape
    ('utt1', torch.Size([4000]), torch.Size([4000]))
    >>> torch.allclose(item["noisy_sig"], item["clean_sig"] * 0.5, atol=1e-4)
    True
    >>> sets["valid"][0]["clean_sig"].shape
    torch.Size([16000])
    >>> sets = dataio_prep(
    ...     train_json=path,
    ...     segment_seconds=0.25,
    ...     segment_hop_seconds=0.25,
    ...     replacements={"root": root},
    ... )
    >>> len(sets["train"]), sets["train"][3]["id"]
    (4, 'utt1@3')
    >>> import shutil
    >>> shutil.rmtree(root)
    """
    sample_rate = int(sample_rate)
    segment = _seconds_to_samples(segment_seconds, sample_rate)
    datasets = {}
    keys = OUTPUT_KEYS + (["binaural_sig"] if binaural else [])

    if train_json is not None:
        data = load_data_json(train_json, replacements)
        _check_not_empty(data, train_json)
        if segment is not None and segment_hop_seconds is not None:
            data = expand_segments(
                data, segment_seconds, segment_hop_seconds, sample_rate
            )
            pipeline = _span_pipeline(sample_rate, train_json, binaural)
        elif segment is not None:
            pipeline = _random_crop_pipeline(
                segment, sample_rate, train_json, binaural
            )
        else:
            pipeline = _whole_pipeline(sample_rate, train_json, binaural)
        datasets["train"] = DynamicItemDataset(
            data, dynamic_items=[pipeline], output_keys=keys
        )

    for split, path in (("valid", valid_json), ("test", test_json)):
        if path is None:
            continue
        data = load_data_json(path, replacements)
        _check_not_empty(data, path)
        datasets[split] = DynamicItemDataset(
            data,
            dynamic_items=[_whole_pipeline(sample_rate, path, binaural)],
            output_keys=keys,
        )
    return datasets


def expand_segments(data, segment_seconds, hop_seconds, sample_rate):
    """Expands utterances into deterministic fixed-length segments.

    An utterance of ``n`` samples (``n = round(length * sample_rate)``)
    with segments of ``S`` samples and hop ``H`` samples yields segments
    starting at ``0, H, 2H, ...``: a single segment ``[0, n)`` when
    ``n <= S``, else ``ceil((n - S) / H) + 1`` segments, each
    ``[k * H, min(k * H + S, n))``; with ``H > S`` only those starting
    before ``n``. The last one can be shorter than ``S`` (the batcher
    zero-pads it).

    Arguments
    ---------
    data : dict
        Manifest ``{id: {"length": seconds, ...}}``.
    segment_seconds : float
        Segment length in seconds.
    hop_seconds : float
        Hop between segment starts in seconds.
    sample_rate : int
        Sample rate used to turn seconds into sample indices.

    Returns
    -------
    dict
        ``{"<id>@<k>": {...fields of id..., "utt_id": id, "start": int,
        "stop": int, "length": segment seconds}}``, in manifest order.

    Example
    -------
    >>> data = {
    ...     "a": {"noisy_wav": "n.wav", "clean_wav": "c.wav", "length": 5.5}
    ... }
    >>> segs = expand_segments(data, 4.0, 1.0, 16000)
    >>> [(k, v["start"], v["stop"]) for k, v in segs.items()]
    [('a@0', 0, 64000), ('a@1', 16000, 80000), ('a@2', 32000, 88000)]
    >>> segs["a@2"]["length"], segs["a@2"]["utt_id"]
    (3.5, 'a')
    >>> sparse = expand_segments(data, 0.5, 2.0, 16000)  # hop > segment
    >>> [(v["start"], v["stop"]) for v in sparse.values()]
    [(0, 8000), (32000, 40000), (64000, 72000)]
    """
    segment = _seconds_to_samples(segment_seconds, sample_rate)
    hop = _seconds_to_samples(hop_seconds, sample_rate)
    if segment is None or hop is None:
        raise ValueError("segment_seconds and hop_seconds must be given")
    out = {}
    for uid, entry in data.items():
        n = int(round(float(entry["length"]) * sample_rate))
        if n <= 0:
            raise ValueError(f"Utterance {uid} has length {entry['length']}")
        count = 1 if n <= segment else -(-(n - segment) // hop) + 1
        # a hop longer than the segment: no segment starts past the end
        count = min(count, -(-n // hop))
        for k in range(count):
            start = k * hop
            stop = min(start + segment, n)
            out[f"{uid}@{k}"] = {
                **entry,
                "utt_id": uid,
                "start": start,
                "stop": stop,
                "length": (stop - start) / sample_rate,
            }
    return out


def read_mono(path, sample_rate, start=0, stop=None, manifest=None):
    """Reads ``path[start:stop]`` as a float32 1-D tensor.

    Only the requested frames are decoded.

    Arguments
    ---------
    path : str
        Audio file.
    sample_rate : int
        Expected sample rate.
    start, stop : int
        Frame range (``stop=None``: to the end).
    manifest : str, optional
        The manifest listing ``path`` (named in errors).

    Returns
    -------
    torch.Tensor
        The samples, shape ``[stop - start]``.

    Raises
    ------
    ValueError
        If the file's rate is not ``sample_rate`` or it is not mono.
    DamagedDataError
        If the file cannot be read, is shorter than its header says or
        holds non-finite samples.
    """
    with _open_checked(path, sample_rate, manifest) as f:
        return _read_frames(f, start, stop, manifest)


def _seconds_to_samples(seconds, sample_rate):
    if seconds is None:
        return None
    samples = int(round(float(seconds) * sample_rate))
    if samples <= 0:
        raise ValueError(f"Expected a positive duration, got {seconds} s")
    return samples


def _check_not_empty(data, path):
    if not data:
        raise ValueError(f"Manifest {path} has no entry; prepare it again")


class DamagedDataError(ValueError):
    """A prepared audio file turned out unreadable while training."""


def _damaged(path, problem, manifest):
    """The error for a prepared file damaged after preparation."""
    listed = f", listed in {manifest}," if manifest is not None else ""
    folder = (
        f"delete {pathlib.Path(manifest).parent} (the prepare_folder)"
        if manifest is not None
        else "delete the prepare_folder"
    )
    return DamagedDataError(
        f"{path}{listed} {problem}: the prepared data was damaged after "
        f"preparation (a full disk, an interrupted copy?). Prepare it "
        f"again: {folder} and run the same command without "
        "--skip_prep=True"
    )


def _open_checked(path, sample_rate, manifest=None, channels=1):
    try:
        f = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        if not os.path.exists(path):
            raise _damaged(path, "does not exist", manifest) from None
        raise _damaged(path, f"cannot be read ({error})", manifest) from None
    if f.samplerate != sample_rate:
        f.close()
        raise ValueError(
            f"{path} has a sample rate of {f.samplerate} Hz but the data "
            f"pipeline expects {sample_rate} Hz. Re-run the data preparation "
            f"(prepare_valentini) with sample_rate={sample_rate}, or set "
            f"sample_rate={f.samplerate}."
        )
    if f.channels != channels:
        f.close()
        expected = "mono" if channels == 1 else f"{channels}-channel"
        raise ValueError(
            f"{path} has {f.channels} channels; the enhancement pipelines "
            f"expect {expected} files here. Re-run the data preparation."
        )
    return f


def _read_frames(f, start, stop, manifest=None):
    if stop is None:
        stop = f.frames
    try:
        f.seek(start)
        data = f.read(stop - start, dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise _damaged(f.name, f"cannot be read ({error})", manifest) from None
    if len(data) < stop - start:
        raise _damaged(
            f.name,
            f"is truncated (frames {start}-{stop} requested, "
            f"{len(data)} read; its header says {f.frames})",
            manifest,
        )
    if not np.isfinite(data).all():
        raise _damaged(f.name, "holds non-finite samples", manifest)
    return torch.from_numpy(data)


def _signals(binaural):
    """The signals of an item: ``(name, channels)``."""
    signals = [("noisy", 1), ("clean", 1)]
    return signals + [("binaural", 2)] if binaural else signals


def _random_crop_pipeline(segment, sample_rate, manifest=None, binaural=False):
    """Random crop at the same offset in every file of an item."""
    signals = _signals(binaural)

    @takes(*[f"{name}_wav" for name, _ in signals], "length")
    @provides(*[f"{name}_sig" for name, _ in signals])
    def crop(*paths_and_length):
        """A random crop of the same span of every file."""
        *paths, length = paths_and_length
        expected = int(round(float(length) * sample_rate))
        with contextlib.ExitStack() as stack:
            files = [
                stack.enter_context(
                    _open_checked(path, sample_rate, manifest, channels)
                )
                for path, (_, channels) in zip(paths, signals, strict=True)
            ]
            for f in files:
                if f.frames < expected:
                    raise _damaged(
                        f.name,
                        f"is truncated ({f.frames} frames; the "
                        f"manifest says {expected})",
                        manifest,
                    )
            frames = min(f.frames for f in files)
            start = 0
            if frames > segment:
                start = int(torch.randint(frames - segment + 1, ()).item())
            stop = min(start + segment, frames)
            read = [_read_frames(f, start, stop, manifest) for f in files]
        yield from read

    return crop


def _span_pipeline(sample_rate, manifest=None, binaural=False):
    """Reads the ``[start, stop)`` span of every file of an item."""
    signals = _signals(binaural)

    @takes(*[f"{name}_wav" for name, _ in signals], "start", "stop")
    @provides(*[f"{name}_sig" for name, _ in signals])
    def span(*paths_and_span):
        """The segment ``[start, stop)`` of every file."""
        *paths, start, stop = paths_and_span
        for path, (_, channels) in zip(paths, signals, strict=True):
            yield _read(path, sample_rate, start, stop, manifest, channels)

    return span


def _whole_pipeline(sample_rate, manifest=None, binaural=False):
    """Reads every file of an item whole."""
    signals = _signals(binaural)

    @takes(*[f"{name}_wav" for name, _ in signals])
    @provides(*[f"{name}_sig" for name, _ in signals])
    def whole(*paths):
        """Every file, whole."""
        for path, (_, channels) in zip(paths, signals, strict=True):
            yield _read(path, sample_rate, 0, None, manifest, channels)

    return whole


def _read(path, sample_rate, start, stop, manifest, channels):
    with _open_checked(path, sample_rate, manifest, channels) as f:
        return _read_frames(f, start, stop, manifest)
