"""Export a trained model as a hub-ready SpeechBrain model folder.

:func:`export_model` turns a training run of one of our recipes into a
folder that ``KDEnhancement.from_hparams`` loads (from a local path, or
from the HuggingFace hub once uploaded):

* ``enhance_model.ckpt``: the state dict of the module under ``key`` of
  the training hyperparameters (``model`` = the student of a KD run),
  taken from the best checkpoint of the run (by its ``ckpt_max_key``,
  validation PESQ by default), or
  from a given ``CKPT+...`` folder or ``.ckpt`` file, checked strictly
  against the module built from the training hyperparameters;
* ``hyperparams.yaml``: inference-only hyperparameters: ``sample_rate``,
  ``enhance_model`` (the module's class and constructor arguments, read
  from the training file with its references resolved), ``modules``,
  ``pretrainer``, ``chunk_seconds`` and ``overlap_seconds``;
* ``config.json``: the interface class (``KDEnhancement`` of
  ``speechbrain_kd.inference``), the model class and its arguments;
* ``example.wav``: a noisy clip enhanced by the exported model (16-bit),
  with its input ``example_noisy.wav``;
* ``README.md``: a model card (HuggingFace front matter, architecture,
  parameters, MACs, RTF, test metrics, recipe, usage, citations).

Example
-------
>>> text = "sample_rate: 8000\\nmodel: !new:torch.nn.Linear [4, 4]\\n"
>>> node = _find_node(_resolved_hparams(text), "model", "memory")
>>> print(_module_yaml("enhance_model", node), end="")
enhance_model: !new:torch.nn.Linear [4, 4]
"""

import datetime
import importlib
import json
import logging
import math
import pathlib
import re

import numpy as np
import torch

from speechbrain_kd.brains.teacher import (
    CHECKPOINT_NAMES,
    TeacherLoadError,
    check_state_dict,
    module_selection_key,
    resolve_checkpoint_file,
)

logger = logging.getLogger(__name__)

#: Files of an exported model folder (``example_noisy.wav`` comes too).
EXPORTED_FILES = (
    "enhance_model.ckpt",
    "hyperparams.yaml",
    "config.json",
    "example.wav",
    "README.md",
)
INTERFACE = {
    "speechbrain_interface": "KDEnhancement",
    "interface_module": "speechbrain_kd.inference",
}
#: Defaults written to the exported ``hyperparams.yaml``.
CHUNK_SECONDS = 10.0
OVERLAP_SECONDS = 1.0
EXAMPLE_SECONDS = 3.0
RTF_SECONDS = 4.0
TEST_METRICS = ("pesq", "stoi", "csig", "cbak", "covl", "ssnr", "si_sdr")
METRIC_NAMES = {
    "pesq": "PESQ",
    "stoi": "STOI",
    "estoi": "ESTOI",
    "csig": "CSIG",
    "cbak": "CBAK",
    "covl": "COVL",
    "ssnr": "SSNR (dB)",
    "si_sdr": "SI-SDR (dB)",
}


