"""Streaming inference: audio fed piece by piece through a causal model.

:class:`StreamingEnhancer` drives any model with the step API of
:class:`speechbrain_kd.lobes.rt_senet.RTSENet` (``hop``,
``init_state``, ``forward_step``, ``latency_ms``); its output equals the
model's offline output.
"""

import warnings

import torch

from speechbrain.inference.interfaces import Pretrained


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
    is put in eval mode; everything runs under ``torch.no_grad()``); for a
    model with an overlap-add delay (``delay_samples``, e.g.
    :class:`~speechbrain_kd.lobes.full_band.FullBandNet`) it equals the
    model's ``forward_causal``: the offline estimate delayed by that many
    samples.

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
    >>> a = streamer.process(x[:20])
    >>> b = streamer.process(x[20:])
    >>> out = torch.cat([a, b, streamer.flush()])
    >>> out.shape, bool((out - model(x[None])[0]).abs().max() < 1e-5)
    (torch.Size([50]), True)
    >>> streamer.latency_ms
    1.0
    """

    def __init__(self, model, block_hops=1, sample_rate=16000, compile=False):
        if isinstance(model, Pretrained):
            sample_rate = model.hparams.sample_rate
            from speechbrain_kd.pretrained.adapters import unwrap

            model = unwrap(model.mods.enhance_model)
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
