"""Latent alignment KD: cosine distance through a linear inverted
bottleneck (Luong et al., AES 2025), and its FitNets-style L2 baseline."""

import torch
import torch.nn.functional as F
from torch import nn

from speechbrain_kd.distill.hint import FeatureMSELoss
from speechbrain_kd.distill.terms import FeatureDistillTerm
from speechbrain_kd.losses import length_mask

DISTANCES = ("cosine", "l2")
PER = ("frame", "utterance")


class LinearInvertedBottleneck(nn.Module):
    """A linear map of ``[B, C_s, T]`` features to ``[B, C_t, T]`` through
    a hidden width ``expansion * C_t`` (no bias, no non-linearity).

    Without a bias the map is homogeneous, so a positively rescaled input
    gives a rescaled output, which the cosine distance ignores. Used only
    in training (it lives in the distillation term, not in the student).

    Arguments
    ---------
    in_channels : int
        The student feature's width.
    out_channels : int
        The teacher feature's width.
    expansion : int
        Hidden width over ``out_channels`` (>= 1; 1: one linear map).

    Example
    -------
    >>> projection = LinearInvertedBottleneck(4, 6, expansion=2)
    >>> projection(torch.randn(2, 4, 10)).shape
    torch.Size([2, 6, 10])
    >>> [tuple(p.shape) for p in projection.parameters()]
    [(12, 4, 1), (6, 12, 1)]
    """

    def __init__(self, in_channels, out_channels, expansion=2):
        super().__init__()
        if int(expansion) < 1:
            raise ValueError(f"expansion must be >= 1, got {expansion}")
        hidden = int(expansion) * int(out_channels)
        if int(expansion) == 1:
            self.layers = nn.Sequential(
                nn.Conv1d(in_channels, out_channels, 1, bias=False)
            )
        else:
            self.layers = nn.Sequential(
                nn.Conv1d(in_channels, hidden, 1, bias=False),
                nn.Conv1d(hidden, out_channels, 1, bias=False),
            )

    def forward(self, features):
        """Maps the features.

        Arguments
        ---------
        features : torch.Tensor
            ``[batch, in_channels, frames]``.

        Returns
        -------
        torch.Tensor
            ``[batch, out_channels, frames]``.
        """
        return self.layers(features)


def _on_teacher_frames(student, teacher):
    if student.shape[1] != teacher.shape[1]:
        raise ValueError(
            f"student feature {tuple(student.shape)} and teacher feature "
            f"{tuple(teacher.shape)} differ in width: project the student "
            "feature to the teacher's channels first"
        )
    if student.shape[-1] != teacher.shape[-1]:
        student = F.interpolate(
            student, size=teacher.shape[-1], mode="linear", align_corners=False
        )
    return student