def export_model(
    hparams_file,
    checkpoint,
    output_dir,
    key="model",
    example_input=None,
    force=False,
    rtf_threads=1,
    rtf_seconds=RTF_SECONDS,
):
    """Exports the module under ``key`` of a training run as a model folder.

    Arguments
    ---------
    hparams_file : str or pathlib.Path
        The run's ``hyperparams.yaml`` (``OUTPUT_FOLDER/hyperparams.yaml``,
        overrides applied). Its folder is taken as the run folder (test
        metrics, recipe script).
    checkpoint : str or pathlib.Path
        A training output folder (the checkpoint with the best validation
        PESQ is taken), its ``save`` folder, a ``CKPT+...`` folder or a
        ``.ckpt`` file holding the module's state dict.
    output_dir : str or pathlib.Path
        The folder to write.
    key : str
        Key of the module in the hyperparameters (``model``: the student
        of a KD run or the model of a teacher run); ``outer.inner`` for an
        entry of a top-level dict.
    example_input : str or pathlib.Path, optional
        A noisy wav file to enhance for ``example.wav`` (default: a
        deterministic 3-s synthetic speech-like clip with babble noise).
    force : bool
        Write into a non-empty ``output_dir`` (files of the same names are
        overwritten).
    rtf_threads : int
        CPU threads for the real-time factor in the model card.
    rtf_seconds : float
        Input length for the real-time factor.

    Returns
    -------
    pathlib.Path
        ``output_dir``.

    Raises
    ------
    FileNotFoundError
        If ``hparams_file``, ``checkpoint`` or ``example_input`` is missing.
    ValueError
        If ``key`` holds no module, no checkpoint file is found for it,
        the parameters do not fit the module, or ``output_dir`` is not
        empty and ``force`` is False.

    Example
    -------
    >>> import tempfile
    >>> run = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (run / "hyperparams.yaml").write_text(
    ...     "sample_rate: 8000\\n"
    ...     "model: !new:torch.nn.Conv1d\\n"
    ...     "    in_channels: 1\\n    out_channels: 1\\n    kernel_size: 1\\n"
    ... )
    >>> torch.save(torch.nn.Conv1d(1, 1, 1).state_dict(), run / "model.ckpt")
    >>> out = export_model(
    ...     run / "hyperparams.yaml", run / "model.ckpt", run / "exported",
    ...     rtf_seconds=0.1,
    ... )
    >>> sorted(path.name for path in out.iterdir())  # doctest: +ELLIPSIS
    ['README.md', 'config.json', 'enhance_model.ckpt', 'example.wav', ...]
    """
    from hyperpyyaml import load_hyperpyyaml

    hparams_file = pathlib.Path(hparams_file).expanduser()
    if not hparams_file.is_file():
        raise FileNotFoundError(f"hparams file not found: {hparams_file}")
    output_dir = pathlib.Path(output_dir).expanduser()
    _check_output_dir(output_dir, force)

    hparams = _resolved_hparams(hparams_file.read_text(encoding="utf-8"))
    node = _find_node(hparams, key, hparams_file)
    sample_rate = hparams.get("sample_rate")
    if sample_rate is None:
        sample_rate = 16000
        logger.warning("No sample_rate in %s: assuming 16000", hparams_file)
    sample_rate = int(sample_rate)

    module_text = _module_yaml("enhance_model", node)
    module = load_hyperpyyaml(module_text)["enhance_model"]
    max_key = str(hparams.get("ckpt_max_key") or "pesq")
    ckpt_file = _checkpoint_file(checkpoint, key, max_key)
    state_dict = torch.load(ckpt_file, map_location="cpu", weights_only=True)
    if not isinstance(state_dict, dict):
        raise ValueError(f"{ckpt_file} does not hold a state dict")
    check_state_dict(
        module,
        state_dict,
        str(ckpt_file),
        role=f"{key!r}",
        hint=f"Check that {ckpt_file} was saved by the run of "
        f"{hparams_file} (same model hyperparameters) and that --key "
        f"({key}) names the module it holds.",
    )
    module.eval()

    output_dir.mkdir(parents=True, exist_ok=True)
    state_dict = {
        name: tensor.detach().cpu().contiguous()
        for name, tensor in module.state_dict().items()
    }
    torch.save(state_dict, output_dir / "enhance_model.ckpt")
    (output_dir / "hyperparams.yaml").write_text(
        _hyperparams_text(sample_rate, module_text, hparams_file, key),
        encoding="utf-8",
    )
    class_path, kwargs = _describe_node(node)
    config = dict(INTERFACE)
    config.update(
        {
            "sample_rate": sample_rate,
            "model_class": class_path,
            "model_kwargs": kwargs,
            "usage": "from speechbrain_kd.inference import KDEnhancement; "
            "KDEnhancement.from_hparams(source=..., savedir=...)",
        }
    )
    (output_dir / "config.json").write_text(
        json.dumps(config, indent=2) + "\n", encoding="utf-8"
    )

    exported = _load_exported(output_dir)
    _check_same_outputs(module, exported, sample_rate)
    example_note = _write_example(
        exported, output_dir, sample_rate, example_input
    )
    card = _model_card(
        module=exported,
        node=node,
        hparams=hparams,
        hparams_file=hparams_file,
        key=key,
        ckpt_file=ckpt_file,
        sample_rate=sample_rate,
        example_note=example_note,
        rtf_threads=rtf_threads,
        rtf_seconds=rtf_seconds,
        output_dir=output_dir,
    )
    (output_dir / "README.md").write_text(card, encoding="utf-8")
    logger.info("Exported %s (%s) to %s", key, ckpt_file, output_dir)
    return output_dir


