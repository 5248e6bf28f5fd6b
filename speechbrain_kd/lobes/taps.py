"""The distillation taps a U-Net lobe offers (MANNER, RT-SENet).

A lobe says which of its modules may be tapped; pair builders such as
:func:`speechbrain_kd.distill.mvat_pairs` ask it, so the distillation
code holds no model's module paths.
"""

from torch import nn

SIDES = ("encoder", "decoder")
BLOCK = "block"
#: The module path of a lobe's deepest representation.
LATENT = "latent"


class LatentTap(nn.Identity):
    """Marks a lobe's latent: the bottleneck's output ``[batch, channels,
    frames]``, tapped as ``latent`` (no parameters, so state dicts keep
    their keys).

    Example
    -------
    >>> import torch
    >>> LatentTap()(torch.ones(1, 2, 3)).shape
    torch.Size([1, 2, 3])
    """


class UNetTaps:
    """Mixin: taps of a lobe with ``encoder`` / ``decoder`` layer lists and
    multi-view attention (MA) blocks at ``attention_layers``.

    Kinds: ``block`` (the output of ``encoder.{i}`` / ``decoder.{i}``) and,
    at layers with an MA block, each of :attr:`attention_views` (the
    channel, global and local attention outputs). The bottleneck's output
    is the tap :data:`LATENT` (``latent``, ``[batch, channels, frames]``).

    Example
    -------
    >>> from speechbrain_kd.lobes.manner import MANNER
    >>> model = MANNER(channels=6, depth=3, attention_layers=[2])
    >>> model.tap_path("decoder", 1)
    'decoder.1'
    >>> model.tap_path("encoder", 2, "local_view")
    'encoder.2.attention.local_view'
    >>> len(model.tap_paths())  # 6 blocks + 2 x 3 views + the latent
    13
    """

    attention_views = ("channel_view", "global_view", "local_view")

    def tap_path(self, side, layer, kind=BLOCK):
        """The module path of one tap.

        Arguments
        ---------
        side : str
            ``encoder`` or ``decoder``.
        layer : int
            0-based depth index (0 outermost; ``decoder.i`` mirrors
            ``encoder.i``).
        kind : str
            ``block`` or one of :attr:`attention_views`.

        Returns
        -------
        str
            A path of ``named_modules()``.

        Raises
        ------
        ValueError
            For a side, layer or kind this model does not have, saying
            what it has.
        """
        name = type(self).__name__
        if side not in SIDES:
            raise ValueError(f"{name} taps: side must be one of {SIDES}")
        layer = int(layer)
        depth = len(getattr(self, side))
        if not 0 <= layer < depth:
            raise ValueError(
                f"{name} has layers 0..{depth - 1}, not {side}.{layer}"
            )
        if kind == BLOCK:
            return f"{side}.{layer}"
        if kind not in self.attention_views:
            raise ValueError(
                f"{name} taps are {(BLOCK, *self.attention_views)}, "
                f"not {kind!r}"
            )
        if layer not in self.attention_layers:
            raise ValueError(
                f"{name} {side}.{layer} has no MA block (its {kind} "
                f"exists at layers {tuple(self.attention_layers)})"
            )
        return f"{side}.{layer}.attention.{kind}"

    def tap_paths(self):
        """Every module path this model offers for distillation.

        Returns
        -------
        list of str
            Blocks, then attention views (encoder first), then the latent.
        """
        paths = []
        for side in SIDES:
            paths += [self.tap_path(side, i) for i in range(len(self.encoder))]
        for side in SIDES:
            for layer in self.attention_layers:
                paths += [
                    self.tap_path(side, layer, view)
                    for view in self.attention_views
                ]
        return paths + [LATENT]
