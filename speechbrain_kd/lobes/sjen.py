"""SJEN: the monaural spatial-injection student (paper 002, Sec. 2.1).

A magnitude sub-module shaped like MHCA-CRN (two encoders, both fed the
mono input) and a phase sub-module that corrects the noisy phase.
"""

import torch
import torch.nn.functional as F
from torch import nn

from speechbrain_kd.lobes.crn import (
    EarEncoder,
    MaskDecoder,
    RecurrentBottleneck,
    Spectrogram,
    encoded_bins,
)
from speechbrain_kd.lobes.mhca_crn import ENCODER_CHANNELS, EarTaps

PHASE_NORMS = ("frame", "global")


class SpectralLayerNorm(nn.Module):
    """Layer normalisation of ``[batch, channels, freq, time]`` maps.

    ``global`` is gLN: statistics over channels, frequency and **all**
    frames (what the paper names; it looks at the future). ``frame``
    normalises each frame over channels and frequency, which keeps the
    model causal. Both end with a per-channel gain and bias.

    Arguments
    ---------
    channels : int
        Channels.
    kind : str
        ``frame`` or ``global``.
    eps : float
        Added to the variance.

    Example
    -------
    >>> norm = SpectralLayerNorm(2)
    >>> y = norm(torch.randn(1, 2, 5, 3) * 10 + 4)
    >>> y.mean(dim=(1, 2)).abs().max() < 1e-5
    tensor(True)
    """

    def __init__(self, channels, kind="frame", eps=1e-8):
        super().__init__()
        if kind not in PHASE_NORMS:
            raise ValueError(f"kind must be one of {PHASE_NORMS}, got {kind!r}")
        self.kind = kind
        self.eps = float(eps)
        self.gain = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x):
        """Normalises ``x``.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, channels, freq, time]``.

        Returns
        -------
        torch.Tensor
            Same shape.
        """
        dims = (1, 2) if self.kind == "frame" else (1, 2, 3)
        mean = x.mean(dim=dims, keepdim=True)
        variance = (x - mean).pow(2).mean(dim=dims, keepdim=True)
        return self.gain * (x - mean) / torch.sqrt(variance + self.eps) + (
            self.bias
        )


class PhaseResidualBlock(nn.Module):
    """``x + conv_25x1(ELU(BN(conv_5x3(x))))`` (kernels freq × time).

    The 5×3 convolution looks back two frames (left padding only); the
    25×1 one spans 25 bins of one frame.

    Arguments
    ---------
    channels : int
        Channels.

    Example
    -------
    >>> block = PhaseResidualBlock(8)
    >>> block(torch.randn(1, 8, 257, 4)).shape
    torch.Size([1, 8, 257, 4])
    """

    def __init__(self, channels):
        super().__init__()
        self.local = nn.Conv2d(channels, channels, (5, 3))
        self.norm = nn.BatchNorm2d(channels)
        self.activation = nn.ELU()
        self.spread = nn.Conv2d(channels, channels, (25, 1), padding=(12, 0))

    def forward(self, x):
        """Applies the block.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, channels, freq, time]``.

        Returns
        -------
        torch.Tensor
            Same shape.
        """
        local = self.local(F.pad(x, (2, 0, 2, 2)))
        return x + self.spread(self.activation(self.norm(local)))


