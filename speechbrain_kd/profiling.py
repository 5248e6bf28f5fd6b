"""Measure a model: parameters, MACs, real-time factor and peak memory.

Every figure describes **one forward pass** of a model in eval mode under
``torch.no_grad()``, on an example input of a given length in seconds.

Input signature
---------------
By default a model is a waveform model: it takes one float tensor of
shape ``[batch, time]`` with ``batch = 1`` and
``time = round(seconds * sample_rate)``. A model that takes something else
declares it, as a method (or a callable attribute) of the module:

* ``example_input(seconds, sample_rate)``, or, when there is none,
* ``input_signature(seconds, sample_rate)``,

returning the example input for that many seconds of audio: a tensor
(``module(x)``), a tuple or list of tensors (``module(*x)``) or a dict of
tensors (``module(**x)``). See :func:`make_example_input`.

Conventions
-----------
* **MACs** (multiply-accumulates) are counted by
  ``torch.utils.flop_counter.FlopCounterMode``, and **FLOPs = 2 x MACs**.
  Only convolutions (transposed ones included), matrix products
  (``mm``, ``addmm``, ``bmm``, ``baddbmm``) and attention are counted;
  elementwise operations, normalisations, activations, FFTs (``stft``)
  and reductions are not. Bias additions are not counted either.
  Recurrent layers are counted through their gate matrix products (see
  :func:`count_macs`).
* **RTF** (real-time factor) = median wall time of one forward pass /
  seconds of audio in the input, with the thread count and the input
  length reported beside it (an RTF depends on both).
* **Peak memory** = the largest increase of allocated tensor bytes over
  the level before the forward pass (see :func:`peak_memory`).

Example
-------
>>> model = torch.nn.Sequential(
...     torch.nn.Unflatten(1, (1, -1)), torch.nn.Conv1d(1, 2, 3, padding=1)
... )
>>> report = profile_model(model, seconds=0.5, warmup=0, repeats=1)
>>> report["params_total"], report["macs_per_second"], report["input_shape"]
(8, 96000, [1, 8000])
"""

import contextlib
import os
import pathlib
import re
import statistics
import sys
import time
import warnings

import torch

from speechbrain_kd.hyperyaml import find_module, recipe_source

FLOPS_CONVENTION = "FLOPs = 2 x MACs"
PEAK_MEMORY_METHOD = {
    "cpu": "largest increase of bytes allocated through the PyTorch CPU "
    "allocator during one forward pass (torch.profiler, "
    "profile_memory=True) over the level before it",
    "cuda": "torch.cuda.max_memory_allocated during one forward pass "
    "minus torch.cuda.memory_allocated before it",
}


def count_parameters(module):
    """Counts the parameters of a module.

    A parameter shared by several submodules (tied weights) is counted
    once.

    Arguments
    ---------
    module : torch.nn.Module
        The model.

    Returns
    -------
    dict
        ``{"total": int, "trainable": int}``; trainable parameters are
        those with ``requires_grad``.

    Example
    -------
    >>> model = torch.nn.Sequential(
    ...     torch.nn.Linear(3, 2), torch.nn.Linear(2, 1)
    ... )
    >>> model[0].requires_grad_(False)  # doctest: +ELLIPSIS
    Linear(...)
    >>> count_parameters(model)
    {'total': 11, 'trainable': 3}
    """
    params = list(module.parameters())  # deduplicated by identity
    return {
        "total": sum(p.numel() for p in params),
        "trainable": sum(p.numel() for p in params if p.requires_grad),
    }


