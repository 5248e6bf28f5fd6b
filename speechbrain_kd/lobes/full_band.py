"""A causal full-band (48 kHz) lightweight enhancer with exact streaming.

Designed from the abstract of Drossos, Heikkinen, Tsiaflakis (MMSP 2025):
frame-by-frame masking of the STFT magnitude by a UNet over frequency bands
whose convolutions span past frames (look-back), a recurrent bottleneck,
MobileNet-style inverted bottlenecks and causal instance normalisation.
The choices the abstract leaves open are listed in the README
("Full-band student").
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from speechbrain_kd.lobes.overlap_add import frames_after, overlap_add_step
from speechbrain_kd.lobes.taps import LatentTap


def band_matrix(n_bins, bands, sample_rate, min_hz=0.0):
    """Triangular (hat) weights ``[bands, n_bins]`` on the mel scale, a
    partition of unity over the bins: each bin's weights sum to 1.

    Band centres are spaced on the mel scale and pushed apart to at least
    one bin, so no band is empty at low frequencies.

    Arguments
    ---------
    n_bins : int
        STFT bins (``n_fft // 2 + 1``).
    bands : int
        Number of bands (<= ``n_bins``).
    sample_rate : int
        Sample rate (the last bin is ``sample_rate / 2``).
    min_hz : float
        Centre of the first band.

    Returns
    -------
    torch.Tensor
        ``[bands, n_bins]`` weights.

    Example
    -------
    >>> w = band_matrix(9, 4, 16000)
    >>> w.shape, bool(torch.allclose(w.sum(0), torch.ones(9)))
    (torch.Size([4, 9]), True)
    """
    if not 2 <= bands <= n_bins:
        raise ValueError(f"bands must be in [2, {n_bins}], got {bands}")

    def mel(hz):
        """Hz on the (HTK) mel scale."""
        return 2595.0 * math.log10(1.0 + hz / 700.0)

    top = mel(sample_rate / 2)
    low = mel(min_hz)
    hz = [
        700.0 * (10 ** ((low + (top - low) * i / (bands - 1)) / 2595.0) - 1)
        for i in range(bands)
    ]
    bin_hz = (sample_rate / 2) / (n_bins - 1)
    centres = []
    for b, f in enumerate(hz):
        c = f / bin_hz
        if centres:
            c = max(c, centres[-1] + 1.0)
        # leave room for the bands still to place
        c = min(c, n_bins - 1 - (bands - 1 - b))
        centres.append(c)
    k = torch.arange(n_bins, dtype=torch.float64)
    weights = torch.zeros(bands, n_bins, dtype=torch.float64)
    for b, c in enumerate(centres):
        if b > 0:
            left = centres[b - 1]
            rise = (k - left) / (c - left)
            weights[b] = torch.where((k >= left) & (k <= c), rise, weights[b])
        else:
            weights[b] = torch.where(k <= c, 1.0, 0.0)
        if b < bands - 1:
            right = centres[b + 1]
            fall = (right - k) / (right - c)
            weights[b] = torch.where((k > c) & (k < right), fall, weights[b])
        else:
            weights[b] = torch.where(k > c, 1.0, weights[b])
    return weights.float()


class CausalInstanceNorm(nn.Module):
    """Instance normalisation with statistics of the past only: frame t of
    channel c is normalised by the mean and variance of channel c over all
    frequencies and frames ``<= t``, then scaled and shifted per channel.

    Features are channels-last, ``[batch, time, freq, channels]``.

    Arguments
    ---------
    channels : int
        Channels.
    eps : float
        Added to the variance.

    Example
    -------
    >>> norm = CausalInstanceNorm(2)
    >>> x = torch.randn(1, 7, 5, 2)
    >>> y, _ = norm(x)
    >>> z, _ = norm(torch.cat([x, torch.randn(1, 3, 5, 2)], dim=1))
    >>> bool(torch.allclose(y, z[:, :7], atol=1e-6))  # causal
    True
    """

    def __init__(self, channels, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x, state=None):
        """Normalises ``[batch, time, freq, channels]``.

        Arguments
        ---------
        x : torch.Tensor
            The features.
        state : torch.Tensor, optional
            ``[batch, 3, channels]``: count, sum and sum of squares of the
            values before ``x``; None: ``x`` starts the signal.

        Returns
        -------
        tuple
            The normalised features and the new state.
        """
        moments = torch.stack(
            [
                torch.full_like(x[:, :, 0], x.shape[2]),
                x.sum(dim=2),
                x.pow(2).sum(dim=2),
            ],
            dim=2,
        ).cumsum(1)  # [B, T, 3, C]
        if state is not None:
            moments = moments + state.unsqueeze(1)
        count, total, squares = moments.unbind(2)
        mean = total / count
        var = (squares / count - mean.pow(2)).clamp(min=0.0)
        scale = torch.rsqrt(var + self.eps) * self.weight
        y = (x - mean.unsqueeze(2)) * scale.unsqueeze(2) + self.bias
        return y, moments[:, moments.shape[1] - 1]


def _pointwise(conv, x):
    """A 1x1 ``nn.Conv2d`` applied to channels-last features."""
    weight = conv.weight.reshape(conv.out_channels, conv.in_channels)
    return F.linear(x, weight, conv.bias)


class InvertedBottleneck(nn.Module):
    """MobileNetV2 block over frequency: 1x1 expansion, ReLU6, depthwise
    conv of 3 bands, ReLU6, 1x1 projection, plus the input.

    Features are channels-last, ``[batch, time, freq, channels]``; the
    convolutions run as matrix products (the same arithmetic as
    ``nn.Conv2d``, far fewer operator calls for one frame).

    Arguments
    ---------
    channels : int
        Input and output channels.
    expansion : int
        Hidden channels over ``channels``.

    Example
    -------
    >>> InvertedBottleneck(4)(torch.randn(2, 5, 8, 4)).shape
    torch.Size([2, 5, 8, 4])
    """

    def __init__(self, channels, expansion=2):
        super().__init__()
        hidden = channels * int(expansion)
        self.expand = nn.Conv2d(channels, hidden, 1)
        self.depthwise = nn.Conv2d(
            hidden, hidden, (3, 1), padding=(1, 0), groups=hidden
        )
        self.project = nn.Conv2d(hidden, channels, 1)

    def forward(self, x):
        """Applies the block to ``[batch, time, freq, channels]``.

        Arguments
        ---------
        x : torch.Tensor
            The features.

        Returns
        -------
        torch.Tensor
            Same shape.
        """
        h = F.relu6(_pointwise(self.expand, x))
        taps = self.depthwise.weight[:, 0, :, 0]  # [hidden, 3]
        padded = F.pad(h, (0, 0, 1, 1))
        bands = h.shape[2]
        h = (
            padded[:, :, 0:bands] * taps[:, 0]
            + padded[:, :, 1 : bands + 1] * taps[:, 1]
            + padded[:, :, 2 : bands + 2] * taps[:, 2]
            + self.depthwise.bias
        )
        return x + _pointwise(self.project, F.relu6(h))


class EncoderLayer(nn.Module):
    """Conv2d over (3 bands x ``look_back + 1`` frames, past only), stride 2
    in frequency, causal instance norm, ReLU6, inverted bottleneck.

    Features are channels-last, ``[batch, time, freq, channels]``.

    Arguments
    ---------
    in_channels : int
        Input channels.
    out_channels : int
        Output channels.
    look_back : int
        Past frames the kernel spans besides the current one.
    expansion : int
        Inverted-bottleneck expansion.

    Example
    -------
    >>> layer = EncoderLayer(1, 4, look_back=2)
    >>> y, _ = layer(torch.randn(1, 6, 16, 1))
    >>> y.shape
    torch.Size([1, 6, 8, 4])
    """

    def __init__(self, in_channels, out_channels, look_back=1, expansion=2):
        super().__init__()
        self.look_back = int(look_back)
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            (3, self.look_back + 1),
            stride=(2, 1),
            padding=(1, 0),
        )
        self.norm = CausalInstanceNorm(out_channels)
        self.block = InvertedBottleneck(out_channels, expansion)

    def forward(self, x, state=None):
        """Runs the layer on ``[batch, time, freq, channels]``.

        Arguments
        ---------
        x : torch.Tensor
            The features.
        state : tuple of torch.Tensor, optional
            ``(past, norm)``: the last ``look_back`` input frames and the
            normalisation state; None: ``x`` starts the signal (zero past).

        Returns
        -------
        tuple
            The output and the new ``(past, norm)``.
        """
        if state is None:
            past = x.new_zeros(x.shape[0], self.look_back, *x.shape[2:])
            norm_state = None
        else:
            past, norm_state = state
        full = torch.cat([past, x], dim=1)
        # patches [B, T, F/2, C_in, 3 bands, look_back + 1 frames]
        patches = (
            F.pad(full, (0, 0, 1, 1))
            .unfold(1, self.look_back + 1, 1)
            .unfold(2, 3, 2)
            .transpose(-1, -2)
        )
        weight = self.conv.weight.reshape(self.conv.out_channels, -1)
        y = F.linear(patches.flatten(3), weight, self.conv.bias)
        y, norm_state = self.norm(y, norm_state)
        y = self.block(F.relu6(y))
        new_past = full[:, full.shape[1] - self.look_back :]
        return y, (new_past, norm_state)


class UpLayer(nn.Module):
    """Transposed Conv2d of kernel and stride 2 in frequency (each band
    becomes two), channels-last.

    Arguments
    ---------
    in_channels : int
        Input channels.
    out_channels : int
        Output channels.

    Example
    -------
    >>> UpLayer(4, 3)(torch.randn(2, 5, 8, 4)).shape
    torch.Size([2, 5, 16, 3])
    """

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.ConvTranspose2d(
            in_channels, out_channels, (2, 1), stride=(2, 1)
        )

    def forward(self, x):
        """Doubles the bands of ``[batch, time, freq, channels]``.

        Arguments
        ---------
        x : torch.Tensor
            The features.

        Returns
        -------
        torch.Tensor
            ``[batch, time, 2 * freq, out_channels]``.
        """
        c_out = self.conv.out_channels
        weight = (
            self.conv.weight[..., 0].permute(2, 1, 0).reshape(2 * c_out, -1)
        )
        y = F.linear(x, weight, self.conv.bias.repeat(2))
        return y.reshape(*x.shape[:2], 2 * x.shape[2], c_out)


class FullBandNet(nn.Module):
    """Causal full-band enhancer: a mask on the STFT from a band UNet.

    Per frame (window ``win`` samples, hop ``hop``, square-root Hann
    analysis and synthesis windows, which overlap-add to 1): log power in
    ``bands`` mel-spaced triangular bands, causal instance norm, an encoder
    of :class:`EncoderLayer` (frequency halved per layer, kernels spanning
    ``look_back`` past frames), a GRU over frames on the flattened
    bottleneck, a decoder of transposed convolutions (frequency doubled)
    plus the encoder's output and an :class:`InvertedBottleneck`, and a
    sigmoid band gain spread to the bins by the same triangular weights
    (a partition of unity); the gain multiplies the complex spectrum and
    the frames are overlap-added.

    Timing. :meth:`forward_causal` (the streamed signal) is causal: output
    sample n depends on input samples ``<= n`` and estimates the clean
    sample ``n - delay_samples`` (``delay_samples = win - hop``, the
    overlap-add). :meth:`forward` returns the time-aligned estimate
    (``forward_causal`` of the input followed by ``delay_samples`` zeros,
    without its first ``delay_samples`` samples), the offline use for
    training and evaluation. Algorithmic latency = hop buffering + delay =
    ``win`` samples (20 ms at 48 kHz with the defaults).

    Step API (:class:`~speechbrain_kd.pretrained.StreamingEnhancer`):
    ``hop``, ``init_state``, ``forward_step`` (chunks of whole hops; the
    concatenated outputs equal :meth:`forward_causal`), ``latency_ms``.

    Taps: ``latent`` (the GRU's output projected back to the bottleneck,
    ``[batch, channels[-1] * bottleneck bands, frames]``) and ``decoder.i``.

    Arguments
    ---------
    sample_rate : int
        Rate the model runs at (48 kHz: full band).
    win : int
        Window (and FFT) length in samples.
    hop : int
        Hop in samples (``win / 2``).
    bands : int
        Mel-spaced bands (a multiple of ``2 ** len(channels)``).
    channels : list of int
        Encoder widths, outermost first.
    look_back : list of int
        Past frames spanned by each encoder layer's kernel.
    hidden : int
        GRU width.
    expansion : int
        Inverted-bottleneck expansion.

    Example
    -------
    >>> model = FullBandNet().eval()
    >>> x = torch.randn(1, 4800)
    >>> model(x).shape, model.latency_ms(48000)
    (torch.Size([1, 4800]), 20.0)
    """

    attention_views = ()

    def __init__(
        self,
        sample_rate=48000,
        win=960,
        hop=480,
        bands=32,
        channels=(16, 24),
        look_back=(2, 1),
        hidden=96,
        expansion=2,
    ):
        super().__init__()
        channels, look_back = list(channels), list(look_back)
        if win != 2 * hop:
            raise ValueError(f"win must be 2 * hop, got win={win}, hop={hop}")
        if len(look_back) != len(channels):
            raise ValueError(
                f"one look_back per encoder layer: {len(channels)} layers, "
                f"look_back={look_back}"
            )
        if bands % (2 ** len(channels)):
            raise ValueError(
                f"bands ({bands}) must be a multiple of 2 ** "
                f"{len(channels)} (one halving per encoder layer)"
            )
        self.sample_rate, self.win, self.hop = int(sample_rate), win, hop
        self.delay_samples = win - hop
        self.latency_samples = win
        self.register_buffer(
            "window", torch.hann_window(win, periodic=True).sqrt(), False
        )
        weights = band_matrix(win // 2 + 1, bands, sample_rate)
        self.register_buffer(
            "analysis", (weights / weights.sum(1, keepdim=True)).T, False
        )
        self.register_buffer("synthesis", weights, False)
        self.input_norm = CausalInstanceNorm(1)
        self.encoder = nn.ModuleList(
            EncoderLayer(c_in, c_out, lb, expansion)
            for c_in, c_out, lb in zip(
                [1, *channels[:-1]], channels, look_back, strict=True
            )
        )
        self.bottleneck_bands = bands // 2 ** len(channels)
        width = channels[-1] * self.bottleneck_bands
        self.gru = nn.GRU(width, hidden, batch_first=True)
        self.gru_out = nn.Linear(hidden, width)
        self.latent = LatentTap()
        self.up = nn.ModuleList(
            UpLayer(c_in, c_out)
            for c_in, c_out in zip(
                channels[::-1], [*channels[::-1][1:], channels[0]], strict=True
            )
        )
        self.decoder = nn.ModuleList(
            InvertedBottleneck(c, expansion)
            for c in [*channels[::-1][1:], channels[0]]
        )
        self.mask = nn.Conv2d(channels[0], 1, 1)

    # -- shared per-frame-sequence network ---------------------------------
    def _network(self, frames, state=None):
        """Band gains ``[batch, bins, frames]`` of ``[batch, frames, win]``
        windowed frames, and the new state."""
        spectrum = torch.fft.rfft(frames * self.window, dim=-1)
        power = spectrum.real.pow(2) + spectrum.imag.pow(2)
        x = torch.log(power @ self.analysis + 1e-8).unsqueeze(-1)  # [B,T,F,1]
        new = {}
        x, new["input_norm"] = self.input_norm(
            x, None if state is None else state["input_norm"]
        )
        skips = []
        for i, layer in enumerate(self.encoder):
            past, norm = f"encoder{i}.past", f"encoder{i}.norm"
            x, (new[past], new[norm]) = layer(
                x, None if state is None else (state[past], state[norm])
            )
            skips.append(x)
        h0 = None if state is None else state["gru"]
        out, new["gru"] = self.gru(x.flatten(2), h0)
        out = self.latent(self.gru_out(out).transpose(1, 2)).transpose(1, 2)
        x = out.reshape(x.shape) + x
        for up, block, skip in zip(
            self.up, self.decoder, [*skips[::-1][1:], None], strict=True
        ):
            x = up(x)
            x = block(x if skip is None else x + skip)
        gains = torch.sigmoid(_pointwise(self.mask, x))[..., 0]  # [B, T, F]
        gains = gains @ self.synthesis  # [B, T, bins]
        return spectrum * gains, new

    def _frames_out(self, spectrum):
        """Windowed synthesis frames ``[batch, frames, win]``."""
        return torch.fft.irfft(spectrum, n=self.win, dim=-1) * self.window

    def forward_causal(self, noisy):
        """The streamed output: causal, delayed by ``delay_samples``.

        Arguments
        ---------
        noisy : torch.Tensor
            ``[batch, time]`` at ``sample_rate``.

        Returns
        -------
        torch.Tensor
            ``[batch, time]``.
        """
        length = noisy.shape[-1]
        n_frames = -(-length // self.hop)
        padded = F.pad(
            noisy, (self.delay_samples, n_frames * self.hop - length)
        )
        frames = padded.unfold(-1, self.win, self.hop)  # [B, T, win]
        spectrum, _ = self._network(frames)
        out = self._frames_out(spectrum)
        signal = F.fold(
            out.transpose(1, 2),
            output_size=(1, (n_frames + 1) * self.hop),
            kernel_size=(1, self.win),
            stride=(1, self.hop),
        )[:, 0, 0]
        return signal[..., :length]

    def forward(self, noisy):
        """The time-aligned estimate (offline use).

        Arguments
        ---------
        noisy : torch.Tensor
            ``[batch, time]`` or ``[batch, 1, time]`` at ``sample_rate``.

        Returns
        -------
        torch.Tensor
            Enhanced waveforms, the shape of ``noisy``.
        """
        squeeze = noisy.dim() == 3
        x = noisy[:, 0] if squeeze else noisy
        length = x.shape[-1]
        out = self.forward_causal(F.pad(x, (0, self.delay_samples)))
        out = out[..., self.delay_samples : self.delay_samples + length]
        return out.unsqueeze(1) if squeeze else out

    # -- step API ----------------------------------------------------------
    def init_state(self, batch_size=1, device=None, dtype=None):
        """The state before the first sample: zero past input, zero
        overlap-add tail, empty normalisation statistics, zero GRU state.

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
            Name -> tensor: ``input`` (the last ``win - hop`` input
            samples), ``tail`` (the overlap-add tail), ``input_norm`` and
            ``encoder<i>.norm`` (count, sum, sum of squares per channel),
            ``encoder<i>.past`` (look-back frames), ``gru`` (its hidden
            state).
        """
        kw = {"device": device, "dtype": dtype or torch.float32}

        def norm(channels):
            """Empty normalisation statistics."""
            return torch.zeros(batch_size, 3, channels, **kw)

        state = {
            "input": torch.zeros(batch_size, self.delay_samples, **kw),
            "tail": torch.zeros(batch_size, self.delay_samples, **kw),
            "input_norm": norm(1),
            "gru": torch.zeros(1, batch_size, self.gru.hidden_size, **kw),
        }
        bands = self.synthesis.shape[0]
        c_in = 1
        for i, layer in enumerate(self.encoder):
            state[f"encoder{i}.past"] = torch.zeros(
                batch_size, layer.look_back, bands, c_in, **kw
            )
            state[f"encoder{i}.norm"] = norm(layer.conv.out_channels)
            c_in, bands = layer.conv.out_channels, bands // 2
        return state

    def forward_step(self, chunk, state):
        """Processes whole hops; returns their output and the new state.

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
        if chunk.shape[-1] % self.hop:
            raise ValueError(
                f"forward_step needs a whole number of hops ({self.hop} "
                f"samples), got {chunk.shape[-1]}"
            )
        frames, history = frames_after(
            state["input"], chunk, self.win, self.hop
        )
        spectrum, new = self._network(frames, state)
        ready, new["tail"] = overlap_add_step(
            self._frames_out(spectrum), state["tail"], self.hop
        )
        new["input"] = history
        return ready, new

    def latency_ms(self, sample_rate=None):
        """Algorithmic latency in milliseconds (window = hop buffering +
        overlap-add delay).

        Arguments
        ---------
        sample_rate : int, optional
            Rate in Hz (default: the model's).

        Returns
        -------
        float
            ``1000 * latency_samples / sample_rate``.
        """
        rate = self.sample_rate if sample_rate is None else sample_rate
        return 1000.0 * self.latency_samples / rate

    def tap_paths(self):
        """Module paths a distillation term may tap.

        Returns
        -------
        list of str
            ``decoder.i`` and ``latent``.
        """
        return [
            *(f"decoder.{i}" for i in range(len(self.decoder))),
            "latent",
        ]
