"""What would fail or crawl on a GPU, checked where it can be seen on a CPU: a checkpoint of a CUDA-graph run resumed
on the CPU; the compiled acting policy at two batch sizes; no host read in the acting step; no gradient from SAC's
policy loss into the critics; one copy per stored vector step; the renderer a --no-cuda run picks."""

import copy
import os
import traceback

import numpy as np
import pytest
import torch

import dacer_continuous_action as dacer
import dpmd_continuous_action as dpmd
import sac_continuous_action as sac
import sdac_continuous_action as sdac

SCRIPTS = pytest.mark.parametrize("script", [sdac, sac, dpmd, dacer], ids=["sdac", "sac", "dpmd", "dacer"])
TINY = dict(
    env_id="Hopper-v4",
    num_envs=2,
    learning_starts=40,
    batch_size=16,
    log_interval=20,
    eval_interval=0,
    eval_episodes=3,
    buffer_size=1000,
    cuda=False,
)


def tiny(script, **kw):
    extra = {} if script is sac else dict(num_candidates=2, diffusion_steps=3)
    if script is sdac:
        extra["num_reverse_samples"] = 4
    if script is dacer:
        extra = dict(diffusion_steps=3, entropy_samples=8)
    return script.Args(**{**TINY, **extra, **kw})


@SCRIPTS
def test_a_gpu_checkpoint_with_capturable_adam_resumes_on_the_cpu(script, tmp_path, monkeypatch):
    """A --compile run on CUDA keeps Adam capturable; its checkpoint's optimiser groups say capturable=True. Resumed
    with --no-cuda (eager), this run's own settings must win, or Adam's first step fails ("If capturable=True, params
    and state_steps must be on supported devices")."""
    monkeypatch.chdir(tmp_path)
    out = script.train(tiny(script, total_timesteps=100, checkpoint_interval=100, checkpoint_buffer=True))
    ckpt = torch.load(out["checkpoint"], weights_only=True)
    for name in ("q_optimizer", "actor_optimizer"):
        for group in ckpt[name]["param_groups"]:
            group.update(capturable=True, lr=torch.tensor(group["lr"]))  # as a compiled CUDA run saves them
    torch.save(ckpt, tmp_path / "gpu.pt")
    resumed = script.train(tiny(script, total_timesteps=140, checkpoint_interval=100, resume=str(tmp_path / "gpu.pt")))
    assert resumed["global_step"] == 140


def test_compiled_policy_one_static_graph_per_batch_size(monkeypatch):
    """Acting (num_envs states, a tensor noise) and evaluation (eval_episodes states, no noise, under no_grad) call the
    compiled policy at two batch sizes: two graphs, each with static shapes, whatever the number of calls. (A default
    torch.compile turns the second batch size into a dynamic-shape graph, slower and, under CUDA graphs, recorded
    anew for each new shape.)"""
    graphs = []

    def recorder(gm, example_inputs):
        dynamic = any(
            isinstance(s, torch.SymInt) for x in example_inputs if isinstance(x, torch.Tensor) for s in x.shape
        )
        graphs.append(dynamic or any(isinstance(x, torch.SymInt) for x in example_inputs))
        return gm.forward

    real_compile = torch.compile
    monkeypatch.setattr(
        torch, "compile", lambda fn, mode=None, dynamic=None: real_compile(fn, backend=recorder, dynamic=dynamic)
    )
    torch._dynamo.reset()
    args = tiny(sdac, compile=True)
    torch.manual_seed(0)
    actor, qf = sdac.NoiseNetwork(11, 3), sdac.TwinQNetwork(11, 3)
    policy = sdac.compile_policy(sdac.make_policy(sdac.make_schedule("linear", 3), args), args)
    for _ in range(3):
        policy(actor, qf, torch.randn(2, 11), 0.1 * torch.tensor(5.0))  # acting: num_envs = 2
        with torch.no_grad():
            policy(actor, qf, torch.randn(3, 11), 0.0)  # evaluation: eval_episodes = 3
    torch._dynamo.reset()
    assert graphs == [False, False], f"{len(graphs)} graphs, dynamic: {graphs}"


