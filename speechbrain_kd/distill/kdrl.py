"""KDRL's learning ratio: the policy network and equations 2 and 7-11.

Chu, Wu and Su, "Speech Enhancement Using Dynamic Learning in Knowledge
Distillation via Reinforcement Learning" (IEEE Access 2023), Sec. III.
Where the printed equations cannot be meant literally, the reading
chosen is stated in the function's docstring and the README.
"""

import torch
import torch.nn.functional as F
from torch import nn

#: Per-utterance weights of the hard (clean) and soft (teacher) targets.
METHODS = ("A", "B", "C")


def policy_state(clean, student, teacher):
    """The policy's input ``Z = (Y_C - Y_S) (+) (Y_T - Y_S)`` (Eq. 2).

    Arguments
    ---------
    clean : torch.Tensor
        Clean waveforms ``[batch, time]``.
    student : torch.Tensor
        Student outputs ``[batch, time]``.
    teacher : torch.Tensor
        Teacher outputs ``[batch, time]``.

    Returns
    -------
    torch.Tensor
        ``[batch, 2, time]`` (concatenated over channels), detached: the
        state is an observation.

    Example
    -------
    >>> z = policy_state(torch.ones(1, 3), torch.zeros(1, 3), torch.ones(1, 3))
    >>> z.shape, z.sum().item()
    (torch.Size([1, 2, 3]), 6.0)
    """
    return torch.stack([clean - student, teacher - student], dim=1).detach()


class PolicyNetwork(nn.Module):
    """Maps the state of each utterance to its learning ratio alpha.

    Table 1 of the paper: two blocks of Conv1d (kernel 6, no padding) +
    BatchNorm + max-pooling by 4 + ReLU with 2 -> 32 -> 4 channels, then
    fully connected layers to 1024, 128, 32 and 1 units and a sigmoid.
    The first of them takes ``4 * floor((floor((L - 5) / 4) - 5) / 4)``
    inputs for states of ``L`` samples (999 x 4 for the paper's 16009):
    it is derived from ``input_length``. ReLUs between the fully
    connected layers (the table lists none; without them the four layers
    are one linear map). States of another length are cut or zero-padded
    to ``input_length`` at the end.

    Arguments
    ---------
    input_length : int
        Samples of a state (the training crop length).
    channels : tuple of int
        Output channels of the two convolutions.
    kernel_size : int
        Convolution kernel.
    pool : int
        Max-pooling size (and stride).
    hidden : tuple of int
        Widths of the fully connected layers before the last.

    Example
    -------
    >>> policy = PolicyNetwork(16009)
    >>> policy.flat_features
    3996
    >>> policy(torch.randn(3, 2, 16009)).shape
    torch.Size([3])
    """

    def __init__(
        self,
        input_length,
        channels=(32, 4),
        kernel_size=6,
        pool=4,
        hidden=(1024, 128, 32),
    ):
        super().__init__()
        self.input_length = int(input_length)
        length = self.input_length
        blocks, in_channels = [], 2
        for out_channels in channels:
            length = (length - kernel_size + 1) // pool
            blocks += [
                nn.Conv1d(in_channels, out_channels, kernel_size),
                nn.BatchNorm1d(out_channels),
                nn.MaxPool1d(pool),
                nn.ReLU(),
            ]
            in_channels = out_channels
        if length < 1:
            raise ValueError(
                f"PolicyNetwork input_length {input_length} is too short for "
                f"{len(channels)} blocks of kernel {kernel_size} and pooling "
                f"by {pool}"
            )
        self.features = nn.Sequential(*blocks)
        self.flat_features = length * in_channels
        layers, width = [], self.flat_features
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU()]
            width = units
        layers += [nn.Linear(width, 1), nn.Sigmoid()]
        self.head = nn.Sequential(*layers)

    def forward(self, state):
        """Learning ratios of a batch of states.

        Arguments
        ---------
        state : torch.Tensor
            ``[batch, 2, time]`` (:func:`policy_state`).

        Returns
        -------
        torch.Tensor
            ``alpha`` in (0, 1), ``[batch]``.
        """
        length = state.shape[-1]
        if length > self.input_length:
            state = state[..., : self.input_length]
        elif length < self.input_length:
            state = F.pad(state, (0, self.input_length - length))
        features = self.features(state).flatten(1)
        return self.head(features).squeeze(-1)


