"""``train_okd.py`` runs on tiny generated data with a silent utterance.

Every yaml of the MetricGAN-OKD family runs with ``--debug`` and
``metric_jobs: 2`` (metric workers in parallel); one training and one
test utterance are digital silence, so PESQ fails on them and the run
must go on. Models are shrunk on the command line; the code paths are
those of the full recipes.
"""

import json
import pathlib
import re
import sys

import pytest
import torch
from recipe_rows import SILENT_UTTERANCES, run_torchrun

from speechbrain_kd.cli import main
from speechbrain_kd.pretrained import KDEnhancement
from speechbrain_kd.profiling import load_module_from_hparams

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = REPO / "recipes" / "Valentini" / "train_okd.py"
TINY = [
    "--hidden_size=8",
    "--linear_size=8",
    "--discriminator_channels=[2, 2, 2, 2]",
    "--metric_jobs=2",
    "--utterances_per_epoch=10",
]
YAMLS = {
    "okd.yaml": ["pesq", "csig"],
    "okd_causal.yaml": ["pesq", "csig"],
    "okd_4metrics.yaml": ["pesq", "csig", "cbak", "covl"],
    "metricgan_plus.yaml": ["pesq"],
}
SILENT_TRAIN = SILENT_UTTERANCES["trainset_28spk"]
SILENT_TEST = SILENT_UTTERANCES["testset"]


@pytest.fixture(scope="module")
def data_folder(silent_valentini):
    """Mini VoiceBank-DEMAND with a silent training and test utterance."""
    return silent_valentini


def run_okd(run_script, hparams, data_folder, out, *args):
    """Runs ``train_okd.py``; returns the completed process."""
    command = [
        sys.executable,
        str(SCRIPT),
        str(REPO / "hparams" / hparams),
        f"--data_folder={data_folder}",
        f"--prepare_folder={out / 'prepared'}",
        f"--output_folder={out / 'run'}",
        *TINY,
        *args,
    ]
    result = run_script(command)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def okd_runs(recipe_runs):
    """The csv rows' debug runs (``{silent_data}``, checkpoints kept):
    ``(run folder, console output)`` per yaml."""
    recipe_runs.prefetch([f"hparams/{hparams}" for hparams in YAMLS])
    runs = {}
    for hparams in YAMLS:
        done = recipe_runs(f"hparams/{hparams}")
        runs[hparams] = (done.run, done.console)
    return runs


@pytest.mark.parametrize("hparams", sorted(YAMLS))
def test_debug_run_reports_every_generator(okd_runs, hparams):
    run, _ = okd_runs[hparams]
    metrics = YAMLS[hparams]
    log = (run / "train_log.txt").read_text()
    epoch_lines = [line for line in log.splitlines() if "valid" in line]
    assert len(epoch_lines) == 2  # --debug: two epochs
    for epoch, line in enumerate(epoch_lines, start=1):
        trained = epoch >= 2  # epoch 1 trains the critic only
        for metric in metrics:
            for score in ("pesq", "stoi", "csig", "cbak", "covl"):
                assert f"valid {score}[{metric}]:" in line
            assert (f"train loss_adversarial_{metric}" in line) is trained
        if len(metrics) > 1:
            assert (f"train loss_peer_{metrics[0]}" in line) is trained
        assert ("train loss: " in line) is trained
        assert "train loss_discriminator_enhanced" in line
    for metric in metrics:
        summary = json.loads(
            (run / f"test_summary_generator_{metric}.json").read_text()
        )
        for key in ("pesq", "stoi", "csig", "cbak", "covl", "si_sdr"):
            assert key in summary
        assert summary["n_items"] == 2
        assert summary["checkpoint_epoch"] in (1, 2)  # its own best epoch
        assert summary["n_failed"] == 1  # the silent test utterance
        wavs = sorted((run / "enhanced" / f"generator_{metric}").glob("*.wav"))
        assert [w.stem for w in wavs] == [SILENT_TEST, "p257_001"]


@pytest.mark.parametrize("hparams", sorted(YAMLS))
def test_silent_utterance_is_dropped_from_the_critic_data(okd_runs, hparams):
    run, console = okd_runs[hparams]
    noisy = json.loads((run / "historical" / "noisy_scores.json").read_text())
    assert noisy[SILENT_TRAIN]["pesq"] is None
    assert all(
        v["pesq"] is not None for k, v in noisy.items() if k != SILENT_TRAIN
    )
    index = json.loads(
        (run / "historical" / "epoch_0001" / "index.json").read_text()
    )
    scores = {r["id"]: r["scores"] for r in index["records"]}
    assert len(scores) == 4  # every training utterance, batch 1
    assert scores[SILENT_TRAIN]["pesq"] is None
    # 4 utterances x 3 examples, minus the silent one's enhanced and noisy
    counts = re.findall(r"(\d+) current examples", console)
    assert counts and all(int(c) == 10 for c in counts)


