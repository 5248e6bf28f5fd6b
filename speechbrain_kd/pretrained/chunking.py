"""Chunked inference: long inputs enhanced chunk by chunk, cross-faded.

The chunks all have ``chunk`` samples and are spread evenly over the
input so that neighbours overlap by **at least** ``overlap`` samples;
each overlap is cross-faded linearly (one chunk fades out while the next
one fades in, over the whole overlap) and the weighted sum is divided by
the sum of the weights, so the weights sum to 1 everywhere. The model's
activation memory is bounded by the chunk length, not the input length.
An input of at most one chunk is one pass of the model.

Example
-------
>>> wav = torch.randn(1, 100)
>>> out = enhance_in_chunks(lambda x: 2 * x, wav, chunk=40, overlap=10)
>>> torch.allclose(out, 2 * wav)
True
"""

import math

import torch


def check_chunking(chunk_seconds, overlap_seconds):
    """Checks a chunk length and overlap (in seconds).

    Arguments
    ---------
    chunk_seconds : float
        Chunk length (> 0).
    overlap_seconds : float
        Minimum overlap of neighbouring chunks (>= 0, below half a chunk).

    Raises
    ------
    ValueError
        Either is out of range.

    Example
    -------
    >>> check_chunking(4.0, 0.5)
    >>> check_chunking(4.0, 2.0)
    Traceback (most recent call last):
    ...
    ValueError: overlap_seconds must be >= 0 and less than half of \
chunk_seconds (4.0), got 2.0
    """
    if not chunk_seconds > 0:
        raise ValueError(f"chunk_seconds must be > 0, got {chunk_seconds}")
    if not 0 <= overlap_seconds < chunk_seconds / 2:
        raise ValueError(
            f"overlap_seconds must be >= 0 and less than half of "
            f"chunk_seconds ({chunk_seconds}), got {overlap_seconds}"
        )


def chunk_starts(total, chunk, overlap):
    """Start samples of evenly spread chunks covering ``total`` samples.

    Every chunk has ``chunk`` samples, the first starts at 0, the last
    ends at ``total``, and neighbours overlap by at least ``overlap``
    samples (the fewest chunks that allow it).

    Arguments
    ---------
    total : int
        Input length (> ``chunk``).
    chunk : int
        Chunk length.
    overlap : int
        Minimum overlap (< ``chunk / 2``).

    Returns
    -------
    list of int
        The start of each chunk.

    Example
    -------
    >>> chunk_starts(100, 40, 10)
    [0, 30, 60]
    >>> chunk_starts(41, 40, 10)
    [0, 1]
    """
    count = 1 + math.ceil((total - chunk) / (chunk - overlap))
    return [round(i * (total - chunk) / (count - 1)) for i in range(count)]


def crossfade_weights(length, fade_in, fade_out):
    """Overlap-add weights of one chunk: linear fades in and out.

    A fade over ``n`` samples has values ``(k + 0.5) / n``, so a fade-out
    and the fade-in of the next chunk over the same samples sum to 1.

    Arguments
    ---------
    length : int
        Chunk length.
    fade_in : int
        Samples faded in at the start (overlap with the previous chunk).
    fade_out : int
        Samples faded out at the end (overlap with the next chunk).

    Returns
    -------
    torch.Tensor
        ``[length]`` weights in (0, 1].

    Example
    -------
    >>> crossfade_weights(6, 2, 2).tolist()
    [0.25, 0.75, 1.0, 1.0, 0.75, 0.25]
    """
    weights = torch.ones(length)
    if fade_in:
        ramp = (torch.arange(fade_in) + 0.5) / fade_in
        weights[:fade_in] = torch.minimum(weights[:fade_in], ramp)
    if fade_out:
        ramp = (torch.arange(fade_out) + 0.5) / fade_out
        weights[length - fade_out :] = torch.minimum(
            weights[length - fade_out :], ramp.flip(0)
        )
    return weights


def enhance_in_chunks(run, wav, chunk, overlap):
    """Chunked overlap-add enhancement of a ``[1, time]`` waveform.

    Arguments
    ---------
    run : callable
        One pass of the model: ``[1, chunk]`` in, ``[1, chunk]`` out.
    wav : torch.Tensor
        ``[1, time]`` input.
    chunk : int
        Chunk length in samples.
    overlap : int
        Minimum overlap of neighbouring chunks in samples
        (< ``chunk / 2``).

    Returns
    -------
    torch.Tensor
        ``[1, time]`` output on the CPU: ``run(wav)`` itself when the
        input is at most one chunk long.

    Example
    -------
    >>> out = enhance_in_chunks(torch.ones_like, torch.zeros(1, 90), 40, 5)
    >>> out.shape, bool((out - 1).abs().max() < 1e-6)
    (torch.Size([1, 90]), True)
    """
    total = wav.shape[-1]
    if total <= chunk:
        return run(wav).cpu()
    starts = chunk_starts(total, chunk, overlap)
    output = torch.zeros(1, total)
    weight_sum = torch.zeros(total)
    for i, start in enumerate(starts):
        fade_in = starts[i - 1] + chunk - start if i > 0 else 0
        fade_out = start + chunk - starts[i + 1] if i + 1 < len(starts) else 0
        weights = crossfade_weights(chunk, fade_in, fade_out)
        enhanced = run(wav[:, start : start + chunk]).cpu()
        output[:, start : start + chunk] += enhanced * weights
        weight_sum[start : start + chunk] += weights
    return output.div_(weight_sum)
