"""The end-to-end demo behind ``make demo``, on the embedded dataset.

Stage 1 (this module today): generate the embedded speech-like dataset in
the official VoiceBank-DEMAND layout, prepare it exactly as the real
dataset is prepared, and print a summary. Later stages (training a
teacher, distilling a student) extend :func:`run_demo`.
"""

import json
import logging
import pathlib

logger = logging.getLogger(__name__)


def summarize_manifests(manifests):
    """Counts utterances and hours in prepared manifests.

    Arguments
    ---------
    manifests : dict
        ``{split: path to a SpeechBrain JSON manifest}`` with a ``length``
        field in seconds per entry.

    Returns
    -------
    dict
        ``{split: {"files": int, "hours": float}}``.

    Example
    -------
    >>> import json, tempfile, pathlib
    >>> tmp = pathlib.Path(tempfile.mkdtemp()) / "test.json"
    >>> _ = tmp.write_text(json.dumps({"a": {"length": 1800.0}}))
    >>> summarize_manifests({"test": tmp})
    {'test': {'files': 1, 'hours': 0.5}}
    """
    summary = {}
    for split, path in manifests.items():
        entries = json.loads(pathlib.Path(path).read_text())
        seconds = sum(entry["length"] for entry in entries.values())
        summary[split] = {"files": len(entries), "hours": seconds / 3600}
    return summary


def format_data_summary(manifest_summary, dataset_summary):
    """Formats the dataset summary table printed by the demo.

    Arguments
    ---------
    manifest_summary : dict
        Output of :func:`summarize_manifests`.
    dataset_summary : dict
        Output of ``describe_dataset``: holds ``snrs`` per split.

    Returns
    -------
    str
        A fixed-width table, one row per split.

    Example
    -------
    >>> print(format_data_summary(
    ...     {"test": {"files": 2, "hours": 0.001}},
    ...     {"snrs": {"test": [2.5, 7.5]}}))
    split   files   minutes  SNRs (dB)
    test        2      0.06  2.5, 7.5
    """
    rows = [f"{'split':<6}{'files':>7}{'minutes':>10}  SNRs (dB)"]
    snrs_by_split = dataset_summary.get("snrs", {})
    for split, stats in manifest_summary.items():
        # valid is carved out of the training set, so it shares its SNRs.
        source = "test" if split == "test" else "train"
        snrs = ", ".join(f"{s:g}" for s in snrs_by_split.get(source, []))
        rows.append(
            f"{split:<6}{stats['files']:>7}{stats['hours'] * 60:>10.2f}  {snrs}"
        )
    return "\n".join(rows)


def run_demo(output_folder="results/demo", seed=0):
    """Runs the demo: embedded data → preparation → summary.

    Arguments
    ---------
    output_folder : str or pathlib.Path
        Where the data, the prepared manifests and results go.
    seed : int
        Seed of the embedded dataset.

    Returns
    -------
    dict
        ``{"data_folder", "manifests", "summary"}``.

    Example
    -------
    >>> import tempfile
    >>> result = run_demo(tempfile.mkdtemp())  # doctest: +ELLIPSIS
    split ...
    >>> sorted(result["manifests"])
    ['test', 'train', 'valid']
    """
    from speechbrain_kd.data.synthetic import (
        describe_dataset,
        make_mini_valentini,
    )
    from speechbrain_kd.data.valentini import prepare_valentini

    output_folder = pathlib.Path(output_folder)
    data_folder = output_folder / "data"
    logger.info("Writing the embedded dataset to %s", data_folder)
    make_mini_valentini(data_folder, seed=seed)
    manifests = prepare_valentini(data_folder, output_folder / "prepared")
    summary = summarize_manifests(manifests)
    print(format_data_summary(summary, describe_dataset(data_folder)))
    return {
        "data_folder": data_folder,
        "manifests": manifests,
        "summary": summary,
    }