# --------------------------------------------------------------------------
# Hyperparameters
# --------------------------------------------------------------------------


def _resolved_hparams(text):
    """Loads HyperPyYAML text with its references resolved (no objects).

    Tags (``!new:``, ``!name:``, ...) are kept on the ruamel nodes.
    """
    import io

    import ruamel.yaml
    from hyperpyyaml.core import resolve_references

    try:
        resolved = resolve_references(io.StringIO(text)).getvalue()
    except ValueError as error:
        if "PLACEHOLDER" not in str(error):
            raise
        raise ValueError(
            f"{error} Pass the hyperparams.yaml saved in the training "
            "output folder (overrides applied), not the recipe's file."
        ) from None
    data = ruamel.yaml.YAML().load(resolved)
    if not isinstance(data, dict):
        raise ValueError("the hparams file does not hold a mapping of keys")
    return data


def _tag(node):
    """The YAML tag of a ruamel node (``None`` when untagged)."""
    tag = getattr(node, "tag", None)
    value = getattr(tag, "value", tag)
    return value if isinstance(value, str) and value.startswith("!") else None


def _class_of(tag):
    """The class a ``!new:`` tag names (``None`` if it cannot be imported)."""
    if not tag or not tag.startswith("!new:"):
        return None
    module_name, _, name = tag[len("!new:") :].rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _module_keys(hparams, prefix=""):
    """Keys (``outer.inner`` one level down) whose node builds a module."""
    keys = []
    for name, value in hparams.items():
        cls = _class_of(_tag(value))
        if isinstance(cls, type) and issubclass(cls, torch.nn.Module):
            keys.append(prefix + str(name))
        elif not prefix and isinstance(value, dict) and _tag(value) is None:
            keys.extend(_module_keys(value, prefix=f"{name}."))
    return keys


def _find_node(hparams, key, source):
    """The resolved ``!new:`` node of a module under ``key``.

    Example
    -------
    >>> hparams = _resolved_hparams("a: 1\\nnet: !new:torch.nn.ReLU\\n")
    >>> _find_node(hparams, "b", "file")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: no key 'b' in file; keys holding a torch.nn.Module: net
    """
    value, found = hparams, True
    if key in hparams:
        value = hparams[key]
    else:
        for part in key.split("."):
            if isinstance(value, dict) and part in value:
                value = value[part]
            else:
                found = False
                break
    available = ", ".join(_module_keys(hparams)) or "(none)"
    if not found:
        raise ValueError(
            f"no key {key!r} in {source}; keys holding a torch.nn.Module: "
            f"{available}"
        )
    cls = _class_of(_tag(value))
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise ValueError(
            f"{key!r} in {source} is not a torch.nn.Module built with "
            f"!new: (found {_tag(value) or type(value).__name__}); keys "
            f"holding a torch.nn.Module: {available}"
        )
    return value


_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "none"}


