"""RT-SENet: a causal, exactly streamable MANNER (waveform U-Net).

RT-SENet (CNNC-Distill, IEEE SPL 31, 2024) is "MANNER made causal, with a
causal multi-view attention"; no code is public, so every choice below is
ours (``IMPLEMENTATION_NOTES.md`` §4). The 1x1 building blocks
(:class:`~speechbrain_kd.lobes.manner.BasicConv` with kernel 1, the
:class:`~speechbrain_kd.lobes.manner.MaskGate`, the identity taps) are
reused from :mod:`speechbrain_kd.lobes.manner`; every layer that looks at
more than one frame is a new causal class here.

Causal layers and streaming by construction
-------------------------------------------
Every layer that mixes frames is a :class:`CausalLayer`: it needs the
last ``context`` frames of its own input. Offline, these are zeros
(the signal is preceded by silence); in streaming, they are the frames
kept from the previous call. Both paths run the **same** code on
``cat(context, x)``, so streaming equals offline by construction (up to
float rounding). The streaming state is a flat ``dict`` mapping the
module path of every causal layer to its context tensor
``[batch, channels, context]`` (see :meth:`RTSENet.init_state`).

Architecture (``[batch, time]`` or ``[batch, 1, time]`` in, same out)
--------------------------------------------------------------------
1. No input normalisation: MANNER divides by the utterance standard
   deviation, which needs the future. We use none (the model is
   scale-equivariant up to biases, training data are level-normalised by
   the data pipeline; a cumulative RMS would make the gain depend on the
   whole past, including long silences). Documented choice.
2. The input is right-padded with zeros to a multiple of the hop
   ``H = stride ** depth`` and the output cropped back.
3. ``in_conv``: causal Conv1d(1 -> N, k3, left pad 2) + BN + ReLU.
4. ``encoder.{i}``: ``down`` causal Conv1d(k=kernel_size, stride,
   left pad kernel_size - stride) + BN + ReLU (``T -> T / stride``
   exactly; output frame n sees input frames up to ``stride*n +
   stride - 1``) -> ``rescon`` :class:`CausalResCon` (MANNER's ResCon,
   depthwise k31 left-padded by 30) -> optional ``attention``
   :class:`CausalMultiViewAttention`.
5. ``bottleneck``: Linear(C, C, no bias) + ReLU per frame.
6. ``decoder.{i}`` (deepest first): ``x + skip`` -> ``rescon`` ->
   ``up`` :class:`CausalConvTranspose1d` (kernel_size, stride) + BN + ReLU
   -> optional ``attention``.
7. ``mask_gate`` (MANNER's) times the ``in_conv`` output; ``out_conv``
   causal Conv1d(N -> 1, k3, left pad 2).

Upsampling and look-ahead
-------------------------
``ConvTranspose1d(k=8, s=4)`` gives ``y[m] = b + sum_n w[m - 4n] x[n]``
over ``0 <= m - 4n < 8``, i.e. ``n in {floor(m/4) - 1, floor(m/4)}``. We
keep ``y[0 : 4N]`` (the last ``k - s`` samples of the full output are
dropped), so fine sample m depends on coarse frames ``n <= floor(m/4)``
only. Since a coarse frame n of the encoder sees fine samples up to
``4n + 3``, a decoder output sample m at any level sees encoder samples
up to ``4*floor(m/4) + 3``; composed over the U-Net, output sample ``t``
depends only on input samples ``<= H*floor(t/H) + H - 1``: the output of
hop block j depends on input hop blocks ``<= j`` and nothing later.

* ``model.lookahead_samples = H - 1``: the largest ``s - t`` such that
  output t depends on input s (exact; it only occurs inside a hop).
* ``model.latency_samples = H``: algorithmic latency = hop buffering
  (H samples, which contains the within-hop look-ahead) + look-ahead
  beyond the hop (0). Depth 3, stride 4: H = 64 samples = 4 ms at
  16 kHz; depth 4: 256 samples = 16 ms.
* Alignment: :meth:`RTSENet.forward_step` returns, for input hop block j,
  exactly the samples of output hop block j of :meth:`RTSENet.forward`
  (no extra delay); concatenating the step outputs reproduces the
  offline output of the zero-padded signal.

Causal multi-view attention (:class:`CausalMultiViewAttention`)
--------------------------------------------------------------
Like MANNER's MA block (three 1x1 conv + BN + ReLU branches C -> C/3, taps
``channel_view``, ``global_view``, ``local_view`` giving
``[batch, C/3, time]``, per-branch k3 BasicConv (here causal, left pad 2),
concat, 1x1 + BN, shortcut + gate), but frame-causal, without chunking:

* channel: per frame, average and max pooled over the last
  ``pool_window`` frames (the frame itself included) -> shared MLP
  (C/3 -> C/6 -> C/3) -> sum -> sigmoid -> per-frame channel gate. A
  window (not a cumulative pool) keeps the state bounded. Frames before
  the start are zeros (the branch input is a ReLU output, so zeros never
  win the max; the average always divides by ``pool_window``).
* global: single-head scaled dot-product attention over frames, each
  frame attending to itself and the previous ``attention_window`` frames;
  the embedding is the C/3 channels of a frame (MANNER's 64-sample chunk
  embedding would need 64 future frames). Bias-free Q/K/V/out Linear
  layers, no residual, no LayerNorm. Frames before the start are zero
  frames (zero keys and values, like zero padding of a conv).
* local: depthwise Conv(k31, left pad 30) + BN + Swish -> channel max and
  mean -> causal Conv(2 -> 1, k7, left pad 6) + BN -> sigmoid ->
  multiplies the depthwise features.

BatchNorm: in eval mode a per-channel affine map (causal, streaming
exact); in training mode its batch statistics span the time axis (as in
every BN-based causal enhancer): streaming is an eval-mode feature.

Cost of a streaming step
------------------------
A step of 8 hops has 8 to 128 frames per layer, so on a CPU it costs
per operator call, not per multiply. Layers that read the same input
are therefore one convolution whose output is split (ResCon's first
pointwise conv and shortcut: ``rescon.entry``; the MA block's three
branch projections and shortcut: ``attention.proj``; global attention's
``qkv``) -- the same function as separate layers, since BN is per
channel. In streaming mode the depthwise convs run as
unfold-multiply-sum with the eval BN folded in and the transposed convs
in polyphase form (plain conv + reshape), both several times cheaper
than oneDNN's kernels on a few frames; offline (training) uses the
convolutions. Traced with TorchScript (``StreamingEnhancer(...,
compile=True)``), RT-SENet-S processes 32 ms blocks in ~2.5-3 ms on one
CPU thread (``benchmarks/realtime.py``).

Module names: as MANNER (``in_conv``, ``encoder.{i}``, ``bottleneck``,
``decoder.{i}``, ``mask_gate``, ``out_conv``; MA taps at
``{encoder|decoder}.{i}.attention.{channel|global|local}_view``).

Example
-------
>>> model = RTSENet(channels=12, depth=2, attention_layers=(1,)).eval()
>>> x = torch.randn(1, 800)
>>> state = model.init_state()
>>> outs = []
>>> for piece in x.split(model.hop, dim=-1):
...     out, state = model.forward_step(piece, state)
...     outs.append(out)
>>> bool((torch.cat(outs, -1) - model(x)).abs().max() < 1e-5)
True
>>> model.latency_samples, model.lookahead_samples
(16, 15)
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from speechbrain_kd.lobes.manner import (
    BASIC_BN_MOMENTUM,
    AttentionTap,
    BasicConv,
    MaskGate,
    attention_tap_names,
    rescale_conv_weights,
)
from speechbrain_kd.lobes.orientation import orient_output as orient
from speechbrain_kd.lobes.taps import LatentTap, UNetTaps


class CausalLayer(nn.Module):
    """Base class of a layer that needs ``context`` past frames.

    Subclasses set ``self.context`` (frames) and ``self.state_channels``
    and call :meth:`with_context` on their input. ``state_key`` is the
    module path (set by :class:`RTSENet`), the key of this layer's entry
    in the streaming state.

    Example
    -------
    >>> layer = CausalConv1d(2, 2, 3)
    >>> layer.with_context(torch.ones(1, 2, 4), None).shape
    torch.Size([1, 2, 6])
    """

    context = 0
    state_channels = 0
    state_key = ""

    def with_context(self, x, state):
        """Prepends the context frames to ``x`` and updates ``state``.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, channels, time]``.
        state : dict or None
            Streaming state (updated in place) or ``None`` (offline:
            zero context).

        Returns
        -------
        torch.Tensor
            ``[batch, channels, context + time]``.
        """
        if self.context == 0:
            return x
        ctx = None if state is None else state.get(self.state_key)
        if ctx is None:
            ctx = x.new_zeros(x.shape[0], x.shape[1], self.context)
        full = torch.cat([ctx, x], dim=-1)
        if state is not None:
            # Constant (negative) slice bounds keep shape arithmetic out
            # of a traced step.
            state[self.state_key] = full[..., -self.context :]
        return full

    def init_state(self, batch_size=1, device=None, dtype=None):
        """Zero context ``[batch_size, state_channels, context]``.

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
        torch.Tensor
            The zero context.
        """
        return torch.zeros(
            batch_size,
            self.state_channels,
            self.context,
            device=device,
            dtype=dtype,
        )


class CausalConv1d(CausalLayer):
    """Conv1d made causal by left padding ``kernel_size - stride``.

    With an input length that is a multiple of ``stride``, the output has
    ``time / stride`` frames and frame n sees inputs up to
    ``stride * n + stride - 1``.

    Arguments
    ---------
    in_channels : int
        Input channels.
    out_channels : int
        Output channels.
    kernel_size : int
        Kernel size (>= stride).
    stride : int
        Stride.
    groups : int
        Groups (``in_channels`` for depthwise).
    bias : bool
        Whether the convolution has a bias.

    Example
    -------
    >>> CausalConv1d(3, 5, 8, stride=4)(torch.randn(1, 3, 40)).shape
    torch.Size([1, 5, 10])
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        groups=1,
        bias=True,
    ):
        super().__init__()
        if kernel_size < stride:
            raise ValueError("kernel_size must be >= stride")
        self.conv = nn.Conv1d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            groups=groups,
            bias=bias,
        )
        self.context = kernel_size - stride
        self.state_channels = in_channels

    def forward(self, x, state=None):
        """Convolves with zero (offline) or streamed (state) context.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, in_channels, time]``, time a multiple of stride.
        state : dict or None
            Streaming state (updated in place).

        Returns
        -------
        torch.Tensor
            ``[batch, out_channels, time / stride]``.
        """
        return self.conv(self.with_context(x, state))


