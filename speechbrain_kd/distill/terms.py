"""Distillation terms declared in yaml: a new KD method is a loss plus yaml.

A term names the features it needs (so the Brain can register
:class:`~speechbrain_kd.distill.taps.FeatureTaps` on student and teacher),
computes one weighted scalar, and carries a ``name`` under which the Brain
logs it. Example hyperparameters::

    distill_terms:
        - !new:speechbrain_kd.distill.FeatureDistillTerm
            name: mvat
            weight: 1.0
            loss: !new:speechbrain_kd.distill.ATLoss
                distance: l1
            pairs: !apply:speechbrain_kd.distill.mvat_pairs
                student_layers: [2]
                teacher_layers: [[2, 3]]
        - !new:speechbrain_kd.distill.OutputDistillTerm
            name: output_kd
            weight: 1.0
            loss: !new:speechbrain_kd.losses.WeightedCleanNoiseLoss
"""

import inspect

import torch.nn as nn


def _accepts(function, argument):
    """Whether ``function`` takes a keyword ``argument`` (or ``**kwargs``)."""
    target = function.forward if isinstance(function, nn.Module) else function
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    if argument in parameters:
        return True
    return any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def _detach(value):
    if isinstance(value, (list, tuple)):
        return [_detach(v) for v in value]
    return value.detach() if hasattr(value, "detach") else value


def _normalise_pairs(pairs):
    normalised = []
    for pair in pairs:
        try:
            student, teachers = pair
        except (TypeError, ValueError):
            raise ValueError(
                f"each pair must be (student_tap, teacher_taps), got {pair!r}"
            ) from None
        if isinstance(teachers, str):
            teachers = [teachers]
        teachers = [str(t) for t in teachers]
        if not teachers:
            raise ValueError(f"pair for {student!r} has no teacher tap")
        normalised.append((str(student), teachers))
    if not normalised:
        raise ValueError("a FeatureDistillTerm needs at least one pair")
    return normalised


def _lookup(features, name, side):
    try:
        return features[name]
    except KeyError:
        available = sorted(features) if hasattr(features, "keys") else []
        raise KeyError(
            f"{side} feature {name!r} is missing; captured {side} features: "
            f"{available}. Register it with FeatureTaps (the Brain uses the "
            f"term's {side}_taps)."
        ) from None


class FeatureDistillTerm(nn.Module):
    """Feature distillation between tapped student and teacher features.

    ``forward`` returns ``weight · Σ_pairs Σ_teacher loss(s, t)``: a **sum**
    over pairs and over the teacher taps of each pair, as in MV-AT Eq. 3-4
    (each (student layer, teacher layer, view) is one summand; a pair with
    two teacher taps is dual-depth matching).

    Arguments
    ---------
    pairs : list of (str, str or list of str)
        ``(student_tap, teacher_taps)``, e.g. from
        :func:`~speechbrain_kd.distill.attention.mvat_pairs`.
    loss : callable
        ``loss(student_feat, teacher_feat) -> scalar``; it also receives
        ``length=`` when it accepts that keyword and a length is given.
    weight : float
        Multiplier of the summed loss.
    name : str
        Name under which the Brain logs the term.
    detach_teacher : bool
        Detach teacher features before the loss (default; a frozen teacher
        gets no gradient). Set False for online/mutual distillation.

    Example
    -------
    >>> import torch
    >>> from speechbrain_kd.distill.attention import ATLoss
    >>> term = FeatureDistillTerm(
    ...     [("enc", ["t2", "t3"])], ATLoss(), weight=0.5, name="at"
    ... )
    >>> term.student_taps, term.teacher_taps
    (['enc'], ['t2', 't3'])
    >>> x = torch.randn(2, 4, 8)
    >>> term({"enc": x}, {"t2": x, "t3": x}).item()
    0.0
    """

    def __init__(
        self, pairs, loss, weight=1.0, name="feature", detach_teacher=True
    ):
        super().__init__()
        self.pairs = _normalise_pairs(pairs)
        self.loss = loss
        self.weight = float(weight)
        self.name = str(name)
        self.detach_teacher = bool(detach_teacher)
        self._loss_takes_length = _accepts(loss, "length")

    @property
    def student_taps(self):
        """Student module paths the term reads (deduplicated, ordered)."""
        return list(dict.fromkeys(s for s, _ in self.pairs))

    @property
    def teacher_taps(self):
        """Teacher module paths the term reads (deduplicated, ordered)."""
        return list(dict.fromkeys(t for _, ts in self.pairs for t in ts))

    def forward(self, student_features, teacher_features, length=None):
        """Computes the weighted distillation loss.

        Arguments
        ---------
        student_features : dict
            Tap name -> student feature (e.g. ``FeatureTaps.features``).
        teacher_features : dict
            Tap name -> teacher feature.
        length : torch.Tensor, optional
            Relative lengths ``[B]``, passed to a loss accepting ``length``.

        Returns
        -------
        torch.Tensor
            Scalar loss.

        Raises
        ------
        KeyError
            If a needed feature is missing, naming it.
        """
        kwargs = {}
        if length is not None and self._loss_takes_length:
            kwargs["length"] = length
        total = 0.0
        for student_name, teacher_names in self.pairs:
            student = _lookup(student_features, student_name, "student")
            for teacher_name in teacher_names:
                teacher = _lookup(teacher_features, teacher_name, "teacher")
                if self.detach_teacher:
                    teacher = _detach(teacher)
                total = total + self.loss(student, teacher, **kwargs)
        return self.weight * total

    def extra_repr(self):
        return (
            f"name={self.name!r}, weight={self.weight}, pairs={len(self.pairs)}"
        )