def _scalar(value):
    """A plain YAML scalar (True/False booleans, strings quoted if needed)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return repr(float(value) if isinstance(value, float) else int(value))
    text = str(value)
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_./-]*", text)
    if plain and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text)


def _is_flat(value):
    """True for a list of untagged scalars (written in flow style)."""
    return isinstance(value, list) and all(
        not isinstance(v, (list, dict)) and not _tag(v) for v in value
    )


def _emit(value, indent):
    """YAML text of a node: ``(inline part, following block lines)``."""
    tag = _tag(value)
    prefix = f"{tag} " if tag else ""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return (f"{prefix}{{}}".strip(), [])
        lines = []
        for name, item in value.items():
            inline, block = _emit(item, indent + 4)
            lines.append(f"{pad}{name}:{' ' + inline if inline else ''}")
            lines.extend(block)
        return (tag or "", lines)
    if isinstance(value, list):
        if _is_flat(value):
            items = ", ".join(_scalar(v) for v in value)
            return (f"{prefix}[{items}]", [])
        lines = []
        for item in value:
            inline, block = _emit(item, indent + 4)
            if inline and not block:
                lines.append(f"{pad}- {inline}")
            else:
                lines.append(f"{pad}- {inline}".rstrip())
                lines.extend(block)
        return (tag or "", lines)
    if tag:
        text = getattr(value, "value", "")
        return (f"{tag} {_scalar(text)}" if text else tag, [])
    return (_scalar(value), [])


def _module_yaml(name, node):
    """The ``name: !new:...`` YAML block of a module node."""
    inline, block = _emit(node, 4)
    return "\n".join([f"{name}: {inline}".rstrip(), *block]) + "\n"


def _plain(value):
    """A ruamel node as plain JSON-friendly Python data (tags as text)."""
    if isinstance(value, dict):
        data = {str(k): _plain(v) for k, v in value.items()}
    elif isinstance(value, list):
        data = [_plain(v) for v in value]
    elif _tag(value):
        return f"{_tag(value)} {getattr(value, 'value', '')}".strip()
    elif isinstance(value, bool) or value is None:
        return value
    elif isinstance(value, int):
        return int(value)
    elif isinstance(value, float):
        return float(value)
    else:
        return str(value)
    if _tag(value) and (isinstance(value, dict) or value):
        return {"_tag": _tag(value), "value": data}
    return data


def _describe_node(node):
    """``(class path, constructor arguments)`` of a ``!new:`` node."""
    class_path = _tag(node)[len("!new:") :]
    if isinstance(node, dict):
        kwargs = {str(k): _plain(v) for k, v in node.items()}
    elif isinstance(node, list):
        kwargs = {"args": [_plain(v) for v in node]}
    else:
        kwargs = {}
    return class_path, kwargs


def _hyperparams_text(sample_rate, module_text, hparams_file, key):
    """The inference-only ``hyperparams.yaml`` of an exported folder."""
    today = datetime.date.today().isoformat()
    return (
        "# " + "#" * 74 + "\n"
        "# Inference hyperparameters of a speech-enhancement model exported\n"
        f"# by `speechbrain-kd export` on {today} (module {key!r} of the\n"
        f"# training file {hparams_file.name}).\n"
        "# Load with:\n"
        "#   from speechbrain_kd.inference import KDEnhancement\n"
        "#   model = KDEnhancement.from_hparams(source=..., savedir=...)\n"
        "# " + "#" * 74 + "\n\n"
        f"sample_rate: {sample_rate}\n"
        "# Long inputs are enhanced in chunks of chunk_seconds overlapping by\n"
        "# overlap_seconds.\n"
        f"chunk_seconds: {CHUNK_SECONDS}\n"
        f"overlap_seconds: {OVERLAP_SECONDS}\n\n"
        f"{module_text}\n"
        "modules:\n"
        "    enhance_model: !ref <enhance_model>\n\n"
        "pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer\n"
        "    loadables:\n"
        "        enhance_model: !ref <enhance_model>\n"
    )


# --------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------


def _checkpoint_file(checkpoint, key, max_key="pesq"):
    """The ``.ckpt`` file holding the state dict of ``key`` (in the best
    checkpoint by ``max_key`` when given a run or checkpoints folder)."""
    path = pathlib.Path(checkpoint).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_file():
        return path
    try:
        wanted_name = f"{key.split('.')[-1]}.ckpt"
        # A run that selects each module on its own score (MetricGAN-OKD's
        # generators) ranks its checkpoints per module.
        keys = (module_selection_key(max_key, key.split(".")[-1]), max_key)
        found = resolve_checkpoint_file(
            path, keys, names=(wanted_name, *CHECKPOINT_NAMES)
        )
    except TeacherLoadError:
        raise ValueError(
            f"{path} holds no checkpoint: pass a training output folder "
            "(with save/CKPT+*), a CKPT+... folder or a .ckpt file (a "
            "--debug run keeps its checkpoints only with "
            "--debug_persistently)"
        ) from None
    folder = found.parent
    wanted = folder / f"{key.split('.')[-1]}.ckpt"
    if wanted.is_file():
        return wanted
    if key == "model" and found.name in CHECKPOINT_NAMES:
        return found
    present = sorted(p.name for p in folder.glob("*.ckpt"))
    advice = ""
    if key == "teacher":
        advice = (
            " A knowledge-distillation run does not checkpoint its teacher "
            "(it is loaded from teacher_source): export the teacher from "
            "its own training run (--hparams TEACHER_RUN/hyperparams.yaml "
            "--checkpoint TEACHER_RUN --key model)."
        )
    raise ValueError(
        f"no {wanted.name} in {folder} (files there: "
        f"{', '.join(present) or 'none'}).{advice}"
    )


def _checkpoint_meta(ckpt_file):
    """The ``CKPT.yaml`` meta of the checkpoint holding ``ckpt_file``."""
    import ruamel.yaml

    meta_file = pathlib.Path(ckpt_file).parent / "CKPT.yaml"
    if not meta_file.is_file():
        return {}
    try:
        meta = ruamel.yaml.YAML(typ="safe").load(meta_file.read_text())
    except Exception:  # a damaged meta file only loses the card's line
        return {}
    return meta if isinstance(meta, dict) else {}


def _load_exported(output_dir):
    """Builds the module of an exported folder, parameters loaded strictly."""
    from hyperpyyaml import load_hyperpyyaml

    with open(output_dir / "hyperparams.yaml", encoding="utf-8") as stream:
        hparams = load_hyperpyyaml(stream)
    module = hparams["enhance_model"]
    state_dict = torch.load(
        output_dir / "enhance_model.ckpt", map_location="cpu", weights_only=True
    )
    check_state_dict(
        module, state_dict, str(output_dir), role="exported", hint=""
    )
    return module.eval()


def _check_same_outputs(module, exported, sample_rate):
    """Checks that the exported module computes what the trained one does."""
    from speechbrain_kd.profiling import make_example_input

    inputs = make_example_input(module, 0.1, sample_rate)
    with torch.no_grad():
        expected = module(inputs)
        got = exported(inputs)
    if not torch.allclose(expected, got, atol=1e-6, rtol=0):
        raise RuntimeError(
            "the exported model does not reproduce the trained one "
            f"(max abs diff {(expected - got).abs().max().item():.3g})"
        )


def _check_output_dir(output_dir, force):
    """Refuses a non-empty output folder unless ``force``."""
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"--output {output_dir} is a file, not a folder")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not force:
        raise ValueError(
            f"output folder {output_dir} is not empty: choose another one "
            "or pass --force (force=True) to overwrite the exported files"
        )


# --------------------------------------------------------------------------
# Example clip
# --------------------------------------------------------------------------


def synthetic_noisy_clip(sample_rate=16000, seconds=EXAMPLE_SECONDS, seed=0):
    """A deterministic speech-like clip in babble noise at 5 dB SNR.

    Arguments
    ---------
    sample_rate : int
        Sample rate in Hz.
    seconds : float
        Duration.
    seed : int
        Random seed.

    Returns
    -------
    torch.Tensor
        The noisy clip, ``[time]`` float32 (synthesised at 16 kHz or more,
        then resampled; peak about 0.9 at most).

    Example
    -------
    >>> clip = synthetic_noisy_clip(8000, 0.5)
    >>> clip.shape, bool(abs(clip).max() <= 0.95)
    (torch.Size([4000]), True)
    >>> bool((clip == synthetic_noisy_clip(8000, 0.5)).all())
    True
    """
    import torchaudio

    from speechbrain_kd.data import synthetic

    rate = max(int(sample_rate), 16000)
    rng = np.random.default_rng(seed)
    n_samples = int(round(seconds * rate))
    voice = synthetic._speaker_voice(seed, "p232")
    clean = synthetic._speech_like(
        rng, voice, n_samples, rate, 0.2 * seconds / 3, 0.2 * seconds / 3
    )
    clean = clean * 10 ** (-25 / 20) / max(synthetic._rms(clean), 1e-12)
    noise = synthetic._NOISE_MAKERS["babble"](rng, n_samples, rate)
    noisy = clean + synthetic._scale_to_snr(clean, noise, 5.0)
    noisy = noisy * min(1.0, 0.9 / max(np.max(np.abs(noisy)), 1e-12))
    noisy = torch.from_numpy(noisy).float()
    if rate != sample_rate:
        noisy = torchaudio.functional.resample(noisy, rate, int(sample_rate))
    return noisy


def _read_mono(path, sample_rate):
    """Reads a wav file as mono float32 at ``sample_rate``."""
    import soundfile
    import torchaudio

    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"example input not found: {path}")
    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    audio = torch.from_numpy(audio.mean(axis=1))
    if rate != sample_rate:
        audio = torchaudio.functional.resample(audio, rate, sample_rate)
    return audio, rate


def _write_example(module, output_dir, sample_rate, example_input):
    """Writes ``example.wav`` (enhanced) and ``example_noisy.wav``."""
    import soundfile

    if example_input is None:
        noisy = synthetic_noisy_clip(sample_rate)
        note = (
            f"`example_noisy.wav` is a deterministic {EXAMPLE_SECONDS:g}-s "
            "synthetic speech-like clip (harmonic voiced syllables with "
            "formants, `speechbrain_kd.data.synthetic`) in babble noise at "
            "5 dB SNR; `example.wav` is that clip enhanced by this model."
        )
    else:
        noisy, rate = _read_mono(example_input, sample_rate)
        note = (
            f"`example_noisy.wav` is `{pathlib.Path(example_input).name}` "
            f"(mono, {rate} Hz resampled to {sample_rate} Hz when needed); "
            "`example.wav` is that clip enhanced by this model."
        )
    with torch.no_grad():
        enhanced = module(noisy.unsqueeze(0)).reshape(-1)
    for name, audio in (
        ("example.wav", enhanced),
        ("example_noisy.wav", noisy),
    ):
        soundfile.write(
            str(output_dir / name),
            audio.clamp(-1.0, 1.0).numpy(),
            sample_rate,
            subtype="PCM_16",
        )
    return note


# --------------------------------------------------------------------------
# Model card
# --------------------------------------------------------------------------

CITATIONS = {
    "speechbrain": """@misc{speechbrain,
  title={{SpeechBrain}: A General-Purpose Speech Toolkit},
  author={Mirco Ravanelli and Titouan Parcollet and Peter Plantinga and Aku Rouhe and Samuele Cornell and Loren Lugosch and Cem Subakan and Nauman Dawalatabad and Abdelwahab Heba and Jianyuan Zhong and Ju-Chieh Chou and Sung-Lin Yeh and Szu-Wei Fu and Chien-Feng Liao and Elena Rastorgueva and François Grondin and William Aris and Hwidong Na and Yan Gao and Renato De Mori and Yoshua Bengio},
  year={2021},
  eprint={2106.04624},
  archivePrefix={arXiv},
  primaryClass={eess.AS},
  note={arXiv:2106.04624}
}""",  # noqa: E501
    "manner": """@inproceedings{park2022manner,
  title={{MANNER}: Multi-View Attention Network for Noise Erasure},
  author={Park, Hyun Joon and Kang, Byung Ha and Shin, Wooseok and Kim, Jin Sob and Han, Sung Won},
  booktitle={ICASSP 2022 - 2022 IEEE International Conference on Acoustics, Speech and Signal Processing (ICASSP)},
  pages={7842--7846},
  year={2022},
  organization={IEEE}
}""",  # noqa: E501
    "mvat": """@inproceedings{shin2022mvat,
  title={Multi-View Attention Transfer for Efficient Speech Enhancement},
  author={Shin, Wooseok and Park, Hyun Joon and Kim, Jin Sob and Lee, Byung Hoon and Han, Sung Won},
  booktitle={Proc. Interspeech 2022},
  pages={1198--1202},
  year={2022},
  doi={10.21437/Interspeech.2022-10251}
}""",  # noqa: E501
    "valentini": """@misc{valentini2017noisy,
  title={Noisy speech database for training speech enhancement algorithms and {TTS} models},
  author={Valentini-Botinhao, Cassia},
  publisher={University of Edinburgh. School of Informatics. Centre for Speech Technology Research (CSTR)},
  year={2017},
  doi={10.7488/ds/2117}
}""",  # noqa: E501
}


def _format_number(value):
    """A metric value with 3 decimals, or ``not available``."""
    if isinstance(value, (int, float)) and math.isfinite(value):
        return f"{value:.3f}"
    return "not available"


def _training_data(hparams):
    """``"valentini"``, ``"synthetic"`` (mini_valentini) or ``None``."""
    folder = hparams.get("data_folder")
    if not folder:
        return None
    folder = pathlib.Path(str(folder))
    if folder.is_dir():
        if (folder / ".mini_valentini.json").is_file():
            return "synthetic"
        if (folder / "clean_trainset_28spk_wav").is_dir():
            return "valentini"
        return None
    text = str(folder).lower().replace("-", "").replace("_", "")
    return "valentini" if "valentini" in text or "voicebank" in text else None


def _recipe_command(hparams, run_folder):
    """The training command, reconstructed from the run folder."""
    scripts = sorted(path.name for path in run_folder.glob("train_*.py"))
    if not scripts:
        return None
    name = hparams.get("experiment_name") or "HPARAMS"
    parts = [
        f"python recipes/Valentini/{scripts[0]} hparams/{name}.yaml",
        f"--data_folder {hparams.get('data_folder', 'DATA_FOLDER')}",
    ]
    if hparams.get("teacher_source"):
        parts.append(f"--teacher_source {hparams['teacher_source']}")
    return " \\\n    ".join(parts)


def _model_card(
    module,
    node,
    hparams,
    hparams_file,
    key,
    ckpt_file,
    sample_rate,
    example_note,
    rtf_threads,
    rtf_seconds,
    output_dir,
):
    """The ``README.md`` model card of an exported folder."""
    from speechbrain_kd.profiling import (
        count_macs,
        count_parameters,
        make_example_input,
        measure_rtf,
    )

    class_path, kwargs = _describe_node(node)
    class_name = class_path.rpartition(".")[2]
    params = count_parameters(module)
    macs = count_macs(module, make_example_input(module, 1.0, sample_rate))
    rtf = measure_rtf(
        module,
        make_example_input(module, rtf_seconds, sample_rate),
        rtf_seconds,
        threads=rtf_threads,
        warmup=1,
        repeats=3,
    )
    run_folder = hparams_file.parent
    # A multi-generator run (MetricGAN-OKD) writes one summary per
    # generator module: test_summary_<key>.json.
    summary_file = run_folder / f"test_summary_{key}.json"
    if not summary_file.is_file():
        summary_file = run_folder / "test_summary.json"
    summary = {}
    if summary_file.is_file():
        try:
            summary = json.loads(summary_file.read_text(encoding="utf-8"))
        except ValueError:
            summary = {}
    meta = _checkpoint_meta(ckpt_file)
    valid_pesq = meta.get("pesq")
    terms = json.dumps(_plain(hparams.get("distill_terms") or [])).lower()
    distilled = "distill_terms" in hparams and terms != "[]"
    mvat = distilled and "mvat" in terms
    data = _training_data(hparams)
    valentini = data == "valentini"
    command = _recipe_command(hparams, run_folder)
    name = output_dir.resolve().name
    thread_word = "thread" if rtf["threads"] == 1 else "threads"

    lines = [
        "---",
        "license: apache-2.0",
        "library_name: speechbrain",
        "language: en",
        "tags:",
        "  - speech-enhancement",
        "  - knowledge-distillation",
        "  - speechbrain",
        "  - audio-to-audio",
        "---",
        "",
        f"# {name}: {class_name} speech enhancement",
        "",
        f"A {class_name} speech-enhancement model (noisy waveform in, "
        f"enhanced waveform out, {sample_rate} Hz mono), trained"
        + (
            " with multi-view attention transfer (MV-AT) knowledge distillation"
            if mvat
            else " with knowledge distillation"
            if distilled
            else ""
        )
        + {
            "valentini": " on VoiceBank-DEMAND",
            "synthetic": " on synthetic data in the VoiceBank-DEMAND "
            "layout (`make_mini_valentini`: a smoke test, not a usable "
            "model)",
        }.get(data, "")
        + " with speechbrain-kd, a SpeechBrain plugin, and exported with "
        f"`speechbrain-kd export` (module `{key}` of the training "
        "hyperparameters).",
        "",
        "## Architecture",
        "",
        f"- Class: `{class_path}`",
        "- Constructor arguments: "
        + (
            ", ".join(f"`{k}={json.dumps(v)}`" for k, v in kwargs.items())
            or "none (defaults)"
        ),
        f"- Parameters: {params['total']:,}",
        f"- MACs per 1 s of audio: {macs / 1e9:.3f} G ({macs:,}); "
        f"FLOPs = 2 x MACs = {2 * macs / 1e9:.3f} G (convolutions, matrix "
        "products and attention only)",
        f"- RTF on CPU: {rtf['rtf']:.4g} ({rtf['threads']} {thread_word}, "
        f"{rtf_seconds:g} s input, median of {rtf['repeats']} passes; "
        "measured at export time, machine-dependent)",
        "",
        "## Results",
        "",
    ]
    if summary:
        lines += [
            f"Test metrics of the training run (`{summary_file.name}`, "
            f"{summary.get('n_items', '?')} utterances):",
            "",
            "| Metric | Value |",
            "| --- | --- |",
        ]
        lines += [
            f"| {METRIC_NAMES[m]} | {_format_number(summary.get(m))} |"
            for m in TEST_METRICS
        ]
    else:
        lines.append(
            "Test metrics: not available (no test_summary.json in the "
            "training run folder)."
        )
    lines += [
        "",
        "Validation PESQ of the exported checkpoint: "
        + _format_number(valid_pesq)
        + (f" (epoch {meta['epoch']})" if "epoch" in meta else ""),
        "",
        "## Training recipe",
        "",
    ]
    if command:
        lines += [
            "Command (reconstructed from the run folder; the exact "
            "hyperparameters, overrides included, are in the run's "
            "`hyperparams.yaml`):",
            "",
            "```bash",
            command,
            "```",
        ]
    else:
        lines.append(
            "Command: not available (no train_*.py script in the run folder)."
        )
    lines += [
        "",
        "## Usage",
        "",
        "Needs `speechbrain-kd` installed (it provides the interface "
        "class and the model code).",
        "",
        "```python",
        "from speechbrain_kd.inference import KDEnhancement",
        "",
        "enhancer = KDEnhancement.from_hparams(",
        f'    source="{name}", savedir="pretrained_models/{name}"',
        ")",
        'enhanced = enhancer.enhance_file("example_noisy.wav")',
        "```",
        "",
        "`source` is a local folder (works offline) or a HuggingFace "
        "repository id. `config.json` names the interface class "
        "(`KDEnhancement` in `speechbrain_kd.inference`).",
        "",
        "## Example",
        "",
        example_note,
        "",
        "## Licence",
        "",
        "Apache-2.0.",
        "",
        "## Citations",
        "",
        "```bibtex",
        CITATIONS["speechbrain"],
    ]
    if "manner" in class_path.lower():
        lines += ["", CITATIONS["manner"]]
    if mvat:
        lines += ["", CITATIONS["mvat"]]
    if valentini:
        lines += ["", CITATIONS["valentini"]]
    lines += ["```", ""]
    return "\n".join(lines)
