"""Waveform losses for speech enhancement, with SpeechBrain length masking.

Every loss follows SpeechBrain's signature ``(predictions, targets,
length=None, ...)``: ``length`` holds the *relative* lengths in [0, 1] that
:class:`speechbrain.dataio.batch.PaddedBatch` produces. A relative length
``l`` of a batch padded to ``T`` samples covers ``round(l * T)`` samples;
padded samples never contribute, so a padded batch gives exactly the mean of
its utterances computed one by one without padding.

Waveforms are ``[B, T]`` or ``[B, 1, T]``.

* :func:`l1_loss_masked` — per-utterance mean absolute error.
* :class:`MultiResolutionSTFTLoss` — spectral convergence plus log-magnitude
  L1 at three STFT resolutions (MANNER / Parallel WaveGAN settings).
* :class:`WeightedCleanNoiseLoss` — MANNER's weighted loss on the estimated
  clean speech and the implied noise estimate.

All losses are written from the published descriptions (MANNER, Park et al.,
ICASSP 2022; see ``IMPLEMENTATION_NOTES.md`` §1); no code is copied.
"""

import weakref

import torch
import torch.nn as nn

#: (n_fft, hop_length, win_length) of MANNER's multi-resolution STFT loss.
MANNER_RESOLUTIONS = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))

_REDUCTIONS = ("mean", "sum", "none")


def _as_batch(signal, name="signal"):
    """Returns ``signal`` as ``[B, T]`` (squeezes a mono channel axis)."""
    if signal.dim() == 3 and signal.shape[1] == 1:
        signal = signal.squeeze(1)
    if signal.dim() != 2:
        raise ValueError(
            f"{name} must be [B, T] or [B, 1, T], got {tuple(signal.shape)}"
        )
    return signal


def absolute_lengths(length, max_len, batch_size, device=None):
    """Converts SpeechBrain relative lengths to sample counts.

    Arguments
    ---------
    length : torch.Tensor or None
        Relative lengths in [0, 1], shape ``[B]``; ``None`` means full.
    max_len : int
        The padded length ``T``.
    batch_size : int
        ``B``, used when ``length`` is ``None``.
    device : torch.device, optional
        Device of the result.

    Returns
    -------
    torch.Tensor
        ``round(length * T)`` as ``int64``, clamped to ``[1, T]``.

    Example
    -------
    >>> absolute_lengths(torch.tensor([1.0, 0.5]), 10, 2)
    tensor([10,  5])
    >>> absolute_lengths(None, 4, 2)
    tensor([4, 4])
    """
    if length is None:
        return torch.full(
            (batch_size,), max_len, dtype=torch.long, device=device
        )
    length = torch.as_tensor(length, device=device).reshape(-1)
    if length.numel() != batch_size:
        raise ValueError(
            f"length has {length.numel()} entries for a batch of {batch_size}"
        )
    absolute = torch.round(length.double() * max_len).long()
    return absolute.clamp(1, max_len)


def length_mask(length, max_len, batch_size, device=None, dtype=None):
    """Returns a ``[B, T]`` mask: 1 on valid samples, 0 on padding.

    Arguments
    ---------
    length : torch.Tensor or None
        Relative lengths in [0, 1], shape ``[B]``.
    max_len : int
        The padded length ``T``.
    batch_size : int
        ``B``.
    device : torch.device, optional
        Device of the mask.
    dtype : torch.dtype, optional
        Dtype of the mask (default ``torch.bool``).

    Returns
    -------
    torch.Tensor
        The ``[B, T]`` mask.

    Example
    -------
    >>> length_mask(torch.tensor([1.0, 0.5]), 4, 2).int()
    tensor([[1, 1, 1, 1],
            [1, 1, 0, 0]], dtype=torch.int32)
    """
    absolute = absolute_lengths(length, max_len, batch_size, device)
    positions = torch.arange(max_len, device=absolute.device)
    mask = positions.unsqueeze(0) < absolute.unsqueeze(1)
    return mask if dtype is None else mask.to(dtype)


def _reduce(per_utterance, reduction):
    if reduction == "mean":
        return per_utterance.mean()
    if reduction == "sum":
        return per_utterance.sum()
    if reduction == "none":
        return per_utterance
    raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction}")