class OutputDistillTerm(nn.Module):
    """Output distillation: the teacher's output is the target.

    ``forward`` returns ``weight · loss(student_out, teacher_out, noisy,
    length)``; with :class:`~speechbrain_kd.losses.WeightedCleanNoiseLoss`
    this is MANNER's weighted loss against the teacher (MV-AT Eq. 4,
    ``L_KD``).

    Arguments
    ---------
    loss : callable
        ``loss(student_out, teacher_out, noisy, length)``; with
        ``pass_noisy=False``, ``loss(student_out, teacher_out, length)``.
    weight : float
        Multiplier of the loss.
    name : str
        Name under which the Brain logs the term.
    pass_noisy : bool
        Whether the loss takes the noisy input as third argument.
    detach_teacher : bool
        Detach the teacher output (default).

    Example
    -------
    >>> import torch
    >>> from speechbrain_kd.losses import WeightedCleanNoiseLoss
    >>> term = OutputDistillTerm(WeightedCleanNoiseLoss(), weight=2.0)
    >>> y, x = torch.randn(1, 4000), torch.randn(1, 4000)
    >>> term(y, y, x).item()
    0.0
    >>> term.name, term.student_taps, term.teacher_taps
    ('output_kd', [], [])
    """

    student_taps = []
    teacher_taps = []

    def __init__(
        self,
        loss,
        weight=1.0,
        name="output_kd",
        pass_noisy=True,
        detach_teacher=True,
    ):
        super().__init__()
        self.loss = loss
        self.weight = float(weight)
        self.name = str(name)
        self.pass_noisy = bool(pass_noisy)
        self.detach_teacher = bool(detach_teacher)

    def forward(self, student_out, teacher_out, noisy, length=None):
        """Computes the weighted output-distillation loss.

        Arguments
        ---------
        student_out : torch.Tensor
            Student output waveforms.
        teacher_out : torch.Tensor
            Teacher output waveforms (the target).
        noisy : torch.Tensor
            The noisy input.
        length : torch.Tensor, optional
            Relative lengths ``[B]``.

        Returns
        -------
        torch.Tensor
            Scalar loss.
        """
        if self.detach_teacher:
            teacher_out = teacher_out.detach()
        if self.pass_noisy:
            value = self.loss(student_out, teacher_out, noisy, length)
        else:
            value = self.loss(student_out, teacher_out, length)
        return self.weight * value

    def extra_repr(self):
        return f"name={self.name!r}, weight={self.weight}"


def collect_taps(terms):
    """The student and teacher taps needed by a list of terms.

    Arguments
    ---------
    terms : iterable
        Distillation terms; those without ``student_taps`` /
        ``teacher_taps`` contribute nothing.

    Returns
    -------
    tuple of (list of str, list of str)
        ``(student_taps, teacher_taps)``, deduplicated, first-seen order.

    Example
    -------
    >>> a = FeatureDistillTerm([("s1", "t1"), ("s2", ["t1", "t2"])], None)
    >>> b = FeatureDistillTerm([("s1", "t3")], None)
    >>> collect_taps([a, b, OutputDistillTerm(None)])
    (['s1', 's2'], ['t1', 't2', 't3'])
    """
    student, teacher = {}, {}
    for term in terms or []:
        student.update(dict.fromkeys(getattr(term, "student_taps", [])))
        teacher.update(dict.fromkeys(getattr(term, "teacher_taps", [])))
    return list(student), list(teacher)
