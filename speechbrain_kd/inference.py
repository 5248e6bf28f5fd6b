"""Enhancing audio with a pretrained student: ``KDEnhancement``.

A pretrained model is a folder (local, or a HuggingFace repository) laid
out as SpeechBrain's hub models are:

* ``hyperparams.yaml`` defining ``sample_rate``, ``enhance_model`` (the
  waveform-to-waveform ``torch.nn.Module``, e.g. MANNER),
  ``modules: {enhance_model: !ref <enhance_model>}``, optionally
  ``chunk_seconds`` / ``overlap_seconds``, and a ``pretrainer``
  (``speechbrain.utils.parameter_transfer.Pretrainer`` with
  ``loadables: {enhance_model: !ref <enhance_model>}``);
* ``enhance_model.ckpt``, the model's state dict;
* ``config.json`` = ``{"speechbrain_interface": "KDEnhancement",
  "interface_module": "speechbrain_kd.inference"}`` (SpeechBrain's
  ``foreign_class`` convention);
* optionally ``example.wav`` and a ``README.md`` model card.

Loading it::

    from speechbrain_kd.inference import KDEnhancement
    enhancer = KDEnhancement.from_hparams(source="path/or/org-name",
                                          savedir="pretrained/student")
    enhanced = enhancer.enhance_file("noisy.wav", "enhanced.wav")

Unlike a plain SpeechBrain interface, loading is **strict**: a local
``source`` that does not exist is a ``FileNotFoundError`` (SpeechBrain
would look it up on the hub), a local folder without
``enhance_model.ckpt`` is a ``FileNotFoundError`` naming the file, and
the state dict must match the model exactly (missing, unexpected and
mis-shaped keys are a :class:`ModelLoadError` naming them; SpeechBrain's
``Pretrainer`` only warns).

Long inputs
-----------
Inputs longer than ``chunk_seconds`` are enhanced chunk by chunk (under
``torch.no_grad()``, model in eval mode), so the model's activation
memory is bounded by the chunk length, not the input length. The chunks
all have ``chunk_seconds`` of audio and are spread evenly over the input
so that neighbours overlap by **at least** ``overlap_seconds``; each
overlap is cross-faded linearly (one chunk fades out while the next one
fades in, over the whole overlap) and the weighted sum is divided by the
sum of the weights, so the weights sum to 1 everywhere. An input of at
most one chunk is one pass of the model: its output equals the model's
output exactly.

MANNER is not exactly chunkable (it normalises by the input's standard
deviation and its multi-view attention has a global view), so chunked
output differs slightly from unchunked output. Measured on a small random
MANNER (channels=6, depth=2, attention_layers=[1], seed 0) over 60 s of
a modulated tone plus noise with 4-s chunks and 0.5-s overlap: max abs
difference 4.0e-4 (output peak 0.028), SNR of the chunked output against
the unchunked one 39.7 dB (``tests/test_inference.py`` asserts > 20 dB).
With a MANNER-S-1.5GF: 64 dB for the default 10-s chunks, 38.5 dB for
4-s chunks (``benchmarks/chunked_memory.py``, README).
"""

import json
import logging
import math
import pathlib
import warnings

import torch
from speechbrain.inference.interfaces import Pretrained

from speechbrain_kd.brains.teacher import (
    TeacherLoadError,
    check_state_dict,
    looks_like_local_path,
)

logger = logging.getLogger(__name__)

#: File holding the model's state dict in a pretrained model folder.
MODEL_FILE = "enhance_model.ckpt"
#: Hyperparameter file of a pretrained model folder.
HPARAMS_FILE = "hyperparams.yaml"
#: ``config.json`` content naming this interface (``foreign_class``).
INTERFACE_CONFIG = {
    "speechbrain_interface": "KDEnhancement",
    "interface_module": "speechbrain_kd.inference",
}
DEFAULT_CHUNK_SECONDS = 10.0
DEFAULT_OVERLAP_SECONDS = 1.0


class ModelLoadError(TeacherLoadError):
    """Raised when a pretrained model's parameters do not fit its model.

    A ``ValueError`` (through ``TeacherLoadError``).
    """