def l1_loss_masked(pred, target, length=None, reduction="mean"):
    """Mean absolute error per utterance over its valid samples.

    Arguments
    ---------
    pred : torch.Tensor
        Estimated waveforms, ``[B, T]`` or ``[B, 1, T]``.
    target : torch.Tensor
        Reference waveforms, same shape.
    length : torch.Tensor, optional
        Relative lengths ``[B]``; padded samples are ignored.
    reduction : str
        ``"mean"`` (over the batch), ``"sum"`` or ``"none"`` (``[B]``).

    Returns
    -------
    torch.Tensor
        The loss (scalar, or ``[B]`` with ``reduction="none"``).

    Example
    -------
    >>> pred = torch.tensor([[1.0, 2.0, 9.0], [0.0, 0.0, 3.0]])
    >>> target = torch.zeros(2, 3)
    >>> l1_loss_masked(pred, target, torch.tensor([2 / 3, 1.0]), "none")
    tensor([1.5000, 1.0000])
    """
    return _masked_mean(torch.abs, pred, target, length, reduction)


def _masked_mean(error, pred, target, length, reduction):
    """``error(pred - target)`` averaged over each utterance's valid
    samples, then reduced over the batch."""
    pred = _as_batch(pred, "pred")
    target = _as_batch(target, "target")
    batch, max_len = pred.shape
    mask = length_mask(length, max_len, batch, pred.device, pred.dtype)
    per_utterance = (error(pred - target) * mask).sum(dim=1) / mask.sum(dim=1)
    return _reduce(per_utterance, reduction)


def mse_loss_masked(pred, target, length=None, reduction="mean"):
    """Mean squared error per utterance over its valid samples.

    Arguments
    ---------
    pred : torch.Tensor
        Estimated waveforms, ``[B, T]`` or ``[B, 1, T]``.
    target : torch.Tensor
        Reference waveforms, same shape.
    length : torch.Tensor, optional
        Relative lengths ``[B]``; padded samples are ignored.
    reduction : str
        ``"mean"`` (over the batch), ``"sum"`` or ``"none"`` (``[B]``).

    Returns
    -------
    torch.Tensor
        The loss (scalar, or ``[B]`` with ``reduction="none"``).

    Example
    -------
    >>> pred = torch.tensor([[1.0, 2.0, 9.0], [0.0, 0.0, 3.0]])
    >>> target = torch.zeros(2, 3)
    >>> mse_loss_masked(pred, target, torch.tensor([2 / 3, 1.0]), "none")
    tensor([2.5000, 3.0000])
    """
    return _masked_mean(torch.square, pred, target, length, reduction)


def neg_si_sdr_loss(pred, target, length=None, reduction="mean", eps=1e-8):
    """Negative scale-invariant SDR in dB per utterance (valid samples).

    Both signals are made zero-mean over the valid samples; then
    ``SI-SDR = 10 log10(|a s|^2 / |a s - s_hat|^2)`` with
    ``a = <s_hat, s> / |s|^2``.

    Arguments
    ---------
    pred : torch.Tensor
        Estimated waveforms, ``[B, T]`` or ``[B, 1, T]``.
    target : torch.Tensor
        Reference waveforms, same shape.
    length : torch.Tensor, optional
        Relative lengths ``[B]``; padded samples are ignored.
    reduction : str
        ``"mean"`` (over the batch), ``"sum"`` or ``"none"`` (``[B]``).
    eps : float
        Energy floor.

    Returns
    -------
    torch.Tensor
        ``-SI-SDR`` (scalar, or ``[B]`` with ``reduction="none"``).

    Example
    -------
    >>> s = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    >>> noise = torch.tensor([[0.1, 0.1, -0.1, -0.1]])
    >>> round(neg_si_sdr_loss(s + noise, s).item(), 2)  # noise is 20 dB down
    -20.0
    """
    pred = _as_batch(pred, "pred")
    target = _as_batch(target, "target")
    batch, max_len = pred.shape
    mask = length_mask(length, max_len, batch, pred.device, pred.dtype)
    count = mask.sum(dim=1, keepdim=True)
    pred = (pred - (pred * mask).sum(1, keepdim=True) / count) * mask
    target = (target - (target * mask).sum(1, keepdim=True) / count) * mask
    scale = (pred * target).sum(1, keepdim=True) / (
        target.pow(2).sum(1, keepdim=True) + eps
    )
    projection = scale * target
    residual = pred - projection
    ratio = (projection.pow(2).sum(1) + eps) / (residual.pow(2).sum(1) + eps)
    return _reduce(-10 * torch.log10(ratio), reduction)


