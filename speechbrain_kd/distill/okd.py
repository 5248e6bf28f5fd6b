"""MetricGAN-OKD: the generator loss and the discriminator's metric targets.

Online knowledge distillation among MetricGAN+ generators, one per target
metric (``IMPLEMENTATION_NOTES.md`` §3, from the official code): the loss
of generator i is

    MSE(D_i(clean, enh_i), 1) + weight * sum_{j != i} MSE(enh_i, sg(enh_j))

on enhanced log1p magnitudes (``weight`` 5; ``sg``: stop-gradient), where
``D_i`` is the discriminator's estimate of target metric i. Because every
peer term uses detached peers, the sum over generators sends to each
generator the gradient of its own loss only: one backward pass trains all.

The discriminator learns normalised metric scores: PESQ ->
``1 / (1 + exp(-1.5 (PESQ - 2.5)))``; CSIG, CBAK, COVL -> ``(x - 1) / 4``;
STOI (already in [0, 1]) unchanged; clean against clean -> 1.

Example
-------
>>> normalize_metric("pesq", 2.5), normalize_metric("csig", 5.0)
(0.5, 1.0)
"""

import math

import torch

#: Target metrics MetricGAN-OKD generators can be trained for.
TARGET_METRICS = ("pesq", "stoi", "csig", "cbak", "covl")


def normalize_metric(name, score):
    """Maps a metric score to the discriminator's target scale.

    Arguments
    ---------
    name : str
        One of :data:`TARGET_METRICS`.
    score : float
        The raw score (NaN stays NaN).

    Returns
    -------
    float
        The normalised target (1 = as good as clean speech).

    Example
    -------
    >>> round(normalize_metric("pesq", 4.5), 4), normalize_metric("stoi", 0.9)
    (0.9526, 0.9)
    >>> normalize_metric("cbak", 1.0)
    0.0
    """
    score = float(score)
    if name == "pesq":
        return 1.0 / (1.0 + math.exp(-1.5 * (score - 2.5)))
    if name in ("csig", "cbak", "covl"):
        return (score - 1.0) / 4.0
    if name == "stoi":
        return score
    raise ValueError(
        f"unknown target metric {name!r}: choose among {TARGET_METRICS}"
    )


def check_target_metrics(names):
    """Validates a list of target metrics (known, unique, not empty).

    Arguments
    ---------
    names : sequence of str
        Target metrics, one per generator.

    Returns
    -------
    list of str
        The names, lower-cased.

    Example
    -------
    >>> check_target_metrics(["PESQ", "csig"])
    ['pesq', 'csig']
    """
    names = [str(name).lower() for name in names]
    unknown = [name for name in names if name not in TARGET_METRICS]
    if not names or unknown:
        raise ValueError(
            f"target_metrics {names}: each must be one of {TARGET_METRICS} "
            "(at least one)"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"target_metrics {names} repeat a metric")
    return names


def masked_mse(prediction, target, mask=None):
    """Mean squared error over the frames where ``mask`` is True.

    Arguments
    ---------
    prediction : torch.Tensor
        ``[batch, frames, ...]``.
    target : torch.Tensor
        Same shape.
    mask : torch.Tensor, optional
        ``[batch, frames]`` booleans (None: every frame).

    Returns
    -------
    torch.Tensor
        Scalar.

    Example
    -------
    >>> a, b = torch.zeros(1, 3, 2), torch.tensor([[[1.0, 1], [2, 2], [9, 9]]])
    >>> float(masked_mse(a, b, torch.tensor([[True, True, False]])))
    2.5
    """
    error = (prediction - target) ** 2
    if mask is None:
        return error.mean()
    weights = mask.to(error.dtype).reshape(
        *mask.shape, *([1] * (error.dim() - 2))
    )
    per_frame = error[0, 0].numel()
    return (error * weights).sum() / (weights.sum() * per_frame).clamp(min=1)


def frame_mask(lengths, frames):
    """Valid-frame mask from relative lengths.

    Arguments
    ---------
    lengths : torch.Tensor or None
        Relative lengths ``[batch]``.
    frames : int
        Frames of the padded batch.

    Returns
    -------
    torch.Tensor or None
        ``[batch, frames]`` booleans (None when ``lengths`` is None).

    Example
    -------
    >>> frame_mask(torch.tensor([1.0, 0.5]), 4).tolist()
    [[True, True, True, True], [True, True, False, False]]
    """
    if lengths is None:
        return None
    valid = torch.round(lengths * frames).long().clamp(min=1)
    positions = torch.arange(frames, device=lengths.device)
    return positions[None, :] < valid[:, None]


class OKDLoss:
    """Sum over generators of adversarial + peer-distillation losses.

    Arguments
    ---------
    kd_weight : float
        Weight of the peer term (the official code: 5).

    Example
    -------
    >>> loss = OKDLoss(kd_weight=5.0)
    >>> scores = [torch.tensor([0.5]), torch.tensor([1.0])]
    >>> enhanced = [torch.zeros(1, 2, 3), torch.ones(1, 2, 3)]
    >>> total, terms = loss(scores, enhanced)
    >>> float(total), terms["adversarial"], terms["peer"]
    (10.25, [0.25, 0.0], [1.0, 1.0])
    """

    def __init__(self, kd_weight=5.0):
        self.kd_weight = float(kd_weight)

    def __call__(self, scores, enhanced, lengths=None):
        """Computes the loss of every generator.

        Arguments
        ---------
        scores : list of torch.Tensor
            ``scores[i]``: ``[batch]`` discriminator estimates of target
            metric i for generator i's output.
        enhanced : list of torch.Tensor
            ``enhanced[i]``: generator i's log1p magnitudes
            ``[batch, frames, freq]``.
        lengths : torch.Tensor, optional
            Relative lengths ``[batch]`` (padded frames are ignored).

        Returns
        -------
        total : torch.Tensor
            Sum over generators (backward trains each on its own loss).
        terms : dict
            ``adversarial`` and ``peer``: per-generator floats (the peer
            term unweighted; 0 with one generator).
        """
        if len(scores) != len(enhanced):
            raise ValueError("one score per generator is needed")
        mask = frame_mask(lengths, enhanced[0].shape[1])
        total = enhanced[0].new_zeros(())
        adversarial, peer = [], []
        for i, (score, own) in enumerate(zip(scores, enhanced, strict=False)):
            adv = ((score - 1.0) ** 2).mean()
            peers = [
                masked_mse(own, other.detach(), mask)
                for j, other in enumerate(enhanced)
                if j != i
            ]
            kd = torch.stack(peers).sum() if peers else torch.zeros_like(adv)
            total = total + adv + self.kd_weight * kd
            adversarial.append(float(adv.detach()))
            peer.append(float(kd.detach()))
        return total, {"adversarial": adversarial, "peer": peer}