def make_example_input(module, seconds, sample_rate=16000):
    """Builds the example input of ``seconds`` of audio for a module.

    Uses the module's ``example_input(seconds, sample_rate)`` method (or
    its ``input_signature`` callable) when it has one, and otherwise a
    ``[1, time]`` waveform of ``round(seconds * sample_rate)`` samples
    (deterministic low-level noise).

    Arguments
    ---------
    module : torch.nn.Module
        The model.
    seconds : float
        Length of the audio the input stands for.
    sample_rate : int
        Sample rate in Hz.

    Returns
    -------
    torch.Tensor, tuple, list or dict
        The example input (see the module docstring).

    Example
    -------
    >>> make_example_input(torch.nn.Identity(), 0.5, 8000).shape
    torch.Size([1, 4000])
    >>> class Spectral(torch.nn.Module):
    ...     def example_input(self, seconds, sample_rate):
    ...         return torch.zeros(1, 257, round(seconds * 100))
    >>> make_example_input(Spectral(), 2.0).shape
    torch.Size([1, 257, 200])
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    for name in ("example_input", "input_signature"):
        make = getattr(module, name, None)
        if make is None:
            continue
        if not callable(make):
            raise ValueError(
                f"{type(module).__name__}.{name} must be callable as "
                f"{name}(seconds, sample_rate), got {type(make).__name__}"
            )
        return make(seconds, sample_rate)
    samples = round(seconds * sample_rate)
    if samples < 1:
        raise ValueError(
            f"{seconds} s at {sample_rate} Hz is less than one sample"
        )
    generator = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(1, samples, generator=generator)


def _forward(module, inputs):
    """Calls ``module`` on an example input (tensor, sequence or dict)."""
    if isinstance(inputs, dict):
        return module(**inputs)
    if isinstance(inputs, (tuple, list)):
        return module(*inputs)
    return module(inputs)


def _tensors(inputs):
    """The tensors of an example input, in order."""
    if isinstance(inputs, dict):
        inputs = list(inputs.values())
    elif not isinstance(inputs, (tuple, list)):
        inputs = [inputs]
    return [x for x in inputs if isinstance(x, torch.Tensor)]


def input_shape(inputs):
    """The shape(s) of an example input, as JSON-friendly lists.

    Arguments
    ---------
    inputs : torch.Tensor, tuple, list or dict
        An example input.

    Returns
    -------
    list or dict
        ``list(x.shape)`` for a tensor, a list of those for a sequence, a
        dict of those for a dict (``None`` for a non-tensor entry).

    Example
    -------
    >>> input_shape(torch.zeros(1, 16000))
    [1, 16000]
    >>> input_shape((torch.zeros(2, 3), torch.zeros(4)))
    [[2, 3], [4]]
    """

    def shape(x):
        """The shape of ``x`` (tensors only)."""
        return list(x.shape) if isinstance(x, torch.Tensor) else None

    if isinstance(inputs, dict):
        return {key: shape(x) for key, x in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return [shape(x) for x in inputs]
    return shape(inputs)


def _to_device(inputs, device):
    """Moves the tensors of an example input to ``device``."""

    def move(x):
        """``x`` on the device (tensors only)."""
        return x.to(device) if isinstance(x, torch.Tensor) else x

    if isinstance(inputs, dict):
        return {key: move(x) for key, x in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(move(x) for x in inputs)
    return move(inputs)


def _device_of(module, inputs):
    """The device a forward pass runs on: the inputs', else the module's."""
    for x in _tensors(inputs):
        return x.device
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def _eval_mode(module):
    """Puts every submodule in eval mode and restores each one's mode."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for submodule, training in modes:
            submodule.training = training


