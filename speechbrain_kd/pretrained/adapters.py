"""The exported model as SpeechBrain's stock interfaces call it."""

from torch import nn


class PairOutput(nn.Module):
    """Returns ``(enhanced, lengths)``: the pair SpeechBrain's stock
    ``WaveformEnhancement`` unpacks (``enhanced_wav, _ = enhance_model(x)``),
    so that it gets the whole batch back instead of its first item.

    The exported folder's ``modules: enhance_model`` is this adapter around
    the model; ``KDEnhancement`` uses the model itself (:func:`unwrap`).

    Arguments
    ---------
    model : torch.nn.Module
        A waveform enhancement model (``[batch, time]`` in and out).

    Example
    -------
    >>> import torch
    >>> adapter = PairOutput(nn.Identity())
    >>> wav, lengths = adapter(torch.ones(2, 5))
    >>> wav.shape, lengths
    (torch.Size([2, 5]), None)
    """

    #: Marks the adapter for :func:`unwrap` (by attribute, not by class:
    #: SpeechBrain's ``foreign_class`` imports ``custom_interface.py``
    #: twice, so its ``PairOutput`` is two classes).
    wraps_enhancement_model = True

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, noisy, lengths=None):
        """Enhances ``noisy``.

        Arguments
        ---------
        noisy : torch.Tensor
            ``[batch, time]``.
        lengths : torch.Tensor, optional
            Relative lengths, passed through.

        Returns
        -------
        tuple
            ``(enhanced, lengths)``.
        """
        return self.model(noisy), lengths


def unwrap(module):
    """The model inside a :class:`PairOutput` (or ``module`` itself).

    Arguments
    ---------
    module : torch.nn.Module
        ``mods.enhance_model`` of a loaded folder.

    Returns
    -------
    torch.nn.Module
        The enhancement model.

    Example
    -------
    >>> inner = nn.Identity()
    >>> unwrap(PairOutput(inner)) is inner, unwrap(inner) is inner
    (True, True)
    """
    return (
        module.model
        if getattr(module, "wraps_enhancement_model", False)
        else module
    )
