"""CNNC-Distill feature distillation by time-by-time feature similarity.

CNNC-Distill (cross-network non-causal knowledge distillation; IEEE SPL
31, 2024, summarised as paper 000 in ``shared/reference``) distils a
non-causal teacher of *another* network type into a real-time student with
feature distillation "by feature similarity" plus output distillation. The
summary gives no formula and there is no public code, so the loss below is
**our design** (see ``recipes/Valentini/README_CNNC.md``):

1. **Common time grid.** Student ``[B, C_S, T_S]`` and teacher
   ``[B, C_T, T_T]`` features are both resampled along time to the same
   number of frames ``N`` (``common_frames``; an int such as 64, or
   ``"min"`` / ``"max"`` of the two lengths). ``pooling="avgpool"``
   (default) uses :func:`torch.nn.functional.adaptive_avg_pool1d`, so every
   output frame summarises all input frames of its window (a layer of
   16 000 frames reduced to 64 frames is not aliased);
   ``pooling="interpolate"`` uses linear interpolation
   (``align_corners=False``).
2. **Frame vectors.** Each of the ``N`` frame vectors (the channel axis) is
   L2-normalised: ``F̂ = F / ‖F‖`` per frame.
3. **Similarity matrices.** ``S = F̂ᵀ F̂ ∈ [B, N, N]``: the cosine
   similarity of every pair of frames, ``S_ij ∈ [-1, 1]``, ``S_ii = 1``
   (for non-zero frames).
4. **Loss.** ``mean_ij (S_T − S_S)²`` (``distance="l2"``, default) or
   ``mean_ij |S_T − S_S|`` (``distance="l1"``) per utterance, averaged over
   the batch. A list of teacher features (dual-depth matching) gives the
   **sum** of the per-teacher losses, as :class:`~.attention.ATLoss`.

The matrices are ``N × N`` whatever the channel counts, so the loss compares
networks of different widths (no projection layer to train); it is
invariant to a permutation of the channels of either network, to a positive
rescaling of any frame, to duplicating channels and (through step 1) to the
time resolution of each layer. With ``length`` (relative lengths), only the
entries ``(i, j)`` whose frames both lie within the utterance, i.e.
``i, j < round(length · N)``, enter the mean; the resampling itself runs on
the padded features, so the last valid frame may mix in a little padding.

Layer pairs are the outputs of whole encoder/decoder layers
(``encoder.{i}`` / ``decoder.{i}``), built by
:func:`~speechbrain_kd.distill.pairs.single_view_pairs` (the same
``(student_tap, [teacher_taps])`` format; no separate builder).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from speechbrain_kd.losses import length_mask

_DISTANCES = ("l1", "l2")
_POOLINGS = ("avgpool", "interpolate")
_FRAME_RULES = ("min", "max")


def resample_frames(features, frames, pooling="avgpool"):
    """Resamples ``[B, C, T]`` features along time to ``[B, C, frames]``.

    Arguments
    ---------
    features : torch.Tensor
        ``[B, C, T]`` (extra trailing axes are flattened into ``T``).
    frames : int
        Target number of frames ``N``.
    pooling : str
        ``"avgpool"`` (adaptive average pooling; upsampling repeats frames)
        or ``"interpolate"`` (linear, ``align_corners=False``).

    Returns
    -------
    torch.Tensor
        ``[B, C, frames]`` (the flattened input itself when ``T == N``).

    Example
    -------
    >>> x = torch.tensor([[[0.0, 2.0, 4.0, 6.0]]])
    >>> resample_frames(x, 2)
    tensor([[[1., 5.]]])
    >>> resample_frames(x, 2, pooling="interpolate")
    tensor([[[1., 5.]]])
    >>> resample_frames(x, 4) is x
    True
    """
    if pooling not in _POOLINGS:
        raise ValueError(f"pooling must be one of {_POOLINGS}, got {pooling!r}")
    if features.dim() < 3:
        raise ValueError(
            f"features must be [B, C, T], got {tuple(features.shape)}"
        )
    features = features.flatten(2)
    frames = int(frames)
    if frames < 1:
        raise ValueError(f"frames must be positive, got {frames}")
    if features.shape[-1] == frames:
        return features
    if pooling == "avgpool":
        return F.adaptive_avg_pool1d(features, frames)
    return F.interpolate(
        features, size=frames, mode="linear", align_corners=False
    )


def similarity_matrix(features, eps=1e-8):
    """Time-by-time cosine similarity ``F̂ᵀ F̂`` of ``[B, C, N]`` features.

    Arguments
    ---------
    features : torch.Tensor
        ``[B, C, N]``; each frame vector (over ``C``) is L2-normalised.
    eps : float
        Lower bound of the frame norms (an all-zero frame gives a zero row
        and column).

    Returns
    -------
    torch.Tensor
        ``[B, N, N]``.

    Example
    -------
    >>> F_ = torch.tensor([[[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]])
    >>> similarity_matrix(F_)
    tensor([[[1.0000, 0.0000, 0.7071],
             [0.0000, 1.0000, 0.7071],
             [0.7071, 0.7071, 1.0000]]])
    """
    if features.dtype in (torch.float16, torch.bfloat16):
        features = features.float()
    unit = F.normalize(features, p=2, dim=1, eps=eps)
    return torch.bmm(unit.transpose(1, 2), unit)


def _as_list(features):
    if isinstance(features, (list, tuple)):
        return list(features)
    return [features]


def _common_frames(student_len, teacher_len, common_frames):
    if common_frames == "min":
        return min(student_len, teacher_len)
    if common_frames == "max":
        return max(student_len, teacher_len)
    if isinstance(common_frames, bool) or not isinstance(common_frames, int):
        raise ValueError(
            "common_frames must be a positive int, 'min' or 'max', got "
            f"{common_frames!r}"
        )
    if common_frames < 1:
        raise ValueError(f"common_frames must be positive, got {common_frames}")
    return common_frames


def similarity_loss(
    student_feat,
    teacher_feat,
    common_frames=64,
    distance="l2",
    pooling="avgpool",
    length=None,
    eps=1e-8,
    reduction="mean",
):
    """CNNC-Distill similarity loss (see the module docstring).

    Arguments
    ---------
    student_feat : torch.Tensor
        Student features ``[B, C_S, T_S]``.
    teacher_feat : torch.Tensor or list of torch.Tensor
        Teacher features ``[B, C_T, T_T]`` (channels and lengths may
        differ); a list gives the sum of the per-teacher losses.
    common_frames : int or str
        Frames ``N`` of the common grid: an int, ``"min"`` or ``"max"`` of
        the two lengths (per student/teacher pair).
    distance : str
        ``"l2"``: mean squared difference of the matrices; ``"l1"``: mean
        absolute difference.
    pooling : str
        ``"avgpool"`` or ``"interpolate"`` (see :func:`resample_frames`).
    length : torch.Tensor, optional
        Relative lengths ``[B]``: entries involving frames at or beyond
        ``round(length · N)`` are left out of the mean.
    eps : float
        Lower bound of the frame norms.
    reduction : str
        ``"mean"`` over the batch, ``"sum"``, or ``"none"`` for ``[B]``.

    Returns
    -------
    torch.Tensor
        The loss.

    Example
    -------
    >>> s = torch.tensor([[[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]])
    >>> t = torch.eye(4, 3).unsqueeze(0)  # orthogonal frames: S_T = I
    >>> similarity_loss(s, t, common_frames=3)  # 4 * 0.5 / 9
    tensor(0.2222)
    >>> similarity_loss(s, torch.cat([s, s], dim=1)).item() < 1e-12  # C_T=4
    True
    >>> similarity_loss(s, [t, s], common_frames="min")  # dual depth: sum
    tensor(0.2222)
    """
    if distance not in _DISTANCES:
        raise ValueError(
            f"distance must be one of {_DISTANCES}, got {distance!r}"
        )
    if pooling not in _POOLINGS:
        raise ValueError(f"pooling must be one of {_POOLINGS}, got {pooling!r}")
    student_feat = student_feat.flatten(2)
    total = None
    for teacher in _as_list(teacher_feat):
        teacher = teacher.flatten(2)
        if teacher.shape[0] != student_feat.shape[0]:
            raise ValueError(
                f"batch mismatch: student {student_feat.shape[0]}, teacher "
                f"{teacher.shape[0]}"
            )
        frames = _common_frames(
            student_feat.shape[-1], teacher.shape[-1], common_frames
        )
        s_sim = similarity_matrix(
            resample_frames(student_feat, frames, pooling), eps
        )
        t_sim = similarity_matrix(
            resample_frames(teacher, frames, pooling), eps
        ).to(s_sim.dtype)
        diff = (t_sim - s_sim).abs()
        if distance == "l2":
            diff = diff.pow(2)
        if length is None:
            pair = diff.mean(dim=(1, 2))
        else:
            valid = length_mask(
                length, frames, diff.shape[0], diff.device, diff.dtype
            )
            weights = valid.unsqueeze(2) * valid.unsqueeze(1)
            pair = (diff * weights).sum(dim=(1, 2)) / weights.sum(
                dim=(1, 2)
            ).clamp(min=1.0)
        total = pair if total is None else total + pair
    if reduction == "mean":
        return total.mean()
    if reduction == "sum":
        return total.sum()
    if reduction == "none":
        return total
    raise ValueError(f"unknown reduction {reduction!r}")


class SimilarityLoss(nn.Module):
    """CNNC-Distill feature-similarity loss as a module.

    Plugs into :class:`~speechbrain_kd.distill.terms.FeatureDistillTerm`
    unchanged (``loss(student_feat, teacher_feat, length=None)``). See
    :func:`similarity_loss` and the module docstring.

    Arguments
    ---------
    common_frames : int or str
        Frames ``N`` of the common time grid (64 by default), or ``"min"``
        / ``"max"`` of the two lengths.
    distance : str
        ``"l2"`` (mean squared difference, default) or ``"l1"`` (mean
        absolute difference).
    pooling : str
        ``"avgpool"`` (adaptive average pooling, default) or
        ``"interpolate"`` (linear).
    eps : float
        Lower bound of the frame norms.

    Example
    -------
    >>> loss = SimilarityLoss(common_frames=16)
    >>> s, t = torch.randn(2, 6, 40), torch.randn(2, 9, 100)
    >>> loss(s, s).item()
    0.0
    >>> perm = torch.randperm(6)
    >>> torch.allclose(loss(s, t), loss(s[:, perm], t), atol=1e-6)
    True
    >>> loss(s, [t, t]).shape  # dual depth: sum over teacher layers
    torch.Size([])
    """

    def __init__(
        self, common_frames=64, distance="l2", pooling="avgpool", eps=1e-8
    ):
        super().__init__()
        if distance not in _DISTANCES:
            raise ValueError(
                f"distance must be one of {_DISTANCES}, got {distance!r}"
            )
        if pooling not in _POOLINGS:
            raise ValueError(
                f"pooling must be one of {_POOLINGS}, got {pooling!r}"
            )
        _common_frames(1, 1, common_frames)  # validates the option
        self.common_frames = common_frames
        self.distance = distance
        self.pooling = pooling
        self.eps = eps

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
        return similarity_loss(
            student_feat,
            teacher_feat,
            common_frames=self.common_frames,
            distance=self.distance,
            pooling=self.pooling,
            length=length,
            eps=self.eps,
        )

    def extra_repr(self):
        """The module's settings, for ``print``."""
        return (
            f"common_frames={self.common_frames!r}, "
            f"distance={self.distance!r}, pooling={self.pooling!r}"
        )