class KDEnhancement(Pretrained):
    """Speech enhancement with a pretrained (distilled) student.

    Build it with :meth:`from_hparams` (see the module docstring for the
    folder layout). The model maps ``[batch, time]`` waveforms at
    ``hparams.sample_rate`` onto enhanced waveforms of the same shape.

    Arguments
    ---------
    *args : tuple
        Passed to ``speechbrain.inference.interfaces.Pretrained``
        (``modules``, ``hparams``, ``run_opts``, ``freeze_params``).
    **kwargs : dict
        Passed to ``Pretrained`` as well.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_kd.lobes.manner import MANNER
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> model = MANNER(channels=6, depth=2, attention_layers=[1])
    >>> torch.save(model.state_dict(), folder / "enhance_model.ckpt")
    >>> _ = (folder / "hyperparams.yaml").write_text(
    ...     "sample_rate: 16000\\n"
    ...     "enhance_model: !new:speechbrain_kd.lobes.manner.MANNER\\n"
    ...     "    channels: 6\\n    depth: 2\\n    attention_layers: [1]\\n"
    ...     "modules:\\n    enhance_model: !ref <enhance_model>\\n"
    ...     "pretrainer: !new:speechbrain.utils.parameter_transfer."
    ...     "Pretrainer\\n"
    ...     "    loadables:\\n        enhance_model: !ref <enhance_model>\\n"
    ... )
    >>> enhancer = KDEnhancement.from_hparams(
    ...     source=str(folder), savedir=str(folder / "collected"),
    ...     run_opts={"device": "cpu"})
    >>> noisy = torch.randn(2, 8000)
    >>> enhanced = enhancer.enhance_batch(noisy)
    >>> enhanced.shape
    torch.Size([2, 8000])
    >>> torch.allclose(enhanced, model.eval()(noisy), atol=1e-5)
    True
    """

    HPARAMS_NEEDED = ["sample_rate"]
    MODULES_NEEDED = ["enhance_model"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sample_rate = int(self.hparams.sample_rate)
        self.chunk_seconds = float(
            getattr(self.hparams, "chunk_seconds", DEFAULT_CHUNK_SECONDS)
        )
        self.overlap_seconds = float(
            getattr(self.hparams, "overlap_seconds", DEFAULT_OVERLAP_SECONDS)
        )
        self._check_chunking(self.chunk_seconds, self.overlap_seconds)
        self._load_strictly()

    # Loading ---------------------------------------------------------------

    @classmethod
    def from_hparams(cls, source, hparams_file=HPARAMS_FILE, **kwargs):
        """Loads a pretrained model folder (local or on the hub).

        Arguments
        ---------
        source : str or pathlib.Path
            A local folder (see the module docstring) or a HuggingFace id
            (``org/name``). Something that looks like a local path
            (absolute, ``./``, more than one ``/``, existing) is never
            looked up on the hub.
        hparams_file : str
            Name of the hyperparameter file in ``source``.
        **kwargs : dict
            Passed to SpeechBrain's ``Pretrained.from_hparams``:
            ``savedir`` (where files are collected; symlinks for a local
            folder), ``run_opts`` (e.g. ``{"device": "cuda"}``),
            ``overrides``, ``local_strategy``, ``fetch_config``...

        Returns
        -------
        KDEnhancement
            The loaded interface (modules frozen, in eval mode).

        Raises
        ------
        FileNotFoundError
            A local ``source`` that does not exist, is not a folder or
            lacks ``hparams_file`` or ``enhance_model.ckpt``.
        ModelLoadError
            The parameters do not fit the model of ``hyperparams.yaml``
            (missing or unexpected keys are all named; on a shape
            mismatch, which SpeechBrain's loading hits first, the
            mismatched keys are named).
        """
        if looks_like_local_path(source):
            folder = pathlib.Path(source).expanduser()
            if not folder.exists():
                raise FileNotFoundError(
                    f"model source {folder} does not exist (a local path; "
                    "it is not looked up on the HuggingFace hub). Pass an "
                    "exported model folder or a hub id such as org/name."
                )
            if not folder.is_dir():
                raise FileNotFoundError(
                    f"model source {folder} is not a folder: pass the "
                    f"folder holding {hparams_file} and {MODEL_FILE}"
                )
            for name in (hparams_file, MODEL_FILE):
                if not (folder / name).is_file():
                    raise FileNotFoundError(
                        f"{name} is missing from the model folder {folder} "
                        f"(a pretrained model folder holds {hparams_file}, "
                        f"{MODEL_FILE} and config.json; export a trained "
                        "model with `speechbrain-kd export`)"
                    )
            source = str(folder.resolve())
        try:
            return super().from_hparams(
                source=source, hparams_file=hparams_file, **kwargs
            )
        except RuntimeError as error:
            # The Pretrainer's non-strict load still fails on a shape
            # mismatch, before __init__ can check the keys.
            if "Error(s) in loading state_dict" not in str(error):
                raise
            details = str(error).split("\n", 1)[-1].strip()
            raise ModelLoadError(
                f"enhance_model parameters from {source}/{MODEL_FILE} do not "
                f"fit the model of {hparams_file}: {details} Check that "
                f"{hparams_file} builds the model the parameters were "
                "trained with."
            ) from None

    def _load_strictly(self):
        """Re-reads the collected parameter file and loads it strictly."""
        pretrainer = getattr(self.hparams, "pretrainer", None)
        if pretrainer is None:
            return  # built by hand from modules: nothing was loaded
        path = pretrainer.paths.get("enhance_model")
        if path is None and pretrainer.collect_in is not None:
            path = pathlib.Path(pretrainer.collect_in) / MODEL_FILE
        if path is None or not pathlib.Path(path).exists():
            raise FileNotFoundError(
                f"{MODEL_FILE} was not collected (looked for {path}); "
                "the pretrainer of hyperparams.yaml must have the loadable "
                "enhance_model"
            )
        try:
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # a corrupt or foreign file
            raise ModelLoadError(
                f"cannot read the parameters {path}: {error}"
            ) from error
        model = self.mods.enhance_model
        try:
            check_state_dict(
                model,
                state_dict,
                str(path),
                role="enhance_model",
                hint="Check that hyperparams.yaml builds the model the "
                "parameters were trained with.",
            )
        except TeacherLoadError as error:
            raise ModelLoadError(str(error)) from None
        model.to(self.device)
        model.eval()

    # Enhancement -----------------------------------------------------------

    @staticmethod
    def _check_chunking(chunk_seconds, overlap_seconds):
        if not chunk_seconds > 0:
            raise ValueError(f"chunk_seconds must be > 0, got {chunk_seconds}")
        if not 0 <= overlap_seconds < chunk_seconds / 2:
            raise ValueError(
                f"overlap_seconds must be >= 0 and less than half of "
                f"chunk_seconds ({chunk_seconds}), got {overlap_seconds}"
            )

    def _chunking(self, chunk_seconds, overlap_seconds):
        chunk_seconds = (
            self.chunk_seconds if chunk_seconds is None else chunk_seconds
        )
        overlap_seconds = (
            self.overlap_seconds if overlap_seconds is None else overlap_seconds
        )
        self._check_chunking(chunk_seconds, overlap_seconds)
        chunk = max(1, round(chunk_seconds * self.sample_rate))
        overlap = round(overlap_seconds * self.sample_rate)
        return chunk, overlap

    def forward(self, wavs, lengths=None):
        """Same as :meth:`enhance_batch`.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[batch, time]`` noisy waveforms.
        lengths : torch.Tensor, optional
            Relative lengths.

        Returns
        -------
        torch.Tensor
            ``[batch, time]`` enhanced waveforms (CPU).
        """
        return self.enhance_batch(wavs, lengths)

    def enhance_batch(
        self, wavs, lengths=None, chunk_seconds=None, overlap_seconds=None
    ):
        """Enhances a batch of waveforms at the model's sample rate.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[batch, time]`` (or ``[time]``) noisy waveforms at
            ``self.sample_rate``.
        lengths : torch.Tensor, optional
            ``[batch]`` relative lengths in (0, 1] (SpeechBrain's
            convention): each item is enhanced on its valid part only and
            the output is zero beyond it. ``None``: all full length.
        chunk_seconds : float, optional
            Chunk length for long inputs (default: ``chunk_seconds`` of
            hyperparams.yaml, else 10 s).
        overlap_seconds : float, optional
            Minimum overlap of neighbouring chunks (default:
            ``overlap_seconds`` of hyperparams.yaml, else 1 s); less than
            half a chunk.

        Returns
        -------
        torch.Tensor
            ``[batch, time]`` (``[time]`` for a 1-D input) enhanced
            waveforms, on the CPU.

        Raises
        ------
        ValueError
            An empty input (0 samples) or a badly shaped one.
        """
        chunk, overlap = self._chunking(chunk_seconds, overlap_seconds)
        wavs = torch.as_tensor(wavs)
        squeeze = wavs.dim() == 1
        if squeeze:
            wavs = wavs.unsqueeze(0)
        if wavs.dim() != 2:
            raise ValueError(
                f"expected [batch, time] waveforms, got {tuple(wavs.shape)}"
            )
        batch, total = wavs.shape
        if total == 0 or batch == 0:
            raise ValueError("cannot enhance an empty input (0 samples)")
        wavs = wavs.float()
        if lengths is None:
            valid = [total] * batch
        else:
            lengths = torch.as_tensor(lengths, dtype=torch.float).flatten()
            if lengths.numel() != batch:
                raise ValueError(
                    f"{lengths.numel()} lengths for a batch of {batch}"
                )
            valid = [
                min(total, max(0, round(float(r) * total))) for r in lengths
            ]
        if any(n == 0 for n in valid):
            raise ValueError("cannot enhance an empty input (0 samples)")

        model = self.mods.enhance_model
        model.eval()
        with torch.no_grad():
            if all(n == total for n in valid) and total <= chunk:
                output = self._run(wavs).cpu()
            else:
                output = torch.zeros(batch, total)
                for i, n in enumerate(valid):
                    output[i, :n] = self._enhance_long(
                        wavs[i : i + 1, :n], chunk, overlap
                    )[0]
        return output[0] if squeeze else output

    def _run(self, wavs):
        """One pass of the model on ``[batch, time]`` (no chunking)."""
        return self.mods.enhance_model(wavs.to(self.device)).float()

    def _enhance_long(self, wav, chunk, overlap):
        """Chunked overlap-add enhancement of a ``[1, time]`` waveform."""
        total = wav.shape[-1]
        if total <= chunk:
            return self._run(wav).cpu()
        starts = chunk_starts(total, chunk, overlap)
        output = torch.zeros(1, total)
        weight_sum = torch.zeros(total)
        for i, start in enumerate(starts):
            fade_in = starts[i - 1] + chunk - start if i > 0 else 0
            fade_out = (
                start + chunk - starts[i + 1] if i + 1 < len(starts) else 0
            )
            weights = crossfade_weights(chunk, fade_in, fade_out)
            enhanced = self._run(wav[:, start : start + chunk]).cpu()
            output[:, start : start + chunk] += enhanced * weights
            weight_sum[start : start + chunk] += weights
        return output.div_(weight_sum)

    def enhance_streaming(
        self, wav, block_hops=1, piece_seconds=0.1, compile=False
    ):
        """Enhances a 1-D waveform as a stream of small pieces.

        Arguments
        ---------
        wav : torch.Tensor
            ``[time]`` at the model's rate.
        block_hops : int
            Streaming block size in native hops.
        piece_seconds : float
            Size of the pieces fed to the stream.
        compile : bool
            Run the step traced with TorchScript (see
            :class:`StreamingEnhancer`); traced once per ``block_hops``
            and reused for later calls.

        Returns
        -------
        torch.Tensor
            ``[time]``: equal to the offline output of a causal model.
        """
        streamers = self.__dict__.setdefault("_streamers", {})
        key = (int(block_hops), bool(compile))
        if key not in streamers:
            streamers[key] = StreamingEnhancer(
                self, block_hops=block_hops, compile=compile
            )
        streamer = streamers[key]
        piece = max(1, int(piece_seconds * self.sample_rate))
        outs = [streamer.process(chunk) for chunk in wav.split(piece)]
        outs.append(streamer.flush())
        return torch.cat(outs)

    def enhance_file(
        self,
        path,
        output_path=None,
        keep_rate=False,
        chunk_seconds=None,
        overlap_seconds=None,
        streaming=False,
        block_hops=1,
        compile=False,
    ):
        """Enhances an audio file (any rate, any number of channels).

        The file is read with soundfile, down-mixed to mono (mean over
        channels), resampled to the model's rate with
        ``torchaudio.functional.resample``, enhanced (in chunks when long,
        see :meth:`enhance_batch`) and, with ``keep_rate``, resampled back
        to the file's rate (same number of samples as the input).

        Arguments
        ---------
        path : str or pathlib.Path
            The noisy file (anything libsndfile reads: wav, flac, ...).
        output_path : str or pathlib.Path, optional
            Where to write the enhanced audio (16-bit PCM wav; parent
            folders created). ``None``: nothing written.
        keep_rate : bool
            Return (and write) the result at the input's rate instead of
            the model's.
        chunk_seconds : float, optional
            See :meth:`enhance_batch`.
        overlap_seconds : float, optional
            See :meth:`enhance_batch`.

        streaming : bool
            Feed the file through :class:`StreamingEnhancer` in 0.1-s
            pieces, as a live stream would be (causal models with a step
            API only); the result equals the offline output.
        block_hops : int
            Streaming block size in native hops.
        compile : bool
            Streaming with the TorchScript-traced step.

        Returns
        -------
        torch.Tensor
            ``[time]`` enhanced waveform (CPU) at the model's rate (or the
            input's with ``keep_rate``).

        Raises
        ------
        FileNotFoundError
            ``path`` does not exist.
        ValueError
            ``path`` is not readable audio or holds 0 samples (the message
            names the file).
        """
        import soundfile
        import torchaudio

        path = pathlib.Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"audio file {path} does not exist")
        try:
            data, rate = soundfile.read(
                str(path), dtype="float32", always_2d=True
            )
        except (RuntimeError, soundfile.SoundFileError) as error:
            raise ValueError(
                f"cannot read audio file {path}: {error}"
            ) from None
        if data.shape[0] == 0:
            raise ValueError(f"audio file {path} is empty (0 samples)")
        noisy = torch.from_numpy(data).mean(dim=1)
        if rate != self.sample_rate:
            noisy = torchaudio.functional.resample(
                noisy, rate, self.sample_rate
            )
        if streaming:
            enhanced = self.enhance_streaming(
                noisy, block_hops=block_hops, compile=compile
            )
        else:
            enhanced = self.enhance_batch(
                noisy.unsqueeze(0),
                chunk_seconds=chunk_seconds,
                overlap_seconds=overlap_seconds,
            )[0]
        out_rate = self.sample_rate
        if keep_rate and rate != self.sample_rate:
            enhanced = torchaudio.functional.resample(
                enhanced, self.sample_rate, rate
            )
            enhanced = fit_length(enhanced, data.shape[0])
            out_rate = rate
        if output_path is not None:
            write_wav(output_path, enhanced, out_rate)
        return enhanced


