"""Causal convolutional-recurrent building blocks on STFT magnitudes.

The pieces MHCA-CRN (the binaural spatial-injection teacher) and SJEN (its
monaural student) are built of. Spectrograms are ``[batch, channels, freq,
time]``; every block is causal in time (frame ``t`` of an output depends
on input frames ``<= t`` only).
"""

import torch
import torch.nn.functional as F
from torch import nn

from speechbrain.processing.features import ISTFT, STFT


class Spectrogram(nn.Module):
    """STFT analysis into magnitude and phase, and synthesis back.

    SpeechBrain's :class:`~speechbrain.processing.features.STFT` and
    :class:`~speechbrain.processing.features.ISTFT` (centred frames, zero
    padding), Hann window.

    Arguments
    ---------
    sample_rate : int
        Sampling rate (Hz).
    n_fft : int
        FFT size = window length (samples).
    hop_length : int
        Frame shift (samples).

    Example
    -------
    >>> spec = Spectrogram(16000)
    >>> wav = torch.randn(2, 16000)
    >>> magnitude, phase = spec.analyse(wav)
    >>> magnitude.shape
    torch.Size([2, 1, 257, 63])
    >>> back = spec.synthesise(magnitude, phase, wav.shape[-1])
    >>> torch.allclose(back, wav, atol=1e-4)
    True
    """

    def __init__(self, sample_rate=16000, n_fft=512, hop_length=256):
        super().__init__()
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        milliseconds = 1000.0 / self.sample_rate
        settings = {
            "sample_rate": self.sample_rate,
            "win_length": self.n_fft * milliseconds,
            "hop_length": self.hop_length * milliseconds,
            "window_fn": torch.hann_window,
        }
        self.stft = STFT(n_fft=self.n_fft, **settings)
        self.istft = ISTFT(n_fft=self.n_fft, **settings)

    @property
    def bins(self):
        """Frequency bins of a frame (``n_fft // 2 + 1``)."""
        return self.n_fft // 2 + 1

    def analyse(self, waveforms):
        """Magnitude and phase of mono or multichannel waveforms.

        Arguments
        ---------
        waveforms : torch.Tensor
            ``[batch, time]`` or ``[batch, time, channels]`` (SpeechBrain's
            layout of multichannel audio).

        Returns
        -------
        tuple of torch.Tensor
            ``(magnitude, phase)``, each ``[batch, channels, freq,
            frames]`` (``channels = 1`` for mono input).
        """
        spectrum = self.stft(waveforms)
        if spectrum.dim() == 4:
            spectrum = spectrum.unsqueeze(-1)
        # [B, T, F, 2, C] -> [B, C, F, T]
        real = spectrum[..., 0, :].permute(0, 3, 2, 1)
        imag = spectrum[..., 1, :].permute(0, 3, 2, 1)
        return torch.sqrt(real**2 + imag**2), torch.atan2(imag, real)

    def synthesise(self, magnitude, phase, length):
        """Waveforms from a one-channel magnitude and phase.

        Arguments
        ---------
        magnitude : torch.Tensor
            ``[batch, 1, freq, frames]``.
        phase : torch.Tensor
            Radians, same shape.
        length : int
            Samples of the output.

        Returns
        -------
        torch.Tensor
            ``[batch, length]``.
        """
        real = (magnitude * torch.cos(phase))[:, 0].transpose(1, 2)
        imag = (magnitude * torch.sin(phase))[:, 0].transpose(1, 2)
        spectrum = torch.stack([real, imag], dim=-1)
        return self.istft(spectrum, sig_length=int(length))


def encoded_bins(bins, layers, kernel=3, stride=2):
    """Frequency sizes after each strided encoder layer.

    Arguments
    ---------
    bins : int
        Input frequency bins.
    layers : int
        Number of encoder layers.
    kernel : int
        Frequency kernel.
    stride : int
        Frequency stride.

    Returns
    -------
    list of int
        ``layers + 1`` sizes, the input's first.

    Example
    -------
    >>> encoded_bins(257, 4)
    [257, 128, 63, 31, 15]
    """
    sizes = [int(bins)]
    for _ in range(layers):
        size = (sizes[-1] - kernel) // stride + 1
        if size < 1:
            raise ValueError(
                f"{layers} encoder layers are too many for {bins} frequency "
                "bins"
            )
        sizes.append(size)
    return sizes


