"""The latent-alignment recipes: the projection trains with the student, is
checkpointed with the terms and is absent from the exported model."""

import pytest
import torch

from speechbrain_kd.cli import main

YAMLS = ["hparams/latent_cosine.yaml", "hparams/latent_manner_wave_u_net.yaml"]


@pytest.mark.parametrize("hparams", YAMLS)
def test_projection_is_checkpointed_and_not_exported(
    recipe_runs, hparams, tmp_path
):
    run = recipe_runs(hparams).run
    checkpoints = sorted(run.glob("save/CKPT*"))
    assert checkpoints, f"no checkpoint in {run / 'save'}"
    terms = torch.load(
        checkpoints[-1] / "distill_terms.ckpt", weights_only=True
    )
    assert sorted(terms) == [
        "0.projection.0.layers.0.weight",
        "0.projection.0.layers.1.weight",
    ]
    student = torch.load(checkpoints[-1] / "model.ckpt", weights_only=True)
    out = tmp_path / "exported"
    code = main(
        [
            "export",
            "--hparams",
            str(run / "hyperparams.yaml"),
            "--checkpoint",
            str(run),
            "--output",
            str(out),
        ]
    )
    assert code == 0
    (exported_file,) = out.glob("*.ckpt")
    exported = torch.load(exported_file, weights_only=True)
    assert set(exported) == set(student)
    assert not any("projection" in key for key in exported)