class PhaseSubModule(nn.Module):
    """Predicts the clean phase from the magnitude estimate and the noisy
    phase.

    The magnitude estimate and the noisy phase (as the unit phasor
    ``cos, sin``) are each linearly projected (1×1 convolutions) to half
    the channels and concatenated; three :class:`PhaseResidualBlock` run on
    that; a 1×1 projection to two channels is the phase residual, added to
    the noisy phasor; :class:`SpectralLayerNorm` follows and the phase is
    the angle of the result.

    Arguments
    ---------
    channels : int
        Channels of the residual blocks (even).
    blocks : int
        Residual blocks.
    norm : str
        ``frame`` (causal) or ``global`` (gLN).

    Example
    -------
    >>> phase_module = PhaseSubModule(8)
    >>> magnitude, phase = torch.rand(1, 1, 257, 4), torch.rand(1, 1, 257, 4)
    >>> phase_module(magnitude, phase).shape
    torch.Size([1, 1, 257, 4])
    """

    def __init__(self, channels=32, blocks=3, norm="frame"):
        super().__init__()
        if channels % 2:
            raise ValueError(f"channels must be even, got {channels}")
        self.magnitude_projection = nn.Conv2d(1, channels // 2, 1)
        self.phase_projection = nn.Conv2d(2, channels // 2, 1)
        self.blocks = nn.Sequential(
            *(PhaseResidualBlock(channels) for _ in range(blocks))
        )
        self.residual_projection = nn.Conv2d(channels, 2, 1)
        self.norm = SpectralLayerNorm(2, kind=norm)

    def forward(self, magnitude, phase):
        """The phase estimate.

        Arguments
        ---------
        magnitude : torch.Tensor
            Magnitude estimate ``[batch, 1, freq, time]``.
        phase : torch.Tensor
            Noisy phase (radians), same shape.

        Returns
        -------
        torch.Tensor
            Estimated phase (radians), same shape.
        """
        phasor = torch.cat([torch.cos(phase), torch.sin(phase)], dim=1)
        fused = torch.cat(
            [
                self.magnitude_projection(magnitude),
                self.phase_projection(phasor),
            ],
            dim=1,
        )
        residual = self.residual_projection(self.blocks(fused))
        corrected = self.norm(phasor + residual)
        return torch.atan2(corrected[:, 1:], corrected[:, :1])


class SJEN(EarTaps, nn.Module):
    """Spatial-information injection and enhancement network (monaural).

    Magnitude sub-module: the mono magnitude goes through two encoders of
    MHCA-CRN's shape, **with separate weights** by default
    (``shared_encoders=False``): each is distilled towards one ear of the
    teacher (Eq. 2), and one shared encoder would give both ears the same
    features, leaving ``(S_L - T_L) + (S_R - T_R)`` only the sum of both
    ears to match. The two deepest maps go through two LSTM layers over
    time and the mirrored decoder gives a mask on the noisy magnitude.
    Phase sub-module (:class:`PhaseSubModule`, ``phase_module=False`` for
    the "w/o phase sub-module" ablation, which keeps the noisy phase).

    Taps: ``left_encoder.i`` / ``right_encoder.i`` (:meth:`ear_tap_paths`),
    and ``magnitude_out`` / ``phase_out``, the estimates
    ``[batch, 1, freq, frames]`` of the reconstruction loss (Eq. 1).

    Arguments
    ---------
    sample_rate : int
        Sampling rate (Hz).
    n_fft : int
        FFT size and window (512).
    hop_length : int
        Frame shift (256).
    channels : sequence of int
        Encoder channels per layer.
    bottleneck_channels : int
        Channels per bin before the LSTMs.
    hidden : int
        LSTM width.
    phase_module : bool
        Use the phase sub-module.
    phase_channels : int
        Channels of the phase sub-module.
    phase_norm : str
        ``frame`` (causal, default) or ``global`` (gLN).
    shared_encoders : bool
        One encoder for both "ears" (the authors' code) instead of two.

    Example
    -------
    >>> model = SJEN(channels=[16, 32], hidden=32, phase_channels=8)
    >>> model(torch.randn(2, 4000)).shape
    torch.Size([2, 4000])
    >>> model.ear_tap_paths()
    [('left_encoder.0', 'right_encoder.0'), ('left_encoder.1', 'right_encoder.1')]
    """

    left_tap, right_tap = "left_encoder", "right_encoder"

    def __init__(
        self,
        sample_rate=16000,
        n_fft=512,
        hop_length=256,
        channels=ENCODER_CHANNELS,
        bottleneck_channels=16,
        hidden=272,
        phase_module=True,
        phase_channels=16,
        phase_norm="frame",
        shared_encoders=False,
    ):
        super().__init__()
        channels = [int(c) for c in channels]
        self.spectrogram = Spectrogram(sample_rate, n_fft, hop_length)
        bins = encoded_bins(self.spectrogram.bins, len(channels))
        self.left_encoder = EarEncoder(channels)
        self.shared_encoders = bool(shared_encoders)
        if self.shared_encoders:
            self.right_tap = "left_encoder"
        else:
            self.right_encoder = EarEncoder(channels)
        self.bottleneck = RecurrentBottleneck(
            2 * channels[-1],
            channels[-1],
            bins[-1],
            bottleneck_channels=bottleneck_channels,
            hidden=hidden,
        )
        self.decoder = MaskDecoder(channels, bins)
        self.phase = (
            PhaseSubModule(phase_channels, norm=phase_norm)
            if phase_module
            else None
        )
        self.magnitude_out = nn.Identity()
        self.phase_out = nn.Identity()

    def forward(self, noisy):
        """Enhances mono waveforms.

        Arguments
        ---------
        noisy : torch.Tensor
            ``[batch, time]``.

        Returns
        -------
        torch.Tensor
            ``[batch, time]``.
        """
        magnitude, phase = self.spectrogram.analyse(noisy)
        left = self.left_encoder.features(magnitude)
        if self.shared_encoders:
            right = left
        else:
            right = self.right_encoder.features(magnitude)
        deepest = torch.cat([left[-1], right[-1]], dim=1)
        mask = self.decoder(self.bottleneck(deepest), left, right)
        estimate = self.magnitude_out(mask * magnitude)
        if self.phase is not None:
            phase = self.phase(estimate, phase)
        phase = self.phase_out(phase)
        return self.spectrogram.synthesise(estimate, phase, noisy.shape[-1])