def target_weights(alpha, method):
    """``(gamma_hard, gamma_soft)`` of Eq. 7 for each utterance.

    Arguments
    ---------
    alpha : torch.Tensor
        Learning ratios ``[batch]``.
    method : str
        ``A`` (``1 - alpha``, ``alpha``), ``B`` (``alpha``, 1) or ``C``
        (1, ``alpha``: the paper's choice).

    Returns
    -------
    tuple of torch.Tensor
        Hard-target and soft-target weights, ``[batch]`` each.

    Example
    -------
    >>> alpha = torch.tensor([0.25])
    >>> [w.item() for w in target_weights(alpha, "A")]
    [0.75, 0.25]
    >>> [w.item() for w in target_weights(alpha, "C")]
    [1.0, 0.25]
    """
    ones = torch.ones_like(alpha)
    if method == "A":
        return 1 - alpha, alpha
    if method == "B":
        return alpha, ones
    if method == "C":
        return ones, alpha
    raise ValueError(f"KDRL method must be one of {METHODS}, got {method!r}")


def reward(d_soft, d_hard, d_student):
    """Eq. 8: the reward of each utterance from the distances (lower is
    better) of the soft-target reference R1, the hard-target reference
    R2 and the student to the clean target, after their updates.

    ``D_R1 - D_S`` when R1 is strictly the closest, ``D_S - D_R2`` when
    R2 is, 0 when the student is. The printed cases leave out ties; a
    tie for the smallest distance gives 0 (no model is better, and it is
    the value both formulas tend to there).

    Arguments
    ---------
    d_soft : torch.Tensor
        ``D(Y_C, Y_R1)`` per utterance.
    d_hard : torch.Tensor
        ``D(Y_C, Y_R2)`` per utterance.
    d_student : torch.Tensor
        ``D(Y_C, Y_S)`` per utterance.

    Returns
    -------
    torch.Tensor
        ``R`` per utterance.

    Example
    -------
    >>> reward(torch.tensor([1.0]), torch.tensor([2.0]), torch.tensor([4.0]))
    tensor([-3.])
    >>> reward(torch.tensor([3.0]), torch.tensor([2.0]), torch.tensor([4.0]))
    tensor([2.])
    """
    soft_best = (d_soft < d_hard) & (d_soft < d_student)
    hard_best = (d_hard < d_soft) & (d_hard < d_student)
    zero = torch.zeros_like(d_student)
    return torch.where(
        soft_best,
        d_soft - d_student,
        torch.where(hard_best, d_student - d_hard, zero),
    )


def progress(rewards, original_distance, epochs, floor=1e-8):
    """Eq. 9: ``delta = R / D(Y_C, Y_S) * epsilon``, ``epsilon = 1/epochs``.

    ``D(Y_C, Y_S)`` is the student's distance before its update (the
    "original loss value" of the paper), taken in absolute value with a
    floor: -SI-SDR is negative for any useful student, and dividing by it
    would flip the reward's sign.

    Arguments
    ---------
    rewards : torch.Tensor
        ``R`` per utterance (:func:`reward`).
    original_distance : torch.Tensor
        ``D(Y_C, Y_S)`` per utterance before the update.
    epochs : int
        Number of training epochs.
    floor : float
        Smallest divisor.

    Returns
    -------
    torch.Tensor
        ``delta`` per utterance.

    Example
    -------
    >>> progress(torch.tensor([-0.5]), torch.tensor([-2.0]), epochs=10)
    tensor([-0.0250])
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    scale = original_distance.abs().clamp_min(floor)
    return rewards / scale / float(epochs)


def policy_loss(alpha, delta):
    """Eqs. 10-11: ``(alpha - clip(sg(alpha) + delta, 0, 1)) ** 2``.

    Eq. 10 is printed ``min(max(sg(alpha) + delta, 1), 0)``, which is 0
    for every input; the clipping to [0, 1] its text describes is meant.

    Arguments
    ---------
    alpha : torch.Tensor
        Learning ratios ``[batch]`` (with their graph).
    delta : torch.Tensor
        Progress ``[batch]`` (:func:`progress`).

    Returns
    -------
    torch.Tensor
        Loss per utterance ``[batch]``.

    Example
    -------
    >>> alpha = torch.tensor([0.5, 0.9], requires_grad=True)
    >>> policy_loss(alpha, torch.tensor([0.1, 0.3]))
    tensor([0.0100, 0.0100], grad_fn=<PowBackward0>)
    """
    target = (alpha.detach() + delta).clamp(0.0, 1.0)
    return (alpha - target) ** 2