def chunk_starts(total, chunk, overlap):
    """Start samples of evenly spread chunks covering ``total`` samples.

    Every chunk has ``chunk`` samples, the first starts at 0, the last
    ends at ``total``, and neighbours overlap by at least ``overlap``
    samples (the fewest chunks that allow it).

    Arguments
    ---------
    total : int
        Input length (> ``chunk``).
    chunk : int
        Chunk length.
    overlap : int
        Minimum overlap (< ``chunk / 2``).

    Returns
    -------
    list of int
        The start of each chunk.

    Example
    -------
    >>> chunk_starts(100, 40, 10)
    [0, 30, 60]
    >>> chunk_starts(41, 40, 10)
    [0, 1]
    """
    count = 1 + math.ceil((total - chunk) / (chunk - overlap))
    return [round(i * (total - chunk) / (count - 1)) for i in range(count)]


def crossfade_weights(length, fade_in, fade_out):
    """Overlap-add weights of one chunk: linear fades in and out.

    A fade over ``n`` samples has values ``(k + 0.5) / n``, so a fade-out
    and the fade-in of the next chunk over the same samples sum to 1.

    Arguments
    ---------
    length : int
        Chunk length.
    fade_in : int
        Samples faded in at the start (overlap with the previous chunk).
    fade_out : int
        Samples faded out at the end (overlap with the next chunk).

    Returns
    -------
    torch.Tensor
        ``[length]`` weights in (0, 1].

    Example
    -------
    >>> crossfade_weights(6, 2, 2).tolist()
    [0.25, 0.75, 1.0, 1.0, 0.75, 0.25]
    """
    weights = torch.ones(length)
    if fade_in:
        ramp = (torch.arange(fade_in) + 0.5) / fade_in
        weights[:fade_in] = torch.minimum(weights[:fade_in], ramp)
    if fade_out:
        ramp = (torch.arange(fade_out) + 0.5) / fade_out
        weights[length - fade_out :] = torch.minimum(
            weights[length - fade_out :], ramp.flip(0)
        )
    return weights


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
    >>> fit_length(torch.ones(3), 5).tolist()
    [1.0, 1.0, 1.0, 0.0, 0.0]
    """
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

    Example
    -------
    >>> import tempfile, soundfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a" / "x.wav"
    >>> write_wav(path, torch.zeros(160), 16000)
    >>> soundfile.info(str(path)).subtype
    'PCM_16'
    """
    import soundfile

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = wav.detach().cpu().float()
    if wav.abs().max() > 1:
        logger.warning("%s: enhanced audio clipped to [-1, 1]", path)
    soundfile.write(
        str(path),
        wav.clamp(-1, 1).numpy(),
        int(sample_rate),
        subtype="PCM_16",
    )


