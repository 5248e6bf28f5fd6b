"""BatchNorm statistics of the current weights ("precise BN").

A BatchNorm running average with momentum 0.01 (MANNER's basic conv
blocks) remembers its initial value (mean 0, variance 1) for hundreds of
steps while the weights move on: in a run of a few hundred steps the
eval-mode output is then several times quieter than the training-mode
output of the same weights. Re-estimating the statistics on a few training
batches right before evaluation removes that lag without touching training
(Wu and Johnson, "Rethinking 'Batch' in BatchNorm", 2021).
"""

import logging

import torch
import torch.nn as nn

from speechbrain.dataio.batch import PaddedBatch

logger = logging.getLogger(__name__)


def batchnorm_layers(model):
    """The BatchNorm layers of ``model`` that track running statistics.

    Arguments
    ---------
    model : torch.nn.Module
        Any model.

    Returns
    -------
    list of torch.nn.modules.batchnorm._BatchNorm
        The layers, in module order.

    Example
    -------
    >>> net = nn.Sequential(nn.Conv1d(1, 2, 3), nn.BatchNorm1d(2))
    >>> len(batchnorm_layers(net))
    1
    """
    return [
        module
        for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
        and module.track_running_stats
    ]


def recalibrate_batchnorm(model, dataset, forward, batches, batch_size):
    """Replaces running statistics by their average over training batches.

    The statistics are reset and the first ``batches`` batches of
    ``dataset`` (in order, no shuffling, no worker processes: no random
    number is drawn) run through ``forward`` in training mode without
    gradients, each BatchNorm layer averaging them cumulatively
    (``momentum=None``). Momenta, the training mode and every parameter
    are restored; only the running statistics change. A model without
    BatchNorm is left alone.

    Arguments
    ---------
    model : torch.nn.Module
        The model (possibly DDP-wrapped).
    dataset : torch.utils.data.Dataset
        Training items (``PaddedBatch``-collatable dicts).
    forward : callable
        ``forward(batch)`` runs the model on a ``PaddedBatch``.
    batches : int
        How many batches to average over (fewer if the data end first).
    batch_size : int
        Items per batch.

    Returns
    -------
    int
        The number of batches used (0 when nothing was done).

    Example
    -------
    >>> net = nn.Sequential(nn.Unflatten(1, (1, -1)), nn.BatchNorm1d(1))
    >>> data = [{"noisy_sig": torch.full((4,), 3.0)} for _ in range(2)]
    >>> recalibrate_batchnorm(net, data, lambda b: net(b.noisy_sig.data), 8, 1)
    2
    >>> float(net[1].running_mean), net[1].momentum
    (3.0, 0.1)
    """
    layers = batchnorm_layers(model)
    if not layers or batches <= 0:
        return 0
    momenta = [layer.momentum for layer in layers]
    was_training = model.training
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=int(batch_size),
        collate_fn=PaddedBatch,
        generator=torch.Generator(),  # its base seed: not the global RNG
    )
    used = 0
    try:
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None
        model.train()
        with torch.no_grad():
            for batch in loader:
                if used >= batches:
                    break
                saved = [
                    [b.clone() for b in layer.buffers()] for layer in layers
                ]
                forward(batch)
                if all(_stats_finite(layer) for layer in layers):
                    used += 1
                    continue
                # a non-finite batch would poison the averages: undo it
                for layer, buffers in zip(layers, saved, strict=True):
                    for buffer, value in zip(
                        layer.buffers(), buffers, strict=True
                    ):
                        buffer.copy_(value)
                logger.warning(
                    "BatchNorm re-estimation skipped a non-finite batch "
                    "(utterances: %s)",
                    ", ".join(map(str, getattr(batch, "id", []))),
                )
    finally:
        for layer, momentum in zip(layers, momenta, strict=False):
            layer.momentum = momentum
        model.train(was_training)
    return used


def _stats_finite(layer):
    """True when a BatchNorm layer's running statistics are finite."""
    return all(
        torch.isfinite(b).all()
        for b in layer.buffers()
        if b.is_floating_point()
    )
