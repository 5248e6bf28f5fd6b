"""The spatial-injection recipe rows log the parts of Eqs. 2-5 they use."""

import json

import pytest

SPATIAL = {
    "hparams/sjen.yaml": {"loss_spatial_ts", "loss_spatial_bs"},
    "hparams/sjen_no_phase.yaml": {"loss_spatial_ts", "loss_spatial_bs"},
    "hparams/sjen_no_bad_student.yaml": {"loss_spatial_ts"},
    "hparams/sjen_no_kd.yaml": set(),
}
PARTS = {"loss_spatial_ts", "loss_spatial_bs", "loss_spatial_ratio"}


@pytest.mark.parametrize("hparams", sorted(SPATIAL))
def test_spatial_rows_log_their_parts(recipe_runs, hparams):
    log = (recipe_runs(hparams).run / "train_log.txt").read_text()
    train = [
        line.split(" - ")[1]
        for line in log.splitlines()
        if "train loss" in line
    ]
    assert train, log
    for line in train:
        logged = {part for part in PARTS if f"{part}:" in line}
        expected = SPATIAL[hparams]
        if expected:
            expected = expected | {"loss_spatial_ratio"}
        assert logged == expected, line
        assert ("loss_spatial:" in line) is bool(expected)


def test_teacher_row_trains_on_both_ears(recipe_runs):
    run = recipe_runs("hparams/mhca_crn_teacher.yaml").run
    saved = (run / "hyperparams.yaml").read_text()
    assert "student_input: binaural_sig" in saved
    assert "MHCACRN" in saved


def test_sjen_row_reports_each_test_snr_apart(recipe_runs):
    run = recipe_runs("hparams/sjen.yaml").run
    reported = 0
    for snr in (-5, 0, 5, 10):
        manifest = run.parent / "prepared" / f"test_snr{snr}.json"
        entries = json.loads(manifest.read_text())
        summary = run / f"test_summary_snr{snr}.json"
        assert summary.is_file() is bool(entries), snr
        if entries:
            assert json.loads(summary.read_text())["n_items"] == len(entries)
            reported += 1
    assert reported >= 1
