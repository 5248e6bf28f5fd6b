"""Load checkpoints of the official MANNER code into our MANNER lobe.

The official implementation (winddori2002/MANNER: ``models.MANNER``, MA
block in every layer, and ``models_small.MANNER``, MA block in the deepest
layer only) names its modules differently, and its ``decoder.j`` is the
``j``-th decoder layer from the bottleneck, i.e. our
``decoder.{depth - 1 - j}``. :func:`convert_official_state_dict` maps
every key explicitly (an unknown key is an error, never guessed), and
:func:`load_official_checkpoint` loads a training checkpoint
(``{'loss', 'state_dict', 'optimizer'}``) or a bare state dict strictly.
``pytest tests/test_manner_golden.py`` proves that the loaded lobe
computes what the official model computes.
"""

import os
import re

#: Top-level official modules -> our modules.
TOP_MODULES = {
    "in_conv.0": "in_conv.conv",
    "in_conv.1": "in_conv.norm",
    "linear.0": "bottleneck",
    "mask_gate.output.0": "mask_gate.conv_tanh",
    "mask_gate.output_gate.0": "mask_gate.conv_sigmoid",
    "mask_gate.mask.0": "mask_gate.conv_out",
    "out_conv.0": "out_conv",
}

#: Modules of an official ResCon (``conv_block``) -> ours (``rescon``).
RESCON_MODULES = {
    "point_conv1.0.conv": "pointwise1.0",
    "point_conv1.1": "pointwise1.1",
    "depth_conv.0.conv": "depthwise.0",
    "depth_conv.1": "depthwise.1",
    "point_conv2.0.conv": "pointwise2.0",
    "point_conv2.1": "pointwise2.1",
    "conv.conv": "conv.conv",
    "conv.bn": "conv.norm",
    "shortcut.conv": "shortcut.conv",
    "shortcut.bn": "shortcut.norm",
}

#: Modules of an official MA block (``attn_block``) -> ours
#: (``attention``). Branch 0 is the channel view, 1 global, 2 local.
ATTENTION_MODULES = {
    "in_branch0.conv": "channel_proj.conv",
    "in_branch0.bn": "channel_proj.norm",
    "in_branch1.conv": "global_proj.conv",
    "in_branch1.bn": "global_proj.norm",
    "in_branch2.conv": "local_proj.conv",
    "in_branch2.bn": "local_proj.norm",
    "channel_attn.fc.0": "channel_attention.mlp.0",
    "channel_attn.fc.2": "channel_attention.mlp.2",
    "global_attn.w_qs": "global_attention.query",
    "global_attn.w_ks": "global_attention.key",
    "global_attn.w_vs": "global_attention.value",
    "global_attn.fc": "global_attention.out",
    "local_attn.depth_conv.0.conv": "local_attention.depthwise.0",
    "local_attn.depth_conv.1": "local_attention.depthwise.1",
    "local_attn.conv.conv": "local_attention.spatial.conv",
    "local_attn.conv.bn": "local_attention.spatial.norm",
    "out_branch0.conv": "channel_conv.conv",
    "out_branch0.bn": "channel_conv.norm",
    "out_branch1.conv": "global_conv.conv",
    "out_branch1.bn": "global_conv.norm",
    "out_branch2.conv": "local_conv.conv",
    "out_branch2.bn": "local_conv.norm",
    "conv.conv": "out.conv",
    "conv.bn": "out.norm",
    "shortcut.conv": "shortcut.conv",
    "shortcut.bn": "shortcut.norm",
    "output_tanh.0": "gate.conv_tanh",
    "output_sigmoid.0": "gate.conv_sigmoid",
    "gate_conv.0": "gate.conv_out",
}

#: Modules of an official encoder / decoder layer -> ours (same layer).
LAYER_MODULES = {
    "down_conv.0": "down.conv",
    "down_conv.1": "down.norm",
    "up_conv.0": "up.conv",
    "up_conv.1": "up.norm",
    **{
        f"conv_block.{theirs}": f"rescon.{ours}"
        for theirs, ours in RESCON_MODULES.items()
    },
    **{
        f"attn_block.{theirs}": f"attention.{ours}"
        for theirs, ours in ATTENTION_MODULES.items()
    },
}