@SCRIPTS
def test_acting_reads_nothing_back_from_the_device(script, tmp_path, monkeypatch):
    """The non-finite flag lives on the device and is read at logs, evaluations and checkpoints only: acting checks
    its actions on the host, where they already are. Counted: reads of a tensor's truth value over 60 acting
    iterations with one log and no evaluation between (before the fix: one per iteration)."""
    monkeypatch.chdir(tmp_path)
    reads = []
    real_bool = torch.Tensor.__bool__

    def counted(self):
        caller = traceback.extract_stack(limit=2)[0]
        if not caller.filename.endswith(os.path.join("nn", "init.py")):  # (the networks' init, before the loop)
            reads.append(f"{os.path.basename(caller.filename)}:{caller.lineno}")
        return real_bool(self)

    monkeypatch.setattr(torch.Tensor, "__bool__", counted)
    if script is dacer:  # its entropy estimate (at update 0 here) is the host's by design: a mixture fit on the CPU
        real_entropy = script.policy_entropy

        def uncounted(*a, **k):
            before = len(reads)
            out = real_entropy(*a, **k)
            del reads[before:]
            return out

        monkeypatch.setattr(script, "policy_entropy", uncounted)
    script.train(tiny(script, total_timesteps=200, log_interval=10**6, learning_starts=80, checkpoint_interval=0))
    assert len(reads) <= 3, f"{len(reads)} host reads in 60 acting iterations: {sorted(set(reads))}"


def test_sac_policy_step_leaves_the_critics_gradients_alone():
    """SAC's policy loss reaches Q through its input a = pi(s); the critics' parameters need no gradient from it
    (computing it, then zeroing it at the next critic step, is wasted work on every policy update)."""
    g = torch.Generator().manual_seed(1)
    data = sac.Batch(
        torch.randn(16, 5, generator=g),
        torch.rand(16, 3, generator=g) * 2 - 1,
        torch.randn(16, generator=g),
        torch.randn(16, 5, generator=g),
        torch.zeros(16),
    )

    def learner(policy_frequency):  # update 0 is the critic step alone (2), or followed by a policy step (1)
        torch.manual_seed(0)
        actor, qf = sac.Actor(5, 3), sac.TwinQNetwork(5, 3)
        log_alpha = torch.zeros((), requires_grad=True)
        opts = [torch.optim.Adam(p) for p in (qf.parameters(), actor.parameters(), [log_alpha])]
        args = sac.Args(cuda=False, policy_frequency=policy_frequency, target_network_frequency=10)
        return sac.make_update(actor, qf, copy.deepcopy(qf), log_alpha, *opts, -3.0, args), actor, qf

    (critic_only, _, qf_alone), (both, actor, qf) = learner(2), learner(1)
    actor_before = [p.detach().clone() for p in actor.parameters()]
    torch.manual_seed(1)
    critic_only(data, 0)
    torch.manual_seed(1)
    both(data, 0)
    critic_grads = [p.grad for p in qf_alone.parameters()]
    assert all(torch.equal(p.grad, g) for p, g in zip(qf.parameters(), critic_grads)), "no gradient into the critics"
    assert all(p.requires_grad for p in qf.parameters())
    assert not all(torch.equal(p, b) for p, b in zip(actor.parameters(), actor_before)), "the policy stepped"