class CausalConvBlock(nn.Module):
    """Conv2d (kernel 3×2 freq×time, stride 2×1), BatchNorm, ELU.

    The time axis is padded by one frame on the left only, so the output
    has as many frames as the input and frame ``t`` sees frames ``t - 1``
    and ``t``.

    Arguments
    ---------
    in_channels : int
        Input channels.
    out_channels : int
        Output channels.

    Example
    -------
    >>> block = CausalConvBlock(1, 16)
    >>> block(torch.randn(2, 1, 257, 10)).shape
    torch.Size([2, 16, 128, 10])
    """

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size=(3, 2), stride=(2, 1)
        )
        self.norm = nn.BatchNorm2d(out_channels)
        self.activation = nn.ELU()

    def forward(self, x):
        """Encodes ``x``.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, in_channels, freq, time]``.

        Returns
        -------
        torch.Tensor
            ``[batch, out_channels, (freq - 3) // 2 + 1, time]``.
        """
        return self.activation(self.norm(self.conv(F.pad(x, (1, 0)))))


class CausalDeconvBlock(nn.Module):
    """The mirror of :class:`CausalConvBlock`: ConvTranspose2d (3×2,
    stride 2×1) whose extra last frame is dropped, then BatchNorm + ELU, or,
    for the output layer, a sigmoid (a mask in [0, 1]).

    Arguments
    ---------
    in_channels : int
        Input channels.
    out_channels : int
        Output channels.
    out_bins : int
        Frequency bins of the output (the matching encoder layer's input).
    last : bool
        Output layer: sigmoid, no normalisation.

    Example
    -------
    >>> block = CausalDeconvBlock(16, 1, out_bins=257, last=True)
    >>> block(torch.randn(2, 16, 128, 10)).shape
    torch.Size([2, 1, 257, 10])
    """

    def __init__(self, in_channels, out_channels, out_bins, last=False):
        super().__init__()
        self.out_bins = int(out_bins)
        in_bins = (self.out_bins - 3) // 2 + 1
        self.conv = nn.ConvTranspose2d(
            in_channels,
            out_channels,
            kernel_size=(3, 2),
            stride=(2, 1),
            output_padding=(self.out_bins - ((in_bins - 1) * 2 + 3), 0),
        )
        self.last = bool(last)
        if self.last:
            self.norm, self.activation = nn.Identity(), nn.Sigmoid()
        else:
            self.norm, self.activation = nn.BatchNorm2d(out_channels), nn.ELU()

    def forward(self, x):
        """Decodes ``x``.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, in_channels, freq, time]``.

        Returns
        -------
        torch.Tensor
            ``[batch, out_channels, out_bins, time]``.
        """
        y = self.conv(x)[..., : x.shape[-1]]
        return self.activation(self.norm(y))


class EarEncoder(nn.ModuleList):
    """One ear's encoder: a stack of :class:`CausalConvBlock`.

    Arguments
    ---------
    channels : sequence of int
        Output channels of each layer (``[16, 32, 64, 128]``).
    in_channels : int
        Input channels.

    Example
    -------
    >>> encoder = EarEncoder([16, 32])
    >>> [f.shape[1:3] for f in encoder.features(torch.randn(1, 1, 257, 4))]
    [torch.Size([16, 128]), torch.Size([32, 63])]
    """

    def __init__(self, channels, in_channels=1):
        widths = [int(in_channels), *[int(c) for c in channels]]
        super().__init__(
            CausalConvBlock(a, b)
            for a, b in zip(widths, widths[1:], strict=False)
        )

    def features(self, x):
        """Every layer's output.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, in_channels, freq, time]``.

        Returns
        -------
        list of torch.Tensor
            One feature map per layer, outermost first.
        """
        outputs = []
        for layer in self:
            x = layer(x)
            outputs.append(x)
        return outputs


class CrossEarAttention(nn.Module):
    """Multi-head cross-channel attention along frequency, per frame.

    For each frame, the ear's feature map (``freq`` positions of
    ``channels`` features) attends to itself with queries computed from
    the **other** ear; the attended map is added to the ear's own
    (residual). Frames do not interact, so the block is causal.

    Arguments
    ---------
    channels : int
        Feature channels (divisible by ``heads``).
    heads : int
        Attention heads.

    Example
    -------
    >>> attention = CrossEarAttention(16, heads=8)
    >>> own, other = torch.randn(2, 16, 128, 5), torch.randn(2, 16, 128, 5)
    >>> attention(own, other).shape
    torch.Size([2, 16, 128, 5])
    """

    def __init__(self, channels, heads=8):
        super().__init__()
        if channels % heads:
            raise ValueError(
                f"{channels} channels cannot be split into {heads} heads"
            )
        self.attention = nn.MultiheadAttention(
            channels, heads, batch_first=True
        )

    def forward(self, own, other):
        """Attends ``own`` with queries from ``other``.

        Arguments
        ---------
        own : torch.Tensor
            ``[batch, channels, freq, time]``: keys and values.
        other : torch.Tensor
            The other ear, same shape: queries.

        Returns
        -------
        torch.Tensor
            ``own`` plus the attended map, same shape.
        """
        batch, channels, bins, frames = own.shape

        def per_frame(x):
            """``[B, C, F, T]`` -> ``[B * T, F, C]``."""
            return x.permute(0, 3, 2, 1).reshape(batch * frames, bins, channels)

        attended, _ = self.attention(
            per_frame(other), per_frame(own), per_frame(own), need_weights=False
        )
        attended = attended.reshape(batch, frames, bins, channels)
        return own + attended.permute(0, 3, 2, 1)


