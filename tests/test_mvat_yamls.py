"""The MV-AT recipe and its Table-3 ablations: what each one distils.

Each ablation yaml holds only what it changes in ``hparams/mvat.yaml``
(``extends: mvat.yaml``), so a Table-3 comparison changes one thing at a
time; these tests check which keys each one changes and what the loaded
recipe then computes.
"""

import pathlib

import pytest
import torch
from ruamel.yaml import YAML

from speechbrain_kd.brains import KDBrain
from speechbrain_kd.distill import OutputDistillTerm
from speechbrain_kd.recipe import load_hparams_file, recipe_source

REPO = pathlib.Path(__file__).resolve().parents[1]
HPARAMS = REPO / "hparams"

# yaml -> the keys it changes in mvat.yaml (besides experiment_name)
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
        "at_name",
    },
}


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_ablation_holds_only_what_it_changes(name):
    with open(HPARAMS / name, encoding="utf-8") as fin:
        document = YAML().load(fin)
    assert document.pop("extends") == "mvat.yaml"
    assert set(document) == ABLATIONS[name] | {"experiment_name"}
    with open(HPARAMS / "mvat.yaml", encoding="utf-8") as fin:
        assert set(document) <= set(YAML().load(fin))


def test_an_ablation_key_missing_from_its_base_is_a_clear_error(tmp_path):
    (tmp_path / "base.yaml").write_text("a: 1\n")
    (tmp_path / "typo.yaml").write_text("extends: base.yaml\nkd_wieght: 0\n")
    with pytest.raises(ValueError, match=r"typo.yaml sets \['kd_wieght'\]"):
        recipe_source(tmp_path / "typo.yaml")
    (tmp_path / "lost.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(ValueError, match="nowhere.yaml does not exist"):
        recipe_source(tmp_path / "lost.yaml")


def test_command_line_overrides_go_on_top_of_the_ablation():
    hparams = load_hparams_file(
        HPARAMS / "mvat_l2.yaml",
        "data_folder: unused\nteacher_channels: 6\nkd_weight: 0.5",
    )
    assert hparams["at_distance"] == "l2"  # the ablation's
    assert hparams["kd_weight"] == 0.5  # the command line's
    assert hparams["output_folder"] == "results/mvat_l2/100"


def active_terms(name, **overrides):
    """``{term name: term}`` of the Brain built from a yaml."""
    hparams = load_hparams_file(
        HPARAMS / name,
        {"data_folder": "unused", "teacher_channels": 6, **overrides},
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
    hparams = load_hparams_file(
        HPARAMS / "single_view_at.yaml",
        {"data_folder": "unused", "teacher_channels": 6},
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


def test_profile_loads_an_ablation_as_its_base():
    from speechbrain_kd.profiling import (
        count_parameters,
        load_module_from_hparams,
    )

    ablation = load_module_from_hparams(HPARAMS / "single_view_at.yaml")
    base = load_module_from_hparams(HPARAMS / "mvat.yaml")
    assert count_parameters(ablation) == count_parameters(base)
    assert count_parameters(base)["total"] == 257_785
