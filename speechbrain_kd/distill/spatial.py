"""The losses and the distillation term of spatial injection (paper 002,
Eqs. 1-5).

Where the printed equations leave a choice, the docstring says which was
taken.
"""

import torch

from speechbrain_kd.distill.terms import DistillTerm, _lookup


def reconstruction_loss(
    magnitude,
    clean_magnitude,
    phase,
    clean_phase,
    alpha=1.0,
    distance="norm",
    lengths=None,
):
    """Eq. 1: ``||M_hat - M||_2 - alpha / (T F) sum M <P_hat, P>``.

    ``<P_hat, P>`` is the inner product of the unit phasors, i.e.
    ``cos(P_hat - P)``; the phase term is weighted by the clean magnitude.
    The magnitude term is the printed L2 norm over the time-frequency bins
    (``distance="norm"``) or, with ``distance="mse"``, the mean squared
    error the text's "L2 loss" may also mean.

    Arguments
    ---------
    magnitude : torch.Tensor
        Estimated magnitude ``[batch, freq, time]``.
    clean_magnitude : torch.Tensor
        Clean magnitude, same shape.
    phase : torch.Tensor
        Estimated phase (radians), same shape.
    clean_phase : torch.Tensor
        Clean phase (radians), same shape.
    alpha : float
        Weight of the phase term.
    distance : str
        ``norm`` or ``mse``.
    lengths : torch.Tensor, optional
        Relative lengths ``[batch]``: frames (last axis) past an
        utterance's end are left out of the norm and of the means.

    Returns
    -------
    torch.Tensor
        ``[batch]``.

    Example
    -------
    >>> m = torch.tensor([[[1.0, 3.0]]])
    >>> p = torch.zeros(1, 1, 2)
    >>> reconstruction_loss(m, m, p, p, alpha=0.5)  # 0 - 0.5 * (1 + 3) / 2
    tensor([-1.])
    """
    if distance not in ("norm", "mse"):
        raise ValueError(f"distance must be norm or mse, got {distance!r}")
    mask = frame_mask(magnitude, lengths).flatten(1)
    bins = mask.sum(dim=1)
    error = (magnitude - clean_magnitude).flatten(1).pow(2) * mask
    if distance == "norm":
        magnitude_term = error.sum(dim=1).sqrt()
    else:
        magnitude_term = error.sum(dim=1) / bins
    agreement = clean_magnitude * torch.cos(phase - clean_phase)
    agreement = (agreement.flatten(1) * mask).sum(dim=1) / bins
    return magnitude_term - alpha * agreement


def frame_mask(features, lengths=None):
    """Ones on the frames (last axis) inside each utterance, else zeros.

    Arguments
    ---------
    features : torch.Tensor
        ``[batch, ..., frames]``.
    lengths : torch.Tensor, optional
        Relative lengths ``[batch]`` (``None``: every frame counts).

    Returns
    -------
    torch.Tensor
        A 0/1 tensor of the shape of ``features``; an utterance keeps
        ``ceil(length * frames)`` frames.

    Example
    -------
    >>> frame_mask(torch.zeros(2, 1, 4), torch.tensor([1.0, 0.5]))[:, 0]
    tensor([[1., 1., 1., 1.],
            [1., 1., 0., 0.]])
    """
    frames = features.shape[-1]
    if lengths is None:
        return torch.ones_like(features)
    kept = torch.ceil(lengths.to(features.device) * frames - 1e-6)
    mask = torch.arange(frames, device=features.device) < kept[:, None]
    shape = (features.shape[0],) + (1,) * (features.dim() - 2) + (frames,)
    return mask.reshape(shape).to(features.dtype).expand_as(features)


def feature_distance(student, other, lengths=None):
    """Eqs. 2-3: ``sum_i ||(S_L^i - O_L^i) + (S_R^i - O_R^i)||_1``.

    Arguments
    ---------
    student : sequence of (torch.Tensor, torch.Tensor)
        Per encoder layer, the student's left- and right-encoder features
        ``[batch, ...]``.
    other : sequence of (torch.Tensor, torch.Tensor)
        The same layers of the teacher (Eq. 2) or the bad student (Eq. 3).
    lengths : torch.Tensor, optional
        Relative lengths: frames (last axis) of padding are left out.

    Returns
    -------
    torch.Tensor
        ``[batch]``: the L1 norms (sums of absolute values) summed over
        the layers.

    Example
    -------
    >>> s = [(torch.ones(1, 2), torch.zeros(1, 2))]
    >>> t = [(torch.zeros(1, 2), torch.ones(1, 2))]
    >>> feature_distance(s, t)  # (1 - 0) + (0 - 1) = 0 everywhere
    tensor([0.])
    """
    if len(student) != len(other):
        raise ValueError(
            f"the student has {len(student)} tapped layers, the other model "
            f"{len(other)}"
        )
    total = 0.0
    for (s_left, s_right), (o_left, o_right) in zip(
        student, other, strict=True
    ):
        difference = (s_left - o_left) + (s_right - o_right)
        difference = difference * frame_mask(difference, lengths)
        total = total + difference.abs().flatten(1).sum(dim=1)
    return total