class CausalConvTranspose1d(CausalLayer):
    """ConvTranspose1d(kernel_size, stride) keeping the first
    ``stride * frames`` outputs: output m depends on input frames
    ``<= floor(m / stride)`` only (no look-ahead at the coarse rate).

    Arguments
    ---------
    in_channels : int
        Input channels.
    out_channels : int
        Output channels.
    kernel_size : int
        Kernel size.
    stride : int
        Stride (upsampling factor).
    bias : bool
        Whether the convolution has a bias.

    Example
    -------
    >>> CausalConvTranspose1d(3, 2, 8, 4)(torch.randn(1, 3, 10)).shape
    torch.Size([1, 2, 40])
    """

    def __init__(
        self, in_channels, out_channels, kernel_size, stride, bias=True
    ):
        super().__init__()
        self.conv = nn.ConvTranspose1d(
            in_channels, out_channels, kernel_size, stride=stride, bias=bias
        )
        self.stride = stride
        self.context = math.ceil(kernel_size / stride) - 1
        self.state_channels = in_channels
        self.start = self.context * stride  # output of the context frames
        self.end = stride - kernel_size or None  # drops the last k - s

    def forward(self, x, state=None):
        """Upsamples by ``stride``.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, in_channels, frames]``.
        state : dict or None
            Streaming state (updated in place).

        Returns
        -------
        torch.Tensor
            ``[batch, out_channels, stride * frames]``.
        """
        full = self.with_context(x, state)
        if state is None:
            return self.conv(full)[..., self.start : self.end]
        # Streaming: the same map in polyphase form, a plain conv with
        # ``stride`` outputs per frame (CPU transposed convs cost several
        # times more per call on a few frames).
        weight, bias = self.polyphase_weights()
        y = F.conv1d(full, weight, bias)  # [batch, out * stride, frames]
        return y.unflatten(1, (-1, self.stride)).transpose(2, 3).flatten(2)

    def polyphase_weights(self):
        """The transposed conv as a conv with ``stride`` output phases.

        Output sample ``stride * q + r`` of channel o is output channel
        ``o * stride + r`` at frame q of a causal conv over frames
        ``q - context .. q`` (kernel ``context + 1``).

        Returns
        -------
        weight : torch.Tensor
            ``[out * stride, in, context + 1]``.
        bias : torch.Tensor or None
            ``[out * stride]``.
        """
        weight = self.conv.weight  # [in, out, kernel]
        taps = self.context + 1
        in_ch, out_ch, kernel = weight.shape
        weight = F.pad(weight, (0, taps * self.stride - kernel))
        weight = weight.view(in_ch, out_ch, taps, self.stride).flip(2)
        weight = weight.permute(1, 3, 0, 2).reshape(-1, in_ch, taps)
        bias = self.conv.bias
        if bias is not None:
            bias = bias.repeat_interleave(self.stride)
        return weight, bias


