"""MANNER: Multi-view Attention Network for Noise ERasure (waveform U-Net).

Our own implementation of MANNER (Park et al., ICASSP 2022), the teacher
and student backbone of Multi-View Attention Transfer (MV-AT, Shin et al.,
Interspeech 2022), written from the architecture description in
``IMPLEMENTATION_NOTES.md`` §1. It is a plain :class:`torch.nn.Module`: it
knows nothing of training or distillation.

It reproduces the official model (winddori2002/MANNER, ``models.MANNER``
and ``models_small.MANNER``): with official weights loaded through
:mod:`speechbrain_kd.lobes.manner_official`, every attention view, MA
block output and the model output match golden outputs of the official
code in eval mode (``pytest tests/test_manner_golden.py``).

Architecture (waveform in, waveform out)
---------------------------------------
1. Normalise: ``std`` = standard deviation over time,
   ``x / (1e-3 + std)``; the output is multiplied back by ``std``.
2. Right-pad the input to a valid length (see :meth:`MANNER.valid_length`)
   and crop the output back to the input length.
3. ``in_conv``: Conv1d(in -> N, k3, p1) + BN + ReLU; kept for the mask
   gate.
4. ``encoder.{i}`` (``C_0 = N``, ``C_{i+1} = growth * C_i``): ``down``
   Conv1d(C_i -> C_i, kernel_size, stride, no padding) + BN + ReLU ->
   ``rescon`` ResCon(C_i -> C_{i+1}) -> optional ``attention`` (a
   :class:`MultiViewAttention` block on C_{i+1} channels). The output is
   the skip connection of ``decoder.{i}``.
5. ``bottleneck``: Linear(C_depth -> C_depth, no bias) + ReLU over frames.
6. ``decoder.{i}``, run deepest first: ``x + skip`` -> ``rescon``
   ResCon(C_{i+1} -> C_i) -> ``up`` ConvTranspose1d(C_i -> C_i,
   kernel_size, stride) + BN + ReLU -> optional ``attention`` on C_i.
7. ``mask_gate`` on N channels:
   ``relu(conv(tanh(conv(x)) * sigmoid(conv(x))))``, multiplied with the
   ``in_conv`` output.
8. ``out_conv``: Conv1d(N -> out, k3, p1); crop; multiply by ``std``.

ResCon(X -> Y) (:class:`ResidualConformer`): pointwise Conv(X -> 2X, bias) +
BN + GLU -> depthwise Conv(X, ``conv_kernel_size``, no bias) + BN + Swish ->
pointwise Conv(X -> Y, bias) + BN + Swish -> Conv1x1(Y -> Y, no bias) + BN;
plus a shortcut Conv1x1(X -> Y, no bias) + BN; then ReLU.

The multi-view attention block is described in :class:`MultiViewAttention`.

Biases: convolutions with a bias are ``in_conv``, the down and up convs,
the first two pointwise convs of ResCon, the channel-attention MLP, the
three gate convs (mask gate and MA gate) and ``out_conv``; every other
convolution (1x1 projections, depthwise convs, k3 branch convs, shortcuts)
and every attention projection is bias-free. This is the one assignment
consistent with the notes that reproduces the published parameter counts
of MANNER-B (24,068,671), MANNER-S (21,253,921) and MANNER-L (95,498,941)
exactly.

Initialisation: PyTorch's default initialisation followed by the
Demucs-style *weight rescaling*: for every Conv1d and ConvTranspose1d,
``scale = (weight.std() / rescale) ** 0.5`` and both the weight and the
bias are divided by ``scale`` (``rescale=0.1`` by default; ``rescale=None``
or ``0`` keeps the default initialisation); then the optional output
orientation (``orient_output``).

BatchNorm momentum, as in the official code: 0.01 in the 1x1/k3 units of
the official ``BasicConv`` (ResCon's last conv and shortcut, every conv of
the MA block except the local depthwise one), PyTorch's 0.1 elsewhere
(``in_conv``, down/up convs, ResCon's pointwise and depthwise stages, the
local depthwise stage). One intentional departure: the channel
attention keeps the batch axis at batch size 1, where the notes warn
about the official ``.squeeze()``.

Module names (stable: distillation taps address modules by path)
----------------------------------------------------------------
``in_conv``, ``encoder.{i}`` (``i = 0`` outermost ... ``depth - 1``
deepest), ``bottleneck``, ``decoder.{i}`` (mirror of ``encoder.{i}``,
executed deepest first), ``mask_gate``, ``out_conv``. A layer ``i`` listed
in ``attention_layers`` has an MA block at ``encoder.{i}.attention`` and
at ``decoder.{i}.attention``. Each MA block holds three identity tap
modules, ``channel_view``, ``global_view`` and ``local_view``, applied to
the output of its channel, global and local attention folded back to
``[batch, C/3, time]`` (after the attention, before the per-branch k3
BasicConv): these are the MV-AT taps ("after each attention in the MA
block"). :meth:`MANNER.attention_tap_names` lists them.

Example
-------
>>> model = MANNER(channels=12, depth=2, attention_layers=(1,))
>>> model.attention_tap_names()  # doctest: +NORMALIZE_WHITESPACE
['encoder.1.attention.channel_view', 'encoder.1.attention.global_view',
 'encoder.1.attention.local_view', 'decoder.1.attention.channel_view',
 'decoder.1.attention.global_view', 'decoder.1.attention.local_view']
>>> model(torch.randn(2, 4000)).shape
torch.Size([2, 4000])
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from speechbrain_kd.lobes.orientation import orient_output as orient
from speechbrain_kd.lobes.taps import LatentTap, UNetTaps

VIEWS = ("channel", "global", "local")
#: BatchNorm momentum of the official ``BasicConv`` units (1x1/k3 conv +
#: BN of ResCon's last conv and shortcut, and of the MA block).
BASIC_BN_MOMENTUM = 0.01
#: PyTorch's default, kept by every other BatchNorm of the official code
#: (``in_conv``, down/up convs, ResCon pointwise/depthwise stages, the
#: local-attention depthwise stage).
DEFAULT_BN_MOMENTUM = 0.1


class BasicConv(nn.Module):
    """Conv1d (or ConvTranspose1d) + BatchNorm + ReLU.

    Arguments
    ---------
    in_channels : int
        Input channels.
    out_channels : int
        Output channels.
    kernel_size : int
        Kernel size.
    stride : int
        Stride.
    padding : int
        Padding.
    bias : bool
        Whether the convolution has a bias.
    relu : bool
        Whether a ReLU follows the normalisation.
    transpose : bool
        Use a transposed convolution (upsampling).
    momentum : float
        BatchNorm momentum: 0.01 (:data:`BASIC_BN_MOMENTUM`, the official
        ``BasicConv``) by default; ``in_conv`` and the down/up convs use
        0.1 (:data:`DEFAULT_BN_MOMENTUM`).

    Example
    -------
    >>> BasicConv(4, 8, 8, stride=4)(torch.randn(1, 4, 40)).shape
    torch.Size([1, 8, 9])
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        bias=False,
        relu=True,
        transpose=False,
        momentum=BASIC_BN_MOMENTUM,
    ):
        super().__init__()
        conv_class = nn.ConvTranspose1d if transpose else nn.Conv1d
        self.conv = conv_class(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            bias=bias,
        )
        self.norm = nn.BatchNorm1d(out_channels, momentum=momentum)
        self.relu = relu

    def forward(self, x):
        """Applies conv, BN and (optionally) ReLU.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, in_channels, time]``.

        Returns
        -------
        torch.Tensor
            ``[batch, out_channels, time']``.
        """
        x = self.norm(self.conv(x))
        return F.relu(x) if self.relu else x


