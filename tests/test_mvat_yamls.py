"""The MV-AT recipe and its Table-3 ablations: what each one distils.

Each ablation yaml must differ from ``hparams/mvat.yaml`` in its ablated
factor only (besides its header comment and ``experiment_name``), so that
a Table-3 comparison changes one thing at a time. The yamls are compared
key by key (tags included), not as text.
"""

import pathlib

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml
from ruamel.yaml import YAML

from speechbrain_kd.brains import KDBrain
from speechbrain_kd.distill import OutputDistillTerm

REPO = pathlib.Path(__file__).resolve().parents[1]
HPARAMS = REPO / "hparams"

# yaml -> the keys in which it may (and must) differ from mvat.yaml
ABLATIONS = {
    "mvat_no_kd.yaml": {"kd_weight"},
    "mvat_l2.yaml": {"kd_weight", "at_distance"},
    "mvat_no_dual_depth.yaml": {"kd_weight", "at_teacher_layers"},
    "kd_only.yaml": {"mvat_weight"},
    "single_view_at.yaml": {
        "kd_weight",
        "at_pairs",
        "at_student_layers",
        "at_teacher_layers",
        "distill_terms.0.name",
    },
}


def flatten(node, prefix=""):
    """``{dotted.path: value}`` of a ruamel document, tags included."""
    tag = getattr(getattr(node, "tag", None), "value", None)
    items = {}
    if tag and prefix:
        items[prefix + ".<tag>"] = tag
    if isinstance(node, dict):
        for key, value in node.items():
            items.update(flatten(value, f"{prefix}{key}."))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            items.update(flatten(value, f"{prefix}{index}."))
    else:
        items[prefix] = getattr(node, "value", node)
    return {
        key.rstrip(".").replace(".<tag>", ""): v for key, v in items.items()
    }


def top_keys(paths):
    """The top-level key of each differing path (the sub-path for list
    items, which is what an ablation names)."""
    keys = set()
    for path in paths:
        first = path.split(".")[0]
        keys.add(path if first == "distill_terms" else first)
    return keys


def load_flat(name):
    with open(HPARAMS / name, encoding="utf-8") as fin:
        return flatten(YAML().load(fin))


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_ablation_differs_from_mvat_in_its_factor_only(name):
    base, ablation = load_flat("mvat.yaml"), load_flat(name)
    differing = {
        path
        for path in set(base) | set(ablation)
        if base.get(path) != ablation.get(path)
    }
    assert top_keys(differing) == ABLATIONS[name] | {"experiment_name"}


def active_terms(name, **overrides):
    """``{term name: term}`` of the Brain built from a yaml."""
    with open(HPARAMS / name, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(
            fin, {"data_folder": "unused", "teacher_channels": 6, **overrides}
        )
    brain = KDBrain(
        modules={"model": hparams["model"]},
        hparams=hparams,
        teacher=hparams["teacher"],
    )
    return {term.name: term for term in brain.distill_terms}


def test_each_recipe_computes_the_terms_of_its_table_3_row():
    full = active_terms("mvat.yaml")
    assert sorted(full) == ["mvat", "output_kd"]
    assert isinstance(full["output_kd"], OutputDistillTerm)
    assert len(full["mvat"].pairs) == 6  # 3 views x encoder/decoder
    assert full["mvat"].loss.time_reduction == "sum"  # Eq. 2, a norm
    assert full["mvat"].weight == full["output_kd"].weight == 1.0  # Eq. 4
    assert sorted(active_terms("mvat_no_kd.yaml")) == ["mvat"]
    assert sorted(active_terms("kd_only.yaml")) == ["output_kd"]
    assert active_terms("mvat_l2.yaml")["mvat"].loss.distance == "l2"
    single = active_terms("mvat_no_dual_depth.yaml")["mvat"]
    assert all(len(teachers) == 1 for _, teachers in single.pairs)
    view = active_terms("single_view_at.yaml")["single_view_at"]
    assert view.pairs == [
        ("encoder.0", ["encoder.0"]),
        ("encoder.1", ["encoder.1"]),
        ("encoder.2", ["encoder.2", "encoder.3"]),
        ("decoder.0", ["decoder.0"]),
        ("decoder.1", ["decoder.1"]),
        ("decoder.2", ["decoder.2", "decoder.3"]),
    ]


def test_zero_weight_switches_a_term_off_from_the_command_line():
    assert sorted(active_terms("mvat.yaml", kd_weight=0.0)) == ["mvat"]
    assert active_terms("mvat.yaml", kd_weight=0.0, mvat_weight=0.0) == {}


def test_single_view_taps_exist_in_student_and_teacher():
    with open(HPARAMS / "single_view_at.yaml", encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(
            fin, {"data_folder": "unused", "teacher_channels": 6}
        )
    brain = KDBrain(
        modules={"model": hparams["model"]},
        hparams=hparams,
        teacher=hparams["teacher"],
    )
    import speechbrain as sb
    from speechbrain.dataio.batch import PaddedBatch

    batch = PaddedBatch(
        [
            {
                "id": "a",
                "noisy_sig": torch.randn(8000),
                "clean_sig": torch.randn(8000),
            }
        ]
    )
    out = brain.compute_forward(batch, sb.Stage.TRAIN)
    assert set(out.student_features) == {
        f"{side}.{i}" for side in ("encoder", "decoder") for i in range(3)
    }
    loss = brain.compute_objectives(out, batch, sb.Stage.TRAIN)
    assert torch.isfinite(loss)
    assert sorted(brain.term_averages()) == [
        "loss_single_view_at",
        "loss_supervised",
    ]