def test_historical_set_grows_and_is_replayed(okd_runs):
    run, console = okd_runs["okd.yaml"]
    assert sorted(p.name for p in (run / "historical").glob("epoch_*")) == [
        "epoch_0001",
        "epoch_0002",
    ]
    replays = re.findall(r"(\d+) historical replays", console)
    assert replays == ["0", "1"]  # 20 % of epoch 1's 4 utterances, rounded


def test_causal_yaml_uses_unidirectional_generators(okd_runs):
    run, _ = okd_runs["okd_causal.yaml"]
    generator = load_module_from_hparams(
        run / "hyperparams.yaml", key="generator_pesq"
    )
    assert generator.generator.lstm.rnn.bidirectional is False


def test_each_generator_exports_and_loads_offline(
    okd_runs, tmp_path, monkeypatch
):
    run, _ = okd_runs["okd.yaml"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    noisy = 0.1 * torch.randn(
        1, 16000, generator=torch.Generator().manual_seed(0)
    )
    for metric in YAMLS["okd.yaml"]:
        key = f"generator_{metric}"
        out = tmp_path / key
        code = main(
            [
                "export",
                "--hparams",
                str(run / "hyperparams.yaml"),
                "--checkpoint",
                str(run),
                "--key",
                key,
                "--output",
                str(out),
            ]
        )
        assert code == 0
        enhancer = KDEnhancement.from_hparams(
            source=str(out), savedir=str(tmp_path / f"{key}_loaded")
        )
        trained = load_module_from_hparams(run / "hyperparams.yaml", key=key)
        ckpt = sorted((run / "save").glob("CKPT+*"))[-1] / f"{key}.ckpt"
        trained.load_state_dict(torch.load(ckpt, weights_only=True))
        with torch.no_grad():
            expected = trained.eval()(noisy)
        got = enhancer.enhance_batch(noisy)
        assert torch.allclose(got, expected, atol=1e-5)
        card = (out / "README.md").read_text()
        assert "MetricGANGenerator" in card or "SpectralMaskEnhancer" in card


def test_resumed_run_continues_with_its_historical_set(
    run_script, data_folder, tmp_path
):
    first = run_okd(
        run_script, "okd.yaml", data_folder, tmp_path, "--number_of_epochs=1"
    )
    run = tmp_path / "run"
    epoch1 = run / "historical" / "epoch_0001"
    before = {p.name: p.read_bytes() for p in epoch1.iterdir()}
    assert "Going into epoch 1" in first.stdout + first.stderr
    second = run_okd(
        run_script, "okd.yaml", data_folder, tmp_path, "--number_of_epochs=2"
    )
    assert "Going into epoch 1" not in second.stdout + second.stderr
    assert "Going into epoch 2" in second.stdout + second.stderr
    after = {p.name: p.read_bytes() for p in epoch1.iterdir()}
    assert after == before  # epoch 1's historical set intact
    assert re.findall(
        r"(\d+) historical replays", second.stdout + second.stderr
    ) == ["1"]
    log = (run / "train_log.txt").read_text()
    assert log.count("epoch: 1 ") == 1 and log.count("epoch: 2 ") == 1


def test_bf16_accumulation_and_one_critic_per_metric_run(
    run_script, data_folder, tmp_path
):
    """``--precision=bf16`` and gradient accumulation go through
    SpeechBrain's fit_batch for both phases (the LSTM and the STFTs stay
    in float32; the critic counts its own steps); with
    ``shared_discriminator: False`` (the paper's reading) one critic per
    target metric trains with the same scheme."""
    result = run_okd(
        run_script,
        "okd.yaml",
        data_folder,
        tmp_path,
        "--debug",
        "--debug_persistently",
        "--precision=bf16",
        "--grad_accumulation_factor=2",
        "--shared_discriminator=False",
    )
    assert "--precision=bf16" in result.stdout + result.stderr
    log = (tmp_path / "run" / "train_log.txt").read_text()
    assert "epoch: 2" in log and "loss_discriminator_enhanced" in log
    assert "train loss_peer_pesq" in log
    ckpt = sorted((tmp_path / "run" / "save").glob("CKPT+*"))[-1]
    state = torch.load(ckpt / "discriminator.ckpt", weights_only=True)
    heads = {key.split(".")[1] for key in state}
    assert heads == {"0", "1"}  # discriminators.0 and .1


def test_torchrun_two_processes_gloo(data_folder, tmp_path):
    """Two CPU processes: the main one scores and writes the historical
    set, both train on it. (``--debug_persistently``: plain ``--debug``
    gives each process its own temporary checkpoint folder, and
    SpeechBrain's checkpoint clean-up then waits forever under DDP.)"""
    result = run_torchrun(
        SCRIPT,
        REPO / "hparams" / "okd.yaml",
        "--debug",
        "--debug_persistently",
        "--distributed_backend=gloo",
        f"--data_folder={data_folder}",
        f"--prepare_folder={tmp_path / 'prepared'}",
        f"--output_folder={tmp_path / 'run'}",
        *TINY,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    run = tmp_path / "run"
    index = json.loads(
        (run / "historical" / "epoch_0002" / "index.json").read_text()
    )
    assert len(index["records"]) == 4
    for metric in ("pesq", "csig"):
        assert (run / f"test_summary_generator_{metric}.json").is_file()


DIES = REPO / "tests" / "scripts" / "okd_dies.py"


def okd_command(script, data_folder, out, *args):
    return [
        sys.executable,
        *script,
        str(REPO / "hparams" / "okd.yaml"),
        f"--data_folder={data_folder}",
        f"--prepare_folder={out / 'prepared'}",
        f"--output_folder={out / 'run'}",
        "--hidden_size=8",
        "--linear_size=8",
        "--discriminator_channels=[2, 2, 2, 2]",
        "--metric_jobs=1",
        "--utterances_per_epoch=6",
        "--number_of_epochs=2",
        "--ckpt_interval_minutes=0",
        "--ckpt_interval_steps=1",
        "--save_enhanced=False",
        *args,
    ]


def last_checkpoint_tensors(run):
    (checkpoint,) = [
        c
        for c in (run / "save").glob("CKPT+*")
        if "okd_discriminator" not in (c / "CKPT.yaml").read_text()
    ][-1:]
    return {
        f"{path.stem}.{key}": value
        for path in sorted(checkpoint.glob("*.ckpt"))
        if path.stem.startswith(("generator", "discriminator"))
        for key, value in torch.load(path, weights_only=True).items()
        if torch.is_tensor(value)
    }


@pytest.fixture(scope="module")
def uninterrupted_okd(run_script, data_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("okd_uninterrupted")
    result = run_script(okd_command([str(SCRIPT)], data_folder, out))
    assert result.returncode == 0, result.stderr[-4000:]
    return out / "run"


@pytest.mark.parametrize(
    "where, after, resumed_line",
    [
        (
            "discriminator",
            7,
            "Epoch 2: resuming the discriminator phase after update 7 (its "
            "historical set was written before the restart)",
        ),
        (
            "validation",
            0,
            "Epoch 2: the discriminator phase had finished before the "
            "restart; not repeated",
        ),
    ],
)
def test_killed_in_epoch_2_resumes_where_it_stopped(
    run_script,
    data_folder,
    tmp_path,
    uninterrupted_okd,
    where,
    after,
    resumed_line,
):
    """A run resumed from an intra-epoch checkpoint repeated the epoch's
    discriminator phase and rewrote its historical files."""
    die = [str(DIES), where, "2", str(after), str(SCRIPT)]
    killed = run_script(okd_command(die, data_folder, tmp_path))
    assert killed.returncode == 137, killed.stderr[-4000:]
    run = tmp_path / "run"
    epoch2 = run / "historical" / "epoch_0002"
    written = {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in epoch2.iterdir()
    }
    assert "index.json" in written

    resumed = run_script(okd_command([str(SCRIPT)], data_folder, tmp_path))
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    console = resumed.stdout + resumed.stderr
    assert resumed_line in console
    if where == "validation":
        assert "Epoch 2 discriminator phase" not in console
    after_resume = {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in epoch2.iterdir()
    }
    assert after_resume == written  # not rewritten
    reference = uninterrupted_okd / "historical" / "epoch_0002"
    assert {n: b for n, (b, _) in written.items()} == {
        p.name: p.read_bytes() for p in reference.iterdir()
    }
    got = last_checkpoint_tensors(run)
    expected = last_checkpoint_tensors(uninterrupted_okd)
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    log = (run / "train_log.txt").read_text()
    assert log.count("epoch: 1 ") == 1 and log.count("epoch: 2 ") == 1
