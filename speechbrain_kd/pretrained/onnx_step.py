"""ONNX export of a causal model's streaming step, with its state exposed,
and a streaming driver on ONNX Runtime.

The step model's inputs are ``audio`` (one block, ``[1, block]``) and one
``in.<name>`` tensor per state entry; its outputs ``enhanced`` (the block's
output) and one ``out.<name>`` per state entry. ``onnx_state.json`` beside
it documents the layout (names, shapes, dtypes, the block, the hop, the
rate and the latency) and the zero initial state.
"""

import json
import pathlib

import torch

STEP_FILE = "model_step.onnx"
STATE_FILE = "onnx_state.json"


class _FlatStep(torch.nn.Module):
    """``forward_step`` with the state dict as positional tensors."""

    def __init__(self, model, names):
        super().__init__()
        self.model = model
        self.names = list(names)

    def forward(self, audio, *states):
        """One step: ``(enhanced, *new_states)``."""
        out, new = self.model.forward_step(
            audio, dict(zip(self.names, states, strict=True))
        )
        return (out, *[new[name] for name in self.names])


def state_names(model):
    """The state's entry names, in the order of the ONNX inputs.

    Arguments
    ---------
    model : torch.nn.Module
        A causal model with the step API.

    Returns
    -------
    list of str
        The names.

    Raises
    ------
    ValueError
        If the state is not a flat dict of tensors.

    Example
    -------
    >>> from speechbrain_kd.lobes.full_band import FullBandNet
    >>> state_names(FullBandNet())[:3]
    ['input', 'tail', 'input_norm']
    """
    state = model.init_state(1)
    if not isinstance(state, dict) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ValueError(
            f"{type(model).__name__}.init_state must return a dict of "
            "tensors to be exported with its state"
        )
    return list(state)


def export_onnx_step(model, folder, block_hops=1, sample_rate=None, opset=18):
    """Writes ``model_step.onnx`` and ``onnx_state.json`` into ``folder``.

    Arguments
    ---------
    model : torch.nn.Module
        A causal model with the step API (``hop``, ``init_state``,
        ``forward_step``, ``latency_ms``).
    folder : str or pathlib.Path
        The output folder.
    block_hops : int
        Hops per step (the block the ONNX model takes).
    sample_rate : int, optional
        The audio's rate (default: the model's ``sample_rate``, else
        16000).
    opset : int
        ONNX opset.

    Returns
    -------
    pathlib.Path
        The ONNX file.
    """
    for name in ("hop", "init_state", "forward_step"):
        if not hasattr(model, name):
            raise ValueError(
                f"{type(model).__name__} has no {name!r}: only causal "
                "models with a step API export a streaming ONNX step"
            )
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    names = state_names(model)
    state = model.init_state(1)
    block = int(model.hop) * int(block_hops)
    rate = int(sample_rate or getattr(model, "sample_rate", 16000))
    path = folder / STEP_FILE
    with torch.no_grad():
        torch.onnx.export(
            _FlatStep(model, names).eval(),
            (torch.zeros(1, block), *[state[n] for n in names]),
            str(path),
            input_names=["audio", *[f"in.{n}" for n in names]],
            output_names=["enhanced", *[f"out.{n}" for n in names]],
            opset_version=opset,
            dynamo=True,
            verbose=False,
        )
    latency = model.latency_ms(rate) + (block - model.hop) * 1000.0 / rate
    layout = {
        "onnx": STEP_FILE,
        "sample_rate": rate,
        "block": block,
        "hop": int(model.hop),
        "latency_ms": latency,
        "audio": {"input": "audio", "output": "enhanced", "shape": [1, block]},
        "state": [
            {
                "name": n,
                "input": f"in.{n}",
                "output": f"out.{n}",
                "shape": list(state[n].shape),
                "dtype": str(state[n].dtype).replace("torch.", ""),
                "initial": "zeros",
            }
            for n in names
        ],
        "usage": "feed blocks of `block` samples in order; start with every "
        "state tensor at zero; pass each out.<name> back as in.<name>",
    }
    (folder / STATE_FILE).write_text(json.dumps(layout, indent=2) + "\n")
    return path


class OnnxStreamer:
    """Streams audio of any piece size through an exported ONNX step on
    ONNX Runtime (the counterpart of
    :class:`~speechbrain_kd.pretrained.StreamingEnhancer`).

    Arguments
    ---------
    folder : str or pathlib.Path
        Holds ``model_step.onnx`` and ``onnx_state.json``.
    threads : int
        ONNX Runtime intra-op threads.

    Example
    -------
    >>> OnnxStreamer.__name__  # export and stream: tests/test_onnx_step.py
    'OnnxStreamer'
    """

    def __init__(self, folder, threads=1):
        import onnxruntime

        folder = pathlib.Path(folder)
        self.layout = json.loads((folder / STATE_FILE).read_text())
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(folder / self.layout["onnx"]),
            options,
            providers=["CPUExecutionProvider"],
        )
        self.block = int(self.layout["block"])
        self.hop = int(self.layout["hop"])
        self.latency_ms = float(self.layout["latency_ms"])
        self.reset()

    def reset(self):
        """Forgets the current signal and starts a new one."""
        import numpy as np

        self.state = {
            entry["input"]: np.zeros(entry["shape"], dtype=entry["dtype"])
            for entry in self.layout["state"]
        }
        self.pending = np.zeros(0, dtype=np.float32)
        self.length_in = 0
        self.length_out = 0

    def _step(self, samples):
        import numpy as np

        outs = []
        outputs = [e["output"] for e in self.layout["state"]]
        inputs = [e["input"] for e in self.layout["state"]]
        for start in range(0, samples.shape[0], self.block):
            block = samples[start : start + self.block][None]
            result = self.session.run(
                ["enhanced", *outputs], {"audio": block, **self.state}
            )
            outs.append(result[0][0])
            self.state = dict(zip(inputs, result[1:], strict=True))
        out = np.concatenate(outs) if outs else np.zeros(0, np.float32)
        self.length_out += out.shape[0]
        return out

    def process(self, samples):
        """Adds samples; returns the output samples completed so far.

        Arguments
        ---------
        samples : numpy.ndarray
            Mono samples at the model's rate (any length).

        Returns
        -------
        numpy.ndarray
            A whole number of blocks of output samples (possibly none).
        """
        import numpy as np

        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.length_in += samples.shape[0]
        samples = np.concatenate([self.pending, samples])
        ready = samples.shape[0] - samples.shape[0] % self.block
        self.pending = samples[ready:]
        return self._step(samples[:ready])

    def flush(self):
        """Processes the zero-padded remainder and ends the signal.

        Returns
        -------
        numpy.ndarray
            The last output samples: in total, as many as were input.
        """
        import numpy as np

        remaining = self.length_in - self.length_out
        out = np.zeros(0, np.float32)
        if self.pending.shape[0]:
            padded = np.zeros(self.block, np.float32)
            padded[: self.pending.shape[0]] = self.pending
            out = self._step(padded)[:remaining]
        self.reset()
        return out
