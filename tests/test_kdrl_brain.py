"""``KDRLBrain``: one step by hand, checkpoints and refusals."""

import copy
import functools

import pytest
import torch

from speechbrain.dataio.batch import PaddedBatch
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.epoch_loop import EpochCounter
from speechbrain_kd.brains.kdrl import KDRLBrain
from speechbrain_kd.distill import OutputDistillTerm
from speechbrain_kd.distill.kdrl import PolicyNetwork
from speechbrain_kd.lobes.wave_u_net import WaveUNet
from speechbrain_kd.losses import mse_loss_masked

pytestmark = pytest.mark.usefixtures("one_thread")

LENGTH = 800
DISTANCE = functools.partial(mse_loss_masked, reduction="none")
EPOCHS = 4


def terms():
    return [
        OutputDistillTerm(
            DISTANCE, name="hard", target="clean", pass_noisy=False
        ),
        OutputDistillTerm(DISTANCE, name="soft", pass_noisy=False),
    ]


def make_brain(checkpointer=None, **hparams):
    torch.manual_seed(0)
    student = WaveUNet(width=2, depth=3)
    teacher = WaveUNet(width=3, depth=3).eval()
    counter = EpochCounter(EPOCHS)
    if checkpointer is not None:
        checkpointer.add_recoverable("model", student)
        checkpointer.add_recoverable("counter", counter)
    brain = KDRLBrain(
        modules={"model": student},
        opt_class=lambda params: torch.optim.SGD(params, 0.1),
        hparams={
            "distill_terms": terms(),
            "distance": DISTANCE,
            "policy": PolicyNetwork(LENGTH),
            "policy_opt_class": lambda params: torch.optim.SGD(params, 1.0),
            "epoch_counter": counter,
            "valid_metrics": ["si_sdr"],
            "ckpt_max_key": "si_sdr",
            **hparams,
        },
        run_opts={"device": "cpu", "noprogressbar": True},
        checkpointer=checkpointer,
        teacher=teacher,
    )
    return brain, student, teacher


def batch(size=1, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return PaddedBatch(
        [
            {
                "id": f"u{i}",
                "noisy_sig": 0.3 * torch.randn(LENGTH, generator=generator),
                "clean_sig": 0.3 * torch.randn(LENGTH, generator=generator),
            }
            for i in range(size)
        ]
    )


def test_one_step_by_hand():
    brain, student, teacher = make_brain()
    brain.init_optimizers()
    data = batch()
    noisy, clean = data.noisy_sig.data, data.clean_sig.data
    before = copy.deepcopy(student)
    with torch.no_grad():
        teacher_out = teacher(noisy)
        # a throwaway copy: train-mode BatchNorm moves its statistics
        student_out = copy.deepcopy(before)(noisy)
        d_original = DISTANCE(student_out, clean)
    policy = copy.deepcopy(brain.policy)
    policy.train()
    from speechbrain_kd.distill.kdrl import policy_state

    alpha = policy(policy_state(clean, student_out, teacher_out))

    loss = brain.fit_batch(data)
    logged = {k[len("loss_") :]: v for k, v in brain.term_averages().items()}

    # Eq. 7, method C: D(clean, S) + alpha D(teacher, S), before the update
    expected = DISTANCE(student_out, clean) + alpha.detach() * DISTANCE(
        student_out, teacher_out
    )
    assert float(loss) == pytest.approx(float(expected.mean()), rel=1e-5)
    assert logged["alpha"] == pytest.approx(alpha.item(), rel=1e-6)
    # Each reference made one SGD step from the student's old weights,
    # R1 towards the teacher, R2 towards the clean signal (Eqs. 5-6).
    for name, target in (("soft", teacher_out), ("hard", clean)):
        reference = copy.deepcopy(before).train()
        optimizer = torch.optim.SGD(reference.parameters(), 0.1)
        DISTANCE(reference(noisy), target).mean().backward()
        optimizer.step()
        got = brain.references[name].state_dict()
        for key, value in reference.state_dict().items():
            assert torch.allclose(got[key], value, atol=1e-6), (name, key)
    # Eqs. 8-11 from the re-pass distances
    r = logged["reward"]
    d = {
        "s": logged["distance_student"],
        "r1": logged["distance_soft_reference"],
        "r2": logged["distance_hard_reference"],
    }
    if d["r1"] < min(d["r2"], d["s"]):
        assert r == pytest.approx(d["r1"] - d["s"], rel=1e-5)
    elif d["r2"] < min(d["r1"], d["s"]):
        assert r == pytest.approx(d["s"] - d["r2"], rel=1e-5)
    else:
        assert r == 0.0
    delta = r / abs(float(d_original)) / EPOCHS
    target = min(max(alpha.item() + delta, 0.0), 1.0)
    assert logged["policy"] == pytest.approx(
        (alpha.item() - target) ** 2, rel=1e-4, abs=1e-12
    )
    # the policy moved by exactly one SGD step of that loss
    policy_optimizer = torch.optim.SGD(policy.parameters(), 1.0)
    ((alpha - torch.tensor(target)) ** 2).mean().backward()
    policy_optimizer.step()
    for key, value in policy.state_dict().items():
        assert torch.allclose(brain.policy.state_dict()[key], value, atol=1e-6)


def test_references_start_from_the_student_every_step():
    brain, student, _ = make_brain()
    brain.init_optimizers()
    brain.fit_batch(batch(seed=1))
    trained = copy.deepcopy(student.state_dict())
    brain.copy_student_to_references()
    for name in ("soft", "hard"):
        state = brain.references[name].state_dict()
        assert all(torch.equal(state[k], trained[k]) for k in trained)


def test_fixed_alpha_baseline_has_no_policy():
    brain, student, teacher = make_brain(fixed_alpha=0.75, kdrl_method="A")
    brain.init_optimizers()
    assert brain.policy is None
    data = batch(size=2)
    noisy, clean = data.noisy_sig.data, data.clean_sig.data
    with torch.no_grad():
        out, teacher_out = student(noisy), teacher(noisy)
    expected = 0.25 * DISTANCE(out, clean) + 0.75 * DISTANCE(out, teacher_out)
    loss = brain.fit_batch(data)
    assert float(loss) == pytest.approx(float(expected.mean()), rel=1e-5)


def test_policy_references_and_optimizers_are_checkpointed(tmp_path):
    checkpointer = Checkpointer(tmp_path / "save")
    brain, _, _ = make_brain(checkpointer)
    brain.init_optimizers()
    for key in (
        "policy",
        "references",
        "policy_optimizer",
        "reference_soft_optimizer",
        "reference_hard_optimizer",
    ):
        assert key in checkpointer.recoverables
    brain.fit_batch(batch())
    checkpointer.save_checkpoint()
    saved_policy = copy.deepcopy(brain.policy.state_dict())
    saved_state = copy.deepcopy(brain.policy_optimizer.state_dict())

    fresh = Checkpointer(tmp_path / "save")
    other, _, _ = make_brain(fresh)
    other.init_optimizers()
    fresh.recover_if_possible()
    assert all(
        torch.equal(other.policy.state_dict()[k], v)
        for k, v in saved_policy.items()
    )
    assert (
        other.policy_optimizer.state_dict()["param_groups"]
        == (saved_state["param_groups"])
    )


def test_gradient_accumulation_makes_one_iteration_of_two_batches():
    brain, student, teacher = make_brain()
    brain.grad_accumulation_factor = 2
    brain.init_optimizers()
    start = copy.deepcopy(student)
    policy_before = copy.deepcopy(brain.policy.state_dict())
    batches = [batch(seed=3), batch(seed=4)]

    brain.step = 1  # SpeechBrain's loop counts the batch before fit_batch
    brain.fit_batch(batches[0])
    assert len(brain.iteration_batches) == 1
    for name in ("soft", "hard"):  # copied, not stepped yet
        state = brain.references[name].state_dict()
        for key, value in start.state_dict().items():
            if "running" not in key and "num_batches" not in key:
                assert torch.equal(state[key], value), (name, key)
    assert all(
        torch.equal(brain.policy.state_dict()[k], v)
        for k, v in policy_before.items()
        if "running" not in k and "num_batches" not in k
    )
    brain.step = 2
    brain.fit_batch(batches[1])
    assert brain.iteration_batches == []

    # each reference: one SGD step on the mean of the two batches' losses
    # from the weights the student had when the iteration began
    for name in ("soft", "hard"):
        reference = copy.deepcopy(start).train()
        optimizer = torch.optim.SGD(reference.parameters(), 0.1)
        for data in batches:
            noisy, clean = data.noisy_sig.data, data.clean_sig.data
            with torch.no_grad():
                target = teacher(noisy) if name == "soft" else clean
            (DISTANCE(reference(noisy), target).mean() / 2).backward()
        optimizer.step()
        got = brain.references[name].state_dict()
        for key, value in reference.state_dict().items():
            assert torch.allclose(got[key], value, atol=1e-6), (name, key)
    assert any(
        not torch.equal(brain.policy.state_dict()[k], v)
        for k, v in policy_before.items()
    )


def test_missing_terms_are_named():
    with pytest.raises(ValueError, match=r"missing \['soft'\]"):
        make_brain(distill_terms=terms()[:1])


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="one of"):
        make_brain(kdrl_method="Z")


