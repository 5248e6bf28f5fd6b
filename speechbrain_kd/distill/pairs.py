"""(student tap, teacher taps) pairs, built by asking the models.

A model offers its taps through ``tap_path(side, layer, kind)`` and the
names of its attention views through ``attention_views`` (see
:class:`speechbrain_kd.lobes.taps.UNetTaps`); these builders hold no
model's module paths.
"""

SIDES = ("encoder", "decoder")


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _layer_lists(student_layers, teacher_layers):
    student_layers = [int(i) for i in _as_list(student_layers)]
    if teacher_layers is None:
        teacher_layers = [[i] for i in student_layers]
    teacher_layers = [
        [int(j) for j in _as_list(t)] for t in _as_list(teacher_layers)
    ]
    if len(student_layers) != len(teacher_layers):
        raise ValueError(
            f"{len(student_layers)} student layers but "
            f"{len(teacher_layers)} teacher layer groups: give one teacher "
            "layer (or list of layers) per student layer"
        )
    for group in teacher_layers:
        if not group:
            raise ValueError("each student layer needs a teacher layer")
    return student_layers, teacher_layers


def _tappable(model, role):
    if not callable(getattr(model, "tap_path", None)):
        raise TypeError(
            f"the {role} ({type(model).__name__}) does not say which modules "
            "may be tapped (no tap_path method): give explicit pairs of "
            "module paths instead"
        )
    return model


def layer_pairs(student, teacher, student_layers, teacher_layers, kinds, sides):
    """Pairs of the same tap kinds of student and teacher layers.

    Arguments
    ---------
    student : nn.Module
        The student (with ``tap_path``).
    teacher : nn.Module
        The teacher (with ``tap_path``).
    student_layers : int or list of int
        Student depth indices.
    teacher_layers : list of (int or list of int), optional
        Teacher layer(s) per student layer (default: the same indices).
    kinds : sequence of str
        Tap kinds paired one to one (``block``, or attention views).
    sides : sequence of str
        ``encoder`` and/or ``decoder``.

    Returns
    -------
    list of (str, list of str)
        ``(student_tap, teacher_taps)``; side, then layer, then kind.

    Example
    -------
    >>> from speechbrain_kd.lobes.manner import MANNER
    >>> s = MANNER(channels=6, depth=3, attention_layers=[2])
    >>> t = MANNER(channels=6, depth=4, attention_layers=[0, 1, 2, 3])
    >>> layer_pairs(s, t, [2], [[2, 3]], ["block"], ["decoder"])
    [('decoder.2', ['decoder.2', 'decoder.3'])]
    """
    _tappable(student, "student")
    _tappable(teacher, "teacher")
    student_layers, teacher_layers = _layer_lists(
        student_layers, teacher_layers
    )
    pairs = []
    for side in _as_list(sides):
        for i, group in zip(student_layers, teacher_layers, strict=True):
            for kind in kinds:
                pairs.append(
                    (
                        _tap_path(student, "student", side, i, kind),
                        [
                            _tap_path(teacher, "teacher", side, j, kind)
                            for j in group
                        ],
                    )
                )
    return pairs


def _tap_path(model, role, side, layer, kind):
    """``model.tap_path``, its error naming the model's role."""
    try:
        return model.tap_path(side, layer, kind)
    except ValueError as error:
        raise ValueError(f"the {role}: {error}") from None


def mvat_pairs(
    student, teacher, student_layers, teacher_layers=None, sides=SIDES
):
    """MV-AT pairs: every attention view of student and teacher layers.

    The views are those the student offers (``attention_views``); the
    teacher must offer the same ones. Usable from yaml with
    ``!apply:speechbrain_kd.distill.mvat_pairs``.

    Arguments
    ---------
    student : nn.Module
        The student.
    teacher : nn.Module
        The teacher.
    student_layers : int or list of int
        Student depth indices carrying an MA block.
    teacher_layers : list of (int or list of int), optional
        Teacher layer(s) per student layer: ``[[2, 3]]`` is dual depth,
        ``[[3]]`` (or ``[3]``) one-to-one. Default: the same indices.
    sides : sequence of str
        ``("encoder", "decoder")`` by default.

    Returns
    -------
    list of (str, list of str)
        ``(student_tap, teacher_taps)`` pairs.

    Example
    -------
    >>> from speechbrain_kd.lobes.manner import MANNER
    >>> s = MANNER(channels=6, depth=3, attention_layers=[2])
    >>> t = MANNER(channels=6, depth=4, attention_layers=[0, 1, 2, 3])
    >>> pairs = mvat_pairs(s, t, [2], [[2, 3]])
    >>> len(pairs), pairs[0]
    (6, ('encoder.2.attention.channel_view', \
['encoder.2.attention.channel_view', 'encoder.3.attention.channel_view']))
    """
    views = tuple(getattr(_tappable(student, "student"), "attention_views", ()))
    theirs = tuple(
        getattr(_tappable(teacher, "teacher"), "attention_views", ())
    )
    if not views or views != theirs:
        raise ValueError(
            f"MV-AT pairs the attention views of student and teacher: the "
            f"student ({type(student).__name__}) offers {views}, the teacher "
            f"({type(teacher).__name__}) {theirs}"
        )
    return layer_pairs(
        student, teacher, student_layers, teacher_layers, views, sides
    )


def single_view_pairs(
    student, teacher, student_layers, teacher_layers=None, sides=SIDES
):
    """Pairs of whole encoder/decoder layer outputs (``block`` taps).

    The MV-AT ablation "single-view AT" and CNNC-Distill distil the
    output features of encoder/decoder blocks.

    Arguments
    ---------
    student : nn.Module
        The student.
    teacher : nn.Module
        The teacher.
    student_layers : int or list of int
        Student depth indices.
    teacher_layers : list of (int or list of int), optional
        Teacher layer(s) per student layer (default: the same indices).
    sides : sequence of str
        ``("encoder", "decoder")`` by default.

    Returns
    -------
    list of (str, list of str)
        ``(student_tap, teacher_taps)`` pairs.

    Example
    -------
    >>> from speechbrain_kd.lobes.manner import MANNER
    >>> s = MANNER(channels=6, depth=3, attention_layers=[2])
    >>> t = MANNER(channels=6, depth=4, attention_layers=[3])
    >>> single_view_pairs(s, t, [1, 2], [[1], [2, 3]], sides=["decoder"])
    [('decoder.1', ['decoder.1']), ('decoder.2', ['decoder.2', 'decoder.3'])]
    """
    return layer_pairs(
        student, teacher, student_layers, teacher_layers, ["block"], sides
    )
