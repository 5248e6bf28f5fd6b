"""The model card (``README.md``) of an exported model folder.

HuggingFace front matter, architecture (class, arguments, parameters,
MACs, RTF), the training run's test metrics, the training command,
usage, example, licence and citations.
"""

import json
import math
import pathlib

from speechbrain_kd.hyperyaml import describe_module_node, node_data
from speechbrain_kd.pretrained.folder import (
    EXAMPLE_INPUT_FILE,
    INTERFACE_CONFIG,
)

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
    # placeholders, not the exporting machine's paths
    parts = [
        f"python recipes/Valentini/{scripts[0]} hparams/{name}.yaml",
        "--data_folder /path/to/VoiceBank-DEMAND",
    ]
    if hparams.get("teacher_source"):
        parts.append("--teacher_source /path/to/teacher_run")
    return " \\\n    ".join(parts)


def model_card(
    module,
    node,
    hparams,
    hparams_file,
    key,
    ckpt_file,
    sample_rate,
    example_note,
    rtf_threads=1,
    rtf_seconds=4.0,
    output_dir=".",
    repo_id=None,
):
    """The ``README.md`` model card of an exported folder.

    Arguments
    ---------
    module : torch.nn.Module
        The exported model (eval mode).
    node : object
        Its ``!new:`` node in the training hyperparameters
        (:func:`speechbrain_kd.hyperyaml.resolved_nodes`).
    hparams : dict
        The training hyperparameters (resolved nodes).
    hparams_file : pathlib.Path
        The training run's ``hyperparams.yaml``; its folder is the run
        folder (``test_summary*.json``, ``train_*.py``).
    key : str
        The module's key in ``hparams``.
    ckpt_file : pathlib.Path
        The exported parameter file (its ``CKPT.yaml`` gives the
        validation PESQ and epoch).
    sample_rate : int
        The model's rate.
    example_note : str
        What ``example.wav`` is.
    rtf_threads : int
        CPU threads for the real-time factor.
    rtf_seconds : float
        Input length for the real-time factor.
    output_dir : str or pathlib.Path
        The exported folder (its name is the model's name).
    repo_id : str, optional
        HuggingFace repository id of the usage snippet (default:
        ``YOUR_HF_USER/<folder name>``); the card names no local path.

    Returns
    -------
    str
        The card (Markdown with HuggingFace front matter).

    Example
    -------
    >>> import torch
    >>> from speechbrain_kd.hyperyaml import resolved_nodes
    >>> hparams = resolved_nodes(
    ...     "model: !new:torch.nn.Conv1d {in_channels: 1, out_channels: 1, "
    ...     "kernel_size: 1}"
    ... )
    >>> card = model_card(
    ...     torch.nn.Conv1d(1, 1, 1),
    ...     hparams["model"],
    ...     hparams,
    ...     pathlib.Path("run/hyperparams.yaml"),
    ...     "model",
    ...     pathlib.Path("model.ckpt"),
    ...     16000,
    ...     "A clip.",
    ...     rtf_seconds=0.1,
    ... )
    >>> card.startswith("---\\nlicense: apache-2.0"), "- Parameters: 2" in card
    (True, True)
    """
    from speechbrain_kd.profiling import (
        count_macs,
        count_parameters,
        make_example_input,
        measure_rtf,
    )

    class_path, kwargs = describe_module_node(node)
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
    run_folder = pathlib.Path(hparams_file).parent
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
    terms = json.dumps(node_data(hparams.get("distill_terms") or [])).lower()
    distilled = "distill_terms" in hparams and terms != "[]"
    mvat = distilled and "mvat" in terms
    data = _training_data(hparams)
    valentini = data == "valentini"
    command = _recipe_command(hparams, run_folder)
    name = pathlib.Path(output_dir).resolve().name
    repo_id = repo_id or f"YOUR_HF_USER/{name}"
    dataset = {
        "valentini": "VoiceBank-DEMAND",
        "synthetic": "speechbrain-kd synthetic (make-data)",
    }.get(data, "unspecified")
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
        "datasets:",
        f"  - {dataset}",
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
        "With SpeechBrain only (`pip install speechbrain`): "
        "`custom_interface.py` holds the interface and the model code.",
        "",
        "```python",
        "from speechbrain.inference.interfaces import foreign_class",
        "",
        "enhancer = foreign_class(",
        f'    source="{repo_id}",',
        '    pymodule_file="custom_interface.py",',
        '    classname="KDEnhancement",',
        f'    savedir="pretrained_models/{name}",',
        ")",
        "enhanced = enhancer.enhance_file(",
        f'    "{EXAMPLE_INPUT_FILE}", output_filename="enhanced.wav"',
        ")",
        "```",
        "",
        "With `speechbrain-kd` installed, its own classes are used "
        "(any number of models in one process):",
        "",
        "```python",
        f"from {INTERFACE_CONFIG['interface_module']} import KDEnhancement",
        "",
        "enhancer = KDEnhancement.from_hparams(",
        f'    source="{repo_id}", savedir="pretrained_models/{name}"',
        ")",
        "```",
        "",
        "SpeechBrain's stock `WaveformEnhancement.from_hparams` loads it "
        "once `custom_interface.py` is importable (its folder on "
        "`sys.path`); otherwise it refuses with an `ImportError` naming "
        "`custom_interface`. `source` is this HuggingFace repository id "
        "(or a local copy of the folder, which works offline).",
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
