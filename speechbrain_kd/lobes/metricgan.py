"""MetricGAN+ generator and multi-metric discriminator, parametric.

SpeechBrain's ``speechbrain.lobes.models.MetricGAN`` hard-codes the sizes
of MetricGAN+ (a bidirectional generator with a 400 -> 300 layer, a
discriminator with one output and equal conv widths). MetricGAN-OKD needs
a causal (unidirectional) generator and a discriminator with one output
head per target metric and channels 16 -> 32 -> 64 -> 128
(``IMPLEMENTATION_NOTES.md`` §3), so these are parametric variants. They
reuse SpeechBrain's initialisation helper (``xavier_init_layer``), its
LSTM wrapper and its learnable sigmoid.

* :class:`MetricGANGenerator`: log1p magnitudes ``[batch, frames, freq]``
  -> mask. LSTM (2 x 200, bidirectional by default, dropout 0.1) ->
  Linear -> LeakyReLU(0.3) -> Linear -> learnable sigmoid
  ``1.2 * sigmoid(alpha_f * x)``. Defaults: 1,895,514 parameters;
  ``bidirectional=False``: 826,714.
* :class:`MetricDiscriminator`: BN over the (clean, test) pair -> four
  spectral-norm 5x5 convs with LeakyReLU(0.3) -> mean over time and
  frequency -> spectral-norm Linear 128 -> 50 -> 10 -> ``n_outputs``.
* :class:`MultiMetricDiscriminator`: ``n_metrics`` scores per input, from
  one shared trunk with one head per metric (the official code) or from
  one discriminator per metric (the paper's reading).
* :class:`SpectralMaskEnhancer`: a waveform-to-waveform model around a
  generator (STFT 512 / hop 256, Hamming; mask floored at 0.05 times the
  noisy log1p magnitude; ``expm1`` and the noisy phase for resynthesis),
  so a generator trains, evaluates, exports and enhances files like every
  other model of this package. With a causal generator it streams (step
  API of :class:`~speechbrain_kd.pretrained.StreamingEnhancer`, ONNX
  export with the state): 32 ms latency, the offline output one hop
  later.

Example
-------
>>> generator = MetricGANGenerator(n_freq=9, hidden_size=4, linear_size=6)
>>> enhancer = SpectralMaskEnhancer(generator, n_fft=16, hop_length=8)
>>> enhancer(torch.randn(2, 100)).shape
torch.Size([2, 100])
"""

import torch
import torch.nn.functional as F
from torch import nn

from speechbrain.lobes.models.MetricGAN import (
    Learnable_sigmoid,
    xavier_init_layer,
)
from speechbrain.nnet.RNN import LSTM
from speechbrain_kd.lobes.overlap_add import frames_after, overlap_add_step

LEAKY_SLOPE = 0.3