class WaveformLoss(nn.Module):
    """A waveform distance as an enhancement loss: MSE or -SI-SDR.

    Called as the project's losses are,
    ``loss(enhanced, target, noisy=None, length=None)`` (the noisy input
    is not used), so it serves as a recipe's ``loss``, as a distillation
    term's loss and as KDRL's distance D (Eq. 4: MSE for Wave-U-Net,
    -SI-SDR for Conv-TasNet).

    Arguments
    ---------
    kind : str
        ``mse`` or ``neg_si_sdr``.
    reduction : str
        Default reduction: ``mean``, ``sum`` or ``none`` (``[B]``, for
        per-utterance weights).

    Example
    -------
    >>> loss = WaveformLoss("mse", reduction="none")
    >>> loss(
    ...     torch.ones(2, 4), torch.zeros(2, 4), length=torch.tensor([1.0, 0.5])
    ... )
    tensor([1., 1.])
    """

    KINDS = ("mse", "neg_si_sdr")

    def __init__(self, kind="mse", reduction="mean"):
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"reduction must be one of {_REDUCTIONS}, got {reduction!r}"
            )
        self.kind, self.reduction = kind, reduction

    def forward(
        self, enhanced, target, noisy=None, length=None, reduction=None
    ):
        """The distance.

        Arguments
        ---------
        enhanced : torch.Tensor
            Estimates ``[B, T]``.
        target : torch.Tensor
            Targets ``[B, T]``.
        noisy : torch.Tensor, optional
            Unused (the project's loss signature).
        length : torch.Tensor, optional
            Relative lengths ``[B]``.
        reduction : str, optional
            Overrides the default reduction.

        Returns
        -------
        torch.Tensor
            The loss.
        """
        function = mse_loss_masked if self.kind == "mse" else neg_si_sdr_loss
        return function(enhanced, target, length, reduction or self.reduction)

    def extra_repr(self):
        """The settings, for ``print``."""
        return f"kind={self.kind!r}, reduction={self.reduction!r}"


def _reflect_indices(absolute, max_len, pad):
    """Sample indices of each utterance reflect-padded by ``pad`` each side.

    Reproduces ``torch.stft(center=True, pad_mode="reflect")`` applied to
    the *unpadded* utterance: the right-hand reflection starts at each
    utterance's own last valid sample, so batch padding never leaks in.
    Utterances shorter than ``pad + 1`` samples (where torch would raise)
    have their reflection clamped to the valid range.
    """
    positions = torch.arange(-pad, max_len + pad, device=absolute.device)
    positions = positions.unsqueeze(0).expand(absolute.numel(), -1)
    last = (absolute - 1).unsqueeze(1)
    index = positions.abs()
    index = torch.where(index > last, 2 * last - index, index)
    return torch.minimum(index.clamp(min=0), last)