@contextlib.contextmanager
def _num_threads(threads):
    """Sets ``torch.set_num_threads`` and restores the previous count."""
    if threads is None:
        yield
        return
    if int(threads) < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def _countable_kernels():
    """Routes computations to the kernels FlopCounterMode can count.

    * oneDNN off: a CPU ``nn.LSTM`` otherwise runs as
      ``aten::mkldnn_rnn_layer``, which counts as zero; without oneDNN its
      gate matrix products run as ``addmm`` (input and hidden state, each
      time step).
    * the fused ``nn.MultiheadAttention``/``nn.TransformerEncoderLayer``
      fast path off (eval mode under no_grad takes it, and it counts as
      zero).
    * scaled dot-product attention on the math backend (the fused CPU
      kernel counts as zero; the math one is two ``bmm``).
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    mha = getattr(torch.backends, "mha", None)
    fastpath = mha.get_fastpath_enabled() if mha is not None else None
    with warnings.catch_warnings():
        # Entering and leaving the oneDNN flags context warns about TF32
        # on Intel GPUs, which has nothing to do with counting.
        warnings.filterwarnings("ignore", message=".*TF32 acceleration")
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.backends.mkldnn.flags(enabled=False))
            stack.enter_context(sdpa_kernel(SDPBackend.MATH))
            if mha is not None:
                mha.set_fastpath_enabled(False)
            try:
                yield
            finally:
                if mha is not None:
                    mha.set_fastpath_enabled(fastpath)


def count_macs(module, example_input):
    """Counts the multiply-accumulates (MACs) of one forward pass.

    The count comes from ``torch.utils.flop_counter.FlopCounterMode``
    (its FLOP total divided by 2: **FLOPs = 2 x MACs**). It counts
    convolutions (``Conv*d`` and ``ConvTranspose*d``: for a transposed
    one, input positions x in channels x out channels / groups x kernel
    size), matrix products (``mm``, ``addmm``, ``bmm``, ``baddbmm``: what
    ``Linear``, ``matmul`` and ``einsum`` run as) and attention. It does
    not count elementwise operations, bias additions, normalisations,
    activations, FFTs or reductions.

    The forward pass runs in eval mode (each submodule's mode is restored
    afterwards), under ``torch.no_grad()``, with oneDNN disabled, the
    fused multi-head-attention fast path disabled and scaled dot-product
    attention on its math backend, so that every counted operation is
    seen: on CPU, oneDNN runs ``nn.LSTM`` as ``mkldnn_rnn_layer`` and the
    fused attention kernels, all of which the counter would count as zero.
    Recurrent layers are then counted through their gate products: an
    ``nn.LSTM`` layer with input size I and hidden size H costs
    ``4 H (I + H)`` MACs per time step and direction (``3 H (I + H)`` for
    ``nn.GRU``).

    Arguments
    ---------
    module : torch.nn.Module
        The model.
    example_input : torch.Tensor, tuple, list or dict
        Its input (see :func:`make_example_input`).

    Returns
    -------
    int
        MACs of one forward pass on ``example_input``.

    Example
    -------
    >>> model = torch.nn.Sequential(
    ...     torch.nn.Conv1d(1, 4, kernel_size=3, padding=1),
    ...     torch.nn.ReLU(),
    ...     torch.nn.Conv1d(4, 2, kernel_size=5, padding=2),
    ... )
    >>> count_macs(model, torch.zeros(1, 1, 100))  # 100*4*3 + 100*2*4*5
    5200
    >>> count_macs(torch.nn.LSTM(5, 4), torch.zeros(10, 1, 5))  # 16*9*10
    1440
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with _eval_mode(module), torch.no_grad(), _countable_kernels():
        with counter:
            _forward(module, example_input)
    return int(counter.get_total_flops()) // 2


