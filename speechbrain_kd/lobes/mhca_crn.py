"""MHCA-CRN: the binaural teacher of spatial injection (paper 002, ref. 11).

A causal CRN with one encoder per ear and multi-head cross-channel
attention after every encoder layer; it enhances a two-channel (left,
right) waveform into one channel.
"""

import torch
from torch import nn

from speechbrain_kd.lobes.crn import (
    CrossEarAttention,
    EarEncoder,
    MaskDecoder,
    RecurrentBottleneck,
    Spectrogram,
    encoded_bins,
)

#: The encoder of the authors' code: four layers, 1 -> 16 -> 32 -> 64 -> 128.
ENCODER_CHANNELS = (16, 32, 64, 128)


class EarTaps:
    """Mixin: the per-ear encoder taps of spatial injection (Eqs. 2-3).

    A lobe lists its ``(left, right)`` module paths per encoder layer in
    :meth:`ear_tap_paths`; the spatial-injection term pairs the student's
    with the teacher's and the bad student's layer by layer.
    """

    def ear_tap_paths(self):
        """``(left, right)`` module paths of each encoder layer's output.

        Returns
        -------
        list of tuple of str
            Outermost layer first.
        """
        return [
            (f"{self.left_tap}.{i}", f"{self.right_tap}.{i}")
            for i in range(len(self.left_encoder))
        ]


class MHCACRN(EarTaps, nn.Module):
    """Binaural magnitude-mask CRN with cross-ear attention.

    Each ear's magnitude runs through its own encoder (separate weights:
    "two encoders are separately adopted", paper 002 Sec. 2.1); after
    every encoder layer, each ear attends to itself with queries from the
    other ear (:class:`~speechbrain_kd.lobes.crn.CrossEarAttention`), and
    the attended maps feed the next layer. Both ears' deepest maps go
    through two LSTM layers over time; the mirrored decoder (skips from
    both ears) gives a mask applied to the magnitude of the ears' mean
    ``(y_L + y_R) / 2``, whose phase is kept.

    Taps (:meth:`ear_tap_paths`): ``left_attention.i`` /
    ``right_attention.i``, the output of encoder layer ``i`` after its
    attention (what the layer hands on, and what carries the other ear's
    information). ``magnitude_out`` and ``phase_out`` pass the estimated
    magnitude and phase (``[batch, 1, freq, frames]``) through, for the
    reconstruction loss (Eq. 1).

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
    heads : int
        Attention heads.
    bottleneck_channels : int
        Channels per bin before the LSTMs.
    hidden : int
        LSTM width.

    Example
    -------
    >>> model = MHCACRN(channels=[16, 32], hidden=32)
    >>> model(torch.randn(2, 4000, 2)).shape
    torch.Size([2, 4000])
    >>> model.ear_tap_paths()[1]
    ('left_attention.1', 'right_attention.1')
    """

    left_tap, right_tap = "left_attention", "right_attention"

    def __init__(
        self,
        sample_rate=16000,
        n_fft=512,
        hop_length=256,
        channels=ENCODER_CHANNELS,
        heads=8,
        bottleneck_channels=16,
        hidden=256,
    ):
        super().__init__()
        channels = [int(c) for c in channels]
        self.spectrogram = Spectrogram(sample_rate, n_fft, hop_length)
        bins = encoded_bins(self.spectrogram.bins, len(channels))
        self.left_encoder = EarEncoder(channels)
        self.right_encoder = EarEncoder(channels)
        self.left_attention = nn.ModuleList(
            CrossEarAttention(c, heads) for c in channels
        )
        self.right_attention = nn.ModuleList(
            CrossEarAttention(c, heads) for c in channels
        )
        self.bottleneck = RecurrentBottleneck(
            2 * channels[-1],
            channels[-1],
            bins[-1],
            bottleneck_channels=bottleneck_channels,
            hidden=hidden,
        )
        self.decoder = MaskDecoder(channels, bins)
        self.magnitude_out = nn.Identity()
        self.phase_out = nn.Identity()

    def example_input(self, seconds, sample_rate):
        """A binaural example input (for ``speechbrain-kd profile``).

        Arguments
        ---------
        seconds : float
            Duration.
        sample_rate : int
            Sampling rate.

        Returns
        -------
        torch.Tensor
            ``[1, time, 2]``.
        """
        return torch.randn(1, round(seconds * sample_rate), 2)

    def encode(self, left, right):
        """Both ears' encoder features, attention after every layer.

        Arguments
        ---------
        left : torch.Tensor
            Left magnitude ``[batch, 1, freq, time]``.
        right : torch.Tensor
            Right magnitude, same shape.

        Returns
        -------
        tuple of list of torch.Tensor
            ``(left_features, right_features)``, one map per layer.
        """
        left_features, right_features = [], []
        layers = zip(
            self.left_encoder,
            self.right_encoder,
            self.left_attention,
            self.right_attention,
            strict=True,
        )
        for left_layer, right_layer, left_attend, right_attend in layers:
            left_map, right_map = left_layer(left), right_layer(right)
            left = left_attend(left_map, right_map)
            right = right_attend(right_map, left_map)
            left_features.append(left)
            right_features.append(right)
        return left_features, right_features

    def forward(self, binaural):
        """Enhances a binaural waveform into one channel.

        Arguments
        ---------
        binaural : torch.Tensor
            ``[batch, time, 2]`` (left, right).

        Returns
        -------
        torch.Tensor
            ``[batch, time]``.
        """
        if binaural.dim() != 3 or binaural.shape[-1] != 2:
            raise ValueError(
                "MHCA-CRN takes [batch, time, 2] binaural waveforms, got "
                f"shape {tuple(binaural.shape)}"
            )
        magnitude, phase = self.spectrogram.analyse(binaural)
        left, right = self.encode(magnitude[:, :1], magnitude[:, 1:])
        deepest = torch.cat([left[-1], right[-1]], dim=1)
        mask = self.decoder(self.bottleneck(deepest), left, right)
        # the STFT is linear: the ears' mean spectrum, without a third STFT
        real = (magnitude * torch.cos(phase)).mean(dim=1, keepdim=True)
        imag = (magnitude * torch.sin(phase)).mean(dim=1, keepdim=True)
        mean_magnitude = torch.sqrt(real**2 + imag**2)
        mean_phase = torch.atan2(imag, real)
        return self.spectrogram.synthesise(
            self.magnitude_out(mask * mean_magnitude),
            self.phase_out(mean_phase),
            binaural.shape[1],
        )