class MetricGANGenerator(nn.Module):
    """MetricGAN+ mask generator with configurable sizes and direction.

    Arguments
    ---------
    n_freq : int
        Frequency bins (``n_fft // 2 + 1``).
    hidden_size : int
        LSTM units per direction.
    num_layers : int
        LSTM layers.
    bidirectional : bool
        Bidirectional LSTM (False: causal, frame by frame).
    linear_size : int
        Width of the hidden linear layer.
    dropout : float
        Dropout between LSTM layers.

    Example
    -------
    >>> generator = MetricGANGenerator()
    >>> sum(p.numel() for p in generator.parameters())
    1895514
    >>> causal = MetricGANGenerator(bidirectional=False)
    >>> sum(p.numel() for p in causal.parameters())
    826714
    >>> generator(torch.rand(1, 20, 257)).shape
    torch.Size([1, 20, 257])
    """

    def __init__(
        self,
        n_freq=257,
        hidden_size=200,
        num_layers=2,
        bidirectional=True,
        linear_size=300,
        dropout=0.1,
    ):
        super().__init__()
        self.lstm = LSTM(
            hidden_size=hidden_size,
            input_size=n_freq,
            num_layers=num_layers,
            dropout=dropout,
            bidirectional=bidirectional,
        )
        # MetricGAN+'s initialisation: orthogonal recurrent weights,
        # Xavier input weights, zero biases.
        for name, param in self.lstm.named_parameters():
            if "bias" in name:
                nn.init.zeros_(param)
            elif "weight_ih" in name:
                nn.init.xavier_uniform_(param)
            elif "weight_hh" in name:
                nn.init.orthogonal_(param)
        directions = 2 if bidirectional else 1
        self.linear1 = xavier_init_layer(
            hidden_size * directions, linear_size, spec_norm=False
        )
        self.activation = nn.LeakyReLU(LEAKY_SLOPE)
        self.linear2 = xavier_init_layer(linear_size, n_freq, spec_norm=False)
        self.learnable_sigmoid = Learnable_sigmoid(n_freq)

    def forward(self, log_magnitude, lengths=None):
        """Mask for a log1p magnitude spectrogram.

        Arguments
        ---------
        log_magnitude : torch.Tensor
            ``[batch, frames, n_freq]``.
        lengths : torch.Tensor, optional
            Relative lengths ``[batch]`` (padding is skipped by the LSTM).

        Returns
        -------
        torch.Tensor
            Mask in ``(0, 1.2)``, same shape.
        """
        # The LSTM runs in float32 under mixed precision (--precision):
        # CPU oneDNN has no bf16 LSTM and recurrences are safer in fp32.
        with torch.autocast(log_magnitude.device.type, enabled=False):
            out, _ = self.lstm(log_magnitude.float(), lengths=lengths)
        return self._mask(out)

    def _mask(self, lstm_out):
        """The mask from the LSTM's output."""
        out = self.activation(self.linear1(lstm_out))
        return self.learnable_sigmoid(self.linear2(out))

    def init_state(self, batch_size=1, device=None, dtype=None):
        """The LSTM state before the first frame (zeros); causal only.

        Arguments
        ---------
        batch_size : int
            Batch size.
        device : torch.device or None
            Device.
        dtype : torch.dtype or None
            Data type.

        Returns
        -------
        dict
            ``h`` and ``c``: ``[num_layers, batch, hidden_size]``.

        Raises
        ------
        ValueError
            The generator is bidirectional (it needs the whole input).
        """
        rnn = self.lstm.rnn
        if rnn.bidirectional:
            raise ValueError(
                "a bidirectional MetricGANGenerator cannot stream: train "
                "the causal one (bidirectional: False)"
            )
        shape = (rnn.num_layers, batch_size, rnn.hidden_size)
        kw = {"device": device, "dtype": dtype or torch.float32}
        return {"h": torch.zeros(shape, **kw), "c": torch.zeros(shape, **kw)}

    def forward_step(self, log_magnitude, state):
        """Masks for the next frames, carrying the LSTM state.

        Arguments
        ---------
        log_magnitude : torch.Tensor
            ``[batch, frames, n_freq]``: the frames after those of
            ``state``.
        state : dict
            From :meth:`init_state` or the previous step.

        Returns
        -------
        tuple
            The mask (as :meth:`forward` gives for these frames of the
            whole input) and the new state.
        """
        out, (h, c) = self.lstm.rnn(
            log_magnitude.float(), (state["h"], state["c"])
        )
        return self._mask(out), {"h": h, "c": c}


class MetricDiscriminator(nn.Module):
    """MetricGAN discriminator with configurable widths and outputs.

    Arguments
    ---------
    channels : sequence of int
        Output channels of the 2-D convs (MetricGAN-OKD: 16, 32, 64, 128).
    kernel_size : tuple of int
        Conv kernel.
    linear_sizes : sequence of int
        Hidden linear widths after the time-frequency mean.
    n_outputs : int
        Output scores (one per target metric for a shared trunk).

    Example
    -------
    >>> disc = MetricDiscriminator(n_outputs=2)
    >>> clean, test = torch.rand(3, 30, 257), torch.rand(3, 30, 257)
    >>> disc(clean, test).shape
    torch.Size([3, 2])
    >>> disc(clean[:, :5], test[:, :5]).shape  # padded to 17 frames
    torch.Size([3, 2])
    """

    def __init__(
        self,
        channels=(16, 32, 64, 128),
        kernel_size=(5, 5),
        linear_sizes=(50, 10),
        n_outputs=1,
    ):
        super().__init__()
        self.norm = nn.BatchNorm2d(2, momentum=0.01)
        widths = [2, *channels]
        self.convs = nn.ModuleList(
            xavier_init_layer(
                w_in, w_out, layer_type=nn.Conv2d, kernel_size=kernel_size
            )
            for w_in, w_out in zip(widths[:-1], widths[1:], strict=False)
        )
        sizes = [channels[-1], *linear_sizes, n_outputs]
        self.linears = nn.ModuleList(
            xavier_init_layer(s_in, s_out)
            for s_in, s_out in zip(sizes[:-1], sizes[1:], strict=False)
        )
        self.activation = nn.LeakyReLU(LEAKY_SLOPE)
        self.min_frames = len(self.convs) * (kernel_size[0] - 1) + 1

    def forward(self, clean, test):
        """Estimates normalised metric scores of ``test`` against ``clean``.

        Arguments
        ---------
        clean : torch.Tensor
            Clean log1p magnitudes ``[batch, frames, freq]``.
        test : torch.Tensor
            Log1p magnitudes to score, same shape.

        Returns
        -------
        torch.Tensor
            ``[batch, n_outputs]``.
        """
        out = torch.stack([clean, test], dim=1)
        # Unpadded convs need a few frames: pad very short inputs with
        # silence (log1p magnitude 0) rather than fail.
        short = self.min_frames - out.shape[2]
        if short > 0:
            out = torch.nn.functional.pad(out, (0, 0, 0, short))
        out = self.norm(out)
        for conv in self.convs:
            out = self.activation(conv(out))
        out = out.mean(dim=(2, 3))
        for linear in self.linears[:-1]:
            out = self.activation(linear(out))
        return self.linears[-1](out)