#: Parameter and buffer names kept as they are (conv, linear, BatchNorm).
LEAVES = (
    "weight",
    "bias",
    "running_mean",
    "running_var",
    "num_batches_tracked",
)

#: Our MANNER presets (``hparams/models/manner_*.yaml``) by architecture.
KNOWN_PRESETS = {
    "manner_b": dict(channels=60, depth=4, attention_layers=(0, 1, 2, 3)),
    "manner_s": dict(channels=60, depth=4, attention_layers=(3,)),
    "manner_l": dict(channels=120, depth=4, attention_layers=(0, 1, 2, 3)),
    "manner_s_1.5gf": dict(channels=12, depth=3, attention_layers=(2,)),
    "manner_s_5.3gf": dict(channels=24, depth=3, attention_layers=(2,)),
    "manner_s_8.1gf": dict(channels=30, depth=3, attention_layers=(2,)),
}

#: Arguments of a preset that our presets leave at the MANNER defaults.
PRESET_DEFAULTS = dict(
    in_channels=1,
    out_channels=1,
    kernel_size=8,
    stride=4,
    chunk_size=64,
    conv_kernel_size=31,
    growth=2,
)

_LAYER_KEY = re.compile(r"^(encoder|decoder)\.(\d+)\.(.+)$")
_PREFIXES = ("module.", "manner_block.")


def _strip_prefixes(key):
    """Removes ``module.`` (DataParallel / DDP) and ``manner_block.``."""
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def _split_leaf(key):
    """Splits ``module.path.leaf`` into the module path and a known leaf."""
    module, _, leaf = key.rpartition(".")
    if leaf not in LEAVES or not module:
        raise ValueError(f"unexpected parameter name in official key {key!r}")
    return module, leaf


def _bare_state_dict(state_dict):
    """Official keys without prefixes (``module.``, ``manner_block.``)."""
    if not isinstance(state_dict, dict):
        raise TypeError(
            f"expected a state dict (dict), got {type(state_dict).__name__}"
        )
    if "state_dict" in state_dict and isinstance(
        state_dict["state_dict"], dict
    ):
        state_dict = state_dict["state_dict"]
    return {_strip_prefixes(key): value for key, value in state_dict.items()}


def _official_depth(bare):
    """Number of encoder layers (each has ``down_conv.0.weight``)."""
    layers = set()
    for key in bare:
        match = _LAYER_KEY.match(key)
        if match and match.group(1) == "encoder":
            layers.add(int(match.group(2)))
    if not layers:
        raise ValueError(
            "not an official MANNER state dict: no 'encoder.{i}' keys"
        )
    depth = max(layers) + 1
    if layers != set(range(depth)):
        raise ValueError(f"official encoder layers {sorted(layers)} have gaps")
    return depth


def is_official_checkpoint(checkpoint):
    """Whether ``checkpoint`` was written by the official MANNER code.

    Arguments
    ---------
    checkpoint : object
        A loaded checkpoint: an official training checkpoint
        (``{'loss', 'state_dict', 'optimizer'}``), a state dict, or
        anything else.

    Returns
    -------
    bool
        True when its (inner) state dict has official key names
        (``manner_block.``, optionally after ``module.``).

    Example
    -------
    >>> import torch
    >>> is_official_checkpoint(
    ...     {"state_dict": {"manner_block.in_conv.0.weight": torch.zeros(1)}}
    ... )
    True
    >>> is_official_checkpoint({"in_conv.conv.weight": torch.zeros(1)})
    False
    """
    if not isinstance(checkpoint, dict):
        return False
    inner = checkpoint.get("state_dict", checkpoint)
    if not isinstance(inner, dict):
        return False
    return any(
        str(key).removeprefix("module.").startswith("manner_block.")
        for key in inner
    )


