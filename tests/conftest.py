"""Shared fixtures: the real-audio and golden-output folders beside the
project.

Real-audio checks read ``../shared/data`` (override with the environment
variable ``SBKD_SHARED_DATA``); golden outputs of the official MANNER code
are read from ``../shared/reference/golden`` (override with
``SBKD_GOLDEN``); SpeechBrain's consistency checks from
``../shared/upstream`` (``SBKD_UPSTREAM``). When a folder is missing its
checks are skipped on a developer machine but **fail** under CI (``CI=true``), so a missing folder
can never turn a real check into a silent pass.
"""

import fcntl
import os
import pathlib
import shutil

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_GOLDEN = REPO_ROOT.parent / "shared" / "reference" / "golden"
DEFAULT_UPSTREAM = REPO_ROOT.parent / "shared" / "upstream"


def _folder_or_skip(variable, default, what):
    """The folder named by ``variable`` (or ``default``); skip or fail."""
    folder = pathlib.Path(os.environ.get(variable, default))
    if not folder.is_dir():
        message = (
            f"{what} folder {folder} is missing; set {variable} or place "
            "the shared data beside the project"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder


def _shared_folder(tmp_path_factory, name, make):
    """``root/name`` filled once by ``make(folder)`` for the whole session:
    under pytest-xdist all workers share it (a lock file, a ``.done``
    marker beside it), so a test that reuses a recipe row's prepared data (run by
    another worker) sees the very folders that data was prepared from."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER") is not None:
        root = root.parent
    folder = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = root / f"{name}.done"
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            make(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def shared_data():
    """Path to the real recorded audio in ``../shared/data``."""
    return _folder_or_skip(
        "SBKD_SHARED_DATA", DEFAULT_SHARED_DATA, "real-audio"
    )


@pytest.fixture(scope="session")
def golden():
    """Path to the official MANNER golden outputs
    (``../shared/reference/golden``)."""
    return _folder_or_skip("SBKD_GOLDEN", DEFAULT_GOLDEN, "golden-output")


@pytest.fixture(scope="session")
def upstream():
    """Path to SpeechBrain's own consistency checks
    (``../shared/upstream``)."""
    return _folder_or_skip(
        "SBKD_UPSTREAM", DEFAULT_UPSTREAM, "SpeechBrain-checks"
    )


@pytest.fixture(scope="session")
def mini_valentini(tmp_path_factory):
    """A tiny generated VoiceBank-DEMAND in the official 48 kHz layout,
    shared by the recipe tests."""
    from speechbrain_kd.data.synthetic import make_mini_valentini

    return _shared_folder(
        tmp_path_factory,
        "mini_valentini",
        lambda folder: make_mini_valentini(folder, n_train=6, n_test=2, seed=0),
    )


@pytest.fixture(scope="session")
def silent_valentini(tmp_path_factory):
    """A mini VoiceBank-DEMAND whose training utterance ``p226_001`` and
    test utterance ``p232_001`` are digital silence (PESQ fails on them;
    the MetricGAN-OKD runs must go on)."""
    from recipe_rows import make_silent_valentini

    return _shared_folder(
        tmp_path_factory, "silent_valentini", make_silent_valentini
    )


@pytest.fixture(scope="session")
def folder_mix_folders(tmp_path_factory):
    """``clean/`` and ``noise/`` folders for FolderMix recipes."""
    from recipe_rows import make_folder_mix_folders

    return _shared_folder(
        tmp_path_factory, "folder_mix", make_folder_mix_folders
    )


@pytest.fixture(scope="session")
def timit_noisex_folders(tmp_path_factory):
    """Generated ``TIMIT/`` and ``NOISEX-92/`` folders in their layouts."""
    from speechbrain_kd.data.synthetic import make_timit_noisex

    return _shared_folder(
        tmp_path_factory,
        "timit_noisex",
        lambda root: make_timit_noisex(root, sentences=4, seconds=0.6),
    )


@pytest.fixture(scope="session")
def binaural_folders(tmp_path_factory):
    """Generated speech, noise and two-channel impulse-response folders,
    written by the embedded data generator (``make-data --binaural``)."""
    from speechbrain_kd.cli import main

    def make(root):
        assert (
            main(["make-data", str(root), "--binaural", "--n-train", "8"]) == 0
        )

    return _shared_folder(tmp_path_factory, "binaural_folders", make)


@pytest.fixture(scope="session")
def dns_folders(tmp_path_factory):
    """A generated folder in the DNS Challenge ``datasets`` layout."""
    from speechbrain_kd.data.synthetic import make_dns_folder

    return _shared_folder(
        tmp_path_factory,
        "dns",
        lambda root: make_dns_folder(root, n_test=2, seconds=3.0),
    )


@pytest.fixture(scope="session")
def recipe_runs(request, tmp_path_factory):
    """The debug runs of ``recipes/recipes.csv``: ``recipe_runs(hparams)``
    runs the row of that yaml once per session with its own
    ``test_debug_flags`` (teacher rows first, when a row names one) and
    returns its :class:`recipe_rows.RowRun`. The rows of the selected
    ``row``-parametrised tests are queued when the session starts and run
    two at a time in the background (by the first pytest-xdist worker;
    the other reads the runs it needs, or runs them first)."""
    from recipe_rows import RecipeRuns

    def folder(placeholder):
        fixture = {
            "data": "mini_valentini",
            "silent_data": "silent_valentini",
            "clean": "folder_mix_folders",
            "noise": "folder_mix_folders",
            "timit": "timit_noisex_folders",
            "noisex": "timit_noisex_folders",
            "binaural": "binaural_folders",
            "dns": "dns_folders",
        }[placeholder]
        value = request.getfixturevalue(fixture)
        if fixture == "folder_mix_folders":
            return value / placeholder
        if fixture == "timit_noisex_folders":
            return (
                value / {"timit": "TIMIT", "noisex": "NOISEX-92"}[placeholder]
            )
        return value

    root = tmp_path_factory.getbasetemp()
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is not None:  # pytest-xdist: the workers' common folder
        root = root.parent
    runs = RecipeRuns(root / "recipe_rows", folder)
    if worker in (None, "gw0"):
        runs.prefetch(request.config.stash.get(ROW_RUNS, []))
    yield runs
    runs.close()


@pytest.fixture(scope="session")
def run_script(tmp_path_factory):
    """``run_script([python, script, args...])``: a recipe command run as
    ``subprocess.run(..., capture_output=True, text=True)`` would, in a
    fork of an interpreter that has imported torch and SpeechBrain once
    (:class:`recipe_rows.ScriptRunner`)."""
    from recipe_rows import ScriptRunner

    runner = ScriptRunner(tmp_path_factory.mktemp("script_runs"))
    yield runner
    runner.close()


@pytest.fixture(scope="session")
def tiny_manner_teacher(recipe_runs):
    """The ``manner_teacher.yaml`` row run (its checkpoints kept, so
    distillation runs load it): ``<folder>/run`` and ``<folder>/prepared``."""
    return recipe_runs("hparams/manner_teacher.yaml").out


@pytest.fixture
def one_thread():
    """Runs a test on one torch thread (stable timings and results)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


#: The csv rows that the collected tests run (``recipe_runs`` queues them).
ROW_RUNS = pytest.StashKey[list]()
#: Whether a selected test runs recipe scripts (``run_script``).
RUNS_SCRIPTS = pytest.StashKey[bool]()

#: Modules whose tests run recipe scripts or share a trained, exported
#: model: all in the second tier.
RECIPE_MODULES = {
    "test_export.py",
    "test_recipes.py",
    "test_okd_recipes.py",
    "test_recipe_rows.py",
    "test_spatial_recipes.py",
    "test_folder_mix.py",
    "test_latent_recipes.py",
    "test_full_band_recipes.py",
    "test_onnx_step.py",
    "test_plot_recipes.py",
    "test_demo.py",
}

#: Other tests of the second tier: those that took 0.85 s or more each on a
#: 2-core machine (``pytest -m "not slow" --durations=40``): trainings,
#: subprocesses, real-audio and golden reference checks.
SLOW_TESTS = {
    "tests/test_bundle.py::test_every_lobe_bundles_with_the_interface",
    "tests/test_bundle.py::test_foreign_class_loads_the_folder_without_the_package",
    "tests/test_bundle.py::test_the_generated_file_passes_speechbrains_checks",
    "tests/test_repeated_runs.py::test_seeds_run_two_tiny_seeds_skips_finished_and_resumes",
    "tests/test_repeated_runs.py::test_compare_averages_seeds_then_pairs_utterances",
    "tests/test_latent.py::test_projection_trains_and_resumes_with_the_checkpoint",
    "tests/test_latent.py::test_every_waveform_lobe_offers_its_latent[rt_senet]",
    "tests/test_room_simulation.py::test_same_seed_same_files_and_a_lost_file_comes_back",
    "tests/test_room_simulation.py::test_the_ears_differ_by_at_most_the_ear_distance",
    "tests/test_spatial_brain.py::test_training_moves_the_student_only[bf16]",
    "tests/test_spatial_brain.py::test_training_moves_the_student_only[accumulation]",
    "tests/test_evaluate_cli.py::test_silent_and_short_files_are_counted_failures",
    "tests/test_brains.py::test_truncated_optimizer_file_is_set_aside",
    "tests/test_synthetic.py::test_durations_and_levels",
    "tests/test_brains.py::test_kd_brain_loss_terms_logged_and_summed",
    "tests/test_brains.py::test_kd_brain_teacher_frozen_outside_optimizer",
    "tests/test_brains.py::test_load_teacher_from_ckpt_and_export_folders",
    "tests/test_brains.py::test_load_teacher_wrong_architecture_lists_keys",
    "tests/test_composite.py::test_matches_matlab_reference",
    "tests/test_distill_contract.py::test_ddp_keeps_the_projection_equal_on_every_process",
    "tests/test_distill_contract.py::test_learnable_projection_trains_resumes_and_is_not_exported",
    "tests/test_distill_contract.py::test_readme_hint_term_runs_between_the_presets",
    "tests/test_evaluate_cli.py::test_25_pairs_table_json_csv",
    "tests/test_evaluate_cli.py::test_console_script_end_to_end",
    "tests/test_export.py::test_export_from_ckpt_folder_and_file",
    "tests/test_export.py::test_exported_model_loads_offline_and_matches_training_model",
    "tests/test_export.py::test_official_manner_checkpoint_exports_and_enhances_as_official",
    "tests/test_inference.py::test_chunked_matches_unchunked",
    "tests/test_inference.py::test_chunked_memory_is_bounded",
    "tests/test_inference.py::test_enhance_streaming_cli_equals_offline",
    "tests/test_kd_collapse.py::test_every_initialisation_starts_with_the_speech_sign",
    "tests/test_kd_collapse.py::test_output_kd_student_learns_like_the_student_without_kd",
    "tests/test_manner.py::test_preset_parameter_counts_exact",
    "tests/test_manner_golden.py::test_known_presets_are_the_preset_yamls",
    "tests/test_manner_golden.py::test_training_checkpoint_file_format",
    "tests/test_evaluate_cli.py::test_timed_out_file_is_named",
    "tests/test_metrics.py::test_metric_stats_failures_and_pickling",
    "speechbrain_kd/demo.py::speechbrain_kd.demo.prepare_data",
    "speechbrain_kd/demo.py::speechbrain_kd.demo.noisy_scores",
    "speechbrain_kd/demo.py::speechbrain_kd.demo.folder_scores",
    "speechbrain_kd/demo.py::speechbrain_kd.demo.enhance_test_set",
    "tests/test_kd_collapse.py::test_kd_and_no_kd_recipes_start_from_the_same_student",
    "tests/test_manner_golden.py::test_mismatch_names_our_preset_file",
    "tests/test_manner.py::test_preset_structure",
    "speechbrain_kd/data/synthetic.py::speechbrain_kd.data.synthetic.make_mini_valentini",
    "speechbrain_kd/data/synthetic.py::speechbrain_kd.data.synthetic.describe_dataset",
    "tests/test_rt_senet.py::test_compiled_streaming_equals_offline",
    "tests/test_valentini.py::test_prepare_synthetic_mini_valentini",
    "tests/test_synthetic.py::test_smaller_set_is_a_prefix",
    "tests/test_nonfinite.py::test_preparation_names_a_file_with_bad_samples",
    "tests/test_mvat_yamls.py::test_zero_weight_switches_a_term_off_from_the_command_line",
    "tests/test_compare_cli.py::test_compare_reports_the_paired_differences",
    "tests/test_nonfinite.py::test_nonfinite_weights_are_not_checkpointed_loaded_or_exported",
    "tests/test_conv_tasnet.py::test_preset_parameter_counts",
    "tests/test_incomplete_checkpoints.py::test_damaged_exported_model_names_the_file",
    "tests/test_incomplete_checkpoints.py::test_export_skips_incomplete_checkpoints",
    "tests/test_save_failures.py::test_disk_full_during_save_is_one_error_and_resume_works",
    "tests/test_nonfinite.py::test_a_nan_utterance_is_skipped_and_the_model_stays_finite",
    "tests/test_metrics.py::test_silent_and_short_files_fail_fast",
    "tests/test_brains.py::test_load_teacher_missing_sources",
    "tests/test_brains.py::test_kd_brain_loads_teacher_from_source",
    "tests/test_brains.py::test_load_teacher_from_training_folder_takes_best_pesq",
    "tests/test_brains.py::test_checkpoint_meta_holds_pesq_and_keeps_best",
    "tests/test_kdrl_brain.py::test_ddp_keeps_the_policy_equal_on_every_process",
    "tests/test_metrics.py::test_hanging_crashing_and_raising_tasks_fail_without_hanging",
    "tests/test_metrics.py::test_safe_pool_reports_reasons_and_is_reusable",
    "tests/test_metrics.py::test_vbd_reference_pesq_and_stoi",
    "tests/test_mvat_yamls.py::test_each_recipe_computes_the_terms_of_its_table_3_row",
    "tests/test_mvat_yamls.py::test_profile_loads_an_ablation_as_its_base",
    "tests/test_pretrained.py::test_inference_interface_imports_no_training_code",
    "tests/test_pretrained.py::test_loading_and_running_a_student_imports_no_training_code",
    "tests/test_synthetic.py::test_determinism",
    "tests/test_synthetic.py::test_layout",
    "tests/test_synthetic.py::test_pesq_computable",
    "tests/test_synthetic.py::test_rerun_overwrites_cleanly",
}


def pytest_collection_modifyitems(config, items):
    """Marks the second tier ``slow``: every test of
    :data:`RECIPE_MODULES` and :data:`SLOW_TESTS`. ``pytest -m "not slow"``
    (``make test-fast``) runs the rest, unit tests and doctests, in under a
    minute; ``make test`` runs both tiers."""
    for item in items:
        name = item.nodeid.split("[")[0]
        if item.path.name in RECIPE_MODULES or name in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


def pytest_collection_finish(session):
    """Notes the csv rows of the selected row tests of
    ``test_recipe_rows.py`` (after ``-m`` / ``-k`` deselection), for
    :func:`start_row_runs`."""
    rows = []
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or item.path.name != "test_recipe_rows.py":
            continue
        row = callspec.params.get("row")
        if isinstance(row, dict) and row["Hparam_file"] not in rows:
            rows.append(row["Hparam_file"])
    session.config.stash[ROW_RUNS] = rows
    session.config.stash[RUNS_SCRIPTS] = any(
        "run_script" in getattr(item, "fixturenames", ())
        for item in session.items
    )


@pytest.fixture(scope="session", autouse=True)
def start_row_runs(request):
    """Starts the selected rows' debug runs (and the script server) in the
    background with the session, so they overlap the in-process tests."""
    if request.config.stash.get(ROW_RUNS, []):
        request.getfixturevalue("recipe_runs")
    if request.config.stash.get(RUNS_SCRIPTS, False):
        request.getfixturevalue("run_script")  # its server imports meanwhile
