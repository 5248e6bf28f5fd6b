"""Output orientation at initialisation: start with a positive-sign output.

A randomly initialised waveform-to-waveform U-Net (MANNER, RT-SENet) emits
a random linear projection of its input, whose sign is a coin flip: about
one seed in three starts *anti*-correlated with the input. The MANNER loss
is dominated by STFT magnitudes, which cannot see the sign, while the
waveform L1 term can: a sign-inverted start sits behind a barrier (the
output would have to pass through silence, where the log-magnitude term is
huge) and stays a near-silent, sign-inverted output for hundreds of steps.
Negating the last layer of such an initialisation removes the coin flip.
"""

import torch

#: Length and seed of the probe signal (brown noise: a speech-like 1/f^2
#: spectrum; white noise disagrees with real speech on some seeds).
PROBE_SAMPLES = 8000
PROBE_SEED = 20240611


def brown_noise_probe(samples=PROBE_SAMPLES, seed=PROBE_SEED):
    """A deterministic, zero-mean, unit-std brown-noise signal ``[1, T]``.

    Arguments
    ---------
    samples : int
        Length in samples.
    seed : int
        Seed of its private generator (the global RNG is not touched).

    Returns
    -------
    torch.Tensor
        The probe, ``[1, samples]``.

    Example
    -------
    >>> probe = brown_noise_probe(1000)
    >>> probe.shape, round(float(probe.std()), 4)
    (torch.Size([1, 1000]), 1.0)
    >>> bool(torch.equal(probe, brown_noise_probe(1000)))
    True
    """
    generator = torch.Generator().manual_seed(int(seed))
    walk = torch.randn(1, int(samples), generator=generator).cumsum(dim=1)
    walk = walk - walk.mean()
    return walk / walk.std()


def output_input_correlation(model, probe):
    """Pearson correlation of ``model(probe)`` with ``probe``.

    The model runs in training mode (batch statistics: what the first
    training step sees) without gradients; every buffer (BatchNorm running
    statistics) is restored afterwards and the mode is put back.

    Arguments
    ---------
    model : torch.nn.Module
        Maps ``[1, T]`` to ``[1, T]``.
    probe : torch.Tensor
        ``[1, T]`` input.

    Returns
    -------
    float
        The correlation, in [-1, 1] (0 for a constant output).

    Example
    -------
    >>> identity = torch.nn.Identity()
    >>> round(output_input_correlation(identity, brown_noise_probe(100)), 9)
    1.0
    """
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    was_training = model.training
    try:
        model.train()
        with torch.no_grad():
            output = model(probe).reshape(-1).double()
    finally:
        model.train(was_training)
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(buffers[name])
    reference = probe.reshape(-1).double()
    output = output - output.mean()
    reference = reference - reference.mean()
    denominator = output.norm() * reference.norm()
    if float(denominator) == 0.0:
        return 0.0
    return float(output @ reference / denominator)


def orient_output(model, output_layer, probe=None):
    """Negates ``output_layer`` if the model starts anti-correlated.

    ``output_layer`` must be the model's last, linear operation (weight
    and bias both negated negate the output exactly). Deterministic: the
    probe comes from a private generator, so the global RNG state, and
    therefore every module built after the model, is unchanged.

    Arguments
    ---------
    model : torch.nn.Module
        A freshly initialised model mapping ``[1, T]`` to ``[1, T]``.
    output_layer : torch.nn.Module
        Its final layer (``weight`` and optional ``bias``).
    probe : torch.Tensor, optional
        ``[1, T]`` input (default :func:`brown_noise_probe`).

    Returns
    -------
    bool
        Whether the layer was negated.

    Example
    -------
    >>> nn = torch.nn
    >>> net = nn.Sequential(nn.Conv1d(1, 1, 1, bias=False))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.fill_(-0.5)
    >>> model = nn.Sequential(nn.Unflatten(0, (1, 1)), net, nn.Flatten(0))
    >>> orient_output(model, net[0]), float(net[0].weight.detach())
    (True, 0.5)
    >>> orient_output(model, net[0])
    False
    """
    probe = brown_noise_probe() if probe is None else probe
    if output_input_correlation(model, probe) >= 0:
        return False
    with torch.no_grad():
        output_layer.weight.neg_()
        if getattr(output_layer, "bias", None) is not None:
            output_layer.bias.neg_()
    return True
