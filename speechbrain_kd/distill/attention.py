"""Attention transfer (AT), multi-view AT (MV-AT) and dual-depth matching.

Written from the MV-AT paper (Shin et al., Interspeech 2022; paper 001 in
``shared/reference``) and the original AT formulation it cites:

* Eq. 1 — temporal attention map ``F(A) = Σ_c |A_c|^p`` of an activation
  ``A ∈ R^{C×t}``, L2-normalised over ``t``;
* Eq. 2 — ``L_AT = ‖F̂(A_T) − F̂(A_S)‖`` with the l1 norm (paper default) or
  the l2 norm. The paper writes a *norm*, so ``distance="l2"`` is the
  Euclidean norm of the difference, **not** its square;
* Eq. 3 — ``L_MV-AT = Σ_{view ∈ {channel, global, local}} L_AT``;
* Eq. 4 — ``L_distill = Σ_{j ∈ I} L_MV-AT^j + L_KD``: a **sum** over
  (student layer, teacher layer) pairs;
* §2.4 dual-depth — the student's deepest layer is matched to the teacher's
  two deepest layers; attention maps of different lengths are interpolated
  to a common length.

Length matching (an implementation choice, the paper only says
"interpolation"): the *un-normalised* maps ``F(A)`` are resampled with
``F.interpolate(mode="linear", align_corners=False)`` to the common length
(default: the longer of the two), then L2-normalised, so both compared maps
have unit norm. The common length is chosen per (student, teacher) pair: in
dual-depth matching each teacher map is compared at its own common length
with the student map.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from speechbrain_kd.losses import length_mask

_DISTANCES = ("l1", "l2")
_COMMON_LENGTHS = ("max", "min", "teacher", "student")


def attention_map(features, p=2, normalize=True, length=None, eps=1e-12):
    """Temporal attention map ``Σ_c |A_c|^p``, optionally L2-normalised.

    Arguments
    ---------
    features : torch.Tensor
        Activations ``[B, C, T]`` (extra trailing axes are flattened into
        ``T``).
    p : float
        Exponent of Eq. 1 (2 in the paper).
    normalize : bool
        Divide by the L2 norm over ``T`` (clamped to ``eps``).
    length : torch.Tensor, optional
        Relative lengths ``[B]``; frames beyond ``round(length * T)`` are
        zeroed before normalisation.
    eps : float
        Lower bound of the norm.

    Returns
    -------
    torch.Tensor
        ``[B, T]``.

    Example
    -------
    >>> A = torch.tensor([[[1.0, 2.0, 0.0], [3.0, 0.0, 4.0]]])
    >>> attention_map(A, normalize=False)
    tensor([[10.,  4., 16.]])
    >>> torch.allclose(attention_map(A), attention_map(5 * A))
    True
    """
    if features.dim() < 3:
        raise ValueError(
            f"features must be [B, C, T], got {tuple(features.shape)}"
        )
    features = features.flatten(2)
    if features.dtype in (torch.float16, torch.bfloat16):
        features = features.float()  # Σ|A|^p overflows easily in fp16
    if p == 2:
        fmap = features.pow(2).sum(dim=1)
    else:
        fmap = features.abs().pow(p).sum(dim=1)
    if length is not None:
        batch, frames = fmap.shape
        fmap = fmap * length_mask(
            length, frames, batch, fmap.device, fmap.dtype
        )
    if normalize:
        fmap = F.normalize(fmap, p=2, dim=-1, eps=eps)
    return fmap


def resample_map(fmap, size):
    """Linearly resamples ``[B, T]`` maps to ``[B, size]``.

    Arguments
    ---------
    fmap : torch.Tensor
        Maps ``[B, T]``.
    size : int
        Target length.

    Returns
    -------
    torch.Tensor
        ``[B, size]`` (the input itself when ``T == size``).

    Example
    -------
    >>> resample_map(torch.tensor([[0.0, 4.0]]), 4)
    tensor([[0., 1., 3., 4.]])
    """
    if fmap.shape[-1] == size:
        return fmap
    resampled = F.interpolate(
        fmap.unsqueeze(1), size=size, mode="linear", align_corners=False
    )
    return resampled.squeeze(1)


def _common_length(student_len, teacher_len, common_length):
    if common_length == "max":
        return max(student_len, teacher_len)
    if common_length == "min":
        return min(student_len, teacher_len)
    if common_length == "teacher":
        return teacher_len
    if common_length == "student":
        return student_len
    raise ValueError(
        f"common_length must be one of {_COMMON_LENGTHS}, got {common_length!r}"
    )


def _as_list(features):
    if isinstance(features, (list, tuple)):
        return list(features)
    return [features]


def at_loss(
    student_feat,
    teacher_feat,
    p=2,
    distance="l1",
    common_length="max",
    length=None,
    eps=1e-12,
    reduction="mean",
    time_reduction="sum",
):
    """Attention-transfer loss between student and teacher activations.

    ``‖F̂(A_T) − F̂(A_S)‖`` per utterance (Eq. 2), averaged over the batch.
    With ``time_reduction="sum"`` (Eq. 2 as written) ``distance="l1"`` is
    the sum of absolute differences over time and ``"l2"`` the Euclidean
    norm of the difference (not squared). With ``time_reduction="mean"``
    the differences are averaged over time instead, as in Zagoruyko &
    Komodakis' reference code: mean absolute difference (``l1``) or mean
    squared difference (``l2``). The sum grows like the square root of the
    map length, so on 4-s segments it outweighs the enhancement loss by
    about two orders of magnitude; the mean keeps the terms comparable.

    Several teacher activations (a list) give the dual-depth loss: the
    **sum** of the pairwise losses (each pair is one ``j`` of Eq. 4).

    Arguments
    ---------
    student_feat : torch.Tensor
        Student activations ``[B, C_S, T_S]``.
    teacher_feat : torch.Tensor or list of torch.Tensor
        Teacher activations ``[B, C_T, T_T]`` (channels may differ).
    p : float
        Exponent of the attention map (Eq. 1).
    distance : str
        ``"l1"`` or ``"l2"``.
    common_length : str
        Length both maps are resampled to when they differ: ``"max"``,
        ``"min"``, ``"teacher"`` or ``"student"``.
    length : torch.Tensor, optional
        Relative lengths ``[B]`` (masks padded frames of both maps).
    eps : float
        Lower bound of the normalising norm.
    reduction : str
        ``"mean"`` over the batch, ``"sum"``, or ``"none"`` for ``[B]``.
    time_reduction : str
        ``"sum"`` (the norm of Eq. 2) or ``"mean"`` over time (see above).

    Returns
    -------
    torch.Tensor
        The loss.

    Example
    -------
    >>> s = torch.tensor([[[1.0, 0.0]]])
    >>> t = torch.tensor([[[0.0, 1.0]]])
    >>> at_loss(s, t, distance="l1")
    tensor(2.)
    >>> at_loss(s, t, distance="l1", time_reduction="mean")
    tensor(1.)
    >>> at_loss(s, t, distance="l2", time_reduction="mean")
    tensor(1.)
    >>> at_loss(s, [t, s], distance="l2")  # dual depth: sum over teachers
    tensor(1.4142)
    """
    if distance not in _DISTANCES:
        raise ValueError(
            f"distance must be one of {_DISTANCES}, got {distance!r}"
        )
    if time_reduction not in ("sum", "mean"):
        raise ValueError(
            f"time_reduction must be 'sum' or 'mean', got {time_reduction!r}"
        )
    s_map = attention_map(student_feat, p, normalize=False, length=length)
    total = None
    for teacher in _as_list(teacher_feat):
        t_map = attention_map(teacher, p, normalize=False, length=length)
        if t_map.shape[0] != s_map.shape[0]:
            raise ValueError(
                f"batch mismatch: student {s_map.shape[0]}, teacher "
                f"{t_map.shape[0]}"
            )
        size = _common_length(s_map.shape[-1], t_map.shape[-1], common_length)
        s_hat = F.normalize(resample_map(s_map, size), dim=-1, eps=eps)
        t_hat = F.normalize(resample_map(t_map, size), dim=-1, eps=eps)
        t_hat = t_hat.to(s_hat.dtype)
        diff = t_hat - s_hat
        if time_reduction == "mean":
            power = 1 if distance == "l1" else 2
            pair = diff.abs().pow(power).mean(dim=-1)
        elif distance == "l1":
            pair = diff.abs().sum(dim=-1)
        else:
            pair = torch.linalg.vector_norm(diff, ord=2, dim=-1)
        total = pair if total is None else total + pair
    if reduction == "mean":
        return total.mean()
    if reduction == "sum":
        return total.sum()
    if reduction == "none":
        return total
    raise ValueError(f"unknown reduction {reduction!r}")


class ATLoss(nn.Module):
    """Attention-transfer loss as a module (see :func:`at_loss`).

    Arguments
    ---------
    p : float
        Exponent of the attention map (Eq. 1; 2 in the paper).
    distance : str
        ``"l1"`` (paper default) or ``"l2"`` (Euclidean norm, not squared).
    common_length : str
        ``"max"`` (default), ``"min"``, ``"teacher"`` or ``"student"``.
    eps : float
        Lower bound of the normalising norm.
    time_reduction : str
        ``"sum"`` (Eq. 2 as written) or ``"mean"`` over time (see
        :func:`at_loss`).

    Example
    -------
    >>> loss = ATLoss(distance="l1")
    >>> s, t = torch.randn(2, 6, 8), torch.randn(2, 9, 2)
    >>> loss(s, s).item()
    0.0
    >>> loss(s, [t, s]).shape  # dual depth: sum over teacher layers
    torch.Size([])
    """

    def __init__(
        self,
        p=2,
        distance="l1",
        common_length="max",
        eps=1e-12,
        time_reduction="sum",
    ):
        super().__init__()
        if distance not in _DISTANCES:
            raise ValueError(
                f"distance must be one of {_DISTANCES}, got {distance!r}"
            )
        _common_length(1, 1, common_length)  # validates the option
        self.p = p
        self.distance = distance
        self.common_length = common_length
        self.eps = eps
        self.time_reduction = time_reduction

    def forward(self, student_feat, teacher_feat, length=None):
        """Computes the loss.

        Arguments
        ---------
        student_feat : torch.Tensor
            ``[B, C_S, T_S]``.
        teacher_feat : torch.Tensor or list of torch.Tensor
            ``[B, C_T, T_T]``, or several for dual depth (summed).
        length : torch.Tensor, optional
            Relative lengths ``[B]``.

        Returns
        -------
        torch.Tensor
            Scalar loss (mean over the batch).
        """
        return at_loss(
            student_feat,
            teacher_feat,
            p=self.p,
            distance=self.distance,
            common_length=self.common_length,
            length=length,
            eps=self.eps,
            time_reduction=self.time_reduction,
        )

    def extra_repr(self):
        """The module's settings, for ``print``."""
        return (
            f"p={self.p}, distance={self.distance!r}, "
            f"common_length={self.common_length!r}, "
            f"time_reduction={self.time_reduction!r}"
        )
