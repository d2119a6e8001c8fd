"""The formulas of one update in all three RL scripts, each against a value computed here by hand: the critics' TD
target, lambda's rule (its fixed point and its exact gradient) and alpha's gradient, that no policy loss sends a
gradient into the critics, and which critics DPMD's weights see. Each test names the plausible bug it is for."""

import copy
import math

import pytest
import torch

import dpmd_continuous_action as dpmd
import sac_continuous_action as sac
import sdac_continuous_action as sdac

OBS, ACT, B = 5, 3, 16


def batch(module, seed=1):
    """A batch with a few terminal transitions (rows 0, 5, 10, 15) and rewards of both signs."""
    g = torch.Generator().manual_seed(seed)
    dones = (torch.arange(B) % 5 == 0).float()
    return module.Batch(
        torch.randn(B, OBS, generator=g),
        torch.rand(B, ACT, generator=g) * 2 - 1,
        torch.randn(B, generator=g) * 3,
        torch.randn(B, OBS, generator=g),
        dones,
    )


def perturb_(module: torch.nn.Module, scale=0.3, seed=7) -> None:
    """Moves a network away from its copy, so that a target network and its online twin give different values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)


def diffusion_learner(module, policy=None, after_q_step=None, **kw):
    """SDAC's or DPMD's update on tiny networks; `policy` replaces the sampler (a stub for a'), after_q_step() runs
    after each step of the critics' optimiser."""
    extra = {"num_reverse_samples": 4} if module is sdac else {}
    args = module.Args(num_candidates=2, diffusion_steps=3, cuda=False, **extra, **kw)
    torch.manual_seed(0)
    actor, qf = module.NoiseNetwork(OBS, ACT), module.TwinQNetwork(OBS, ACT)
    actor_ema, qf_target = copy.deepcopy(actor), copy.deepcopy(qf)
    perturb_(qf_target)
    log_lam = torch.tensor(math.log(args.lambda_init), requires_grad=True)
    q_opt, a_opt = torch.optim.Adam(qf.parameters(), lr=args.q_lr), torch.optim.Adam(actor.parameters(), lr=1e-3)
    lam_opt = torch.optim.Adam([log_lam], lr=args.lambda_lr)
    if after_q_step:  # before make_update, which keeps the step method it finds
        real_step = q_opt.step
        q_opt.step = lambda *a, **k: (real_step(*a, **k), after_q_step())[0]
    sched = module.make_schedule(args.beta_schedule, args.diffusion_steps)
    policy = policy or module.make_policy(sched, args)
    q_stats = [torch.tensor([0.0, 1.0])] if module is dpmd else []
    update, update_lambda = module.make_update(
        policy, actor, actor_ema, qf, qf_target, log_lam, *q_stats, q_opt, a_opt, lam_opt, sched, args
    )
    return dict(
        args=args,
        update=update,
        update_lambda=update_lambda,
        actor=actor,
        actor_ema=actor_ema,
        qf=qf,
        qf_target=qf_target,
        log_lam=log_lam,
        q_opt=q_opt,
        policy=policy,
    )


def td_target(qf_target, data, next_a, reward_scale, gamma, bonus=0.0):
    """y = reward_scale r + gamma (1 - done) (min(Q1', Q2')(s', a') + bonus), written out per critic."""
    with torch.no_grad():
        q1, q2 = qf_target(data.next_obs, next_a)
        return reward_scale * data.rewards + gamma * (1 - data.terminations) * (torch.minimum(q1, q2) + bonus)


def critic_losses(qf, data, y):
    with torch.no_grad():
        q = qf(data.obs, data.actions)
    return ((q[0] - y) ** 2).mean(), ((q[1] - y) ** 2).mean()


@pytest.mark.parametrize(
    "module, entropy_in_target",
    [(sdac, False), (sdac, True), (dpmd, False)],
    ids=["sdac", "sdac-entropy-in-target", "dpmd"],
)
def test_td_target_of_the_diffusion_critics(module, entropy_in_target):
    """Critic loss = mean (Q_i(s, a) - y)^2 with y = 0.2 r + 0.99 (1 - done) min Q_target(s', a'), a' from the policy
    at s' with noise 0.1 lambda (SDAC with --entropy-in-target adds lambda * H to min Q'). Catches: (1 - done)
    dropped, the online critics in place of the targets, max for min, the reward scale or gamma lost, a' taken at s.
    (DPMD's target has no entropy term.)"""
    next_a = torch.rand(B, ACT) * 2 - 1
    seen = []

    def stub(actor, qf, obs, noise_std):
        seen.append((obs, noise_std))
        return next_a

    kw = {"entropy_in_target": True} if entropy_in_target else {}
    L = diffusion_learner(module, policy=stub, **kw)
    data, lam = batch(module), torch.tensor(0.7)
    qf_before = copy.deepcopy(L["qf"])
    stats = L["update"](data, lam, 1)  # update 1: the critic step only
    bonus = lam * 0.5 * ACT * math.log(2 * math.pi * math.e * (0.1 * 0.7) ** 2) if entropy_in_target else 0.0
    y = td_target(L["qf_target"], data, next_a, 0.2, 0.99, bonus)
    loss1, loss2 = critic_losses(qf_before, data, y)
    assert torch.equal(seen[0][0], data.next_obs) and float(seen[0][1]) == pytest.approx(0.1 * 0.7)
    assert stats["qf1_loss"].item() == pytest.approx(loss1.item(), rel=1e-5)
    assert stats["qf2_loss"].item() == pytest.approx(loss2.item(), rel=1e-5)
    assert loss1 != pytest.approx(
        critic_losses(qf_before, data, td_target(qf_before, data, next_a, 0.2, 0.99, bonus))[0].item()
    )


def test_td_target_of_sac_subtracts_alpha_log_pi():
    """y = r + gamma (1 - done) (min Q_target(s', a') - alpha log pi(a'|s')), a' ~ pi(.|s') (CleanRL's line 207).
    Catches: the sign of the entropy term, alpha not applied, (1 - done) dropped, the online critics."""
    args = sac.Args(cuda=False, policy_frequency=2, target_network_frequency=2)  # update 0: the critic step alone
    torch.manual_seed(0)
    actor, qf = sac.Actor(OBS, ACT), sac.TwinQNetwork(OBS, ACT)
    qf_target = copy.deepcopy(qf)
    perturb_(qf_target)
    log_alpha = torch.tensor(math.log(0.3), requires_grad=True)
    opts = [torch.optim.Adam(p) for p in (qf.parameters(), actor.parameters(), [log_alpha])]
    update = sac.make_update(actor, qf, qf_target, log_alpha, *opts, -float(ACT), args)
    next_a, next_log_pi = torch.rand(B, ACT) * 2 - 1, torch.randn(B)
    seen = []
    actor.get_action = lambda obs: (seen.append(obs), (next_a, next_log_pi, next_a))[1]
    data = batch(sac)
    qf_before = copy.deepcopy(qf)
    stats = update(data, 0)
    with torch.no_grad():
        q1, q2 = qf_target(data.next_obs, next_a)
        y = data.rewards + 0.99 * (1 - data.terminations) * (torch.minimum(q1, q2) - 0.3 * next_log_pi)
    loss1, loss2 = critic_losses(qf_before, data, y)
    assert torch.equal(seen[0], data.next_obs)
    assert stats["qf1_loss"].item() == pytest.approx(loss1.item(), rel=1e-5)
    assert stats["qf2_loss"].item() == pytest.approx(loss2.item(), rel=1e-5)


LAMBDA_STAR = math.exp(-0.9) / (0.1 * math.sqrt(2 * math.pi * math.e))  # entropy of N(0, (0.1 lambda)^2) = -0.9 per dim


@pytest.mark.parametrize("module", [sdac, dpmd], ids=["sdac", "dpmd"])
def test_lambda_rule_fixed_point_and_exact_gradient(module):
    """The authors' rule (algorithm/sdac.py:173-177): loss = log lambda * stop_grad(H(lambda) - H_target), H the
    entropy d/2 log(2 pi e (0.1 lambda)^2) of the exploration noise, H_target = -0.9 d. Its gradient in log lambda is
    exactly H - H_target, zero at lambda* = exp(-0.9) / (0.1 sqrt(2 pi e)) ~ 0.984: below it lambda rises, above it
    falls. Catches: the target entropy's sign, a wrong entropy formula (sigma for sigma^2, no 2 pi e), the missing
    detach (which adds d log lambda to the gradient), Adam stepping the wrong way."""
    assert LAMBDA_STAR == pytest.approx(0.984, abs=5e-4)
    for start in (0.5 * LAMBDA_STAR, 2.0 * LAMBDA_STAR, LAMBDA_STAR):
        L = diffusion_learner(module, lambda_init=start)
        L["update_lambda"]()
        entropy = 0.5 * ACT * math.log(2 * math.pi * math.e * (0.1 * start) ** 2)
        assert L["log_lam"].grad.item() == pytest.approx(entropy + 0.9 * ACT, abs=1e-5)
        moved = L["log_lam"].exp().item() - start
        if start < LAMBDA_STAR * 0.99:
            assert moved > 0, "below lambda* the entropy is below target: lambda must rise"
        elif start > LAMBDA_STAR * 1.01:
            assert moved < 0, "above lambda*: lambda must fall"
        else:
            assert abs(L["log_lam"].grad.item()) < 1e-5


def test_sac_alpha_gradient_is_minus_alpha_times_entropy_gap():
    """CleanRL's alpha loss, (-alpha (log pi + H_target)).mean(): its gradient in log alpha is -alpha mean(log pi +
    H_target): Adam on it raises alpha when the entropy -log pi is below the target -H_target. Catches a sign or
    alpha in place of log alpha as the variable."""
    log_alpha = torch.tensor(math.log(0.4), requires_grad=True)
    log_pi = torch.tensor([1.0, -0.5, 2.0])
    sac.alpha_loss_fn(log_alpha, log_pi, -3.0).backward()
    assert log_alpha.grad.item() == pytest.approx(-0.4 * (log_pi - 3.0).mean().item(), rel=1e-6)


@pytest.mark.parametrize("module", [sdac, dpmd], ids=["sdac", "dpmd"])
def test_policy_loss_sends_no_gradient_into_the_critics(module):
    """An update with a policy step (u = 0) and one without (u = 1), from the same state and seed, leave the critics
    the same gradients: the policy loss's Q (RSSM's reverse samples, DPMD's weights) is taken without gradient.
    Catches the Q evaluated with grad (the critics would then also step on the policy loss's gradient)."""
    grads, kw = [], {"one_chain": False} if module is sdac else {}  # a' from the same draws at u = 0 and u = 1
    for u in (0, 1):
        L = diffusion_learner(module, **kw)
        torch.manual_seed(3)
        L["update"](batch(module), torch.tensor(1.0), u)
        grads.append([p.grad.clone() for p in L["qf"].parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*grads))


def test_dpmd_weights_see_the_critics_after_exactly_one_adam_step(monkeypatch):
    """algorithm/dpmd.py:123-130: the critics step once, then the weights' min Q(s', a') is taken with them (the
    second step of --critic-double-step comes after). Computed here from a copy of the critics taken right after
    their first step and the a' the sampler returned. Catches Q taken before the step, or after both."""
    seen = {}
    args = dpmd.Args(num_candidates=2, diffusion_steps=3, cuda=False)
    real_policy, real_weights = dpmd.make_policy(dpmd.make_schedule("linear", 3), args), dpmd.q_weights

    def spy_policy(*a, **k):
        seen["next_a"] = real_policy(*a, **k)
        return seen["next_a"]

    def spy_weights(q, *a, **k):
        seen["q"] = q.clone()
        return real_weights(q, *a, **k)

    monkeypatch.setattr(dpmd, "q_weights", spy_weights)
    snapshots = []
    L = diffusion_learner(dpmd, policy=spy_policy, after_q_step=lambda: snapshots.append(copy.deepcopy(L["qf"])))
    data = batch(dpmd)
    L["update"](data, torch.tensor(1.0), 0)
    assert len(snapshots) == 2, "the authors' double critic step"
    after_one = dpmd.min_q(snapshots[0], data.next_obs, seen["next_a"])
    after_two = dpmd.min_q(snapshots[1], data.next_obs, seen["next_a"])
    assert torch.allclose(seen["q"], after_one, atol=1e-6)
    assert not torch.allclose(seen["q"], after_two, atol=1e-4), "the two steps are distinguishable here"


def test_sdac_policy_step_noises_the_policys_own_actions(monkeypatch):
    """Algorithm 1 line 9 (the authors' algorithm/sdac.py:130-134): a0 is the current policy's action at s (best of N
    plus noise), t uniform over the T steps, a_t = sqrt(abar_t) a0 + sqrt(1 - abar_t) eps, eps ~ N(0, I); the RSSM
    loss gets that a_t with its t. Checked on 4096 states: the implied eps has mean 0 and variance 1 at every t.
    Catches a0 not noised, (1 - abar) for its square root, abar taken at another step than the t passed on."""
    n = 4096
    a0 = torch.rand(n, ACT) * 2 - 1
    calls, seen = [], {}

    def stub(actor, qf, obs, noise_std):  # a0 for the rows of s (and, in one chain with s', for those of s' too)
        calls.append(obs)
        return a0.repeat(len(obs) // n, 1)

    real = sdac.rssm_loss

    def spy(actor, obs, a_t, t_idx, *rest):
        seen.update(obs=obs, a_t=a_t, t=t_idx)
        return real(actor, obs, a_t, t_idx, *rest)

    monkeypatch.setattr(sdac, "rssm_loss", spy)
    L = diffusion_learner(sdac, policy=stub)
    g = torch.Generator().manual_seed(2)
    data = sdac.Batch(
        torch.randn(n, OBS, generator=g),
        torch.rand(n, ACT, generator=g) * 2 - 1,
        torch.randn(n, generator=g),
        torch.randn(n, OBS, generator=g),
        torch.zeros(n),
    )
    L["update"](data, torch.tensor(1.0), 0)
    assert torch.equal(calls[-1][-n:], data.obs) and torch.equal(seen["obs"], data.obs), "a0 from the policy at s"
    abar = sdac.make_schedule("linear", 3).abar[seen["t"]][:, None]
    eps = (seen["a_t"] - abar.sqrt() * a0) / (1 - abar).sqrt()
    assert set(seen["t"].tolist()) == {0, 1, 2}
    for t in range(3):
        e = eps[seen["t"] == t]
        assert abs(e.mean().item()) < 0.05 and e.var().item() == pytest.approx(1.0, abs=0.08), (t, e.var().item())


@pytest.mark.parametrize("module", [sdac, dpmd], ids=["sdac", "dpmd"])
def test_ema_policy_and_target_critics_follow_their_schedule(module):
    """Updates u = 0..3 with policy_frequency = target_network_frequency = 2 (the authors'): the EMA policy moves by
    tau towards the policy after each policy step (u = 0, 2) and the target critics towards the critics at u = 0, 2;
    at u = 1, 3 both stay. Catches the EMA not updated, 1 - tau for tau, targets on the wrong updates."""
    L = diffusion_learner(module)
    actor_ema, data = L["actor_ema"], batch(module)
    for u in range(4):
        ema_before = [p.detach().clone() for p in actor_ema.parameters()]
        target_before = [p.detach().clone() for p in L["qf_target"].parameters()]
        L["update"](data, torch.tensor(1.0), u)
        moved = u % 2 == 0
        for e, e0, a in zip(actor_ema.parameters(), ema_before, L["actor"].parameters()):
            assert torch.allclose(e, e0 + 0.005 * (a - e0) if moved else e0, atol=1e-7), f"EMA policy at u = {u}"
        for q, q0, o in zip(L["qf_target"].parameters(), target_before, L["qf"].parameters()):
            assert torch.allclose(q, q0 + 0.005 * (o - q0) if moved else q0, atol=1e-7), f"target critics at u = {u}"


def test_sac_target_critics_step_after_every_update(tmp_path, monkeypatch):
    """CleanRL's SAC: the target critics move after every update (target_network_frequency 1), inside the update.
    Counted over a short run with 2 gradient steps per iteration: one soft update per update."""
    monkeypatch.chdir(tmp_path)
    calls = []
    real = sac.soft_update
    monkeypatch.setattr(
        sac, "soft_update", lambda target, online, tau: (calls.append(tau), real(target, online, tau))[1]
    )
    args = sac.Args(
        env_id="Hopper-v4",
        num_envs=2,
        learning_starts=40,
        total_timesteps=80,
        batch_size=16,
        gradient_steps=2,
        eval_interval=0,
        eval_episodes=1,
        buffer_size=1000,
        cuda=False,
        checkpoint_interval=80,
    )
    out = sac.train(args)
    updates = torch.load(out["checkpoint"], weights_only=True)["num_updates"]
    assert updates == 40 and calls == [0.005] * updates


def test_dpmd_policy_step_is_on_the_next_states_and_their_actions(monkeypatch):
    """algorithm/dpmd.py:110 and 129-141: the policy step's DSM runs on (s', a'), a' the sampler's action at s' that
    the critic target used. Catches s for s' (the actions then meet other states)."""
    seen = {}
    next_a = torch.rand(B, ACT) * 2 - 1
    real = dpmd.weighted_dsm_loss

    def spy(actor, obs, a0, t_idx, sched, w):
        seen.update(obs=obs, a0=a0)
        return real(actor, obs, a0, t_idx, sched, w)

    monkeypatch.setattr(dpmd, "weighted_dsm_loss", spy)
    L = diffusion_learner(dpmd, policy=lambda actor, qf, obs, noise_std: next_a)
    data = batch(dpmd)
    L["update"](data, torch.tensor(1.0), 0)
    assert torch.equal(seen["obs"], data.next_obs) and torch.equal(seen["a0"], next_a)


@pytest.mark.parametrize("u", [0, 1], ids=["policy-step", "critic-only"])
def test_sdac_one_chain_draws_a_prime_and_a0_as_two_chains_would(u):
    """--one-chain (the default) draws a' at s' and a0 at s in one reverse chain over [s'; s]; --no-one-chain draws
    them in a chain each, a' first (the draws of the older code). With a policy that is a function of the state, both
    give the same update: statistics and parameters. Catches a' and a0 swapped, a0 taken at s', the chain's halves
    mixed up."""
    data, lam, out = batch(sdac), torch.tensor(0.7), {}

    def policy(actor, qf, obs, noise_std):
        calls.append(obs)
        return torch.tanh(obs[:, :ACT] + 0.5 * obs[:, 1 : ACT + 1])

    for one_chain in (True, False):
        calls = []
        L = diffusion_learner(sdac, policy=policy, one_chain=one_chain)
        torch.manual_seed(3)
        stats = L["update"](data, lam, u)
        params = torch.cat([p.detach().flatten() for m in ("actor", "qf", "qf_target") for p in L[m].parameters()])
        out[one_chain] = stats, params, calls
    (stats1, params1, calls1), (stats2, params2, calls2) = out[True], out[False]
    if u == 0:
        assert len(calls1) == 1 and torch.equal(calls1[0], torch.cat([data.next_obs, data.obs]))
        assert len(calls2) == 2 and torch.equal(calls2[0], data.next_obs) and torch.equal(calls2[1], data.obs)
        assert "actor_loss" in stats1
    else:  # no policy step: a' alone, the same in both
        assert len(calls1) == len(calls2) == 1 and torch.equal(calls1[0], data.next_obs)
    assert stats1.keys() == stats2.keys()
    for k in stats1:
        assert torch.allclose(stats1[k], stats2[k], rtol=1e-6, atol=1e-7), k
    assert torch.allclose(params1, params2, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("module", [sdac, dpmd, sac], ids=["sdac", "dpmd", "sac"])
def test_both_critics_step(module):
    """The critics' loss is Q1's plus Q2's: one update moves the weights of both members of the twin critics. Catches
    one critic's loss left out of the sum (that critic would never train)."""
    torch.manual_seed(0)
    if module is sac:
        actor, qf = sac.Actor(OBS, ACT), sac.TwinQNetwork(OBS, ACT)
        log_alpha = torch.tensor(0.0, requires_grad=True)
        opts = [torch.optim.Adam(p) for p in (qf.parameters(), actor.parameters(), [log_alpha])]
        update = sac.make_update(actor, qf, copy.deepcopy(qf), log_alpha, *opts, -float(ACT), sac.Args(cuda=False))
        step = lambda: update(batch(sac), 0)  # noqa: E731
    else:
        L = diffusion_learner(module)
        qf, step = L["qf"], lambda: L["update"](batch(module), torch.tensor(1.0), 1)
    before = [p.detach().clone() for p in qf.parameters()]
    step()
    for p0, p in zip(before, qf.parameters()):
        moved = (p.detach() - p0).flatten(1).abs().amax(1)  # per member: [Q1, Q2]
        assert moved.shape == (2,) and (moved > 0).all(), moved
