"""The two halves of a streaming STFT step: framing new samples after the
past ones, and overlap-adding output frames onto the previous tail."""

import torch
import torch.nn.functional as F


def frames_after(history, chunk, win, hop):
    """Frames of ``win`` samples every ``hop`` over ``history + chunk``.

    Arguments
    ---------
    history : torch.Tensor
        ``[batch, win - hop]``: the last input samples of the previous step.
    chunk : torch.Tensor
        ``[batch, k * hop]`` new samples.
    win : int
        Frame length.
    hop : int
        Frame hop.

    Returns
    -------
    tuple
        ``[batch, k, win]`` frames and the new history.

    Example
    -------
    >>> frames, history = frames_after(
    ...     torch.zeros(1, 2), torch.arange(4.0)[None], 4, 2
    ... )
    >>> frames.tolist(), history.tolist()
    ([[[0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 2.0, 3.0]]], [[2.0, 3.0]])
    """
    full = torch.cat([history, chunk], dim=-1)
    return full.unfold(-1, win, hop), full[..., full.shape[-1] - (win - hop) :]


def overlap_add_step(frames, tail, hop):
    """Overlap-adds frames (``win = 2 * hop``) after the previous tail.

    Arguments
    ---------
    frames : torch.Tensor
        ``[batch, k, win]`` output frames, ``hop`` apart.
    tail : torch.Tensor
        ``[batch, win - hop]``: what the previous step's last frame adds to
        the samples after it.
    hop : int
        Frame hop.

    Returns
    -------
    tuple
        ``[batch, k * hop]`` finished samples and the new tail.

    Example
    -------
    >>> ready, tail = overlap_add_step(torch.ones(1, 2, 4), torch.ones(1, 2), 2)
    >>> ready.tolist(), tail.tolist()
    ([[2.0, 2.0, 2.0, 2.0]], [[1.0, 1.0]])
    """
    k, win = frames.shape[1], frames.shape[2]
    signal = F.fold(
        frames.transpose(1, 2),
        output_size=(1, (k + 1) * hop),
        kernel_size=(1, win),
        stride=(1, hop),
    )[:, 0, 0]
    signal = signal + F.pad(tail, (0, k * hop))
    return signal[..., : k * hop], signal[..., k * hop :]
