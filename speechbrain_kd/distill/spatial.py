"""The losses of spatial injection (paper 002, Eqs. 1-5), per utterance.

Where the printed equations leave a choice, the docstring says which was
taken.
"""

import torch


def reconstruction_loss(
    magnitude, clean_magnitude, phase, clean_phase, alpha=1.0, distance="norm"
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
    error = (magnitude - clean_magnitude).flatten(1)
    if distance == "norm":
        magnitude_term = error.pow(2).sum(dim=1).sqrt()
    else:
        magnitude_term = error.pow(2).mean(dim=1)
    agreement = clean_magnitude * torch.cos(phase - clean_phase)
    return magnitude_term - alpha * agreement.flatten(1).mean(dim=1)


def feature_distance(student, other):
    """Eqs. 2-3: ``sum_i ||(S_L^i - O_L^i) + (S_R^i - O_R^i)||_1``.

    Arguments
    ---------
    student : sequence of (torch.Tensor, torch.Tensor)
        Per encoder layer, the student's left- and right-encoder features
        ``[batch, ...]``.
    other : sequence of (torch.Tensor, torch.Tensor)
        The same layers of the teacher (Eq. 2) or the bad student (Eq. 3).

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
