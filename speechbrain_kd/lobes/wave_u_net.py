"""Wave-U-Net for speech enhancement: the KDRL teacher and students, and
the lightweight variant (depthwise-separable convolutions with
squeeze-excitation) for in-vehicle noise.

The configuration of ``IMPLEMENTATION_NOTES.md`` §6 (the Wave-U-Net that
KDRL distils): a waveform U-Net whose width is set by one number.
"""

import functools

import torch
import torch.nn.functional as F
from torch import nn

from speechbrain_kd.lobes.taps import LatentTap, UNetTaps

#: Initial widths of the KDRL paper's model sizes (Table 2: 100 %, 75 %,
#: 50 %, 25 % and 12 % of the teacher's parameters).
PRESET_WIDTHS = {"teacher": 24, "75": 21, "50": 17, "student": 12, "12": 8}
#: Lightweight presets (separable blocks, squeeze-excitation r = 4) at the
#: widths of the KDRL teacher and student.
LIGHT_PRESET_WIDTHS = {"light-24": 24, "light-12": 12}
BLOCKS = ("conv", "separable")


class ConvBlock(nn.Sequential):
    """Conv1d (same padding) + BatchNorm + LeakyReLU(0.1).

    Arguments
    ---------
    in_channels : int
        Input channels.
    out_channels : int
        Output channels.
    kernel_size : int
        Odd kernel size.

    Example
    -------
    >>> block = ConvBlock(1, 4, 15)
    >>> block(torch.randn(2, 1, 64)).shape
    torch.Size([2, 4, 64])
    """

    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__(
            nn.Conv1d(
                in_channels,
                out_channels,
                kernel_size,
                padding=kernel_size // 2,
            ),
            nn.BatchNorm1d(out_channels),
            nn.LeakyReLU(0.1),
        )