def convert_official_state_dict(state_dict):
    """Maps an official MANNER state dict onto our lobe's key names.

    Every key is translated through the explicit tables
    :data:`TOP_MODULES` and :data:`LAYER_MODULES`; official ``decoder.j``
    becomes our ``decoder.{depth - 1 - j}``. Tensors are not copied.

    Arguments
    ---------
    state_dict : dict
        The official model's ``state_dict()`` (keys
        ``manner_block.encoder.0.attn_block...``, optionally with
        ``module.`` prefixes), or an official training checkpoint
        ``{'loss', 'state_dict', 'optimizer'}`` (its ``state_dict`` is
        used).

    Returns
    -------
    dict
        A state dict for :class:`~speechbrain_kd.lobes.manner.MANNER`
        with the architecture of :func:`preset_for_official_state_dict`.

    Example
    -------
    >>> import torch
    >>> official = {
    ...     "manner_block.encoder.0.down_conv.0.weight": torch.zeros(1),
    ...     "manner_block.decoder.0.up_conv.1.running_var": torch.ones(1),
    ...     "manner_block.linear.0.weight": torch.eye(2),
    ... }
    >>> for key in sorted(convert_official_state_dict(official)):
    ...     print(key)
    bottleneck.weight
    decoder.0.up.norm.running_var
    encoder.0.down.conv.weight
    """
    bare = _bare_state_dict(state_dict)
    depth = _official_depth(bare)
    converted = {}
    for key, value in bare.items():
        module, leaf = _split_leaf(key)
        match = _LAYER_KEY.match(module)
        if match:
            part, index, inner = match.groups()
            index = int(index)
            if part == "decoder":
                if index >= depth:
                    raise ValueError(
                        f"official key {key!r}: decoder layer {index} but "
                        f"only {depth} encoder layers"
                    )
                index = depth - 1 - index
            if inner not in LAYER_MODULES:
                raise ValueError(f"unknown official MANNER key {key!r}")
            target = f"{part}.{index}.{LAYER_MODULES[inner]}"
        elif module in TOP_MODULES:
            target = TOP_MODULES[module]
        else:
            raise ValueError(f"unknown official MANNER key {key!r}")
        converted[f"{target}.{leaf}"] = value
    return converted


def preset_for_official_state_dict(state_dict, stride=4):
    """Our MANNER arguments that fit an official state dict.

    Channels, depth, kernels, growth, chunk size and the layers that carry
    MA blocks are read from the tensor shapes and key names. The stride
    is not stored in the weights: every official model uses 4.

    Arguments
    ---------
    state_dict : dict
        Official state dict or training checkpoint (as for
        :func:`convert_official_state_dict`).
    stride : int
        Stride of the down/up convolutions (not in the weights).

    Returns
    -------
    dict
        Keyword arguments of :class:`~speechbrain_kd.lobes.manner.MANNER`
        (``in_channels``, ``out_channels``, ``channels``, ``depth``,
        ``kernel_size``, ``stride``, ``chunk_size``, ``attention_layers``,
        ``conv_kernel_size``, ``growth``).

    Raises
    ------
    ValueError
        If the encoder and decoder MA blocks are not mirrored (our lobe
        puts one in ``encoder.i`` and ``decoder.i`` together) or the state
        dict is not an official MANNER one.

    Example
    -------
    >>> from speechbrain_kd.lobes.manner import MANNER
    >>> ours = MANNER(channels=12, depth=2, attention_layers=(1,))
    >>> official = official_state_dict(ours)
    >>> preset = preset_for_official_state_dict(official)
    >>> preset["channels"], preset["depth"], preset["attention_layers"]
    (12, 2, (1,))
    """
    bare = _bare_state_dict(state_dict)
    depth = _official_depth(bare)

    def shape(key):
        """The shape of an official parameter, or a clear error."""
        if key not in bare:
            raise ValueError(f"official MANNER state dict lacks {key!r}")
        return tuple(bare[key].shape)

    channels, in_channels, _ = shape("in_conv.0.weight")
    out_channels = shape("out_conv.0.weight")[0]
    kernel_size = shape("encoder.0.down_conv.0.weight")[-1]
    conv_kernel_size = shape("encoder.0.conv_block.depth_conv.0.conv.weight")[
        -1
    ]
    growth, remainder = divmod(
        shape("encoder.0.conv_block.shortcut.conv.weight")[0], channels
    )
    if remainder:
        raise ValueError(
            "official encoder.0 widens "
            f"{channels} -> {channels * growth + remainder} channels: not a "
            "whole growth factor"
        )
    encoder_ma, decoder_ma = set(), set()
    chunk_size = PRESET_DEFAULTS["chunk_size"]
    for key in bare:
        match = _LAYER_KEY.match(key)
        if match and match.group(3) == "attn_block.global_attn.w_qs.weight":
            part, index = match.group(1), int(match.group(2))
            if part == "encoder":
                encoder_ma.add(index)
            else:
                decoder_ma.add(depth - 1 - index)
            chunk_size = tuple(bare[key].shape)[0]
    if encoder_ma != decoder_ma:
        raise ValueError(
            "official MA blocks are not mirrored: encoder layers "
            f"{sorted(encoder_ma)}, decoder layers (ours) "
            f"{sorted(decoder_ma)}; our MANNER puts an MA block in "
            "encoder.i and decoder.i together"
        )
    return dict(
        in_channels=int(in_channels),
        out_channels=int(out_channels),
        channels=int(channels),
        depth=int(depth),
        kernel_size=int(kernel_size),
        stride=int(stride),
        chunk_size=int(chunk_size),
        attention_layers=tuple(sorted(encoder_ma)),
        conv_kernel_size=int(conv_kernel_size),
        growth=int(growth),
    )