class ResidualConformer(nn.Module):
    """Residual Conformer (ResCon) block, ``in_channels -> out_channels``.

    Pointwise Conv(X -> 2X, bias) + BN + GLU -> depthwise Conv(X, k, no
    bias) + BN + Swish -> pointwise Conv(X -> Y, bias) + BN + Swish ->
    Conv1x1(Y -> Y, no bias) + BN, plus a Conv1x1(X -> Y, no bias) + BN
    shortcut, then ReLU. The time length is preserved.

    Arguments
    ---------
    in_channels : int
        X, the input channels.
    out_channels : int
        Y, the output channels.
    kernel_size : int
        Odd kernel size of the depthwise convolution.

    Example
    -------
    >>> ResidualConformer(6, 12)(torch.randn(2, 6, 50)).shape
    torch.Size([2, 12, 50])
    """

    def __init__(self, in_channels, out_channels, kernel_size=31):
        super().__init__()
        x_ch, y_ch = in_channels, out_channels
        self.pointwise1 = nn.Sequential(
            nn.Conv1d(x_ch, 2 * x_ch, 1, bias=True),
            nn.BatchNorm1d(2 * x_ch),
            nn.GLU(dim=1),
        )
        self.depthwise = nn.Sequential(
            nn.Conv1d(
                x_ch,
                x_ch,
                kernel_size,
                padding=kernel_size // 2,
                groups=x_ch,
                bias=False,
            ),
            nn.BatchNorm1d(x_ch),
            nn.SiLU(),
        )
        self.pointwise2 = nn.Sequential(
            nn.Conv1d(x_ch, y_ch, 1, bias=True),
            nn.BatchNorm1d(y_ch),
            nn.SiLU(),
        )
        self.conv = BasicConv(y_ch, y_ch, 1, relu=False)
        self.shortcut = BasicConv(x_ch, y_ch, 1, relu=False)

    def forward(self, x):
        """Runs the block.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, in_channels, time]``.

        Returns
        -------
        torch.Tensor
            ``[batch, out_channels, time]``.
        """
        y = self.pointwise2(self.depthwise(self.pointwise1(x)))
        return F.relu(self.conv(y) + self.shortcut(x))


