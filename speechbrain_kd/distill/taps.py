"""Feature taps: capture intermediate outputs of a model by module path.

A tap is a forward hook on a submodule named as in ``model.named_modules()``
(for instance ``encoder.2.attention.channel_view``). The hook only stores a
reference to the module's output, so it costs next to nothing and keeps the
autograd graph (student); ``detach=True`` stores a detached reference
instead (teacher).
"""

import difflib

import torch
import torch.nn as nn


def unwrap_model(model):
    """Strips DDP/DataParallel-like wrappers (objects with ``.module``).

    Arguments
    ---------
    model : nn.Module
        A model, possibly wrapped.

    Returns
    -------
    list of nn.Module
        ``[model, model.module, model.module.module, ...]``, outermost
        first.

    Example
    -------
    >>> net = nn.Linear(2, 2)
    >>> [type(m).__name__ for m in unwrap_model(nn.DataParallel(net))]
    ['DataParallel', 'Linear']
    """
    chain = [model]
    while isinstance(getattr(chain[-1], "module", None), nn.Module):
        chain.append(chain[-1].module)
    return chain


def _detach(output):
    if isinstance(output, torch.Tensor):
        return output.detach()
    if isinstance(output, (tuple, list)):
        return type(output)(_detach(o) for o in output)
    if isinstance(output, dict):
        return {key: _detach(value) for key, value in output.items()}
    return output


class FeatureTaps:
    """Forward hooks that record the outputs of named submodules.

    After each forward pass of ``model``, ``taps.features`` maps every tap
    name to the output of that submodule (the latest call, if a module runs
    several times in one forward) and ``taps[name]`` returns one of them.

    A model wrapped by DDP or DataParallel (any object whose ``.module`` is
    an ``nn.Module``) is looked through: names are resolved on the first
    model of the chain ``model, model.module, ...`` that has them all, so
    the same names work with and without the wrapper.

    Arguments
    ---------
    model : nn.Module
        The model to tap (possibly wrapped).
    names : str or sequence of str
        Submodule paths; duplicates are dropped, the order is kept.
    detach : bool
        Store detached outputs (use for a frozen teacher). The default keeps
        the graph so the distillation loss back-propagates into the student.
    role : str, optional
        Which model this is (``student``, ``teacher``), named in errors.

    Raises
    ------
    ValueError
        If a name is not a submodule path; the message lists up to five
        close valid names and the model class.

    Example
    -------
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> with FeatureTaps(net, ["0", "1"]) as taps:
    ...     _ = net(torch.ones(1, 3))
    ...     sorted(taps.features), tuple(taps["1"].shape)
    (['0', '1'], (1, 4))
    """

    def __init__(self, model, names, detach=False, role=None):
        if isinstance(names, str):
            names = [names]
        self.names = list(dict.fromkeys(names))
        self.role = role
        self.detach = bool(detach)
        self.features = {}
        self._handles = []
        self.model = self._resolve(model)
        modules = dict(self.model.named_modules())
        for name in self.names:
            handle = modules[name].register_forward_hook(self._hook(name))
            self._handles.append(handle)

    def _resolve(self, model):
        chain = [m for m in unwrap_model(model) if isinstance(m, nn.Module)]
        if not chain:
            raise TypeError(
                f"cannot tap {type(model).__name__}: not an nn.Module and "
                "no .module attribute holding one"
            )
        for candidate in chain:
            available = {n for n, _ in candidate.named_modules()}
            if all(name in available for name in self.names):
                return candidate
        inner = chain[-1]
        valid = [n for n, _ in inner.named_modules() if n]
        missing = [n for n in self.names if n not in set(valid)]
        lines = []
        for name in missing:
            close = difflib.get_close_matches(name, valid, n=5, cutoff=0.5)
            hint = ", ".join(close) if close else "none"
            lines.append(f"  {name!r} (close names: {hint})")
        owner = type(inner).__name__
        if self.role is not None:
            owner = f"the {self.role} ({owner})"
        raise ValueError(
            f"unknown module path(s) in {owner}:\n"
            + "\n".join(lines)
            + "\nvalid names are those of model.named_modules()"
        )

    def _hook(self, name):
        features = self.features
        if self.detach:

            def hook(module, inputs, output):
                """Stores the module's output under its tap name."""
                features[name] = _detach(output)

        else:

            def hook(module, inputs, output):
                """Stores the module's output under its tap name."""
                features[name] = output

        return hook

    def __getitem__(self, name):
        try:
            return self.features[name]
        except KeyError:
            state = "tapped" if name in self.names else "not tapped"
            raise KeyError(
                f"no feature captured for {name!r} ({state}); "
                f"captured: {sorted(self.features)}"
            ) from None

    def __contains__(self, name):
        return name in self.features

    def __len__(self):
        return len(self.features)

    def clear(self):
        """Forgets the captured features (releases their memory).

        Example
        -------
        >>> net = nn.Linear(2, 2)
        >>> taps = FeatureTaps(net, [""])
        >>> _ = net(torch.ones(1, 2))
        >>> taps.clear()
        >>> len(taps)
        0
        """
        self.features.clear()

    def remove(self):
        """Removes every hook and clears the features.

        Example
        -------
        >>> net = nn.Linear(2, 2)
        >>> taps = FeatureTaps(net, [""])
        >>> taps.remove()
        >>> _ = net(torch.ones(1, 2))
        >>> len(taps)
        0
        """
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.clear()

    @property
    def active(self):
        """Whether the hooks are registered."""
        return bool(self._handles)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False

    def __repr__(self):
        return (
            f"FeatureTaps({type(self.model).__name__}, {self.names}, "
            f"detach={self.detach}, active={self.active})"
        )