class MultiMetricDiscriminator(nn.Module):
    """One score per target metric: shared trunk or one network each.

    Arguments
    ---------
    n_metrics : int
        Target metrics (generators).
    shared : bool
        True: one trunk with ``n_metrics`` output heads (the official
        MetricGAN-OKD code); False: one discriminator per metric.
    **kwargs : dict
        :class:`MetricDiscriminator` options (``channels``, ...).

    Example
    -------
    >>> clean, test = torch.rand(2, 30, 257), torch.rand(2, 30, 257)
    >>> MultiMetricDiscriminator(3)(clean, test).shape
    torch.Size([2, 3])
    >>> MultiMetricDiscriminator(3, shared=False)(clean, test).shape
    torch.Size([2, 3])
    """

    def __init__(self, n_metrics, shared=True, **kwargs):
        super().__init__()
        if n_metrics < 1:
            raise ValueError(f"n_metrics must be >= 1, got {n_metrics}")
        self.n_metrics = n_metrics
        self.shared = shared
        count, outputs = (1, n_metrics) if shared else (n_metrics, 1)
        self.discriminators = nn.ModuleList(
            MetricDiscriminator(n_outputs=outputs, **kwargs)
            for _ in range(count)
        )

    def forward(self, clean, test):
        """Scores ``test`` against ``clean`` for every metric.

        Arguments
        ---------
        clean : torch.Tensor
            Clean log1p magnitudes ``[batch, frames, freq]``.
        test : torch.Tensor
            Log1p magnitudes to score, same shape.

        Returns
        -------
        torch.Tensor
            ``[batch, n_metrics]``.
        """
        return torch.cat([d(clean, test) for d in self.discriminators], -1)