def preset_name(preset):
    """Name of our preset file with these MANNER arguments, if any.

    Arguments
    ---------
    preset : dict
        MANNER keyword arguments (as from
        :func:`preset_for_official_state_dict`).

    Returns
    -------
    str or None
        ``"manner_s"`` etc. (``hparams/models/<name>.yaml``), or ``None``.

    Example
    -------
    >>> preset_name(dict(channels=60, depth=4, attention_layers=(3,)))
    'manner_s'
    >>> preset_name(dict(channels=12, depth=4, attention_layers=(3,))) is None
    True
    """
    for name, known in KNOWN_PRESETS.items():
        full = {**PRESET_DEFAULTS, **known}
        if all(
            full[key] == (tuple(value) if key == "attention_layers" else value)
            for key, value in preset.items()
            if key in full
        ):
            return name
    return None


def _describe(preset):
    """``MANNER(...)`` call text, plus the preset file name if one fits."""
    arguments = ", ".join(f"{key}={value!r}" for key, value in preset.items())
    name = preset_name(preset)
    where = f" (preset hparams/models/{name}.yaml)" if name else ""
    return f"MANNER({arguments}){where}"


def _model_preset(model):
    """The architecture arguments of a MANNER instance."""
    shapes = model.state_dict()
    preset = dict(
        in_channels=model.in_channels,
        out_channels=model.out_channels,
        channels=model.channels,
        depth=model.depth,
        kernel_size=model.kernel_size,
        stride=model.stride,
        chunk_size=model.chunk_size,
        attention_layers=tuple(model.attention_layers),
        conv_kernel_size=shapes["encoder.0.rescon.depthwise.0.weight"].shape[
            -1
        ],
        growth=model.growth,
    )
    return preset


