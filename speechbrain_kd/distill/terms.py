"""Distillation terms: one protocol for every KD method.

Every term is an ``nn.Module`` called with a :class:`DistillStep` (the
student's and teacher's outputs, their tapped features and the batch) and
returns its weighted loss. A term computes either a scalar or one value
per utterance; per-utterance values are multiplied by the step's
``sample_weights[term.name]`` when a Brain sets them (KDRL) and reduced
over the batch. Terms are modules of the student run
(:class:`DistillTerms`): their parameters (a projection, say) are trained
with the student, checkpointed and DDP-wrapped, and not exported.
"""

import dataclasses
import inspect
import types

import torch
import torch.nn as nn

from speechbrain.dataio.batch import PaddedData

_REDUCTIONS = ("mean", "sum")
_TARGETS = ("teacher", "clean")


@dataclasses.dataclass
class DistillStep:
    """What a distillation term sees of one training step.

    Arguments
    ---------
    batch : speechbrain.dataio.batch.PaddedBatch
        The batch (``id``, ``noisy_sig``, ``clean_sig`` and any other key).
    student_input : torch.Tensor
        What the student received.
    teacher_input : torch.Tensor
        What the teacher received (by default the student's input).
    lengths : torch.Tensor
        Relative lengths ``[B]`` of the student's input.
    student_out : torch.Tensor
        The student's output (enhanced waveforms).
    teacher_out : torch.Tensor, optional
        The teacher's output.
    student_features : dict
        Tap name -> student feature.
    teacher_features : dict
        Tap name -> teacher feature.
    sample_weights : dict
        Term name -> per-utterance weights ``[B]`` (set by a Brain).
    bad_student_features : dict
        Tap name -> feature of a frozen "bad student" (spatial injection).

    Example
    -------
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> batch = PaddedBatch(
    ...     [
    ...         {
    ...             "id": "a",
    ...             "noisy_sig": torch.ones(4),
    ...             "clean_sig": torch.zeros(4),
    ...         }
    ...     ]
    ... )
    >>> step = DistillStep.for_batch(batch, student_out=torch.ones(1, 4))
    >>> step.ids, step.clean.shape, step.batch_size
    (['a'], torch.Size([1, 4]), 1)
    """

    batch: object
    student_input: torch.Tensor
    teacher_input: torch.Tensor
    lengths: torch.Tensor
    student_out: torch.Tensor
    teacher_out: torch.Tensor | None = None
    student_features: dict = dataclasses.field(default_factory=dict)
    teacher_features: dict = dataclasses.field(default_factory=dict)
    sample_weights: dict = dataclasses.field(default_factory=dict)
    bad_student_features: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def for_batch(
        cls, batch, student_key="noisy_sig", teacher_key=None, **fields
    ):
        """A step whose inputs are read from ``batch`` by key.

        Arguments
        ---------
        batch : PaddedBatch
            The batch.
        student_key : str
            Batch key of the student's input.
        teacher_key : str, optional
            Batch key of the teacher's input (default: the student's).
        **fields : dict
            The other fields (``student_out`` at least).

        Returns
        -------
        DistillStep
            The step.
        """
        student_input, lengths = getattr(batch, student_key)
        teacher_input = (
            student_input
            if teacher_key in (None, student_key)
            else getattr(batch, teacher_key).data
        )
        return cls(
            batch=batch,
            student_input=student_input,
            teacher_input=teacher_input,
            lengths=lengths,
            **fields,
        )

    @classmethod
    def from_tensors(
        cls, student_input, clean=None, lengths=None, ids=None, **fields
    ):
        """A step built from tensors (to call a term outside a Brain).

        Arguments
        ---------
        student_input : torch.Tensor
            The (noisy) input ``[B, ...]``; also the teacher's input.
        clean : torch.Tensor, optional
            Clean targets (default: zeros like the input).
        lengths : torch.Tensor, optional
            Relative lengths (default: ones).
        ids : list of str, optional
            Utterance ids (default ``u0``, ``u1``, ...).
        **fields : dict
            The other fields (``student_out``, features, ...).

        Returns
        -------
        DistillStep
            The step.

        Example
        -------
        >>> step = DistillStep.from_tensors(
        ...     torch.ones(2, 4), student_features={"enc": torch.ones(2)}
        ... )
        >>> step.ids, step.lengths.tolist(), step.student_out
        (['u0', 'u1'], [1.0, 1.0], None)
        """
        size = student_input.shape[0]
        if lengths is None:
            lengths = torch.ones(size, device=student_input.device)
        if clean is None:
            clean = torch.zeros_like(student_input)
        batch = types.SimpleNamespace(
            id=list(ids) if ids is not None else [f"u{i}" for i in range(size)],
            noisy_sig=PaddedData(student_input, lengths),
            clean_sig=PaddedData(clean, lengths),
        )
        fields.setdefault("student_out", None)
        return cls(
            batch=batch,
            student_input=student_input,
            teacher_input=student_input,
            lengths=lengths,
            **fields,
        )

    @property
    def noisy(self):
        """The noisy waveforms of the batch (``noisy_sig``)."""
        return self.batch.noisy_sig.data

    @property
    def clean(self):
        """The clean waveforms of the batch (``clean_sig``)."""
        return self.batch.clean_sig.data

    @property
    def ids(self):
        """The utterance ids of the batch."""
        return list(self.batch.id)

    @property
    def batch_size(self):
        """Number of utterances."""
        return self.student_input.shape[0]


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