def test_a_vector_step_is_stored_with_one_copy(monkeypatch):
    """The replay buffer packs (s, a, r, s', done) in one tensor: one host-to-device copy and one indexed write per
    vector step, not one per field; and what comes back is what went in."""
    rb = sdac.ReplayBuffer(10, 4, 2, torch.device("cpu"))
    writes = []
    real_setitem = torch.Tensor.__setitem__
    monkeypatch.setattr(torch.Tensor, "__setitem__", lambda self, i, v: (writes.append(1), real_setitem(self, i, v))[1])
    obs, act, rew = np.arange(12.0).reshape(3, 4), -np.ones((3, 2), np.float32), np.array([1.0, 2.0, 3.0])
    rb.add(obs, act, rew, obs + 100, np.array([True, False, True]))
    monkeypatch.undo()
    assert len(writes) == 1
    o, a, r, o2, d = rb.data
    assert torch.equal(o[:3], torch.tensor(obs, dtype=torch.float32)) and torch.equal(o2[:3], o[:3] + 100)
    assert torch.equal(a[:3], -torch.ones(3, 2)) and torch.equal(r[:3], torch.tensor([1.0, 2.0, 3.0]))
    assert (
        torch.equal(d[:3], torch.tensor([1.0, 0.0, 1.0])) and rb.size == 3 and o.shape == (10, 4) and r.shape == (10,)
    )


@pytest.mark.parametrize("cuda, expected", [(False, "osmesa"), (True, "egl")])
def test_a_no_cuda_run_renders_with_osmesa_even_where_cuda_exists(cuda, expected, monkeypatch):
    """Without a display, MuJoCo's off-screen renderer is EGL for a run on the GPU and OSMesa otherwise: --no-cuda on a
    CUDA machine is a CPU run (EGL there would want the GPU's driver)."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("MUJOCO_GL", "")  # so that what check_env sets is undone after the test, then
    monkeypatch.delenv("MUJOCO_GL")  # unset: later tests' subprocesses must not inherit osmesa
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(sdac.gym, "make", lambda *a, **k: (_ for _ in ()).throw(sdac.gym.error.Error("no env")))
    with pytest.raises(SystemExit, match="cannot create env"):
        sdac.check_env("Hopper-v4", render=True, cuda=cuda)
    assert os.environ["MUJOCO_GL"] == expected


def test_a_gl_library_that_does_not_load_is_a_one_line_error(monkeypatch):
    """MUJOCO_GL=osmesa where OSMesa is missing: PyOpenGL's AttributeError from MuJoCo's import becomes one line that
    names the variable, not a traceback (seen on a machine without libosmesa6)."""
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    error = AttributeError("'NoneType' object has no attribute 'glGetError'")
    monkeypatch.setattr(sdac.gym, "make", lambda *a, **k: (_ for _ in ()).throw(error))
    message = r"cannot create env 'Hopper-v4': 'NoneType' .*'glGetError' \(MUJOCO_GL=osmesa: install OSMesa"
    with pytest.raises(SystemExit, match=message):
        sdac.check_env("Hopper-v4")


@SCRIPTS
def test_tf32_is_set_in_one_api_and_each_run_sets_its_own(script, tmp_path, monkeypatch):
    """--tf32 through torch.set_float32_matmul_precision, whose state every reader of it agrees on. The legacy
    allow_tf32 setter after torch >= 2.9's fp32_precision API (which PyTorch's docs advise, so a user or a library may
    have used it first) leaves a mixed state in which torch.get_float32_matmul_precision() raises, and Inductor calls
    it. A run without --tf32 after one with it in the same process (speed.py, the tests) is back at full precision."""
    monkeypatch.chdir(tmp_path)
    short = dict(total_timesteps=8, learning_starts=4, eval_episodes=1, checkpoint_interval=0)
    torch.backends.cuda.matmul.fp32_precision = "ieee"  # the new API, used before the run
    try:
        script.train(tiny(script, tf32=True, **short))
        assert torch.get_float32_matmul_precision() == "high" and torch.backends.cuda.matmul.fp32_precision == "tf32"
        script.train(tiny(script, **short))
        assert torch.get_float32_matmul_precision() == "highest" and torch.backends.cuda.matmul.fp32_precision == "ieee"
    finally:
        torch.set_float32_matmul_precision("highest")