class SpectralMaskEnhancer(nn.Module):
    """Waveform model around a log1p-magnitude mask generator.

    Arguments
    ---------
    generator : torch.nn.Module
        Maps ``[batch, frames, freq]`` log1p magnitudes (and relative
        lengths) to a mask of the same shape.
    n_fft : int
        FFT size (= window length).
    hop_length : int
        STFT hop.
    mask_floor : float
        Lower bound of the mask (MetricGAN+: 0.05).
    pad_mode : str
        How ``torch.stft`` pads the signal ends (``center=True``):
        ``"constant"`` (zeros, as the official MetricGAN-OKD code) or
        ``"reflect"`` (torch's default).

    Example
    -------
    >>> generator = MetricGANGenerator(n_freq=9, hidden_size=4, linear_size=6)
    >>> enhancer = SpectralMaskEnhancer(generator, n_fft=16, hop_length=8)
    >>> noisy = torch.randn(1, 64)
    >>> log_mag = enhancer.log_magnitude(noisy)
    >>> log_mag.shape
    torch.Size([1, 9, 9])
    >>> enhanced = enhancer.enhance_log_magnitude(log_mag)
    >>> bool((enhanced >= 0.05 * log_mag - 1e-6).all())
    True
    """

    def __init__(
        self,
        generator,
        n_fft=512,
        hop_length=256,
        mask_floor=0.05,
        pad_mode="constant",
    ):
        super().__init__()
        if pad_mode not in ("constant", "reflect"):
            raise ValueError(
                f"pad_mode must be 'constant' or 'reflect', got {pad_mode!r}"
            )
        self.generator = generator
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.mask_floor = mask_floor
        self.pad_mode = pad_mode
        window = torch.hamming_window(n_fft)
        self.register_buffer("window", window, persistent=False)
        # What torch.istft divides the overlap-add by, over one hop of a
        # signal covered by two frames (streaming with n_fft = 2 * hop).
        half = window[hop_length : 2 * hop_length]
        envelope = window[:hop_length].pow(2) + half.pow(2)
        self.register_buffer("envelope", envelope, persistent=False)

    def spectrum(self, wav):
        """Complex STFT ``[batch, frames, freq]`` of ``[batch, time]``.

        Arguments
        ---------
        wav : torch.Tensor
            Waveforms ``[batch, time]``.

        Returns
        -------
        torch.Tensor
            Complex spectrum.
        """
        with torch.autocast(wav.device.type, enabled=False):
            return self._stft(wav.float())

    def _stft(self, wav):
        """``torch.stft`` with these settings, ``[batch, frames, freq]``."""
        spec = torch.stft(
            wav,
            self.n_fft,
            self.hop_length,
            window=self.window,
            pad_mode=self.pad_mode,
            return_complex=True,
        )
        return spec.transpose(1, 2)

    def log_magnitude(self, wav):
        """``log1p(|STFT|)`` ``[batch, frames, freq]`` of waveforms.

        Arguments
        ---------
        wav : torch.Tensor
            Waveforms ``[batch, time]``.

        Returns
        -------
        torch.Tensor
            Log1p magnitudes.
        """
        return torch.log1p(self.spectrum(wav).abs())

    def enhance_log_magnitude(self, noisy_log_magnitude, lengths=None):
        """Masked log1p magnitudes (the generator's output domain).

        Arguments
        ---------
        noisy_log_magnitude : torch.Tensor
            ``[batch, frames, freq]``.
        lengths : torch.Tensor, optional
            Relative lengths ``[batch]``.

        Returns
        -------
        torch.Tensor
            ``mask.clamp(min=mask_floor) * noisy_log_magnitude``.
        """
        mask = self.generator(noisy_log_magnitude, lengths)
        return mask.clamp(min=self.mask_floor) * noisy_log_magnitude

    def synthesize(self, log_magnitude, noisy_spectrum, length):
        """Waveforms from log1p magnitudes and the noisy phase.

        Arguments
        ---------
        log_magnitude : torch.Tensor
            Enhanced log1p magnitudes ``[batch, frames, freq]``.
        noisy_spectrum : torch.Tensor
            Complex noisy STFT, same shape.
        length : int
            Output samples.

        Returns
        -------
        torch.Tensor
            ``[batch, length]``.
        """
        with torch.autocast(log_magnitude.device.type, enabled=False):
            phase = torch.angle(noisy_spectrum)
            magnitude = torch.expm1(log_magnitude.float())
            return self._istft(torch.polar(magnitude, phase), length)

    def _istft(self, spec, length):
        """``torch.istft`` of ``[batch, frames, freq]`` spectra."""
        return torch.istft(
            spec.transpose(1, 2),
            self.n_fft,
            self.hop_length,
            window=self.window,
            length=length,
        )

    def forward(self, wav, lengths=None, output="waveform"):
        """Enhances waveforms.

        Arguments
        ---------
        wav : torch.Tensor
            ``[batch, time]`` or ``[batch, 1, time]``.
        lengths : torch.Tensor, optional
            Relative lengths ``[batch]``.
        output : str
            ``waveform``, or ``log_magnitude`` for the enhanced log1p
            magnitudes ``[batch, frames, freq]`` (what MetricGAN losses
            use; through ``forward`` so that DDP sees the call).

        Returns
        -------
        torch.Tensor
            Enhanced waveforms (same shape as ``wav``) or magnitudes.
        """
        if output not in ("waveform", "log_magnitude"):
            raise ValueError(f"unknown output {output!r}")
        squeeze = wav.dim() == 3
        if squeeze:
            wav = wav.squeeze(1)
        spectrum = self.spectrum(wav)
        enhanced = self.enhance_log_magnitude(
            torch.log1p(spectrum.abs()), lengths
        )
        if output == "log_magnitude":
            return enhanced
        out = self.synthesize(enhanced, spectrum, wav.shape[-1])
        return out.unsqueeze(1) if squeeze else out

    # -- step API (causal generator, n_fft = 2 * hop) ------------------------
    @property
    def hop(self):
        """Samples per streaming step (the STFT hop)."""
        return self.hop_length

    @property
    def delay_samples(self):
        """Delay of :meth:`forward_causal` behind :meth:`forward` (one hop:
        a sample is final once the frame after it is in)."""
        return self.hop_length

    def init_state(self, batch_size=1, device=None, dtype=None):
        """The state before the first sample (zeros everywhere).

        Arguments
        ---------
        batch_size : int
            Batch size.
        device : torch.device or None
            Device.
        dtype : torch.dtype or None
            Data type.

        Returns
        -------
        dict
            ``input`` (the last ``n_fft - hop`` input samples: the zero
            padding of ``torch.stft`` at first), ``tail`` (the overlap-add
            tail, ``n_fft - hop`` samples) and the generator's state as
            ``generator.<name>``.

        Raises
        ------
        ValueError
            The model cannot stream: a bidirectional generator,
            ``pad_mode="reflect"`` (the first frame would need samples
            that have not arrived) or ``n_fft != 2 * hop``.
        """
        if self.pad_mode != "constant":
            raise ValueError(
                "streaming needs pad_mode='constant' (zero padding at "
                f"the start of the stream), got {self.pad_mode!r}"
            )
        if self.n_fft != 2 * self.hop_length:
            raise ValueError(
                f"streaming needs n_fft = 2 * hop_length, got n_fft="
                f"{self.n_fft}, hop_length={self.hop_length}"
            )
        kw = {"device": device, "dtype": dtype or torch.float32}
        generator = self.generator.init_state(batch_size, device, dtype)
        history = self.n_fft - self.hop_length
        return {
            "input": torch.zeros(batch_size, history, **kw),
            "tail": torch.zeros(batch_size, history, **kw),
            **{f"generator.{k}": v for k, v in generator.items()},
        }

    def forward_step(self, chunk, state):
        """Processes whole hops; returns their output and the new state.

        The frames are those of :meth:`forward`'s STFT; the enhanced
        spectrum keeps the noisy phase (``polar(magnitude, angle)`` written
        as a real gain on the complex spectrum); the output is the
        overlap-add divided by the squared-window envelope, as
        ``torch.istft`` does.

        Arguments
        ---------
        chunk : torch.Tensor
            ``[batch, k * hop]`` new input samples.
        state : dict
            From :meth:`init_state` or the previous step.

        Returns
        -------
        tuple
            ``[batch, k * hop]`` output samples (those of
            :meth:`forward_causal`) and the new state.
        """
        if chunk.shape[-1] % self.hop_length:
            raise ValueError(
                "forward_step needs a whole number of hops "
                f"({self.hop_length} samples), got {chunk.shape[-1]}"
            )
        frames, history = frames_after(
            state["input"], chunk, self.n_fft, self.hop_length
        )
        spectrum = torch.fft.rfft(frames * self.window, dim=-1)
        magnitude = (spectrum.real.pow(2) + spectrum.imag.pow(2)).sqrt()
        log_magnitude = torch.log1p(magnitude)
        prefix = "generator."
        mask, generator = self.generator.forward_step(
            log_magnitude,
            {k[len(prefix) :]: v for k, v in state.items() if k[:10] == prefix},
        )
        enhanced = torch.expm1(mask.clamp(min=self.mask_floor) * log_magnitude)
        gain = enhanced / magnitude.clamp(min=1e-12)
        out = torch.fft.irfft(spectrum * gain, n=self.n_fft, dim=-1)
        summed, tail = overlap_add_step(
            out * self.window, state["tail"], self.hop_length
        )
        ready = summed / self.envelope.repeat(out.shape[1])
        new = {
            "input": history,
            "tail": tail,
            **{prefix + name: value for name, value in generator.items()},
        }
        return ready, new

    def forward_causal(self, noisy):
        """The streamed output: causal, :attr:`delay_samples` behind.

        Sample ``n`` is :meth:`forward`'s sample ``n - hop`` (of the input
        followed by a hop of zeros; exactly when the input is a whole
        number of hops long, otherwise all but the last partial hop,
        which ``torch.istft`` normalises by fewer frames).

        Arguments
        ---------
        noisy : torch.Tensor
            ``[batch, time]``.

        Returns
        -------
        torch.Tensor
            ``[batch, time]``.
        """
        length = noisy.shape[-1]
        padded = F.pad(noisy, (0, -length % self.hop_length))
        out, _ = self.forward_step(padded, self.init_state(noisy.shape[0]))
        return out[..., :length]

    def latency_ms(self, sample_rate=16000):
        """Algorithmic latency: a hop of buffering plus a hop of delay.

        Arguments
        ---------
        sample_rate : int
            Rate in Hz.

        Returns
        -------
        float
            ``1000 * n_fft / sample_rate``.
        """
        return 1000.0 * (self.hop_length + self.delay_samples) / sample_rate