class MultiResolutionSTFTLoss(nn.Module):
    """Multi-resolution STFT loss (spectral convergence + log magnitude).

    For each resolution ``(n_fft, hop, win)`` with a Hann window, and each
    utterance restricted to its valid frames:

    * spectral convergence ``SC = ‖|Y| − |X|‖_F / ‖|Y|‖_F``;
    * log-magnitude L1 ``MAG = mean |log|Y| − log|X||`` over valid frames
      and all frequency bins;

    where ``Y`` is the target's STFT and ``X`` the prediction's. The loss is
    the mean over resolutions of ``factor_sc · SC + factor_mag · MAG``
    (MANNER: 0.5 and 0.5). Magnitudes are ``sqrt(clamp(power, min=1e-7))``,
    which keeps the log finite and ``‖|Y|‖_F > 0`` on silence.

    Framing follows ``torch.stft(center=True, pad_mode="reflect")`` on each
    *unpadded* utterance: an utterance of ``n`` valid samples has
    ``1 + n // hop`` frames, and the reflection padding at its end uses its
    own samples, not the batch padding. Hence a padded batch gives exactly
    the per-utterance values of the unpadded signals. Utterances of at most
    ``n_fft // 2`` samples, where ``torch.stft`` would raise, are accepted:
    their reflection is clamped to the valid samples.

    Arguments
    ---------
    resolutions : sequence of (int, int, int)
        ``(n_fft, hop_length, win_length)`` triplets.
    factor_sc : float
        Weight of the spectral-convergence term.
    factor_mag : float
        Weight of the log-magnitude term.
    eps : float
        Clamp on the power spectrum before the square root.

    Example
    -------
    >>> loss = MultiResolutionSTFTLoss()
    >>> x = torch.randn(2, 4000)
    >>> loss(x, x).item()
    0.0
    >>> loss(0.5 * x, x, torch.tensor([1.0, 0.7]), reduction="none").shape
    torch.Size([2])
    """

    def __init__(
        self,
        resolutions=MANNER_RESOLUTIONS,
        factor_sc=0.5,
        factor_mag=0.5,
        eps=1e-7,
    ):
        super().__init__()
        self.resolutions = [tuple(int(v) for v in r) for r in resolutions]
        if not self.resolutions:
            raise ValueError("at least one STFT resolution is required")
        for n_fft, hop, win in self.resolutions:
            if not (0 < win <= n_fft and hop > 0):
                raise ValueError(
                    f"invalid resolution (n_fft={n_fft}, hop={hop}, "
                    f"win={win}): need 0 < win <= n_fft and hop > 0"
                )
        self.factor_sc = float(factor_sc)
        self.factor_mag = float(factor_mag)
        self.eps = float(eps)
        for index, (_, _, win) in enumerate(self.resolutions):
            self.register_buffer(
                f"window_{index}",
                torch.hann_window(win, dtype=torch.float64),
                persistent=False,
            )

    def _prediction_memo(self, predictions, lengths):
        """Magnitudes already computed for this very ``predictions`` tensor.

        Knowledge distillation scores one student output against two
        targets (the clean speech and the teacher's output) with the same
        loss object; the second call reuses the first call's STFTs of the
        output (and autograd backpropagates through them once, with the
        two gradients summed). Only the most recent predictions are kept,
        by identity, in-place version and lengths.
        """
        key = (
            predictions._version,
            None if lengths is None else tuple(lengths.tolist()),
        )
        memo = self.__dict__.get("_memo")
        if memo is None or memo[0] is not predictions or memo[1] != key:
            memo = (predictions, key, {})
            self.__dict__["_memo"] = memo
            _forget_memo_after_backward(self, predictions)
        return memo[2]

    def _magnitudes(self, signal, absolute, index):
        """|STFT| of every utterance, ``[B, F, frames]``.

        ``absolute`` holds the valid sample counts, or ``None`` when no
        utterance is padded.
        """
        n_fft, hop, win = self.resolutions[index]
        window = getattr(self, f"window_{index}")
        window = window.to(device=signal.device, dtype=signal.dtype)
        pad = n_fft // 2
        if absolute is None and signal.shape[1] <= pad:
            # torch's reflect padding needs more than n_fft // 2 samples.
            absolute = signal.new_full(
                (signal.shape[0],), signal.shape[1], dtype=torch.long
            )
        if absolute is None:  # no padding: torch's own centring
            framed, center = signal, True
        else:
            gather = _reflect_indices(absolute, signal.shape[1], pad)
            framed, center = torch.gather(signal, 1, gather), False
        spec = torch.stft(
            framed,
            n_fft=n_fft,
            hop_length=hop,
            win_length=win,
            window=window,
            center=center,
            pad_mode="reflect",
            return_complex=True,
        )
        power = torch.view_as_real(spec).pow(2).sum(dim=-1)
        return power.clamp(min=self.eps).sqrt()

    def forward(self, predictions, targets, length=None, reduction="mean"):
        """Computes the loss.

        Arguments
        ---------
        predictions : torch.Tensor
            Estimated waveforms ``[B, T]`` or ``[B, 1, T]``.
        targets : torch.Tensor
            Reference waveforms, same shape.
        length : torch.Tensor, optional
            Relative lengths ``[B]``.
        reduction : str
            ``"mean"`` over the batch, ``"sum"``, or ``"none"`` for ``[B]``.

        Returns
        -------
        torch.Tensor
            The loss.
        """
        given = predictions
        predictions = _as_batch(predictions, "predictions")
        targets = _as_batch(targets, "targets")
        if predictions.shape != targets.shape:
            raise ValueError(
                f"shape mismatch: predictions {tuple(predictions.shape)} vs "
                f"targets {tuple(targets.shape)}"
            )
        # STFTs in half precision are slow or unsupported: compute in fp32.
        if predictions.dtype not in (torch.float32, torch.float64):
            predictions = predictions.float()
        targets = targets.to(predictions.dtype)
        batch, max_len = predictions.shape
        absolute = absolute_lengths(length, max_len, batch, predictions.device)
        # Without padding, the framing is plain torch.stft(center=True).
        full = length is None or bool((absolute == max_len).all())
        lengths = None if full else absolute
        memo = self._prediction_memo(given, lengths)
        total = predictions.new_zeros(batch)
        for index, (_, hop, _) in enumerate(self.resolutions):
            if index not in memo:
                memo[index] = self._magnitudes(predictions, lengths, index)
            est = memo[index]
            ref = self._magnitudes(targets, lengths, index)
            # Reduce over frequency first, then mask frames: cheaper than
            # masking [B, F, frames]. vector_norm has a zero (not NaN)
            # gradient at zero, so an exact estimate stays finite.
            frame_diff = torch.linalg.vector_norm(ref - est, dim=1)
            frame_ref = torch.linalg.vector_norm(ref, dim=1)
            frame_log = (ref.log() - est.log()).abs().sum(dim=1)
            if not full:
                frames = torch.arange(est.shape[-1], device=est.device)
                n_valid = 1 + absolute // hop
                valid = frames.unsqueeze(0) < n_valid.unsqueeze(1)
                valid = valid.to(est.dtype)  # [B, frames]
                frame_diff = frame_diff * valid
                frame_ref = frame_ref * valid
                frame_log = frame_log * valid
                count = n_valid.to(est.dtype) * est.shape[1]
            else:
                count = est.shape[1] * est.shape[2]
            sc = torch.linalg.vector_norm(frame_diff, dim=1) / (
                torch.linalg.vector_norm(frame_ref, dim=1)
            )
            mag = frame_log.sum(dim=1) / count
            total = total + self.factor_sc * sc + self.factor_mag * mag
        return _reduce(total / len(self.resolutions), reduction)


