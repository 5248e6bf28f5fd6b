"""The inference interface of a pretrained student: ``KDEnhancement``.

Loading a model folder (:mod:`speechbrain_kd.pretrained.folder`)::

    from speechbrain_kd.pretrained import KDEnhancement

    enhancer = KDEnhancement.from_hparams(
        source="path/or/org-name", savedir="pretrained/student"
    )
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
``torch.no_grad()``, model in eval mode; see
:mod:`speechbrain_kd.pretrained.chunking`), so the model's activation
memory is bounded by the chunk length, not the input length. An input of
at most one chunk is one pass of the model: its output equals the
model's output exactly.

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

import pathlib
import pickle

import torch

from speechbrain.inference.interfaces import Pretrained
from speechbrain_kd.audio import (
    audio_info,
    fit_length,
    read_audio,
    resample,
    write_wav,
)
from speechbrain_kd.pretrained.adapters import unwrap
from speechbrain_kd.pretrained.checkpoints import (
    CheckpointError,
    check_state_dict,
    looks_like_local_path,
)
from speechbrain_kd.pretrained.chunking import check_chunking, enhance_in_chunks
from speechbrain_kd.pretrained.folder import (
    DEFAULT_CHUNK_SECONDS,
    DEFAULT_OVERLAP_SECONDS,
    HPARAMS_FILE,
    MODEL_FILE,
    MODULE_KEY,
    check_model_folder,
    parameter_file_problem,
    read_parameters,
    unreadable_reason,
)
from speechbrain_kd.pretrained.streaming import StreamingEnhancer


def custom_interface_resolved():
    """A context in which the ``custom_interface.<name>`` tags of an
    exported ``hyperparams.yaml`` are this package's classes (in the
    folder's ``custom_interface.py``, this is a null context).

    Returns
    -------
    contextlib.AbstractContextManager
        The context.

    Example
    -------
    >>> import pydoc
    >>> with custom_interface_resolved():
    ...     pydoc.locate("custom_interface.KDEnhancement") is KDEnhancement
    True
    """
    from speechbrain_kd.pretrained.bundle import package_classes_resolved

    return package_classes_resolved()


class ModelLoadError(CheckpointError):
    """Raised when a pretrained model's parameters do not fit its model.

    A ``ValueError`` (through ``CheckpointError``).
    """


class KDEnhancement(Pretrained):
    """Speech enhancement with a pretrained (distilled) student.

    Build it with :meth:`from_hparams` (the folder layout is in
    :mod:`speechbrain_kd.pretrained.folder`). The model maps
    ``[batch, time]`` waveforms at ``hparams.sample_rate`` onto enhanced
    waveforms of the same shape.

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
    >>> from speechbrain_kd.hyperyaml import resolved_nodes
    >>> from speechbrain_kd.lobes.manner import MANNER
    >>> from speechbrain_kd.pretrained.folder import (
    ...     write_hyperparams,
    ...     write_parameters,
    ... )
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> model = MANNER(channels=6, depth=2, attention_layers=[1])
    >>> write_parameters(folder, model)
    >>> node = resolved_nodes(
    ...     "m: !new:speechbrain_kd.lobes.manner.MANNER\\n"
    ...     "    channels: 6\\n    depth: 2\\n    attention_layers: [1]\\n"
    ... )["m"]
    >>> write_hyperparams(folder, 16000, node)
    >>> enhancer = KDEnhancement.from_hparams(
    ...     source=str(folder),
    ...     savedir=str(folder / "collected"),
    ...     run_opts={"device": "cpu"},
    ... )
    >>> noisy = torch.randn(2, 8000)
    >>> enhanced = enhancer.enhance_batch(noisy)
    >>> enhanced.shape
    torch.Size([2, 8000])
    >>> torch.allclose(enhanced, model.eval()(noisy), atol=1e-5)
    True
    """

    HPARAMS_NEEDED = ["sample_rate"]
    MODULES_NEEDED = [MODULE_KEY]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sample_rate = int(self.hparams.sample_rate)
        self.chunk_seconds = float(
            getattr(self.hparams, "chunk_seconds", DEFAULT_CHUNK_SECONDS)
        )
        self.overlap_seconds = float(
            getattr(self.hparams, "overlap_seconds", DEFAULT_OVERLAP_SECONDS)
        )
        check_chunking(self.chunk_seconds, self.overlap_seconds)
        self._load_strictly()

    # Loading ---------------------------------------------------------------

    @classmethod
    def from_hparams(cls, source, hparams_file=HPARAMS_FILE, **kwargs):
        """Loads a pretrained model folder (local or on the hub).

        Arguments
        ---------
        source : str or pathlib.Path
            A local model folder (:mod:`speechbrain_kd.pretrained.folder`)
            or a HuggingFace id (``org/name``). Something that looks like
            a local path (absolute, ``./``, more than one ``/``, existing)
            is never looked up on the hub.
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
            source = str(check_model_folder(source, hparams_file))
            # Read before SpeechBrain's Pretrainer, whose torch.load
            # traceback would name neither the file nor the problem.
            problem = parameter_file_problem(pathlib.Path(source) / MODEL_FILE)
            if problem is not None:
                raise ModelLoadError(
                    f"cannot read the parameter file {source}/{MODEL_FILE}: "
                    f"{problem}"
                )
        try:
            with custom_interface_resolved():
                return super().from_hparams(
                    source=source, hparams_file=hparams_file, **kwargs
                )
        except pickle.UnpicklingError as error:
            path = pathlib.Path(kwargs.get("savedir") or source) / MODEL_FILE
            raise ModelLoadError(
                f"cannot read the parameter file {source}/{MODEL_FILE}: "
                f"{unreadable_reason(path, error)}"
            ) from None
        except RuntimeError as error:
            # The Pretrainer's non-strict load still fails on a shape
            # mismatch, before __init__ can check the keys.
            if "Error(s) in loading state_dict" not in str(error):
                raise
            details = str(error).split("\n", 1)[-1].strip()
            raise ModelLoadError(
                f"{MODULE_KEY} parameters from {source}/{MODEL_FILE} do not "
                f"fit the model of {hparams_file}: {details} Check that "
                f"{hparams_file} builds the model the parameters were "
                "trained with."
            ) from None

    def _load_strictly(self):
        """Re-reads the collected parameter file and loads it strictly."""
        pretrainer = getattr(self.hparams, "pretrainer", None)
        if pretrainer is None:
            return  # built by hand from modules: nothing was loaded
        path = pretrainer.paths.get(MODULE_KEY)
        if path is None and pretrainer.collect_in is not None:
            path = pathlib.Path(pretrainer.collect_in) / MODEL_FILE
        if path is None or not pathlib.Path(path).exists():
            raise FileNotFoundError(
                f"{MODEL_FILE} was not collected (looked for {path}); "
                f"the pretrainer of {HPARAMS_FILE} must have the loadable "
                f"{MODULE_KEY}"
            )
        try:
            state_dict = read_parameters(path)
        except CheckpointError as error:  # a corrupt or foreign file
            raise ModelLoadError(str(error)) from None
        model = unwrap(self.mods[MODULE_KEY])
        try:
            check_state_dict(
                model,
                state_dict,
                str(path),
                role=MODULE_KEY,
                hint=f"Check that {HPARAMS_FILE} builds the model the "
                "parameters were trained with.",
            )
        except CheckpointError as error:
            raise ModelLoadError(str(error)) from None
        model.to(self.device)
        model.eval()

    # Enhancement -----------------------------------------------------------

    def _chunking(self, chunk_seconds, overlap_seconds):
        chunk_seconds = (
            self.chunk_seconds if chunk_seconds is None else chunk_seconds
        )
        overlap_seconds = (
            self.overlap_seconds if overlap_seconds is None else overlap_seconds
        )
        check_chunking(chunk_seconds, overlap_seconds)
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

    @property
    def model(self):
        """The enhancement model itself (``mods.enhance_model`` without the
        adapter that SpeechBrain's stock interfaces call).

        Returns
        -------
        torch.nn.Module
            The model.
        """
        return unwrap(self.mods[MODULE_KEY])

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

        model = unwrap(self.mods[MODULE_KEY])
        model.eval()
        with torch.no_grad():
            if all(n == total for n in valid) and total <= chunk:
                output = self._run(wavs).cpu()
            else:
                output = torch.zeros(batch, total)
                for i, n in enumerate(valid):
                    output[i, :n] = enhance_in_chunks(
                        self._run, wavs[i : i + 1, :n], chunk, overlap
                    )[0]
        return output[0] if squeeze else output

    def _run(self, wavs):
        """One pass of the model on ``[batch, time]`` (no chunking)."""
        return unwrap(self.mods[MODULE_KEY])(wavs.to(self.device)).float()

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
        output_filename=None,
    ):
        """Enhances an audio file (any rate, any number of channels).

        The file is read with :func:`speechbrain_kd.audio.read_audio`
        (SpeechBrain's reader), down-mixed to mono (mean over channels),
        resampled to the model's rate with
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
        output_filename : str or pathlib.Path, optional
            ``output_path`` under the name SpeechBrain's interfaces use.

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
        if output_filename is not None:
            if output_path is not None and output_path != output_filename:
                raise ValueError(
                    f"enhance_file got output_path={output_path!r} and "
                    f"output_filename={output_filename!r}: give one"
                )
            output_path = output_filename
        info = audio_info(path)
        noisy = read_audio(path, self.sample_rate)
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
        if keep_rate and info.sample_rate != self.sample_rate:
            enhanced = resample(enhanced, self.sample_rate, info.sample_rate)
            enhanced = fit_length(enhanced, info.frames)
            out_rate = info.sample_rate
        if output_path is not None:
            write_wav(output_path, enhanced, out_rate)
        return enhanced