class DistillTerm(nn.Module):
    """Base of every distillation term.

    Subclasses implement :meth:`compute` (a scalar, or one value per
    utterance) and may list the module paths they read in
    ``student_taps`` / ``teacher_taps``. A term made of parts may put
    them in ``self.logged`` (name -> detached scalar) while computing; the
    Brain logs each as ``loss_<term>_<part>``.

    Arguments
    ---------
    weight : float
        Multiplier of the term; 0 switches it off (the Brain drops it).
    name : str
        Name under which the Brain logs it (``loss_<name>``).
    reduction : str
        ``mean`` or ``sum`` of per-utterance values over the batch.

    Example
    -------
    >>> class Energy(DistillTerm):
    ...     def compute(self, step):
    ...         return step.student_out.pow(2).mean(dim=-1)  # [B]
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> batch = PaddedBatch(
    ...     [
    ...         {
    ...             "id": i,
    ...             "noisy_sig": torch.ones(2),
    ...             "clean_sig": torch.ones(2),
    ...         }
    ...         for i in "ab"
    ...     ]
    ... )
    >>> step = DistillStep.for_batch(
    ...     batch, student_out=torch.tensor([[1.0, 1.0], [3.0, 3.0]])
    ... )
    >>> Energy(weight=2.0, name="energy")(step).item()
    10.0
    >>> step.sample_weights["energy"] = torch.tensor([1.0, 0.0])
    >>> Energy(weight=2.0, name="energy")(step).item()
    1.0
    """

    student_taps = ()
    teacher_taps = ()

    def __init__(self, weight=1.0, name="term", reduction="mean"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"reduction must be one of {_REDUCTIONS}, got {reduction!r}"
            )
        self.weight = float(weight)
        self.name = str(name)
        self.reduction = reduction
        self.logged = {}

    def compute(self, step):
        """The unweighted loss of ``step``.

        Arguments
        ---------
        step : DistillStep
            The training step.

        Returns
        -------
        torch.Tensor
            A scalar, or ``[B]`` per-utterance values.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement compute(step)"
        )

    def forward(self, step):
        """The weighted (and reduced) loss.

        Arguments
        ---------
        step : DistillStep
            The training step.

        Returns
        -------
        torch.Tensor
            Scalar loss.
        """
        values = self.compute(step)
        if values.dim() == 1:
            weights = step.sample_weights.get(self.name)
            if weights is not None:
                values = values * weights.to(values)
            values = values.mean() if self.reduction == "mean" else values.sum()
        elif values.dim() != 0:
            raise ValueError(
                f"term {self.name!r} returned shape {tuple(values.shape)}: "
                "a scalar or one value per utterance expected"
            )
        return self.weight * values

    def extra_repr(self):
        """The module's settings, for ``print``."""
        return f"name={self.name!r}, weight={self.weight}"