def _forget_memo_after_backward(module, tensor):
    """Drops ``module``'s memo once a backward pass goes through ``tensor``.

    The memo holds autograd graph nodes; after a backward pass they are
    freed, so the same tensor scored again must be recomputed. The hook
    holds a weak reference and a token, not the memo (no reference cycle).
    """
    if not tensor.requires_grad:
        return
    token = module.__dict__.get("_memo_token", 0) + 1
    module.__dict__["_memo_token"] = token
    owner = weakref.ref(module)

    def forget(grad):
        """Drops the memo once its gradient has been used."""
        target = owner()
        if target is not None and target.__dict__.get("_memo_token") == token:
            target.__dict__.pop("_memo", None)

    tensor.register_hook(forget)


class WeightedCleanNoiseLoss(nn.Module):
    """MANNER's weighted clean/noise loss (L1 + multi-resolution STFT).

    With ``s`` the clean target, ``ŝ`` the estimate and ``x`` the noisy
    input, the noise is ``n = x − s`` and its estimate ``n̂ = x − ŝ``. Per
    utterance and over its valid samples only::

        clean_loss = L1(ŝ, s) + MRSTFT(ŝ, s)
        noise_loss = L1(n̂, n) + MRSTFT(n̂, n)
        a = Σ s² / (Σ s² + Σ n²)
        loss = a · clean_loss + (1 − a) · noise_loss

    averaged over the batch (``reduction="mean"``). ``a`` is computed from
    the targets only, so it carries no gradient. In knowledge distillation
    (MV-AT Eq. 4, ``L_KD``) the teacher's output takes the place of ``s``.

    Arguments
    ---------
    stft_loss : nn.Module, optional
        The spectral loss; default :class:`MultiResolutionSTFTLoss` with
        MANNER's resolutions.
    eps : float
        Guards the weight's denominator on an all-zero utterance.

    Example
    -------
    >>> loss = WeightedCleanNoiseLoss()
    >>> clean, noisy = torch.randn(2, 4000), torch.randn(2, 4000)
    >>> loss(clean, clean, noisy).item()
    0.0
    >>> loss(noisy, clean, noisy, torch.tensor([1.0, 0.8]), "none").shape
    torch.Size([2])
    """

    def __init__(self, stft_loss=None, eps=1e-12):
        super().__init__()
        self.stft_loss = (
            MultiResolutionSTFTLoss() if stft_loss is None else stft_loss
        )
        self.eps = float(eps)

    def clean_weight(self, clean, noisy, length=None):
        """The per-utterance weight ``a = Σs² / (Σs² + Σn²)``.

        Arguments
        ---------
        clean : torch.Tensor
            Clean (target) waveforms ``[B, T]`` or ``[B, 1, T]``.
        noisy : torch.Tensor
            Noisy waveforms, same shape.
        length : torch.Tensor, optional
            Relative lengths ``[B]``.

        Returns
        -------
        torch.Tensor
            ``[B]`` weights in [0, 1].

        Example
        -------
        >>> clean = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
        >>> noisy = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
        >>> WeightedCleanNoiseLoss().clean_weight(clean, noisy)
        tensor([0.7500])
        """
        clean = _as_batch(clean, "clean")
        noisy = _as_batch(noisy, "noisy")
        batch, max_len = clean.shape
        mask = length_mask(length, max_len, batch, clean.device, clean.dtype)
        clean_power = (clean.pow(2) * mask).sum(dim=1)
        noise_power = ((noisy - clean).pow(2) * mask).sum(dim=1)
        total = (clean_power + noise_power).clamp(min=self.eps)
        return clean_power / total

    def _estimate_batch(self, given, enhanced, noisy):
        """``cat([ŝ, x − ŝ])``, the same tensor for the same ``given``
        (the caller's estimate and noisy tensors, by identity)."""
        key = tuple(t._version for t in given)
        memo = self.__dict__.get("_memo")
        if (
            memo is None
            or any(a is not b for a, b in zip(memo[0], given, strict=False))
            or memo[1] != key
        ):
            est = torch.cat([enhanced, noisy - enhanced], dim=0)
            memo = (given, key, est)
            self.__dict__["_memo"] = memo
            _forget_memo_after_backward(self, est)
        return memo[2]

    def forward(self, enhanced, clean, noisy, length=None, reduction="mean"):
        """Computes the weighted loss.

        Arguments
        ---------
        enhanced : torch.Tensor
            Estimated clean speech ``ŝ``, ``[B, T]`` or ``[B, 1, T]``.
        clean : torch.Tensor
            Target ``s`` (clean speech, or the teacher's output in KD).
        noisy : torch.Tensor
            The noisy input ``x``.
        length : torch.Tensor, optional
            Relative lengths ``[B]``.
        reduction : str
            ``"mean"`` over the batch, ``"sum"``, or ``"none"`` for ``[B]``.

        Returns
        -------
        torch.Tensor
            The loss.
        """
        given = (enhanced, noisy)
        enhanced = _as_batch(enhanced, "enhanced")
        clean = _as_batch(clean, "clean")
        noisy = _as_batch(noisy, "noisy")
        if not (enhanced.shape == clean.shape == noisy.shape):
            raise ValueError(
                "enhanced, clean and noisy must have the same shape, got "
                f"{tuple(enhanced.shape)}, {tuple(clean.shape)}, "
                f"{tuple(noisy.shape)}"
            )
        if enhanced.dtype in (torch.float16, torch.bfloat16):
            enhanced = enhanced.float()  # sums over 10^5 samples: use fp32
        clean = clean.to(enhanced.dtype)
        noisy = noisy.to(enhanced.dtype)
        batch = enhanced.shape[0]
        noise = noisy - clean
        # One pass over clean and noise: the STFTs run on a 2B batch. The
        # estimate batch is reused by identity when the same output is
        # scored again (KD: against the teacher), so that its STFTs are
        # shared (see MultiResolutionSTFTLoss._prediction_memo).
        est = self._estimate_batch(given, enhanced, noisy)
        ref = torch.cat([clean, noise], dim=0)
        if length is not None:
            length = torch.as_tensor(length, device=enhanced.device)
            both_len = torch.cat([length.reshape(-1), length.reshape(-1)])
        else:
            both_len = None
        per_item = l1_loss_masked(est, ref, both_len, "none")
        per_item = per_item + self.stft_loss(est, ref, both_len, "none")
        clean_loss, noise_loss = per_item[:batch], per_item[batch:]
        weight = self.clean_weight(clean, noisy, length).to(clean_loss.dtype)
        loss = weight * clean_loss + (1 - weight) * noise_loss
        return _reduce(loss, reduction)