def write_interface_config(folder, **extra):
    """Writes the ``config.json`` naming this interface into ``folder``.

    Arguments
    ---------
    folder : str or pathlib.Path
        A pretrained model folder.
    **extra : dict
        More (JSON-serialisable) entries.

    Returns
    -------
    pathlib.Path
        The written file.

    Example
    -------
    >>> import tempfile
    >>> path = write_interface_config(tempfile.mkdtemp(), sample_rate=16000)
    >>> json.loads(path.read_text())["speechbrain_interface"]
    'KDEnhancement'
    """
    path = pathlib.Path(folder) / "config.json"
    path.write_text(json.dumps({**INTERFACE_CONFIG, **extra}, indent=2) + "\n")
    return path


class StreamingEnhancer:
    """Streams audio of any piece size through a causal model.

    The model must offer the step API of
    :class:`speechbrain_kd.lobes.rt_senet.RTSENet`: ``hop`` (samples per
    step), ``init_state(batch_size)``, ``forward_step(chunk, state)`` for
    chunks of a whole number of hops, and ``latency_ms(sample_rate)``.
    Pieces are buffered; every complete block is processed at once and
    its output returned. :meth:`flush` zero-pads the last partial block,
    crops the output to the total input length and starts a new signal.
    The concatenated output equals the model's offline output (the model
    is put in eval mode; everything runs under ``torch.no_grad()``).

    Arguments
    ---------
    model : torch.nn.Module or KDEnhancement
        A causal model with the step API, or a loaded ``KDEnhancement``
        whose ``enhance_model`` has it.
    block_hops : int
        Hops per processing block: 1 processes every native hop as soon
        as it is complete (lowest latency); larger blocks cost less per
        sample and add ``(block_hops - 1) * hop`` samples of latency.
    sample_rate : int
        Sample rate of the audio (for :attr:`latency_ms`).
    compile : bool
        Trace the step for one block with TorchScript and freeze it
        (BatchNorm folded into the convolutions, parameter-only
        arithmetic precomputed): about three times as fast per block on
        CPU, where eager PyTorch's per-operator overhead dominates small
        steps (``benchmarks/realtime.py``). Same output to float rounding.

    Example
    -------
    >>> from speechbrain_kd.lobes.rt_senet import RTSENet
    >>> model = RTSENet(channels=6, depth=2, attention_layers=()).eval()
    >>> streamer = StreamingEnhancer(model)
    >>> x = torch.randn(50)
    >>> a = streamer.process(x[:20]); b = streamer.process(x[20:])
    >>> out = torch.cat([a, b, streamer.flush()])
    >>> out.shape, bool((out - model(x[None])[0]).abs().max() < 1e-5)
    (torch.Size([50]), True)
    >>> streamer.latency_ms
    1.0
    """

    def __init__(self, model, block_hops=1, sample_rate=16000, compile=False):
        if isinstance(model, Pretrained):
            sample_rate = model.hparams.sample_rate
            model = model.mods.enhance_model
        for name in ("hop", "init_state", "forward_step"):
            if not hasattr(model, name):
                raise ValueError(
                    f"{type(model).__name__} has no {name!r}: streaming "
                    "needs a causal model with a step API (e.g. RTSENet); "
                    "use KDEnhancement.enhance_file for offline models"
                )
        if int(block_hops) < 1:
            raise ValueError(f"block_hops must be >= 1, got {block_hops}")
        self.model = model.eval()
        self.block = int(model.hop) * int(block_hops)
        self.sample_rate = sample_rate
        self.compiled_step = (
            _frozen_step(model, self.block) if compile else None
        )
        self.reset()

    @property
    def latency_ms(self):
        """Algorithmic latency: the model's plus the block buffering."""
        extra = (self.block - self.model.hop) * 1000.0 / self.sample_rate
        return self.model.latency_ms(self.sample_rate) + extra

    def reset(self):
        """Forgets the current signal and starts a new one."""
        self.state = self.model.init_state(1)
        self.pending = torch.zeros(0)
        self.length_in = 0
        self.length_out = 0

    def _step(self, samples):
        with torch.no_grad():
            if self.compiled_step is None or samples.shape[0] % self.block:
                out, self.state = self.model.forward_step(
                    samples[None], self.state
                )
            else:
                outs = []
                for block in samples[None].split(self.block, dim=-1):
                    piece, self.state = self.compiled_step(block, self.state)
                    outs.append(piece)
                out = torch.cat(outs, dim=-1)
        self.length_out += out.shape[-1]
        return out[0]

    def process(self, samples):
        """Adds samples; returns the output samples completed so far.

        Arguments
        ---------
        samples : torch.Tensor
            ``[time]`` mono samples at the model's rate (any length).

        Returns
        -------
        torch.Tensor
            A whole number of blocks of output samples (possibly none).
        """
        samples = torch.as_tensor(samples, dtype=torch.float32).reshape(-1)
        self.length_in += samples.shape[0]
        samples = torch.cat([self.pending, samples])
        ready = samples.shape[0] - samples.shape[0] % self.block
        self.pending = samples[ready:]
        if ready == 0:
            return samples.new_zeros(0)
        return self._step(samples[:ready])

    def flush(self):
        """Processes the zero-padded remainder and ends the signal.

        Returns
        -------
        torch.Tensor
            The last output samples: in total, as many as were input.
        """
        remaining = self.length_in - self.length_out
        out = torch.zeros(0)
        if self.pending.shape[0]:
            hop = self.model.hop
            padded_length = -(-self.pending.shape[0] // hop) * hop
            padded = torch.nn.functional.pad(
                self.pending, (0, padded_length - self.pending.shape[0])
            )
            out = self._step(padded)[:remaining]
        self.reset()
        return out


class _StepModule(torch.nn.Module):
    """``forward_step`` as a module's ``forward``, for tracing."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, samples, state):
        """One step of the wrapped model."""
        return self.model.forward_step(samples, state)


def _frozen_step(model, block):
    """A TorchScript-traced, frozen step for blocks of ``block`` samples."""
    step = _StepModule(model).eval()
    example = (torch.zeros(1, block), model.init_state(1))
    with torch.no_grad(), warnings.catch_warnings():
        # The step's hop check is on the (fixed) block size: safe to trace.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # TorchScript is deprecated in favour of torch.compile, which is
        # no faster here (its guards on the 30-tensor state cost as much).
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(step, example, strict=False, check_trace=False)
        return torch.jit.freeze(traced)