def injection_loss(teacher_distance, bad_student_distance, floor=1e-6):
    """Eq. 4: ``L_TS / L_BS``, the denominator floored.

    The student starts close to the bad student (same architecture, often
    the same data), so ``L_BS`` can be near 0 and the ratio explode: it is
    divided by ``max(L_BS, floor)``.

    Arguments
    ---------
    teacher_distance : torch.Tensor
        ``L_TS`` per utterance (:func:`feature_distance` to the teacher).
    bad_student_distance : torch.Tensor
        ``L_BS`` per utterance (to the bad student).
    floor : float
        Smallest denominator.

    Returns
    -------
    torch.Tensor
        The ratio per utterance.

    Example
    -------
    >>> injection_loss(torch.tensor([2.0, 1.0]), torch.tensor([4.0, 0.0]))
    tensor([5.0000e-01, 1.0000e+06])
    """
    return teacher_distance / bad_student_distance.clamp_min(floor)


def ear_tap_paths(model):
    """The ``(left, right)`` encoder taps of a spatial-injection lobe.

    Arguments
    ---------
    model : torch.nn.Module
        MHCA-CRN or SJEN (any lobe with ``ear_tap_paths()``).

    Returns
    -------
    list of tuple of str
        One pair per encoder layer.

    Example
    -------
    >>> from speechbrain_kd.lobes.sjen import SJEN
    >>> ear_tap_paths(SJEN(channels=[16], hidden=8, phase_channels=4))
    [('left_encoder.0', 'right_encoder.0')]
    """
    if not hasattr(model, "ear_tap_paths"):
        raise TypeError(
            f"{type(model).__name__} has no per-ear encoder taps "
            "(ear_tap_paths): spatial injection pairs MHCA-CRN and SJEN"
        )
    return [tuple(pair) for pair in model.ear_tap_paths()]