class FeatureDistillTerm(DistillTerm):
    """Feature distillation between tapped student and teacher features.

    The term is ``weight · Σ_pairs Σ_teacher loss(proj(s), t)``: a **sum**
    over pairs and over the teacher taps of each pair, as in MV-AT
    Eq. 3-4 (each (student layer, teacher layer, view) is one summand; a
    pair with two teacher taps is dual-depth matching).

    Arguments
    ---------
    pairs : list of (str, str or list of str)
        ``(student_tap, teacher_taps)``, e.g. from
        :func:`~speechbrain_kd.distill.pairs.mvat_pairs`.
    loss : callable
        ``loss(student_feat, teacher_feat) -> scalar or [B]``; it also
        receives ``length=`` when it accepts that keyword.
    weight : float
        Multiplier of the summed loss.
    name : str
        Name under which the Brain logs the term.
    detach_teacher : bool
        Detach teacher features before the loss (default; a frozen teacher
        gets no gradient). Set False for online/mutual distillation.
    projection : nn.Module or list of nn.Module, optional
        Applied to the student feature before the loss (one module for
        every pair, or one per pair), e.g. a learnable 1×1 convolution from
        the student's width to the teacher's (FitNets). Trained with the
        student, used only in training.
    reduction : str
        Reduction of per-utterance loss values (``mean``).

    Example
    -------
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> from speechbrain_kd.distill.attention import ATLoss
    >>> term = FeatureDistillTerm(
    ...     [("enc", ["t2", "t3"])], ATLoss(), weight=0.5, name="at"
    ... )
    >>> term.student_taps, term.teacher_taps
    (['enc'], ['t2', 't3'])
    >>> x = torch.randn(2, 4, 8)
    >>> batch = PaddedBatch(
    ...     [
    ...         {
    ...             "id": i,
    ...             "noisy_sig": torch.ones(8),
    ...             "clean_sig": torch.ones(8),
    ...         }
    ...         for i in "ab"
    ...     ]
    ... )
    >>> step = DistillStep.for_batch(
    ...     batch,
    ...     student_out=torch.ones(2, 8),
    ...     student_features={"enc": x},
    ...     teacher_features={"t2": x, "t3": x},
    ... )
    >>> term(step).item()
    0.0
    """

    def __init__(
        self,
        pairs,
        loss,
        weight=1.0,
        name="feature",
        detach_teacher=True,
        projection=None,
        reduction="mean",
    ):
        super().__init__(weight=weight, name=name, reduction=reduction)
        self.pairs = _normalise_pairs(pairs)
        self.loss = loss
        self.detach_teacher = bool(detach_teacher)
        self._loss_takes_length = _accepts(loss, "length")
        if isinstance(projection, (list, tuple)):
            if len(projection) != len(self.pairs):
                raise ValueError(
                    f"term {self.name!r}: {len(projection)} projections for "
                    f"{len(self.pairs)} pairs (give one, or one per pair)"
                )
            projection = nn.ModuleList(projection)
        self.projection = projection

    @property
    def student_taps(self):
        """Student module paths the term reads (deduplicated, ordered)."""
        return list(dict.fromkeys(s for s, _ in self.pairs))

    @property
    def teacher_taps(self):
        """Teacher module paths the term reads (deduplicated, ordered)."""
        return list(dict.fromkeys(t for _, ts in self.pairs for t in ts))

    def _project(self, index, feature):
        if self.projection is None:
            return feature
        if isinstance(self.projection, nn.ModuleList):
            return self.projection[index](feature)
        return self.projection(feature)

    def compute(self, step):
        """The summed feature loss.

        Arguments
        ---------
        step : DistillStep
            The training step (its tapped features and lengths).

        Returns
        -------
        torch.Tensor
            A scalar, or ``[B]`` when the loss is per utterance.

        Raises
        ------
        KeyError
            If a needed feature is missing, naming it.
        """
        kwargs = {}
        if step.lengths is not None and self._loss_takes_length:
            kwargs["length"] = step.lengths
        total = 0.0
        for index, (student_name, teacher_names) in enumerate(self.pairs):
            student = _lookup(step.student_features, student_name, "student")
            student = self._project(index, student)
            for teacher_name in teacher_names:
                teacher = _lookup(
                    step.teacher_features, teacher_name, "teacher"
                )
                if self.detach_teacher:
                    teacher = _detach(teacher)
                total = total + self.loss(student, teacher, **kwargs)
        return torch.as_tensor(total)

    def extra_repr(self):
        """The module's settings, for ``print``."""
        return (
            f"name={self.name!r}, weight={self.weight}, pairs={len(self.pairs)}"
        )