class SqueezeExcitation(nn.Module):
    """Channel gates from the time average (Hu et al. 2018): global average
    pool, FC ``C -> C // r`` (at least 1), ReLU, FC back to ``C``,
    sigmoid, then each channel scaled by its gate.

    Arguments
    ---------
    channels : int
        Channels ``C``.
    reduction : int
        ``r``.

    Example
    -------
    >>> se = SqueezeExcitation(8, reduction=4)
    >>> se(torch.randn(2, 8, 50)).shape
    torch.Size([2, 8, 50])
    >>> sum(p.numel() for p in se.parameters())  # 8*2+2 + 2*8+8
    42
    """

    def __init__(self, channels, reduction=4):
        super().__init__()
        if int(reduction) < 1:
            raise ValueError(f"se_reduction must be >= 1, got {reduction}")
        hidden = max(1, int(channels) // int(reduction))
        self.gate = nn.Sequential(
            nn.Linear(channels, hidden),
            nn.ReLU(),
            nn.Linear(hidden, channels),
            nn.Sigmoid(),
        )

    def forward(self, x):
        """Scales the channels.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, channels, time]``.

        Returns
        -------
        torch.Tensor
            ``x`` with each channel multiplied by its gate.
        """
        return x * self.gate(x.mean(-1)).unsqueeze(-1)


class SeparableConvBlock(nn.Sequential):
    """Depthwise Conv1d (same padding, no bias) + pointwise Conv1d + BN +
    LeakyReLU(0.1) + :class:`SqueezeExcitation`.

    Arguments
    ---------
    in_channels : int
        Input channels.
    out_channels : int
        Output channels.
    kernel_size : int
        Odd kernel size of the depthwise convolution.
    se_reduction : int
        Reduction ``r`` of the squeeze-excitation.

    Example
    -------
    >>> block = SeparableConvBlock(4, 8, 15)
    >>> block(torch.randn(2, 4, 64)).shape
    torch.Size([2, 8, 64])
    >>> sum(p.numel() for p in block.parameters())  # 60 + 40 + 16 + 42
    158
    """

    def __init__(self, in_channels, out_channels, kernel_size, se_reduction=4):
        super().__init__(
            nn.Conv1d(
                in_channels,
                in_channels,
                kernel_size,
                padding=kernel_size // 2,
                groups=in_channels,
                bias=False,
            ),
            nn.Conv1d(in_channels, out_channels, 1),
            nn.BatchNorm1d(out_channels),
            nn.LeakyReLU(0.1),
            SqueezeExcitation(out_channels, se_reduction),
        )


class WaveUNet(UNetTaps, nn.Module):
    """A waveform-to-waveform U-Net (Wave-U-Net for SE).

    ``depth`` encoder layers (Conv1d k15 + BN + LeakyReLU(0.1), ``width
    * i`` channels at layer ``i`` = 1..depth, then decimation by 2: every
    other sample), a middle Conv1d k15 block, ``depth`` decoder layers
    (linear upsampling by 2, concatenation with the encoder layer's
    output, Conv1d k5 + BN + LeakyReLU(0.1)) and an output layer that
    concatenates the input waveform and maps to one channel with a 1x1
    convolution and tanh.

    Inputs are zero-padded at the end to a multiple of ``2 ** depth``
    samples and the output is cut back to the input length, so any
    length works (the paper trains on 16384-sample crops, a multiple of
    4096).

    ``block="separable"`` is the lightweight variant: every block (encoder,
    middle, decoder) is a :class:`SeparableConvBlock` (depthwise k15 / k5
    + pointwise, with squeeze-excitation of reduction ``se_reduction``)
    at the same widths. The squeeze averages over the whole (padded)
    input, so this variant is not streamable.

    Taps (:class:`~speechbrain_kd.lobes.taps.UNetTaps`): ``encoder.i``
    (before its decimation), ``decoder.i``, which mirrors ``encoder.i``
    (its output has the same width and length), and ``latent`` (the
    middle block's output).

    Arguments
    ---------
    width : int
        Channels of the first layer (24: the KDRL teacher, 10,132,802
        parameters; 12: its 2,536,322-parameter student).
    depth : int
        Encoder (and decoder) layers.
    encoder_kernel : int
        Kernel of the encoder and middle convolutions.
    decoder_kernel : int
        Kernel of the decoder convolutions.
    block : str
        ``conv`` (the Wave-U-Net) or ``separable`` (the lightweight one).
    se_reduction : int
        Squeeze-excitation reduction ``r`` (``separable`` only).

    Example
    -------
    >>> model = WaveUNet(width=4, depth=3)
    >>> model(torch.randn(2, 1000)).shape
    torch.Size([2, 1000])
    >>> model.tap_path("decoder", 0)
    'decoder.0'
    >>> light = WaveUNet(width=4, depth=3, block="separable")
    >>> light(torch.randn(2, 1000)).shape
    torch.Size([2, 1000])
    """

    attention_views = ()
    attention_layers = ()

    def __init__(
        self,
        width=24,
        depth=12,
        encoder_kernel=15,
        decoder_kernel=5,
        block="conv",
        se_reduction=4,
    ):
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(
                f"WaveUNet block must be one of {BLOCKS}, got {block!r}"
            )
        if width < 1 or depth < 1:
            raise ValueError(
                f"WaveUNet needs width and depth >= 1, got width={width}, "
                f"depth={depth}"
            )
        for name, kernel in (
            ("encoder_kernel", encoder_kernel),
            ("decoder_kernel", decoder_kernel),
        ):
            if kernel % 2 == 0:
                raise ValueError(f"{name} must be odd, got {kernel}")
        self.width, self.depth, self.block = int(width), int(depth), block
        make = functools.partial(
            ConvBlock if block == "conv" else SeparableConvBlock,
            **({} if block == "conv" else {"se_reduction": se_reduction}),
        )
        channels = [width * i for i in range(1, depth + 1)]
        self.encoder = nn.ModuleList(
            make(c_in, c_out, encoder_kernel)
            for c_in, c_out in zip([1, *channels[:-1]], channels, strict=True)
        )
        self.middle = make(channels[-1], channels[-1], encoder_kernel)
        self.latent = LatentTap()
        # decoder[i] takes the deeper level's output and encoder[i]'s.
        deeper = [*channels[1:], channels[-1]]
        self.decoder = nn.ModuleList(
            make(below + skip, skip, decoder_kernel)
            for below, skip in zip(deeper, channels, strict=True)
        )
        self.output = nn.Sequential(nn.Conv1d(width + 1, 1, 1), nn.Tanh())

    def forward(self, noisy):
        """Enhances waveforms.

        Arguments
        ---------
        noisy : torch.Tensor
            ``[batch, time]`` or ``[batch, 1, time]``.

        Returns
        -------
        torch.Tensor
            Enhanced waveforms, the shape of ``noisy``.
        """
        squeeze = noisy.dim() == 2
        x = noisy.unsqueeze(1) if squeeze else noisy
        length = x.shape[-1]
        x = F.pad(x, (0, (-length) % (2**self.depth)))
        source = x
        skips = []
        for layer in self.encoder:
            x = layer(x)
            skips.append(x)
            x = x[..., ::2]
        x = self.latent(self.middle(x))
        for layer, skip in zip(
            reversed(self.decoder), reversed(skips), strict=True
        ):
            x = F.interpolate(x, scale_factor=2, mode="linear")
            x = layer(torch.cat([x, skip], dim=1))
        out = self.output(torch.cat([x, source], dim=1))[..., :length]
        return out.squeeze(1) if squeeze else out


def wave_u_net_preset(name):
    """The Wave-U-Net of one of the KDRL paper's model sizes, or a
    lightweight preset.

    Arguments
    ---------
    name : str
        A key of :data:`PRESET_WIDTHS` (``teacher``, ``student``, ``75``,
        ``50``, ``12``) or of :data:`LIGHT_PRESET_WIDTHS` (``light-24``,
        ``light-12``).

    Returns
    -------
    WaveUNet
        The model.

    Example
    -------
    >>> model = wave_u_net_preset("student")
    >>> sum(p.numel() for p in model.parameters())
    2536322
    """
    if name in LIGHT_PRESET_WIDTHS:
        return WaveUNet(width=LIGHT_PRESET_WIDTHS[name], block="separable")
    if name not in PRESET_WIDTHS:
        raise ValueError(
            f"unknown Wave-U-Net preset {name!r}; known: "
            f"{', '.join([*PRESET_WIDTHS, *LIGHT_PRESET_WIDTHS])}"
        )
    return WaveUNet(width=PRESET_WIDTHS[name])