class CausalBasicConv(nn.Module):
    """Causal conv (or transposed conv) + BN (momentum 0.01) + ReLU.

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
    bias : bool
        Whether the convolution has a bias.
    relu : bool
        Whether a ReLU follows.
    transpose : bool
        Causal transposed convolution (upsampling by ``stride``).

    Example
    -------
    >>> CausalBasicConv(4, 8, 3)(torch.randn(1, 4, 10)).shape
    torch.Size([1, 8, 10])
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        bias=False,
        relu=True,
        transpose=False,
    ):
        super().__init__()
        if transpose:
            self.conv = CausalConvTranspose1d(
                in_channels, out_channels, kernel_size, stride, bias
            )
        else:
            self.conv = CausalConv1d(
                in_channels, out_channels, kernel_size, stride, bias=bias
            )
        self.norm = nn.BatchNorm1d(out_channels, momentum=BASIC_BN_MOMENTUM)
        self.relu = relu

    def forward(self, x, state=None):
        """Conv, BN, optional ReLU.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, in_channels, time]``.
        state : dict or None
            Streaming state (updated in place).

        Returns
        -------
        torch.Tensor
            ``[batch, out_channels, time']``.
        """
        x = self.norm(self.conv(x, state))
        return F.relu(x) if self.relu else x


class CausalDepthwise(nn.Module):
    """Causal depthwise Conv(k, no bias) + BN + Swish.

    Arguments
    ---------
    channels : int
        Channels.
    kernel_size : int
        Kernel size (left pad ``kernel_size - 1``).

    Example
    -------
    >>> CausalDepthwise(4, 31)(torch.randn(1, 4, 10)).shape
    torch.Size([1, 4, 10])
    """

    def __init__(self, channels, kernel_size=31):
        super().__init__()
        self.conv = CausalConv1d(
            channels, channels, kernel_size, groups=channels, bias=False
        )
        self.norm = nn.BatchNorm1d(channels)

    def forward(self, x, state=None):
        """Depthwise conv, BN, Swish.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, channels, time]``.
        state : dict or None
            Streaming state (updated in place).

        Returns
        -------
        torch.Tensor
            ``[batch, channels, time]``.
        """
        if state is None or self.norm.training:
            return F.silu(self.norm(self.conv(x, state)))
        # A streaming step has few frames; oneDNN's depthwise conv costs
        # ~90 us per call whatever the length, unfold-multiply-sum with
        # the (eval) BN folded into the kernel a quarter of that. Same
        # function as conv + BN up to float rounding.
        full = self.conv.with_context(x, state)
        norm = self.norm
        scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
        weight = self.conv.conv.weight[:, 0, None, :] * scale[:, None, None]
        shift = (norm.bias - norm.running_mean * scale)[:, None]
        y = (full.unfold(-1, weight.shape[-1], 1) * weight).sum(-1) + shift
        return F.silu(y)


class CausalResCon(nn.Module):
    """MANNER's ResCon with a causal depthwise convolution.

    Pointwise Conv(X -> 2X) + BN + GLU -> causal depthwise
    Conv(X, k, no bias) + BN + Swish -> pointwise Conv(X -> Y, bias) + BN
    + Swish -> Conv1x1(Y -> Y, no bias) + BN; plus a Conv1x1 + BN
    shortcut; then ReLU. The first pointwise conv and the shortcut read
    the same input, so they are one ``entry`` Conv(X -> 2X + Y) + BN
    whose output is split (the same function as two convs, since BN is
    per channel; one operator less per streaming step).

    Arguments
    ---------
    in_channels : int
        X.
    out_channels : int
        Y.
    kernel_size : int
        Depthwise kernel size.

    Example
    -------
    >>> CausalResCon(6, 12)(torch.randn(2, 6, 50)).shape
    torch.Size([2, 12, 50])
    """

    def __init__(self, in_channels, out_channels, kernel_size=31):
        super().__init__()
        x_ch, y_ch = in_channels, out_channels
        self.split = (2 * x_ch, y_ch)
        self.entry = nn.Sequential(
            nn.Conv1d(x_ch, 2 * x_ch + y_ch, 1, bias=False),
            nn.BatchNorm1d(2 * x_ch + y_ch),
        )
        self.depthwise = CausalDepthwise(x_ch, kernel_size)
        self.pointwise2 = nn.Sequential(
            nn.Conv1d(x_ch, y_ch, 1, bias=True),
            nn.BatchNorm1d(y_ch),
            nn.SiLU(),
        )
        self.conv = BasicConv(y_ch, y_ch, 1, relu=False)

    def forward(self, x, state=None):
        """Runs the block.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, in_channels, time]``.
        state : dict or None
            Streaming state (updated in place).

        Returns
        -------
        torch.Tensor
            ``[batch, out_channels, time]``.
        """
        gated, shortcut = self.entry(x).split(self.split, dim=1)
        y = self.depthwise(F.glu(gated, dim=1), state)
        y = self.pointwise2(y)
        return F.relu(self.conv(y) + shortcut)


class CausalChannelAttention(CausalLayer):
    """Per-frame channel attention with sliding-window pooling.

    Average and max pooled over the last ``window`` frames (zeros before
    the start) -> shared MLP C -> C//2 -> C (biases, ReLU) -> sum ->
    sigmoid -> per-frame channel gate.

    Arguments
    ---------
    channels : int
        Channels of the branch.
    window : int
        Pooling window in frames (the current frame included).

    Example
    -------
    >>> CausalChannelAttention(4, 8)(torch.randn(1, 4, 10)).shape
    torch.Size([1, 4, 10])
    """

    def __init__(self, channels, window=64):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(channels, channels // 2),
            nn.ReLU(),
            nn.Linear(channels // 2, channels),
        )
        self.window = window
        self.context = window - 1
        self.state_channels = channels

    def forward(self, x, state=None):
        """Gates the channels of every frame.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, channels, time]``.
        state : dict or None
            Streaming state (updated in place).

        Returns
        -------
        torch.Tensor
            ``[batch, channels, time]``.
        """
        full = self.with_context(x, state)
        pooled = torch.cat(
            [
                F.avg_pool1d(full, self.window, stride=1),
                F.max_pool1d(full, self.window, stride=1),
            ],
            dim=-1,
        )
        avg_weights, peak_weights = self.mlp(pooled.transpose(1, 2)).chunk(2, 1)
        return x * torch.sigmoid(avg_weights + peak_weights).transpose(1, 2)


class CausalGlobalAttention(CausalLayer):
    """Single-head attention over frames in a causal sliding window.

    Frame t attends to frames ``t - window .. t``; the embedding is the
    ``channels`` of a frame; bias-free Q/K/V (one ``qkv`` Linear) and
    out projections. Frames
    before the start are zero frames.

    Arguments
    ---------
    channels : int
        Embedding size (channels of the branch).
    window : int
        Number of past frames each frame attends to (besides itself).

    Example
    -------
    >>> CausalGlobalAttention(4, 8)(torch.randn(2, 4, 10)).shape
    torch.Size([2, 4, 10])
    """

    def __init__(self, channels, window=32):
        super().__init__()
        # Query, key and value projections as one Linear(C -> 3C).
        self.qkv = nn.Linear(channels, 3 * channels, bias=False)
        self.out = nn.Linear(channels, channels, bias=False)
        self.window = window
        self.context = window
        self.state_channels = channels
        self.scale = 1.0 / math.sqrt(channels)

    def forward(self, x, state=None):
        """Attends over the past window of every frame.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, channels, time]``.
        state : dict or None
            Streaming state (updated in place).

        Returns
        -------
        torch.Tensor
            ``[batch, channels, time]``.
        """
        seq = self.with_context(x, state).transpose(1, 2)
        query, keys, values = self.qkv(seq).chunk(3, dim=-1)
        query = query[:, self.context :]
        # [batch, time, channels, window + 1]
        keys = keys.unfold(1, self.window + 1, 1)
        values = values.unfold(1, self.window + 1, 1)
        scores = torch.einsum("btc,btcw->btw", query, keys)
        weights = torch.softmax(scores * self.scale, dim=-1)
        attended = torch.einsum("btw,btcw->btc", weights, values)
        return self.out(attended).transpose(1, 2)


class CausalLocalAttention(nn.Module):
    """Causal local attention (MANNER's, without chunks).

    Causal depthwise Conv(k) + BN + Swish -> channel max and mean ->
    causal Conv(2 -> 1, k7, no bias) + BN -> sigmoid -> multiplies the
    depthwise features.

    Arguments
    ---------
    channels : int
        Channels of the branch.
    kernel_size : int
        Depthwise kernel size.

    Example
    -------
    >>> CausalLocalAttention(4)(torch.randn(2, 4, 10)).shape
    torch.Size([2, 4, 10])
    """

    def __init__(self, channels, kernel_size=31):
        super().__init__()
        self.depthwise = CausalDepthwise(channels, kernel_size)
        self.spatial = CausalBasicConv(2, 1, 7, relu=False)

    def forward(self, x, state=None):
        """Emphasises frames.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, channels, time]``.
        state : dict or None
            Streaming state (updated in place).

        Returns
        -------
        torch.Tensor
            ``[batch, channels, time]``.
        """
        x = self.depthwise(x, state)
        pooled = torch.stack([x.amax(dim=1), x.mean(dim=1)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled, state))


class CausalMultiViewAttention(nn.Module):
    """Causal multi-view attention block on ``channels`` channels.

    See the module docstring. Taps ``channel_view``, ``global_view``,
    ``local_view`` (identity modules) carry ``[batch, channels/3, time]``.

    Arguments
    ---------
    channels : int
        Channels in and out (multiple of 3, >= 6).
    pool_window : int
        Channel-attention pooling window (frames).
    attention_window : int
        Global-attention past window (frames).
    local_kernel_size : int
        Local-attention depthwise kernel.

    Example
    -------
    >>> block = CausalMultiViewAttention(12, 8, 8)
    >>> block(torch.randn(1, 12, 37)).shape
    torch.Size([1, 12, 37])
    """

    def __init__(
        self,
        channels,
        pool_window=64,
        attention_window=32,
        local_kernel_size=31,
    ):
        super().__init__()
        if channels % 3 or channels // 6 < 1:
            raise ValueError(
                "a multi-view attention block needs a channel count that "
                f"is a multiple of 3 and at least 6, got {channels}"
            )
        branch = channels // 3
        self.branch = branch
        # The three branch projections and the shortcut read the same
        # input: one conv whose output is split (same function, fewer
        # operators per streaming step).
        self.proj = nn.Sequential(
            nn.Conv1d(channels, 3 * branch + channels, 1, bias=False),
            nn.BatchNorm1d(3 * branch + channels, momentum=BASIC_BN_MOMENTUM),
        )
        self.channel_attention = CausalChannelAttention(branch, pool_window)
        self.global_attention = CausalGlobalAttention(branch, attention_window)
        self.local_attention = CausalLocalAttention(branch, local_kernel_size)
        self.channel_view = AttentionTap()
        self.global_view = AttentionTap()
        self.local_view = AttentionTap()
        # Three k3 convs, not one grouped conv: oneDNN's grouped conv
        # costs ~10x more per streaming step.
        self.channel_conv = CausalBasicConv(branch, branch, 3)
        self.global_conv = CausalBasicConv(branch, branch, 3)
        self.local_conv = CausalBasicConv(branch, branch, 3)
        self.out = BasicConv(3 * branch, channels, 1, relu=False)
        self.gate = MaskGate(channels)

    def forward(self, x, state=None):
        """Runs the three views and merges them.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, channels, time]``.
        state : dict or None
            Streaming state (updated in place).

        Returns
        -------
        torch.Tensor
            ``[batch, channels, time]``.
        """
        proj = self.proj(x)
        channel, glob, local = F.relu(proj[:, : 3 * self.branch]).chunk(3, 1)
        shortcut = proj[:, 3 * self.branch :]
        channel = self.channel_view(self.channel_attention(channel, state))
        glob = self.global_view(self.global_attention(glob, state))
        local = self.local_view(self.local_attention(local, state))
        out = self.out(
            torch.cat(
                [
                    self.channel_conv(channel, state),
                    self.global_conv(glob, state),
                    self.local_conv(local, state),
                ],
                dim=1,
            )
        )
        return shortcut + self.gate(out)


class CausalEncoderLayer(nn.Module):
    """Causal down conv -> causal ResCon -> optional causal MA block.

    Arguments
    ---------
    channels : int
        Input channels.
    out_channels : int
        Output channels.
    kernel_size : int
        Down-conv kernel.
    stride : int
        Down-conv stride.
    conv_kernel_size : int
        ResCon depthwise kernel.
    attention : bool
        Whether an MA block ends the layer.
    pool_window : int
        MA channel pooling window.
    attention_window : int
        MA global attention window.

    Example
    -------
    >>> CausalEncoderLayer(6, 12)(torch.randn(1, 6, 40)).shape
    torch.Size([1, 12, 10])
    """

    def __init__(
        self,
        channels,
        out_channels,
        kernel_size=8,
        stride=4,
        conv_kernel_size=31,
        attention=False,
        pool_window=64,
        attention_window=32,
    ):
        super().__init__()
        self.down = CausalBasicConv(
            channels, channels, kernel_size, stride, bias=True
        )
        self.rescon = CausalResCon(channels, out_channels, conv_kernel_size)
        self.attention = (
            CausalMultiViewAttention(
                out_channels, pool_window, attention_window, conv_kernel_size
            )
            if attention
            else None
        )

    def forward(self, x, state=None):
        """Downsamples and encodes.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, channels, time]``.
        state : dict or None
            Streaming state (updated in place).

        Returns
        -------
        torch.Tensor
            ``[batch, out_channels, time / stride]``.
        """
        x = self.rescon(self.down(x, state), state)
        if self.attention is not None:
            x = self.attention(x, state)
        return x


class CausalDecoderLayer(nn.Module):
    """Causal ResCon -> causal up conv -> optional causal MA block.

    Arguments
    ---------
    in_channels : int
        Input channels.
    channels : int
        Output channels.
    kernel_size : int
        Up-conv kernel.
    stride : int
        Up-conv stride.
    conv_kernel_size : int
        ResCon depthwise kernel.
    attention : bool
        Whether an MA block ends the layer.
    pool_window : int
        MA channel pooling window.
    attention_window : int
        MA global attention window.

    Example
    -------
    >>> CausalDecoderLayer(12, 6)(torch.randn(1, 12, 10)).shape
    torch.Size([1, 6, 40])
    """

    def __init__(
        self,
        in_channels,
        channels,
        kernel_size=8,
        stride=4,
        conv_kernel_size=31,
        attention=False,
        pool_window=64,
        attention_window=32,
    ):
        super().__init__()
        self.rescon = CausalResCon(in_channels, channels, conv_kernel_size)
        self.up = CausalBasicConv(
            channels, channels, kernel_size, stride, bias=True, transpose=True
        )
        self.attention = (
            CausalMultiViewAttention(
                channels, pool_window, attention_window, conv_kernel_size
            )
            if attention
            else None
        )

    def forward(self, x, state=None):
        """Decodes and upsamples.

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, in_channels, frames]`` (skip already added).
        state : dict or None
            Streaming state (updated in place).

        Returns
        -------
        torch.Tensor
            ``[batch, channels, stride * frames]``.
        """
        x = self.up(self.rescon(x, state), state)
        if self.attention is not None:
            x = self.attention(x, state)
        return x


class RTSENet(UNetTaps, nn.Module):
    """RT-SENet: causal MANNER with an exact streaming API.

    See the module docstring for the design, latency and state layout.
    Presets: ``hparams/models/rt_senet_{s,m,l}.yaml``.

    Arguments
    ---------
    channels : int
        N, channels after ``in_conv`` (multiple of 3 with MA blocks).
    depth : int
        Encoder (and decoder) layers; hop = ``stride ** depth``.
    kernel_size : int
        Down/up conv kernel.
    stride : int
        Down/up conv stride.
    attention_layers : sequence of int
        0-based layers whose encoder and decoder layers end with an MA
        block (``depth - 1`` is the deepest).
    conv_kernel_size : int
        Depthwise kernel (ResCon and local attention).
    growth : int
        Channel growth per layer.
    pool_window : int
        Channel-attention pooling window in frames.
    attention_window : int
        Global-attention past window in frames.
    rescale : float or None
        Demucs-style weight rescaling reference (``None``/0: off).
    orient_output : bool
        Negate ``out_conv`` after initialisation when the model starts
        anti-correlated with its input (as :class:`MANNER`).

    Example
    -------
    >>> model = RTSENet(channels=6, depth=2, attention_layers=())
    >>> model.eval()(torch.randn(1, 1, 101)).shape
    torch.Size([1, 1, 101])
    >>> model.hop, model.latency_ms(16000)
    (16, 1.0)
    """

    def __init__(
        self,
        channels=12,
        depth=3,
        kernel_size=8,
        stride=4,
        attention_layers=(2,),
        conv_kernel_size=31,
        growth=2,
        pool_window=64,
        attention_window=32,
        rescale=0.1,
        orient_output=True,
    ):
        super().__init__()
        attention_layers = tuple(sorted(int(i) for i in attention_layers))
        for i in attention_layers:
            if not 0 <= i < depth:
                raise ValueError(f"attention layer {i} outside 0..{depth - 1}")
        if attention_layers and (channels % 3 or channels < 6):
            raise ValueError(
                f"channels={channels} must be a multiple of 3 and >= 6 "
                "with multi-view attention blocks"
            )
        if stride > kernel_size:
            raise ValueError("stride must not exceed kernel_size")
        self.channels = channels
        self.depth = depth
        self.stride = stride
        self.attention_layers = attention_layers
        self.hop = stride**depth
        self.in_conv = CausalBasicConv(1, channels, 3, bias=True)
        self.encoder = nn.ModuleList()
        self.decoder = nn.ModuleList()
        width = channels
        for i in range(depth):
            options = dict(
                kernel_size=kernel_size,
                stride=stride,
                conv_kernel_size=conv_kernel_size,
                attention=i in attention_layers,
                pool_window=pool_window,
                attention_window=attention_window,
            )
            self.encoder.append(
                CausalEncoderLayer(width, growth * width, **options)
            )
            self.decoder.append(
                CausalDecoderLayer(growth * width, width, **options)
            )
            width *= growth
        self.bottleneck = nn.Linear(width, width, bias=False)
        self.latent = LatentTap()
        self.mask_gate = MaskGate(channels)
        self.out_conv = CausalConv1d(channels, 1, 3)
        if rescale:
            rescale_conv_weights(self, rescale)
        if orient_output:
            orient(self, self.out_conv.conv)
        for name, module in self.named_modules():
            if isinstance(module, CausalLayer):
                module.state_key = name

    @property
    def lookahead_samples(self):
        """Largest ``s - t`` with output t depending on input s
        (``hop - 1``, inside the hop only)."""
        return self.hop - 1

    @property
    def latency_samples(self):
        """Algorithmic latency in samples: hop buffering (``hop``)
        plus look-ahead beyond the hop (0)."""
        return self.hop

    def latency_ms(self, sample_rate=16000):
        """Algorithmic latency in milliseconds.

        Arguments
        ---------
        sample_rate : int
            Sample rate in Hz.

        Returns
        -------
        float
            ``1000 * latency_samples / sample_rate``.
        """
        return 1000.0 * self.latency_samples / sample_rate

    def attention_tap_names(self):
        """Names of the MA view taps (execution order).

        Returns
        -------
        list of str
            As :func:`speechbrain_kd.lobes.manner.attention_tap_names`.
        """
        return attention_tap_names(self.depth, self.attention_layers)

    def init_state(self, batch_size=1, device=None, dtype=None):
        """Zero streaming state (the signal is preceded by silence).

        Arguments
        ---------
        batch_size : int
            Batch size.
        device : torch.device or None
            Device (default: that of the parameters).
        dtype : torch.dtype or None
            Data type (default: that of the parameters).

        Returns
        -------
        dict
            Module path -> context tensor ``[batch, channels, context]``.
        """
        param = next(self.parameters())
        device = param.device if device is None else device
        dtype = param.dtype if dtype is None else dtype
        return {
            name: module.init_state(batch_size, device, dtype)
            for name, module in self.named_modules()
            if isinstance(module, CausalLayer) and module.context > 0
        }

    def _run(self, x, state):
        x = self.in_conv(x, state)
        first = x
        skips = []
        for layer in self.encoder:
            x = layer(x, state)
            skips.append(x)
        x = self.latent(
            F.relu(self.bottleneck(x.transpose(1, 2))).transpose(1, 2)
        )
        for layer in reversed(self.decoder):
            x = layer(x + skips.pop(), state)
        return self.out_conv(first * self.mask_gate(x), state)

    def forward(self, x):
        """Enhances a batch of waveforms (offline).

        Arguments
        ---------
        x : torch.Tensor
            ``[batch, time]`` or ``[batch, 1, time]``.

        Returns
        -------
        torch.Tensor
            Same shape as ``x``.
        """
        squeeze = x.dim() == 2
        if squeeze:
            x = x.unsqueeze(1)
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(
                f"expected [batch, time] or [batch, 1, time], got "
                f"{tuple(x.shape)}"
            )
        length = x.shape[-1]
        x = F.pad(x, (0, -length % self.hop))
        x = self._run(x, None)[..., :length]
        return x.squeeze(1) if squeeze else x

    def forward_step(self, chunk, state):
        """Streams one chunk of a multiple of ``hop`` samples.

        Arguments
        ---------
        chunk : torch.Tensor
            ``[batch, k * hop]`` or ``[batch, 1, k * hop]``.
        state : dict
            From :meth:`init_state` or the previous call (not modified).

        Returns
        -------
        out : torch.Tensor
            The output samples of the same hop blocks, same shape.
        state : dict
            The new state.
        """
        squeeze = chunk.dim() == 2
        if squeeze:
            chunk = chunk.unsqueeze(1)
        if chunk.shape[-1] % self.hop:
            raise ValueError(
                f"chunk length {chunk.shape[-1]} is not a multiple of the "
                f"hop ({self.hop})"
            )
        state = dict(state)
        out = self._run(chunk, state)
        return (out.squeeze(1) if squeeze else out), state