def _synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_rtf(
    module, example_input, audio_seconds, threads=1, warmup=2, repeats=5
):
    """Measures the real-time factor (RTF) of one forward pass.

    RTF = median wall time of a forward pass / ``audio_seconds``, timed
    with ``time.perf_counter`` after ``warmup`` untimed passes, in eval
    mode under ``torch.no_grad()``, with the default kernels (oneDNN as
    configured). ``torch.set_num_threads(threads)`` holds during the
    measurement and the previous thread count is restored afterwards. On
    CUDA the device is synchronised around each pass.

    Arguments
    ---------
    module : torch.nn.Module
        The model.
    example_input : torch.Tensor, tuple, list or dict
        Its input (see :func:`make_example_input`).
    audio_seconds : float
        Seconds of audio that ``example_input`` stands for.
    threads : int or None
        Intra-op CPU threads for the measurement (None: leave as is).
    warmup : int
        Untimed passes first.
    repeats : int
        Timed passes.

    Returns
    -------
    dict
        ``rtf`` (median), ``rtf_min``, ``median_s``, ``min_s``,
        ``times_s`` (every timed pass, seconds), ``threads``,
        ``audio_seconds``, ``warmup``, ``repeats``.

    Example
    -------
    >>> model = torch.nn.Conv1d(1, 1, 3)
    >>> result = measure_rtf(model, torch.zeros(1, 1, 1600), 0.1, repeats=3)
    >>> result["rtf"] > 0, len(result["times_s"]), result["threads"]
    (True, 3, 1)
    """
    if audio_seconds <= 0:
        raise ValueError(f"audio_seconds must be positive: {audio_seconds}")
    if repeats < 1 or warmup < 0:
        raise ValueError(
            f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}"
        )
    device = _device_of(module, example_input)
    times = []
    with _num_threads(threads), _eval_mode(module), torch.no_grad():
        used_threads = torch.get_num_threads()
        for _ in range(warmup):
            _forward(module, example_input)
        for _ in range(repeats):
            _synchronize(device)
            start = time.perf_counter()
            _forward(module, example_input)
            _synchronize(device)
            times.append(time.perf_counter() - start)
    median, fastest = statistics.median(times), min(times)
    return {
        "rtf": median / audio_seconds,
        "rtf_min": fastest / audio_seconds,
        "median_s": median,
        "min_s": fastest,
        "times_s": times,
        "threads": used_threads,
        "audio_seconds": audio_seconds,
        "warmup": warmup,
        "repeats": repeats,
    }


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silences file descriptor 2 (Kineto's start/stop log lines)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError):
        yield
        return
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _cpu_peak_memory(module, example_input):
    from torch.profiler import ProfilerActivity, profile

    profiler = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _quiet_native_stderr():
        profiler.start()
    try:
        _forward(module, example_input)
    finally:
        with _quiet_native_stderr():
            profiler.stop()
    results = getattr(profiler.profiler, "kineto_results", None)
    if results is None:
        raise RuntimeError(
            "this torch build's profiler keeps no memory events; cannot "
            "measure peak CPU memory"
        )
    events = [
        event
        for event in results.events()
        if event.name() == "[memory]" and event.device_type().name == "CPU"
    ]
    events.sort(key=lambda event: event.start_ns())
    allocated = peak = 0
    for event in events:
        allocated += event.nbytes()  # negative for a free
        peak = max(peak, allocated)
    return peak


def peak_memory(module, example_input):
    """Measures the peak memory of one forward pass, in bytes.

    What is reported is the largest increase of allocated tensor memory
    over the level just before the forward pass (so the weights and the
    input, allocated before, are not included; activations, outputs and
    the workspaces PyTorch allocates are):

    * on CPU, every allocation and free made through PyTorch's CPU
      allocator during the pass is recorded by ``torch.profiler``
      (``profile_memory=True``) and the running total is replayed in time
      order. This is deterministic and exact to the byte, unlike the
      process RSS (which the C allocator's caching blurs). Memory that a
      backend library allocates privately, outside PyTorch's allocator
      (some oneDNN or BLAS scratch space), is not seen;
    * on CUDA, ``torch.cuda.max_memory_allocated`` after the pass minus
      ``torch.cuda.memory_allocated`` before it (peak statistics reset
      first).

    The pass runs in eval mode under ``torch.no_grad()``.

    Arguments
    ---------
    module : torch.nn.Module
        The model.
    example_input : torch.Tensor, tuple, list or dict
        Its input (see :func:`make_example_input`).

    Returns
    -------
    int
        Peak bytes.

    Example
    -------
    >>> class Twice(torch.nn.Module):
    ...     def forward(self, x):
    ...         return x.exp().exp()  # the first result is still alive
    >>> peak_memory(Twice(), torch.zeros(1, 1000))  # 2 x 1000 float32
    8000
    """
    device = _device_of(module, example_input)
    with _eval_mode(module), torch.no_grad():
        if device.type == "cpu":
            return _cpu_peak_memory(module, example_input)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            _forward(module, example_input)
            torch.cuda.synchronize(device)
            return torch.cuda.max_memory_allocated(device) - before
    raise ValueError(
        f"peak memory is measured on cpu or cuda, not {device.type}"
    )


def profile_model(
    module,
    seconds=4.0,
    sample_rate=16000,
    threads=1,
    warmup=2,
    repeats=5,
    device=None,
):
    """Measures everything: parameters, MACs, RTF and peak memory.

    MACs are counted on exactly one second of input (``macs_per_second``)
    and on the ``seconds`` input (``macs_per_input``): they differ from a
    simple product for a model whose cost is not linear in the input
    length (global attention over frames, for one). RTF and peak memory
    are measured on the ``seconds`` input.

    Arguments
    ---------
    module : torch.nn.Module
        The model (moved to ``device`` in place when one is given).
    seconds : float
        Input length for ``macs_per_input``, the RTF and peak memory.
    sample_rate : int
        Sample rate in Hz.
    threads : int or None
        CPU threads for every measurement (restored afterwards).
    warmup : int
        Untimed forward passes before timing.
    repeats : int
        Timed forward passes (the RTF is their median).
    device : str or torch.device, optional
        Where to run (default: where the module's parameters are).

    Returns
    -------
    dict
        JSON-ready: ``model``, ``params_total``, ``params_trainable``,
        ``seconds``, ``sample_rate``, ``input_shape``,
        ``macs_per_second``, ``macs_per_input``, ``gmacs_per_second``,
        ``gmacs_per_input``, ``flops_convention``, ``rtf``, ``rtf_min``,
        ``forward_times_s``, ``warmup``, ``repeats``, ``threads``,
        ``onednn_enabled``, ``peak_memory_bytes``, ``peak_memory_method``,
        ``device``, ``torch_version``.

    Example
    -------
    >>> class Frames(torch.nn.Module):  # cost quadratic in the length
    ...     def example_input(self, seconds, sample_rate):
    ...         return torch.zeros(1, round(10 * seconds), 8)  # 10 frame/s
    ...
    ...     def forward(self, x):
    ...         return x @ x.transpose(1, 2)
    >>> report = profile_model(Frames(), seconds=2, warmup=0, repeats=1)
    >>> report["macs_per_second"], report["macs_per_input"]  # 10*10*8
    (800, 3200)
    """
    if device is None:
        device = _device_of(module, None)
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device} requested but CUDA is unavailable")
    module.to(device)
    counts = count_parameters(module)
    one_second = _to_device(
        make_example_input(module, 1.0, sample_rate), device
    )
    inputs = _to_device(
        make_example_input(module, seconds, sample_rate), device
    )
    with _num_threads(threads):
        macs_1s = count_macs(module, one_second)
        macs = macs_1s if seconds == 1 else count_macs(module, inputs)
        timing = measure_rtf(
            module,
            inputs,
            seconds,
            threads=None,
            warmup=warmup,
            repeats=repeats,
        )
        peak = peak_memory(module, inputs)
    return {
        "model": f"{type(module).__module__}.{type(module).__qualname__}",
        "params_total": counts["total"],
        "params_trainable": counts["trainable"],
        "seconds": seconds,
        "sample_rate": sample_rate,
        "input_shape": input_shape(inputs),
        "macs_per_second": macs_1s,
        "macs_per_input": macs,
        "gmacs_per_second": macs_1s / 1e9,
        "gmacs_per_input": macs / 1e9,
        "flops_convention": FLOPS_CONVENTION,
        "rtf": timing["rtf"],
        "rtf_min": timing["rtf_min"],
        "forward_times_s": timing["times_s"],
        "warmup": warmup,
        "repeats": repeats,
        "threads": timing["threads"],
        "onednn_enabled": torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled,
        "peak_memory_bytes": peak,
        "peak_memory_method": PEAK_MEMORY_METHOD[device.type],
        "device": str(device),
        "torch_version": torch.__version__,
    }