class MaskGate(nn.Module):
    """Gated mask ``relu(conv_out(tanh(conv_tanh(x)) * s))``.

    ``s`` is ``sigmoid(conv_sigmoid(x))``; the three 1x1
    convolutions have biases, ``channels -> channels``.

    Arguments
    ---------
    channels : int
        Channels in and out.

    Example
    -------
    >>> MaskGate(4)(torch.randn(1, 4, 10)).min() >= 0
    tensor(True)
    """

    def __init__(self, channels):
        super().__init__()
        self.conv_tanh = nn.Conv1d(channels, channels, 1)
        self.conv_sigmoid = nn.Conv1d(channels, channels, 1)
        self.conv_out = nn.Conv1d(channels, channels, 1)

    def forward(self, x):
        """Computes the (non-negative) gate.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, channels, time]``.

        Returns
        -------
        torch.Tensor
            ``[batch, channels, time]``.
        """
        gate = torch.tanh(self.conv_tanh(x)) * torch.sigmoid(
            self.conv_sigmoid(x)
        )
        return F.relu(self.conv_out(gate))


class ChannelAttention(nn.Module):
    """CBAM-style channel attention over the whole sequence.

    Max- and average-pooling over time -> shared MLP
    Linear(C -> C//2) + ReLU + Linear(C//2 -> C) (with biases) -> sum ->
    sigmoid -> channel scaling. Works on the un-chunked sequence, so the
    pooling sees exactly the frames of the layer (no chunk padding).

    Arguments
    ---------
    channels : int
        C, the channels of the branch (C/3 of the MA block).

    Example
    -------
    >>> ChannelAttention(4)(torch.randn(1, 4, 10)).shape
    torch.Size([1, 4, 10])
    """

    def __init__(self, channels):
        super().__init__()
        hidden = channels // 2
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden),
            nn.ReLU(),
            nn.Linear(hidden, channels),
        )

    def forward(self, x):
        """Scales the channels of ``x``.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, channels, time]``.

        Returns
        -------
        torch.Tensor
            ``[batch, channels, time]``.
        """
        # amax/mean keep the batch axis even at batch size 1.
        weights = self.mlp(x.amax(dim=-1)) + self.mlp(x.mean(dim=-1))
        return x * torch.sigmoid(weights).unsqueeze(-1)


class GlobalAttention(nn.Module):
    """Single-head scaled dot-product attention across chunks.

    For every batch item and channel, the sequence is the chunks and each
    chunk's ``chunk_size`` samples are the embedding (``d_k =
    chunk_size``). Q, K, V and output projections are bias-free Linear
    layers; no residual connection and no LayerNorm.

    Arguments
    ---------
    chunk_size : int
        Chunk length, the embedding size.

    Example
    -------
    >>> GlobalAttention(8)(torch.randn(2, 3, 5, 8)).shape
    torch.Size([2, 3, 5, 8])
    """

    def __init__(self, chunk_size):
        super().__init__()
        self.query = nn.Linear(chunk_size, chunk_size, bias=False)
        self.key = nn.Linear(chunk_size, chunk_size, bias=False)
        self.value = nn.Linear(chunk_size, chunk_size, bias=False)
        self.out = nn.Linear(chunk_size, chunk_size, bias=False)

    def forward(self, chunks):
        """Attends across chunks.

        Arguments
        ---------
        chunks : torch.Tensor
            ``[batch, channels, n_chunks, chunk_size]``.

        Returns
        -------
        torch.Tensor
            ``[batch, channels, n_chunks, chunk_size]``.
        """
        attended = F.scaled_dot_product_attention(
            self.query(chunks), self.key(chunks), self.value(chunks)
        )
        return self.out(attended)