def load_official_checkpoint(checkpoint, model, stride=None):
    """Loads an official MANNER checkpoint into our MANNER, strictly.

    Arguments
    ---------
    checkpoint : str, os.PathLike or dict
        Path of a file saved by the official code (a training checkpoint
        ``{'loss': float, 'state_dict': ..., 'optimizer': ...}`` or a
        bare state dict, optionally with ``module.`` prefixes), or such a
        dict already loaded.
    model : speechbrain_kd.lobes.manner.MANNER
        The model to load into (in place); its architecture must be the
        checkpoint's.
    stride : int or None
        Stride the checkpoint was trained with (not stored in the
        weights); ``None`` accepts the model's.

    Returns
    -------
    speechbrain_kd.lobes.manner.MANNER
        ``model``, with the official weights and BatchNorm statistics.

    Raises
    ------
    ValueError
        If the checkpoint does not fit ``model``; the message names the
        MANNER arguments (and our preset file, if one) that would fit.

    Example
    -------
    >>> import torch
    >>> import textwrap
    >>> from speechbrain_kd.lobes.manner import MANNER
    >>> source = MANNER(channels=12, depth=2, attention_layers=(1,))
    >>> file = {
    ...     "loss": 0.5,
    ...     "state_dict": official_state_dict(source),
    ...     "optimizer": {},
    ... }
    >>> target = MANNER(channels=12, depth=2, attention_layers=(1,))
    >>> _ = load_official_checkpoint(file, target)
    >>> bool(torch.equal(target.out_conv.weight, source.out_conv.weight))
    True
    >>> other = MANNER(channels=12, depth=2, attention_layers=(0, 1))
    >>> try:
    ...     load_official_checkpoint(file, other)
    ... except ValueError as error:
    ...     print(textwrap.fill(str(error), 72))
    official checkpoint does not fit the given model (it has
    attention_layers=(0, 1)): it needs MANNER(in_channels=1, out_channels=1,
    channels=12, depth=2, kernel_size=8, stride=4, chunk_size=64,
    attention_layers=(1,), conv_kernel_size=31, growth=2)
    """
    if isinstance(checkpoint, (str, os.PathLike)):
        from speechbrain_kd.pretrained.folder import read_parameters

        checkpoint = read_parameters(checkpoint)
    ours = _model_preset(model)
    needed = preset_for_official_state_dict(
        checkpoint, stride=ours["stride"] if stride is None else stride
    )
    if not needed["attention_layers"]:
        # Without MA blocks the chunk size is not in the weights.
        needed["chunk_size"] = ours["chunk_size"]
    if needed != ours:
        different = ", ".join(
            f"{key}={value!r}"
            for key, value in ours.items()
            if needed[key] != value
        )
        raise ValueError(
            f"official checkpoint does not fit the given model (it has "
            f"{different}): it needs {_describe(needed)}"
        )
    converted = convert_official_state_dict(checkpoint)
    try:
        model.load_state_dict(converted, strict=True)
    except RuntimeError as error:  # same preset, yet other keys or shapes
        raise ValueError(
            f"official checkpoint does not fit this MANNER (it needs "
            f"{_describe(needed)}): {error}"
        ) from None
    return model


def official_state_dict(model):
    """Our MANNER's state dict under the official key names (inverse map).

    Useful to write checkpoints the official code can load, and to test
    the converter round trip.

    Arguments
    ---------
    model : speechbrain_kd.lobes.manner.MANNER
        The model.

    Returns
    -------
    dict
        Keys ``manner_block....`` as in the official ``state_dict()``.

    Example
    -------
    >>> from speechbrain_kd.lobes.manner import MANNER
    >>> model = MANNER(channels=12, depth=2, attention_layers=(1,))
    >>> official = official_state_dict(model)
    >>> "manner_block.decoder.0.attn_block.global_attn.w_qs.weight" in official
    True
    >>> convert_official_state_dict(
    ...     official
    ... ).keys() == model.state_dict().keys()
    True
    """
    top = {ours: theirs for theirs, ours in TOP_MODULES.items()}
    layer = {ours: theirs for theirs, ours in LAYER_MODULES.items()}
    depth = model.depth
    official = {}
    for key, value in model.state_dict().items():
        module, _, leaf = key.rpartition(".")
        match = _LAYER_KEY.match(module)
        if match:
            part, index, inner = match.groups()
            index = int(index)
            if part == "decoder":
                index = depth - 1 - index
            source = f"{part}.{index}.{layer[inner]}"
        else:
            source = top[module]
        official[f"manner_block.{source}.{leaf}"] = value
    return official