class SpatialInjectionTerm(DistillTerm):
    """Spatial injection (Eqs. 2-5): ``weight * L_TS / L_BS``.

    ``L_TS`` (Eq. 2) sums, over every encoder layer, the L1 norm of
    ``(S_L - T_L) + (S_R - T_R)`` between the student's and the teacher's
    per-ear features; ``L_BS`` (Eq. 3) does the same against the frozen
    bad student, whose features the Brain puts in
    ``step.bad_student_features`` under the student's tap names. The L1
    norms run over the whole batch (padding frames left out), so the ratio
    is ``sum_b L_TS(b) / max(sum_b L_BS(b), floor)``, one scalar per
    batch: a per-utterance ratio would let one utterance close to the bad
    student dominate. ``weight`` is the paper's beta (Eq. 5).

    With ``bad_student=False`` (Table 1's "w/o bad student") the term is
    ``L_TS`` divided by the number of feature values it sums (the mean
    absolute difference), so that it stays of the order of the ratio and
    the ablation differs from the full method by the bad student alone.

    Logged parts (``loss_<name>_ts``, ``_bs``, ``_ratio``): the batch
    means of ``L_TS`` and ``L_BS`` per utterance and the unweighted ratio.

    Arguments
    ---------
    student_ears : list of (str, str)
        The student's ``(left, right)`` taps per layer
        (:func:`ear_tap_paths`).
    teacher_ears : list of (str, str)
        The teacher's, as many layers.
    weight : float
        beta.
    name : str
        Logged name.
    bad_student : bool
        Divide by ``L_BS`` (Eq. 4).
    floor : float
        Smallest denominator.

    Example
    -------
    >>> from speechbrain_kd.distill import DistillStep
    >>> term = SpatialInjectionTerm([("l", "r")], [("tl", "tr")], weight=0.5)
    >>> ones = torch.ones(1, 1, 2, 3)
    >>> step = DistillStep.from_tensors(
    ...     torch.ones(1, 8),
    ...     student_features={"l": ones, "r": ones},
    ...     teacher_features={"tl": 0 * ones, "tr": 0 * ones},
    ...     bad_student_features={"l": 0.5 * ones, "r": 0.5 * ones},
    ... )
    >>> term(step)  # 0.5 * (6 * 2) / (6 * 1)
    tensor(1.)
    >>> {k: round(float(v), 3) for k, v in term.logged.items()}
    {'ts': 12.0, 'bs': 6.0, 'ratio': 2.0}
    """

    def __init__(
        self,
        student_ears,
        teacher_ears,
        weight=1.0,
        name="spatial",
        bad_student=True,
        floor=1e-6,
    ):
        super().__init__(weight=weight, name=name)
        self.student_ears = [tuple(pair) for pair in student_ears]
        self.teacher_ears = [tuple(pair) for pair in teacher_ears]
        if len(self.student_ears) != len(self.teacher_ears):
            raise ValueError(
                f"term {self.name!r}: the student has "
                f"{len(self.student_ears)} encoder layers, the teacher "
                f"{len(self.teacher_ears)}; Eq. 2 pairs them one to one"
            )
        self.use_bad_student = bool(bad_student)
        self.floor = float(floor)

    @property
    def student_taps(self):
        """The student's per-ear taps, flattened."""
        return [path for pair in self.student_ears for path in pair]

    @property
    def teacher_taps(self):
        """The teacher's per-ear taps, flattened."""
        return [path for pair in self.teacher_ears for path in pair]

    @property
    def bad_student_taps(self):
        """The bad student's taps: the student's (same architecture)."""
        return self.student_taps if self.use_bad_student else []

    def _ears(self, features, pairs, side):
        return [
            (_lookup(features, left, side), _lookup(features, right, side))
            for left, right in pairs
        ]

    def compute(self, step):
        """The (unweighted) spatial-injection loss of the batch.

        Arguments
        ---------
        step : DistillStep
            Holds the student's, teacher's and bad student's features.

        Returns
        -------
        torch.Tensor
            A scalar.
        """
        student = self._ears(
            step.student_features, self.student_ears, "student"
        )
        teacher = self._ears(
            step.teacher_features, self.teacher_ears, "teacher"
        )
        teacher = [(left.detach(), right.detach()) for left, right in teacher]
        lengths = step.lengths
        to_teacher = feature_distance(student, teacher, lengths)
        self.logged = {"ts": to_teacher.detach().mean()}
        if self.use_bad_student:
            bad = self._ears(
                step.bad_student_features, self.student_ears, "bad student"
            )
            bad = [(left.detach(), right.detach()) for left, right in bad]
            to_bad = feature_distance(student, bad, lengths)
            ratio = to_teacher.sum() / to_bad.sum().clamp_min(self.floor)
            self.logged["bs"] = to_bad.detach().mean()
        else:
            values = sum(frame_mask(left, lengths).sum() for left, _ in student)
            ratio = to_teacher.sum() / values.clamp_min(1.0)
        self.logged["ratio"] = ratio.detach()
        return ratio


class ReconstructionLoss(torch.nn.Module):
    """Eq. 1 averaged over the batch (see :func:`reconstruction_loss`).

    Arguments
    ---------
    alpha : float
        Weight of the phase term.
    distance : str
        ``norm`` (the printed L2 norm) or ``mse``.

    Example
    -------
    >>> loss = ReconstructionLoss(alpha=0.5)
    >>> m, p = torch.tensor([[[[1.0, 3.0]]]]), torch.zeros(1, 1, 1, 2)
    >>> loss(m, p, m, p)
    tensor(-1.)
    """

    def __init__(self, alpha=1.0, distance="norm"):
        super().__init__()
        self.alpha = float(alpha)
        self.distance = distance

    def forward(
        self, magnitude, phase, clean_magnitude, clean_phase, lengths=None
    ):
        """The batch mean of Eq. 1.

        Arguments
        ---------
        magnitude : torch.Tensor
            Estimated magnitude ``[batch, 1, freq, frames]``.
        phase : torch.Tensor
            Estimated phase, same shape.
        clean_magnitude : torch.Tensor
            Clean magnitude, same shape.
        clean_phase : torch.Tensor
            Clean phase, same shape.
        lengths : torch.Tensor, optional
            Relative lengths.

        Returns
        -------
        torch.Tensor
            A scalar.
        """
        return reconstruction_loss(
            magnitude,
            clean_magnitude,
            phase,
            clean_phase,
            alpha=self.alpha,
            distance=self.distance,
            lengths=lengths,
        ).mean()