class LocalAttention(nn.Module):
    """Local attention inside each chunk.

    Per chunk: depthwise Conv(k, no bias) + BN + Swish -> channel max and
    mean -> ``[2, chunk_size]`` -> Conv(2 -> 1, k7, p3, no bias) + BN ->
    sigmoid -> multiplies the input chunk (the depthwise features only
    feed the pooling, as in the official code).

    Arguments
    ---------
    channels : int
        Channels of the branch.
    kernel_size : int
        Odd kernel size of the depthwise convolution.

    Example
    -------
    >>> LocalAttention(4)(torch.randn(2, 4, 5, 16)).shape
    torch.Size([2, 4, 5, 16])
    """

    def __init__(self, channels, kernel_size=31):
        super().__init__()
        self.depthwise = nn.Sequential(
            nn.Conv1d(
                channels,
                channels,
                kernel_size,
                padding=kernel_size // 2,
                groups=channels,
                bias=False,
            ),
            nn.BatchNorm1d(channels),
            nn.SiLU(),
        )
        self.spatial = BasicConv(2, 1, 7, padding=3, relu=False)

    def forward(self, chunks):
        """Emphasises samples inside each chunk.

        Arguments
        ---------
        chunks : torch.Tensor
            ``[batch, channels, n_chunks, chunk_size]``.

        Returns
        -------
        torch.Tensor
            ``[batch, channels, n_chunks, chunk_size]``.
        """
        batch, channels, n_chunks, size = chunks.shape
        x = chunks.permute(0, 2, 1, 3).reshape(-1, channels, size)
        features = self.depthwise(x)
        pooled = torch.stack(
            [features.amax(dim=1), features.mean(dim=1)], dim=1
        )
        x = x * torch.sigmoid(self.spatial(pooled))
        return x.reshape(batch, n_chunks, channels, size).permute(0, 2, 1, 3)


class AttentionTap(nn.Identity):
    """Identity marking an MV-AT tap point (hook its forward output).

    Example
    -------
    >>> AttentionTap()(torch.ones(1)).item()
    1.0
    """


