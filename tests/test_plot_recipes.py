"""``speechbrain-kd plot`` on the ``--debug`` run of each Brain's recipe:
every logged series gets a panel and the PNG is written."""

import pytest

from speechbrain_kd.cli import main
from speechbrain_kd.plotting import COUNT_KEYS, curve_panels, read_train_log

#: One recipe per Brain of the project.
BRAIN_RECIPES = {
    "EnhanceBrain": "hparams/manner_baseline.yaml",
    "KDBrain": "hparams/mvat.yaml",
    "OKDMetricGANBrain": "hparams/okd.yaml",
    "KDRLBrain": "hparams/kdrl.yaml",
    "SpatialInjectionBrain": "hparams/sjen.yaml",
}


@pytest.mark.parametrize("brain", sorted(BRAIN_RECIPES))
def test_plot_draws_every_series_of_a_debug_run(brain, recipe_runs, tmp_path):
    run = recipe_runs(BRAIN_RECIPES[brain]).run
    series = read_train_log(run)
    logged = {
        key
        for stage in ("train", "valid")
        for key in series[stage]
        if key.split("[")[0] not in COUNT_KEYS
    }
    drawn = {name for name, _ in curve_panels(series)}
    assert logged <= drawn
    assert any(name.startswith("loss") for name in drawn)
    assert any(series["valid"].get(key) for key in ("pesq", "pesq[pesq]"))
    out = tmp_path / f"{brain}.png"
    assert main(["plot", str(run), "--output", str(out)]) == 0
    assert out.stat().st_size > 10_000