def _fill_placeholders(text, overrides):
    """Overrides giving every top-level ``!PLACEHOLDER`` a dummy value.

    A training recipe asks for its data folders, which building a module
    does not need; explicit ``overrides`` win.

    Example
    -------
    >>> _fill_placeholders("data: !PLACEHOLDER\\nx: 1\\n", {"x": 2})
    {'data': 'unused', 'x': 2}
    """
    import ruamel.yaml

    if isinstance(overrides, str):
        # Round-trip loading keeps the tags of an ablation's changes.
        overrides = ruamel.yaml.YAML().load(overrides) or {}
    filled = dict.fromkeys(
        re.findall(r"^(\w+):\s*!PLACEHOLDER", text, re.MULTILINE), "unused"
    )
    filled.update(overrides or {})
    return filled


def load_module_from_hparams(yaml_path, key="model", overrides=None):
    """Loads a HyperPyYAML file and returns the module under ``key``.

    ``key`` is a top-level key, or ``outer.inner`` for an entry of a
    top-level dict (e.g. ``modules.generator`` in a recipe); see
    :func:`speechbrain_kd.hyperyaml.find_module`.

    Arguments
    ---------
    yaml_path : str or path-like
        The HyperPyYAML file.
    key : str
        Where the module is.
    overrides : str or dict, optional
        HyperPyYAML overrides (a YAML string or a dict).

    Returns
    -------
    torch.nn.Module
        The module, as the file instantiates it.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        ``key`` is absent (the message lists the keys that hold modules)
        or holds something other than a module.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "hparams.yaml"
    ...     _ = path.write_text("model: !new:torch.nn.Linear [4, 2]\\n")
    ...     load_module_from_hparams(path)
    Linear(in_features=4, out_features=2, bias=True)
    """
    from hyperpyyaml import load_hyperpyyaml

    path = pathlib.Path(yaml_path)
    if not path.is_file():
        raise FileNotFoundError(f"hparams file not found: {path}")
    # An ``extends`` yaml (an ablation) stands for its base with changes.
    base, overrides = recipe_source(path, overrides or "")
    overrides = _fill_placeholders(base.read_text(encoding="utf-8"), overrides)
    with open(base, encoding="utf-8") as stream:
        hparams = load_hyperpyyaml(stream, overrides)
    if not isinstance(hparams, dict):
        raise ValueError(f"{path} does not hold a mapping of keys")
    return find_module(hparams, key, path)


__all__ = [
    "FLOPS_CONVENTION",
    "count_macs",
    "count_parameters",
    "input_shape",
    "load_module_from_hparams",
    "make_example_input",
    "measure_rtf",
    "peak_memory",
    "profile_model",
]
