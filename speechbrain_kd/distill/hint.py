"""FitNets-style hint loss: mean squared error between feature maps.

Used with a learnable projection of the student's feature to the
teacher's width (``FeatureDistillTerm(projection=...)``), since the two
widths usually differ.
"""

import torch.nn as nn
import torch.nn.functional as F

from speechbrain_kd.losses import length_mask


class FeatureMSELoss(nn.Module):
    """Per-utterance mean squared error of ``[B, C, T]`` features.

    A student feature of another length is resampled linearly to the
    teacher's; the mean runs over channels and the valid frames.

    Example
    -------
    >>> import torch
    >>> loss = FeatureMSELoss()
    >>> s, t = torch.zeros(2, 3, 8), torch.ones(2, 3, 4)
    >>> loss(s, t, length=torch.tensor([1.0, 0.5])).tolist()
    [1.0, 1.0]
    """

    def forward(self, student_feat, teacher_feat, length=None):
        """Computes the loss.

        Arguments
        ---------
        student_feat : torch.Tensor
            Student feature ``[B, C, T_S]`` (projected to the teacher's
            width).
        teacher_feat : torch.Tensor
            Teacher feature ``[B, C, T_T]``.
        length : torch.Tensor, optional
            Relative lengths ``[B]``.

        Returns
        -------
        torch.Tensor
            ``[B]`` losses.
        """
        if student_feat.shape[1] != teacher_feat.shape[1]:
            raise ValueError(
                f"student feature {tuple(student_feat.shape)} and teacher "
                f"feature {tuple(teacher_feat.shape)} differ in width: give "
                "the term a projection (e.g. a 1x1 Conv1d) to the teacher's "
                "channels"
            )
        frames = teacher_feat.shape[-1]
        if student_feat.shape[-1] != frames:
            student_feat = F.interpolate(
                student_feat, size=frames, mode="linear", align_corners=False
            )
        error = (student_feat - teacher_feat).pow(2).mean(dim=1)
        mask = length_mask(
            length, frames, error.shape[0], error.device, error.dtype
        )
        return (error * mask).sum(dim=-1) / mask.sum(dim=-1).clamp(min=1)
