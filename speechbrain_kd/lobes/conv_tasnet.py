"""Conv-TasNet as a one-source enhancer, from SpeechBrain's own lobe.

The encoder, mask network and decoder are
``speechbrain.lobes.models.conv_tasnet``'s; this module only wires them
waveform to waveform (one source: the speech) and gives KDRL's sizes.
"""

import torch.nn.functional as F
from torch import nn

from speechbrain.lobes.models.conv_tasnet import Decoder, Encoder, MaskNet

#: KDRL's Conv-TasNet sizes (the paper: 8.5 M teacher, 2.2 M student):
#: N, B, H, P, X, R of Luo & Mesgarani's notation (L = 16).
PRESETS = {
    "teacher": {"N": 512, "B": 256, "H": 512, "P": 3, "X": 8, "R": 4},
    "student": {"N": 256, "B": 128, "H": 512, "P": 3, "X": 8, "R": 2},
}


class ConvTasNetEnhancer(nn.Module):
    """Conv-TasNet estimating the speech of a mixture (one mask).

    The input is zero-padded at the end so that the encoder's frames
    (length ``L``, hop ``L / 2``) cover it, and the output is cut to the
    input length.

    Arguments
    ---------
    N : int
        Encoder filters.
    L : int
        Encoder filter length (even).
    B : int
        Bottleneck channels.
    H : int
        Channels of the convolutional blocks.
    P : int
        Kernel of the convolutional blocks.
    X : int
        Blocks per repeat.
    R : int
        Repeats.
    norm_type : str
        ``gLN`` (global layer norm), ``cLN`` (channel-wise) or ``BN``.
    causal : bool
        Causal convolutions.
    mask_nonlinear : str
        ``relu`` or ``softmax``.

    Example
    -------
    >>> import torch
    >>> model = ConvTasNetEnhancer(N=16, L=8, B=8, H=16, P=3, X=2, R=1)
    >>> model(torch.randn(2, 1001)).shape
    torch.Size([2, 1001])
    """

    def __init__(
        self,
        N=256,
        L=16,
        B=128,
        H=512,
        P=3,
        X=8,
        R=2,
        norm_type="gLN",
        causal=False,
        mask_nonlinear="relu",
    ):
        super().__init__()
        if L < 2 or L % 2:
            raise ValueError(
                f"ConvTasNetEnhancer needs an even L >= 2, got {L}"
            )
        self.L = int(L)
        self.encoder = Encoder(L, N)
        self.masknet = MaskNet(
            N,
            B,
            H,
            P,
            X,
            R,
            1,
            norm_type=norm_type,
            causal=causal,
            mask_nonlinear=mask_nonlinear,
        )
        self.decoder = Decoder(L, N)

    def forward(self, noisy):
        """Enhances waveforms.

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
        hop = self.L // 2
        frames = max(1, -(-(length - self.L) // hop) + 1)
        padded = F.pad(noisy, (0, (frames - 1) * hop + self.L - length))
        mixture = self.encoder(padded)  # [batch, frames, N]
        # SpeechBrain's MaskNet takes [batch, N, frames] and returns
        # [sources, batch, N, frames]; its Decoder takes the masks as
        # [batch, frames, sources, N].
        mask = self.masknet(mixture.permute(0, 2, 1)).permute(1, 3, 0, 2)
        return self.decoder(mixture, mask)[..., 0][..., :length]


def conv_tasnet_preset(name):
    """KDRL's Conv-TasNet teacher (8,782,912 parameters) or student
    (2,228,768).

    Arguments
    ---------
    name : str
        ``teacher`` or ``student``.

    Returns
    -------
    ConvTasNetEnhancer
        The model.

    Example
    -------
    >>> model = conv_tasnet_preset("student")
    >>> sum(p.numel() for p in model.parameters())
    2228768
    """
    if name not in PRESETS:
        raise ValueError(
            f"unknown Conv-TasNet preset {name!r}; known: {', '.join(PRESETS)}"
        )
    return ConvTasNetEnhancer(**PRESETS[name])