class OutputDistillTerm(DistillTerm):
    """Output distillation: the teacher's output (or the clean signal) is
    the target of the student's output.

    With :class:`~speechbrain_kd.losses.WeightedCleanNoiseLoss` and the
    teacher as target this is MANNER's weighted loss against the teacher
    (MV-AT Eq. 4, ``L_KD``).

    Arguments
    ---------
    loss : callable
        ``loss(student_out, target, student_input, length)``; with
        ``pass_noisy=False``, ``loss(student_out, target, length)``.
    weight : float
        Multiplier of the loss.
    name : str
        Name under which the Brain logs the term.
    pass_noisy : bool
        Whether the loss takes the student's input as third argument.
    detach_teacher : bool
        Detach the teacher output (default).
    target : str
        ``teacher`` (default) or ``clean``: a supervised term, e.g. the
        hard-target term of a per-utterance weighting.
    reduction : str
        Reduction of per-utterance loss values (``mean``).

    Example
    -------
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> from speechbrain_kd.losses import WeightedCleanNoiseLoss
    >>> term = OutputDistillTerm(WeightedCleanNoiseLoss(), weight=2.0)
    >>> y = torch.randn(1, 4000)
    >>> batch = PaddedBatch(
    ...     [{"id": "a", "noisy_sig": torch.randn(4000), "clean_sig": y[0]}]
    ... )
    >>> step = DistillStep.for_batch(batch, student_out=y, teacher_out=y)
    >>> term(step).item()
    0.0
    >>> term.name, term.student_taps, term.teacher_taps
    ('output_kd', (), ())
    """

    def __init__(
        self,
        loss,
        weight=1.0,
        name="output_kd",
        pass_noisy=True,
        detach_teacher=True,
        target="teacher",
        reduction="mean",
    ):
        super().__init__(weight=weight, name=name, reduction=reduction)
        if target not in _TARGETS:
            raise ValueError(
                f"target must be one of {_TARGETS}, got {target!r}"
            )
        self.loss = loss
        self.pass_noisy = bool(pass_noisy)
        self.detach_teacher = bool(detach_teacher)
        self.target = target

    def compute(self, step):
        """The output loss.

        Arguments
        ---------
        step : DistillStep
            The training step (outputs, input, lengths; the batch's clean
            signal for ``target="clean"``).

        Returns
        -------
        torch.Tensor
            A scalar, or ``[B]`` when the loss is per utterance.
        """
        if self.target == "clean":
            target = step.clean
        else:
            if step.teacher_out is None:
                raise ValueError(
                    f"term {self.name!r} needs the teacher's output"
                )
            target = step.teacher_out
            if self.detach_teacher:
                target = target.detach()
        if self.pass_noisy:
            value = self.loss(
                step.student_out, target, step.student_input, step.lengths
            )
        else:
            value = self.loss(step.student_out, target, step.lengths)
        return torch.as_tensor(value)

    def extra_repr(self):
        """The module's settings, for ``print``."""
        return f"name={self.name!r}, weight={self.weight}, target={self.target}"


class DistillTerms(nn.ModuleList):
    """The distillation terms of a run, as one module of it.

    Calling it computes every term on a step. The Brain registers it among
    its ``modules`` (so a term's parameters are optimised, moved to the
    device, DDP-wrapped) and in its checkpointer when it has parameters.

    Arguments
    ---------
    terms : iterable of DistillTerm
        The terms; their names must be unique.

    Example
    -------
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> from speechbrain_kd.losses import WeightedCleanNoiseLoss
    >>> terms = DistillTerms([OutputDistillTerm(WeightedCleanNoiseLoss())])
    >>> y = torch.randn(1, 800)
    >>> batch = PaddedBatch(
    ...     [{"id": "a", "noisy_sig": torch.randn(800), "clean_sig": y[0]}]
    ... )
    >>> values = terms(
    ...     DistillStep.for_batch(batch, student_out=y, teacher_out=y)
    ... )
    >>> {name: value.item() for name, value in values.items()}
    {'output_kd': 0.0}
    """

    def __init__(self, terms=()):
        terms = list(terms)
        for term in terms:
            if not isinstance(term, DistillTerm):
                raise TypeError(
                    f"{type(term).__name__} is not a DistillTerm: a "
                    "distillation term derives from "
                    "speechbrain_kd.distill.DistillTerm and takes a "
                    "DistillStep"
                )
        names = [term.name for term in terms]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(
                f"distillation terms need unique names; repeated: {repeated}"
            )
        super().__init__(terms)

    def forward(self, step):
        """Every term's weighted loss.

        Arguments
        ---------
        step : DistillStep
            The training step.

        Returns
        -------
        dict
            Term name -> scalar loss, in order.
        """
        return {term.name: term(step) for term in self}


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