def test_alpha_statistics_are_logged_per_epoch():
    brain, _, _ = make_brain()
    brain.init_optimizers()
    import speechbrain as sb

    brain.on_stage_start(sb.Stage.TRAIN, 1)
    for seed in range(3):
        brain.fit_batch(batch(size=2, seed=seed))
    brain.on_stage_end(sb.Stage.TRAIN, 0.0, 1)
    stats = brain.train_stats
    assert (
        0 < stats["alpha_min"] <= stats["alpha_mean"] <= stats["alpha_max"] < 1
    )
    assert stats["alpha_std"] >= 0
    for key in ("loss_reward", "loss_policy", "loss_distance_student"):
        assert key in stats


def test_policy_learning_rate_decays_from_1e_6_to_1e_8():
    import speechbrain as sb

    brain, _, _ = make_brain(policy_lr=1e-6, policy_final_lr=1e-8)
    brain.init_optimizers()
    rates = []
    for epoch in range(1, EPOCHS + 1):
        brain.on_stage_start(sb.Stage.TRAIN, epoch)
        rates.append(brain.policy_optimizer.param_groups[0]["lr"])
    # 4 epochs: 1e-6, 1e-6 * 0.01 ** (1/3), ..., 1e-8
    expected = [1e-6 * 0.01 ** (k / 3) for k in range(4)]
    assert rates == pytest.approx(expected, rel=1e-12)
    constant, _, _ = make_brain(policy_lr=1e-6)
    assert constant.policy_lr(3) == 1e-6


def test_ddp_keeps_the_policy_equal_on_every_process(tmp_path):
    import pathlib

    from recipe_rows import run_torchrun

    repo = pathlib.Path(__file__).resolve().parents[1]
    script = repo / "tests" / "scripts" / "kdrl_ddp.py"
    result = run_torchrun(script, tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for part in ("policy", "student"):  # different data, synchronised grads
        for key, value in rank0[part].items():
            if "num_batches" in key or "running" in key:
                continue
            assert torch.allclose(value, rank1[part][key], atol=1e-6), key