def cosine_distance(student, teacher, length=None, per="frame", eps=1e-8):
    """``1 - cos`` between student and teacher features, per utterance.

    Arguments
    ---------
    student : torch.Tensor
        ``[B, C, T_s]`` (the projected student latent); another frame
        count is resampled linearly to the teacher's.
    teacher : torch.Tensor
        ``[B, C, T]``.
    length : torch.Tensor, optional
        Relative lengths ``[B]``: frames past them are left out.
    per : str
        ``frame``: the mean over valid frames of ``1 - cos`` of the
        ``C``-dimensional frame vectors; ``utterance``: ``1 - cos`` of the
        whole valid ``C x T`` maps.
    eps : float
        Floor of the norms (a zero vector has distance 1).

    Returns
    -------
    torch.Tensor
        ``[B]`` distances in [0, 2].

    Example
    -------
    >>> t = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # frames (1,0), (0,1)
    >>> s = torch.tensor([[[2.0, 0.0], [0.0, -1.0]]])  # (2,0), (0,-1)
    >>> cosine_distance(s, t).tolist()  # (0 + 2) / 2
    [1.0]
    >>> cosine_distance(
    ...     s, t, per="utterance"
    ... ).tolist()  # 1 - (2-1)/(sqrt5 sqrt2)
    [0.6837722063064575]
    """
    if per not in PER:
        raise ValueError(f"per must be one of {PER}, got {per!r}")
    student = _on_teacher_frames(student, teacher)
    batch, _, frames = teacher.shape
    mask = length_mask(length, frames, batch, teacher.device, teacher.dtype)
    if per == "frame":
        cos = F.cosine_similarity(student, teacher, dim=1, eps=eps)
        return ((1 - cos) * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    weights = mask.unsqueeze(1)
    cos = F.cosine_similarity(
        (student * weights).flatten(1), (teacher * weights).flatten(1), eps=eps
    )
    return 1 - cos


class CosineDistanceLoss(nn.Module):
    """:func:`cosine_distance` as a feature loss.

    Arguments
    ---------
    per : str
        ``frame`` (default) or ``utterance``.

    Example
    -------
    >>> loss = CosineDistanceLoss()
    >>> x = torch.randn(2, 3, 5)
    >>> loss(3 * x, x).abs().max().item() < 1e-6
    True
    """

    def __init__(self, per="frame"):
        super().__init__()
        if per not in PER:
            raise ValueError(f"per must be one of {PER}, got {per!r}")
        self.per = per

    def forward(self, student_feat, teacher_feat, length=None):
        """Computes the loss.

        Arguments
        ---------
        student_feat : torch.Tensor
            ``[B, C, T_s]``.
        teacher_feat : torch.Tensor
            ``[B, C, T]``.
        length : torch.Tensor, optional
            Relative lengths ``[B]``.

        Returns
        -------
        torch.Tensor
            ``[B]`` distances.
        """
        return cosine_distance(student_feat, teacher_feat, length, self.per)


def tap_widths(model, paths, samples=16000):
    """The channel count of each tapped module's output (dimension 1),
    from one run of ``model`` on ``samples`` samples of silence.

    For yaml: ``!apply:speechbrain_kd.distill.latent.tap_widths [model,
    [latent]]`` gives the widths a projection needs.

    Arguments
    ---------
    model : torch.nn.Module
        A lobe taking ``[batch, time]`` waveforms.
    paths : list of str
        Module paths (``named_modules()``).
    samples : int
        Length of the probe input.

    Returns
    -------
    list of int
        One width per path.

    Example
    -------
    >>> from speechbrain_kd.lobes.wave_u_net import WaveUNet
    >>> tap_widths(WaveUNet(width=4, depth=3), ["latent", "encoder.0"])
    [12, 4]
    """
    from speechbrain_kd.distill.taps import FeatureTaps

    paths = list(paths)
    taps = FeatureTaps(model, paths, detach=True, role="model")
    was_training = model.training
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, int(samples)))
        return [int(taps[path].shape[1]) for path in paths]
    finally:
        taps.remove()
        model.train(was_training)
        for name, value in model.named_buffers():
            value.copy_(buffers[name])


class LatentAlignmentTerm(FeatureDistillTerm):
    """Student latents aligned with the teacher's through a learnable
    :class:`LinearInvertedBottleneck` per pair: cosine distance (Luong et
    al.) or, as the FitNets-style baseline, the mean squared error.

    The projections are trained with the student, checkpointed with the
    terms and never exported (they are not part of the student).

    Arguments
    ---------
    pairs : list of (str, str)
        ``(student_tap, teacher_tap)`` module paths, e.g.
        ``[[latent, latent]]``.
    student_widths : list of int
        Channels of each student tap (:func:`tap_widths`).
    teacher_widths : list of int
        Channels of each teacher tap.
    distance : str
        ``cosine`` (:func:`cosine_distance`) or ``l2``
        (:class:`~speechbrain_kd.distill.hint.FeatureMSELoss`).
    per : str
        For ``cosine``: ``frame`` or ``utterance``.
    expansion : int
        Hidden width of the projection over the teacher's width.
    weight : float
        Multiplier of the summed loss.
    name : str
        Name under which the Brain logs the term.

    Example
    -------
    >>> term = LatentAlignmentTerm([("latent", "latent")], [4], [6])
    >>> term.student_taps, sum(p.numel() for p in term.parameters())
    (['latent'], 120)
    """

    def __init__(
        self,
        pairs,
        student_widths,
        teacher_widths,
        distance="cosine",
        per="frame",
        expansion=2,
        weight=1.0,
        name="latent",
    ):
        if distance not in DISTANCES:
            raise ValueError(
                f"distance must be one of {DISTANCES}, got {distance!r}"
            )
        pairs = [tuple(pair) for pair in pairs]
        student_widths, teacher_widths = (
            [int(w) for w in widths]
            for widths in (student_widths, teacher_widths)
        )
        if not len(pairs) == len(student_widths) == len(teacher_widths):
            raise ValueError(
                f"term {name!r}: {len(pairs)} pairs, {len(student_widths)} "
                f"student widths and {len(teacher_widths)} teacher widths "
                "(one of each per pair)"
            )
        loss = CosineDistanceLoss(per) if distance == "cosine" else None
        super().__init__(
            pairs,
            loss if loss is not None else FeatureMSELoss(),
            weight=weight,
            name=name,
            projection=[
                LinearInvertedBottleneck(s, t, expansion)
                for s, t in zip(student_widths, teacher_widths, strict=True)
            ],
        )
        self.distance = distance