def chunk(x, chunk_size):
    """Overlapped chunking (hop ``chunk_size // 2``, padding ``chunk_size``).

    ``x`` is padded with ``chunk_size`` zeros on both sides (and nothing
    else, as the official unfold) and cut into chunks; every frame is
    covered by exactly two chunks.

    Arguments
    ---------
    x : torch.Tensor
        ``[batch, channels, time]``.
    chunk_size : int
        Even chunk length.

    Returns
    -------
    torch.Tensor
        ``[batch, channels, n_chunks, chunk_size]`` with
        ``n_chunks = floor(time / hop) + 3``.

    Example
    -------
    >>> chunk(torch.randn(1, 2, 103), 8).shape
    torch.Size([1, 2, 28, 8])
    """
    x = F.pad(x, (chunk_size, chunk_size))
    return x.unfold(-1, chunk_size, chunk_size // 2)


def overlap_add(chunks, length):
    """Inverse of :func:`chunk`: overlap-add, divided by 2, cropped.

    Arguments
    ---------
    chunks : torch.Tensor
        ``[batch, channels, n_chunks, chunk_size]``.
    length : int
        Length of the sequence given to :func:`chunk`.

    Returns
    -------
    torch.Tensor
        ``[batch, channels, length]``.

    Example
    -------
    >>> x = torch.randn(1, 2, 101)
    >>> torch.allclose(overlap_add(chunk(x, 8), 101), x)
    True
    """
    batch, channels, n_chunks, size = chunks.shape
    hop = size // 2
    first, second = chunks[..., :hop], chunks[..., hop:]
    # Frame block j gets the first half of chunk j and the second half of
    # chunk j - 1.
    summed = F.pad(first, (0, 0, 0, 1)) + F.pad(second, (0, 0, 1, 0))
    summed = summed.reshape(batch, channels, (n_chunks + 1) * hop) / 2
    return summed[..., size : size + length]


class MultiViewAttention(nn.Module):
    """Multi-view attention (MA) block on ``channels`` channels.

    Three 1x1 BasicConv branches (no bias, BN, ReLU), each
    ``channels -> channels / 3``:

    * channel branch: :class:`ChannelAttention` -> ``channel_view``;
    * global branch: chunked (chunk ``chunk_size``, hop ``chunk_size/2``)
      -> :class:`GlobalAttention` -> overlap-add -> ``global_view``;
    * local branch: chunked -> :class:`LocalAttention` -> overlap-add ->
      ``local_view``.

    The views (``[batch, channels/3, time]``) each go through a
    BasicConv(k3, p1, no bias, BN, ReLU); they are concatenated, mixed by
    a 1x1 conv + BN (``out``), and the output is
    ``shortcut(x) + gate(out)`` with ``shortcut`` a 1x1 conv + BN on the
    block input and ``gate`` a :class:`MaskGate`.

    Arguments
    ---------
    channels : int
        Channels in and out; a multiple of 3 with ``channels // 6 >= 1``.
    chunk_size : int
        Even chunk length for the global and local attention.
    local_kernel_size : int
        Odd kernel of the local attention's depthwise convolution.

    Example
    -------
    >>> block = MultiViewAttention(12, chunk_size=16)
    >>> block(torch.randn(1, 12, 37)).shape
    torch.Size([1, 12, 37])
    """

    def __init__(self, channels, chunk_size=64, local_kernel_size=31):
        super().__init__()
        if channels % 3 or channels // 6 < 1:
            raise ValueError(
                f"a multi-view attention block needs a channel count that "
                f"is a multiple of 3 and at least 6, got {channels}"
            )
        if chunk_size < 2 or chunk_size % 2:
            raise ValueError(
                f"chunk_size must be even and >= 2, got {chunk_size}"
            )
        branch = channels // 3
        self.chunk_size = chunk_size
        self.channel_proj = BasicConv(channels, branch, 1)
        self.global_proj = BasicConv(channels, branch, 1)
        self.local_proj = BasicConv(channels, branch, 1)
        self.channel_attention = ChannelAttention(branch)
        self.global_attention = GlobalAttention(chunk_size)
        self.local_attention = LocalAttention(branch, local_kernel_size)
        self.channel_view = AttentionTap()
        self.global_view = AttentionTap()
        self.local_view = AttentionTap()
        self.channel_conv = BasicConv(branch, branch, 3, padding=1)
        self.global_conv = BasicConv(branch, branch, 3, padding=1)
        self.local_conv = BasicConv(branch, branch, 3, padding=1)
        self.out = BasicConv(3 * branch, channels, 1, relu=False)
        self.shortcut = BasicConv(channels, channels, 1, relu=False)
        self.gate = MaskGate(channels)

    def forward(self, x):
        """Runs the three views and merges them.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, channels, time]``.

        Returns
        -------
        torch.Tensor
            ``[batch, channels, time]``.
        """
        length = x.shape[-1]
        channel = self.channel_view(
            self.channel_attention(self.channel_proj(x))
        )
        chunks = chunk(self.global_proj(x), self.chunk_size)
        glob = self.global_view(
            overlap_add(self.global_attention(chunks), length)
        )
        chunks = chunk(self.local_proj(x), self.chunk_size)
        local = self.local_view(
            overlap_add(self.local_attention(chunks), length)
        )
        out = self.out(
            torch.cat(
                [
                    self.channel_conv(channel),
                    self.global_conv(glob),
                    self.local_conv(local),
                ],
                dim=1,
            )
        )
        return self.shortcut(x) + self.gate(out)


class EncoderLayer(nn.Module):
    """Encoder layer: down conv -> ResCon -> optional MA block.

    Arguments
    ---------
    channels : int
        C_i, the input channels.
    out_channels : int
        C_{i+1}, the output channels of ResCon (and of the MA block).
    kernel_size : int
        Kernel of the down convolution.
    stride : int
        Stride of the down convolution.
    conv_kernel_size : int
        Depthwise kernel of ResCon.
    attention : bool
        Whether the layer ends with an MA block (``self.attention``).
    chunk_size : int
        Chunk length of the MA block.

    Example
    -------
    >>> EncoderLayer(6, 12, attention=True)(torch.randn(1, 6, 400)).shape
    torch.Size([1, 12, 99])
    """

    def __init__(
        self,
        channels,
        out_channels,
        kernel_size=8,
        stride=4,
        conv_kernel_size=31,
        attention=False,
        chunk_size=64,
    ):
        super().__init__()
        self.down = BasicConv(
            channels,
            channels,
            kernel_size,
            stride=stride,
            bias=True,
            momentum=DEFAULT_BN_MOMENTUM,
        )
        self.rescon = ResidualConformer(
            channels, out_channels, conv_kernel_size
        )
        self.attention = (
            MultiViewAttention(out_channels, chunk_size) if attention else None
        )

    def forward(self, x):
        """Downsamples and encodes.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, channels, time]``.

        Returns
        -------
        torch.Tensor
            ``[batch, out_channels, time']``.
        """
        x = self.rescon(self.down(x))
        if self.attention is not None:
            x = self.attention(x)
        return x


class DecoderLayer(nn.Module):
    """Decoder layer: ResCon -> up (transposed) conv -> optional MA block.

    The skip connection is added by :class:`MANNER` before this layer.

    Arguments
    ---------
    in_channels : int
        C_{i+1}, the input channels.
    channels : int
        C_i, the output channels.
    kernel_size : int
        Kernel of the transposed convolution.
    stride : int
        Stride of the transposed convolution.
    conv_kernel_size : int
        Depthwise kernel of ResCon.
    attention : bool
        Whether the layer ends with an MA block (``self.attention``).
    chunk_size : int
        Chunk length of the MA block.

    Example
    -------
    >>> DecoderLayer(12, 6, attention=True)(torch.randn(1, 12, 99)).shape
    torch.Size([1, 6, 400])
    """

    def __init__(
        self,
        in_channels,
        channels,
        kernel_size=8,
        stride=4,
        conv_kernel_size=31,
        attention=False,
        chunk_size=64,
    ):
        super().__init__()
        self.rescon = ResidualConformer(in_channels, channels, conv_kernel_size)
        self.up = BasicConv(
            channels,
            channels,
            kernel_size,
            stride=stride,
            bias=True,
            transpose=True,
            momentum=DEFAULT_BN_MOMENTUM,
        )
        self.attention = (
            MultiViewAttention(channels, chunk_size) if attention else None
        )

    def forward(self, x):
        """Decodes and upsamples.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, in_channels, time]`` (skip already added).

        Returns
        -------
        torch.Tensor
            ``[batch, channels, time']``.
        """
        x = self.up(self.rescon(x))
        if self.attention is not None:
            x = self.attention(x)
        return x


def attention_tap_names(depth, attention_layers):
    """Names of the MV-AT view taps of a MANNER configuration.

    Arguments
    ---------
    depth : int
        Number of encoder (and decoder) layers.
    attention_layers : sequence of int
        0-based layers whose encoder and decoder layers carry an MA block.

    Returns
    -------
    list of str
        ``"{encoder|decoder}.{i}.attention.{channel|global|local}_view"``
        in execution order: encoder layers outermost first, then decoder
        layers deepest first; views in the order channel, global, local.

    Example
    -------
    >>> attention_tap_names(3, [2])[:2]
    ['encoder.2.attention.channel_view', 'encoder.2.attention.global_view']
    """
    layers = sorted(set(attention_layers))
    names = []
    for part, order in (("encoder", layers), ("decoder", layers[::-1])):
        for i in order:
            if not 0 <= i < depth:
                raise ValueError(f"attention layer {i} outside 0..{depth - 1}")
            names += [f"{part}.{i}.attention.{view}_view" for view in VIEWS]
    return names


def rescale_conv_weights(module, reference=0.1):
    """Demucs-style rescaling of every Conv1d / ConvTranspose1d in place.

    ``scale = (weight.std() / reference) ** 0.5``; weight and bias are
    divided by ``scale``, which pulls the standard deviation of each
    weight tensor towards ``reference``.

    Arguments
    ---------
    module : torch.nn.Module
        The model (modified in place).
    reference : float
        Reference standard deviation.

    Example
    -------
    >>> conv = torch.nn.Conv1d(1, 64, 16)
    >>> before = conv.weight.std().item()
    >>> rescale_conv_weights(conv, 0.1)
    >>> after = conv.weight.std().item()
    >>> abs(after - (before * 0.1) ** 0.5) < 1e-6
    True
    """
    for sub in module.modules():
        if isinstance(sub, (nn.Conv1d, nn.ConvTranspose1d)):
            with torch.no_grad():
                scale = (sub.weight.std() / reference) ** 0.5
                sub.weight.div_(scale)
                if sub.bias is not None:
                    sub.bias.div_(scale)


class MANNER(UNetTaps, nn.Module):
    """MANNER speech-enhancement U-Net (waveform to waveform).

    See the module docstring for the architecture, the bias layout and
    the module names. Presets: ``hparams/models/manner_*.yaml``.

    Arguments
    ---------
    in_channels : int
        Input audio channels.
    out_channels : int
        Output audio channels.
    channels : int
        N, the channels after ``in_conv``; layer ``i`` works on
        ``N * growth ** i`` channels. With MA blocks, N must be a multiple
        of 3 (MA splits its channels into three views) and at least 6.
    depth : int
        Number of encoder (and decoder) layers.
    kernel_size : int
        Kernel of the down and up convolutions.
    stride : int
        Stride of the down and up convolutions.
    chunk_size : int
        Even chunk length of the MA blocks (hop ``chunk_size / 2``).
    attention_layers : sequence of int
        0-based layers ``i`` (0 outermost) whose encoder layer **and**
        mirror decoder layer end with an MA block. MANNER-B and -L:
        ``(0, 1, 2, 3)``; MANNER-S: ``(3,)``; students: ``(depth - 1,)``.
        ``()`` gives a MANNER without MA blocks.
    conv_kernel_size : int
        Odd depthwise kernel of the ResCon blocks.
    growth : int
        Channel growth per layer.
    normalize : bool
        Normalise the input by its standard deviation over time and
        multiply the output back.
    rescale : float or None
        Reference std of the Demucs-style weight rescaling (see
        :func:`rescale_conv_weights`); ``None`` or ``0`` disables it.
    orient_output : bool
        Negate ``out_conv`` after initialisation when the model starts
        anti-correlated with its input (see
        :mod:`speechbrain_kd.lobes.orientation`; mono models only). A
        sign-inverted start trains to near-silent, sign-inverted output.

    Example
    -------
    >>> model = MANNER(channels=12, depth=2, attention_layers=(0, 1))
    >>> model.eval()(torch.randn(1, 1, 4000)).shape
    torch.Size([1, 1, 4000])
    >>> model.valid_length(4000)
    4004
    """

    def __init__(
        self,
        in_channels=1,
        out_channels=1,
        channels=60,
        depth=4,
        kernel_size=8,
        stride=4,
        chunk_size=64,
        attention_layers=(0, 1, 2, 3),
        conv_kernel_size=31,
        growth=2,
        normalize=True,
        rescale=0.1,
        orient_output=True,
    ):
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("channels", channels),
            ("depth", depth),
            ("kernel_size", kernel_size),
            ("stride", stride),
            ("growth", growth),
        ):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value}")
        if stride > kernel_size:
            raise ValueError(
                f"stride ({stride}) must not exceed kernel_size "
                f"({kernel_size}): frames would be skipped"
            )
        if conv_kernel_size < 1 or conv_kernel_size % 2 == 0:
            raise ValueError(
                f"conv_kernel_size must be odd, got {conv_kernel_size}"
            )
        attention_layers = tuple(int(i) for i in attention_layers)
        if len(set(attention_layers)) != len(attention_layers):
            raise ValueError(f"duplicate attention layers: {attention_layers}")
        for i in attention_layers:
            if not 0 <= i < depth:
                raise ValueError(
                    f"attention layer {i} does not exist: attention_layers "
                    f"are 0-based layer indices in 0..{depth - 1} (depth "
                    f"{depth}); the deepest layer is {depth - 1}"
                )
        if attention_layers:
            if channels % 3 or channels < 6:
                raise ValueError(
                    f"channels={channels}: a multi-view attention block "
                    "splits its channels into three views, so channels "
                    "must be a multiple of 3 and at least 6 (e.g. 12, 24, "
                    "30, 60, 120); or use attention_layers=() for a model "
                    "without MA blocks"
                )
            if chunk_size < 2 or chunk_size % 2:
                raise ValueError(
                    f"chunk_size must be even and >= 2, got {chunk_size}"
                )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.channels = channels
        self.depth = depth
        self.kernel_size = kernel_size
        self.stride = stride
        self.chunk_size = chunk_size
        self.attention_layers = tuple(sorted(attention_layers))
        self.growth = growth
        self.normalize = normalize

        self.in_conv = BasicConv(
            in_channels,
            channels,
            3,
            padding=1,
            bias=True,
            momentum=DEFAULT_BN_MOMENTUM,
        )
        self.encoder = nn.ModuleList()
        self.decoder = nn.ModuleList()
        width = channels
        for i in range(depth):
            attention = i in self.attention_layers
            self.encoder.append(
                EncoderLayer(
                    width,
                    growth * width,
                    kernel_size,
                    stride,
                    conv_kernel_size,
                    attention,
                    chunk_size,
                )
            )
            self.decoder.append(
                DecoderLayer(
                    growth * width,
                    width,
                    kernel_size,
                    stride,
                    conv_kernel_size,
                    attention,
                    chunk_size,
                )
            )
            width *= growth
        self.bottleneck = nn.Linear(width, width, bias=False)
        self.latent = LatentTap()
        self.mask_gate = MaskGate(channels)
        self.out_conv = nn.Conv1d(channels, out_channels, 3, padding=1)
        if rescale:
            rescale_conv_weights(self, rescale)
        if orient_output and in_channels == out_channels == 1:
            orient(self, self.out_conv)

    def attention_tap_names(self):
        """Names of the MV-AT view taps of this model.

        Returns
        -------
        list of str
            See :func:`attention_tap_names` (execution order).

        Example
        -------
        >>> model = MANNER(channels=12, depth=3, attention_layers=[2])
        >>> model.attention_tap_names()[-1]
        'decoder.2.attention.local_view'
        >>> len(model.attention_tap_names())
        6
        """
        return attention_tap_names(self.depth, self.attention_layers)

    def valid_length(self, length):
        """Smallest length >= ``length`` that the U-Net maps onto itself.

        Arguments
        ---------
        length : int
            Input length in samples.

        Returns
        -------
        int
            The padded length (the model pads right, then crops back).

        Example
        -------
        >>> MANNER(channels=12, depth=3, attention_layers=()).valid_length(
        ...     16001
        ... )
        16020
        """
        for _ in range(self.depth):
            length = math.ceil((length - self.kernel_size) / self.stride) + 1
            length = max(length, 1)
        for _ in range(self.depth):
            length = (length - 1) * self.stride + self.kernel_size
        return int(length)

    def forward(self, x):
        """Enhances a batch of waveforms.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, time]`` (one channel) or
            ``[batch, in_channels, time]``.

        Returns
        -------
        torch.Tensor
            Enhanced waveforms, same shape as ``x`` (``[batch,
            out_channels, time]`` for a 3-D input).
        """
        squeeze = x.dim() == 2
        if squeeze:
            if self.in_channels != 1 or self.out_channels != 1:
                raise ValueError(
                    "a [batch, time] input needs in_channels == "
                    "out_channels == 1; pass [batch, channels, time]"
                )
            x = x.unsqueeze(1)
        if x.dim() != 3 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected [batch, time] or [batch, {self.in_channels}, "
                f"time], got {tuple(x.shape)}"
            )
        length = x.shape[-1]
        if self.normalize:
            mono = x.mean(dim=1, keepdim=True)
            # one sample has no (unbiased) std: scale 0, as for silence
            std = (
                mono.std(dim=-1, keepdim=True)
                if length > 1
                else torch.zeros_like(mono[..., :1])
            )
            x = x / (1e-3 + std)
        x = F.pad(x, (0, self.valid_length(length) - length))

        x = self.in_conv(x)
        first = x
        skips = []
        for layer in self.encoder:
            x = layer(x)
            skips.append(x)
        x = self.latent(
            F.relu(self.bottleneck(x.transpose(1, 2))).transpose(1, 2)
        )
        for layer in reversed(self.decoder):
            skip = skips.pop()
            x = layer(x + skip[..., : x.shape[-1]])
        x = self.out_conv(first * self.mask_gate(x))

        x = x[..., :length]
        if self.normalize:
            x = x * std
        return x.squeeze(1) if squeeze else x