class RecurrentBottleneck(nn.Module):
    """Both ears' deepest features → LSTMs over time → decoder input.

    A 1×1 convolution reduces the concatenated ears to
    ``bottleneck_channels``; each frame's map is flattened and run
    through a unidirectional ``layers``-layer LSTM over frames (any number
    of frames), projected back to ``bottleneck_channels`` maps and widened
    to ``out_channels`` by a 1×1 convolution.

    Arguments
    ---------
    in_channels : int
        Channels of the concatenated ears.
    out_channels : int
        Channels handed to the decoder.
    bins : int
        Frequency bins of the deepest features.
    bottleneck_channels : int
        Channels kept per bin before the LSTM.
    hidden : int
        LSTM width.
    layers : int
        LSTM layers.

    Example
    -------
    >>> neck = RecurrentBottleneck(256, 128, bins=15, hidden=64)
    >>> neck(torch.randn(2, 256, 15, 7)).shape
    torch.Size([2, 128, 15, 7])
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        bins,
        bottleneck_channels=16,
        hidden=256,
        layers=2,
    ):
        super().__init__()
        self.bins = int(bins)
        self.out_channels = int(out_channels)
        self.reduce = nn.Conv2d(in_channels, bottleneck_channels, 1)
        self.lstm = nn.LSTM(
            bottleneck_channels * self.bins,
            hidden,
            num_layers=layers,
            batch_first=True,
        )
        self.bottleneck_channels = int(bottleneck_channels)
        self.project = nn.Linear(hidden, self.bottleneck_channels * self.bins)
        self.expand = nn.Conv2d(bottleneck_channels, out_channels, 1)

    def forward(self, x):
        """Runs the LSTMs over the frames of ``x``.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, in_channels, bins, time]``.

        Returns
        -------
        torch.Tensor
            ``[batch, out_channels, bins, time]``.
        """
        batch, _, bins, frames = x.shape
        reduced = self.reduce(x).permute(0, 3, 1, 2).reshape(batch, frames, -1)
        recurrent, _ = self.lstm(reduced)
        projected = self.project(recurrent).reshape(
            batch, frames, self.bottleneck_channels, bins
        )
        return self.expand(projected.permute(0, 2, 3, 1))


class MaskDecoder(nn.ModuleList):
    """The encoders' mirror: :class:`CausalDeconvBlock` layers, each fed
    the previous layer's output concatenated with both ears' encoder
    features of the same depth (skip connections), ending in a one-channel
    sigmoid mask.

    Arguments
    ---------
    channels : sequence of int
        The encoder's channels, outermost first.
    bins : sequence of int
        Frequency sizes of :func:`encoded_bins`.
    skips : int
        Feature maps concatenated per depth (2: both ears).

    Example
    -------
    >>> decoder = MaskDecoder([16, 32], encoded_bins(257, 2))
    >>> left = [torch.randn(1, 16, 128, 3), torch.randn(1, 32, 63, 3)]
    >>> decoder(torch.randn(1, 32, 63, 3), left, left).shape
    torch.Size([1, 1, 257, 3])
    """

    def __init__(self, channels, bins, skips=2):
        channels = [int(c) for c in channels]
        outputs = [1, *channels[:-1]]
        layers = []
        for depth in reversed(range(len(channels))):
            layers.append(
                CausalDeconvBlock(
                    channels[depth] * (1 + skips),
                    outputs[depth],
                    out_bins=bins[depth],
                    last=depth == 0,
                )
            )
        super().__init__(layers)

    def forward(self, x, *skip_features):
        """Decodes ``x`` with the skip features of each depth.

        Arguments
        ---------
        x : torch.Tensor
            The bottleneck output.
        *skip_features : list of torch.Tensor
            Per ear, every encoder layer's output, outermost first.

        Returns
        -------
        torch.Tensor
            The mask ``[batch, 1, freq, time]``.
        """
        for index, layer in enumerate(self):
            depth = len(self) - 1 - index
            x = layer(torch.cat([x, *(s[depth] for s in skip_features)], 1))
        return x
