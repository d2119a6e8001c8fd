"""DACER's math and its update, each against the authors' code (github mahaitongdae/diffusion_policy_online_rl at a50cf41:
relax/algorithm/dacer.py, relax/network/dacer.py, relax/utils/diffusion.py) or a closed form: the chain's gradient, the
DSAC-T loss and its sigma_bar, the target, the mixture fit and its entropy bound, alpha's step, the update's order.
The whole update against their JAX code, on their draws: benchmarks/official_equivalence/run_dacer.sh."""

import copy
import math

import numpy as np
import pytest
import torch

import dacer_continuous_action as dacer

OBS, ACT, B = 5, 2, 16


def test_defaults_are_the_authors():
    """scripts/train_mujoco.py:41-49 and 127-132 (5 envs, T 20, 30k warm-up, lr 3e-4 -> 3e-5); algorithm/dacer.py:35-43
    and 53-59 (gamma 0.99, alpha lr 3e-2, tau 0.005, alpha every 10,000, delay 2, reward scale 0.2, 200 samples, the
    schedule from 25k policy updates over 50k); network/dacer.py:42 (noise 0.15 alpha), 57 (z clipped at 3), 82
    (log alpha = log 3), 89 (target entropy -0.9 d); utils/diffusion.py:83 (schedule scale 0.3), 109 (x_T 0.5)."""
    a = dacer.Args()
    got = dict(
        num_envs=a.num_envs,
        diffusion_steps=a.diffusion_steps,
        learning_starts=a.learning_starts,
        lr=(a.q_lr, a.policy_lr, a.policy_lr_end, a.anneal_lr, a.policy_lr_decay_begin, a.policy_lr_decay_steps),
        gamma=a.gamma,
        alpha=(a.alpha_init, a.alpha_lr, a.alpha_update_interval, a.target_entropy_scale, a.exploration_noise),
        entropy=(a.entropy_samples, a.entropy_components, a.entropy_fit_seed),
        tau=a.tau,
        delays=(a.policy_frequency, a.target_network_frequency),
        reward_scale=a.reward_scale,
        dsac_t=(a.q_sample_clip, a.q_target_bound, a.q_loss_epsilon),
        schedule=(a.beta_schedule, a.linear_beta_scale, a.x_T_scale),
        data=(a.batch_size, a.buffer_size),
    )
    assert got == dict(
        num_envs=5,
        diffusion_steps=20,
        learning_starts=30_000,
        lr=(3e-4, 3e-4, 3e-5, True, 25_000, 50_000),
        gamma=0.99,
        alpha=(3.0, 3e-2, 10_000, 0.9, 0.15),
        entropy=(200, 3, None),
        tau=0.005,
        delays=(2, 2),
        reward_scale=0.2,
        dsac_t=(3.0, 3.0, 0.1),
        schedule=("linear", 0.3, 0.5),
        data=(256, 1_000_000),
    )


def test_schedule_is_the_linear_one_at_scale_0_3():
    """utils/diffusion.py:77-78 and 86-87: betas = 0.3 * linspace(1e-4, 0.999, T)."""
    s = dacer.make_schedule("linear", 20, 0.3, dtype=torch.float64)
    assert torch.allclose(s.betas, 0.3 * torch.linspace(1e-4, 0.999, 20, dtype=torch.float64), rtol=0, atol=1e-15)
    assert torch.allclose(s.abar, torch.cumprod(1 - s.betas, 0), rtol=0, atol=1e-15)


def float64_actor(seed=0):
    torch.manual_seed(seed)
    return dacer.NoiseNetwork(OBS, ACT).double()


def test_the_policys_gradient_runs_through_the_whole_chain():
    """d/dtheta of a function of the sampled action, by autograd through all T steps (the clips included), equals
    central finite differences on the same draws, for every parameter tensor of the noise network."""
    T = 4
    sched = dacer.make_schedule("linear", T, 0.3, dtype=torch.float64)
    actor = float64_actor()
    obs = torch.randn(3, OBS, dtype=torch.float64)
    w = torch.randn(3, ACT, dtype=torch.float64)

    def f():
        torch.manual_seed(7)  # the same draws each call
        return (w * dacer.sample_actions(actor, obs, 0.2, sched, x_T_scale=0.5)).sum()

    f().backward()
    for name, p in actor.named_parameters():
        idx = tuple(int(i) for i in torch.nonzero(p.grad.abs() == p.grad.abs().max())[0])
        with torch.no_grad():
            p[idx] += 1e-6
            up = f()
            p[idx] -= 2e-6
            down = f()
            p[idx] += 1e-6
        assert p.grad.abs().max() > 0, f"no gradient reaches {name}"
        assert p.grad[idx].item() == pytest.approx(((up - down) / 2e-6).item(), rel=1e-5, abs=1e-9), name


def test_only_the_last_step_is_noise_free_and_the_action_is_clipped_after_the_noise():
    """utils/diffusion.py:108-118 (x_T = 0.5 N, a fresh noise at every step but t = 0) and network/dacer.py:42-43
    (a0 + 0.15 alpha N, then clipped to [-1, 1])."""
    sched = dacer.make_schedule("linear", 5, 0.3)
    actor = dacer.NoiseNetwork(OBS, ACT)
    calls = []
    real = torch.randn_like

    def spy(x, **kw):
        calls.append(tuple(x.shape))
        return real(x, **kw) * 100  # a large exploration noise: the clip shows

    obs = torch.randn(4, OBS)
    torch.randn_like = spy
    try:
        with torch.no_grad():
            a = dacer.sample_actions(actor, obs, 1.0, sched, x_T_scale=0.5)
    finally:
        torch.randn_like = real
    assert calls == [(4, ACT)] * (5 - 1 + 1), "T - 1 step noises, then the exploration noise"
    assert a.abs().max() == 1.0


def test_the_targets_sample_clips_z_at_3():
    """network/dacer.py:53-58: mean + std * z, z ~ N(0, 1) clipped to [-3, 3]. (Which critic's sample the target takes:
    test_the_critics_step_on_their_own_loss_only and run_dacer.sh.)"""
    mean = torch.tensor([[1.0, 5.0, 2.0], [3.0, 4.0, 2.5]])
    std = torch.tensor([[0.5, 1.0, 2.0], [1.0, 0.1, 1.0]])
    z = torch.tensor([[10.0, -0.5, -7.0], [0.3, -10.0, 1.0]])
    real = torch.randn_like
    torch.randn_like = lambda x, **kw: z.clone()
    try:
        sample = dacer.q_sample(mean, std, 3.0)
    finally:
        torch.randn_like = real
    assert torch.allclose(sample, torch.tensor([[2.5, 4.5, -4.0], [3.3, 3.7, 3.5]]))


def dsac_t_reference(q_mean, q_std, y, y_sample, sigma_bar, eps=0.1):
    """algorithm/dacer.py:104-114, transcribed in numpy for one critic."""
    b = q_mean + np.clip(y_sample - q_mean, -3 * sigma_bar, 3 * sigma_bar)
    sd = np.maximum(q_std, 0)
    inner = q_mean * (y - q_mean) / (sd**2 + eps) + q_std * ((q_mean - b) ** 2 - sd**2) / (sd**3 + eps)
    return -(sigma_bar**2 + eps) * inner.mean()


def test_dsac_t_loss_its_value_and_its_gradients():
    """The value is the authors' expression; the gradient moves each mean towards y (not y_sample) and each std
    towards |q_mean - y_b|, with y_b the sampled target bounded to +- 3 sigma_bar, all with the no-gradient parts the
    authors stop."""
    g = torch.Generator().manual_seed(0)
    q_mean = torch.randn(2, B, generator=g, dtype=torch.float64).requires_grad_()
    q_std = (torch.rand(2, B, generator=g, dtype=torch.float64) + 0.2).requires_grad_()
    y = torch.randn(B, generator=g, dtype=torch.float64)
    y_sample = y + 4 * torch.randn(B, generator=g, dtype=torch.float64)  # some beyond the bound
    sigma_bar = torch.tensor([0.5, 0.8], dtype=torch.float64)
    loss = dacer.dsac_t_loss(q_mean, q_std, y, y_sample, sigma_bar, 3.0, 0.1)
    for i in range(2):
        args = (q_mean[i].detach().numpy(), q_std[i].detach().numpy(), y.numpy(), y_sample.numpy(), float(sigma_bar[i]))
        assert loss[i].item() == pytest.approx(dsac_t_reference(*args), rel=1e-12)
    loss.sum().backward()
    sb, sd = sigma_bar[:, None], q_std.detach()
    bounded = q_mean.detach() + (y_sample - q_mean.detach()).clamp(-3 * sb, 3 * sb)
    assert (bounded != y_sample).any(), "the bound is active somewhere"
    scale = -(sb**2 + 0.1) / B
    assert torch.allclose(q_mean.grad, scale * (y - q_mean.detach()) / (sd**2 + 0.1), rtol=1e-12)
    assert torch.allclose(q_std.grad, scale * ((q_mean.detach() - bounded) ** 2 - sd**2) / (sd**3 + 0.1), rtol=1e-12)


def test_sigma_bar_starts_at_the_first_batch_then_moves_at_rate_tau():
    """algorithm/dacer.py:104-107: mean_q_std = -1 at first (a sentinel), then tau * new + (1 - tau) * old."""
    std = torch.tensor([[1.0, 3.0], [2.0, 2.0]])
    first = dacer.running_std(torch.tensor([-1.0, -1.0]), std, 0.005)
    assert torch.equal(first, torch.tensor([2.0, 2.0]))
    second = dacer.running_std(first, torch.tensor([[4.0, 4.0], [0.0, 0.0]]), 0.005)
    assert torch.allclose(second, torch.tensor([0.005 * 4 + 0.995 * 2, 0.995 * 2]))


def three_gaussians(S=4, M=600, seed=0):
    """S rows of M points from a 3-component mixture in 2-d with known weights and covariances, well separated."""
    g = torch.Generator().manual_seed(seed)
    weights = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    means = torch.tensor([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]], dtype=torch.float64)
    chol = torch.tensor([[[1.0, 0.0], [0.5, 0.5]], [[0.3, 0.0], [0.0, 1.2]], [[0.7, 0.0], [-0.4, 0.6]]]).double()
    counts = (weights * M).long()
    x = torch.cat(
        [means[k] + torch.randn(S, int(counts[k]), 2, generator=g, dtype=torch.float64) @ chol[k].T for k in range(3)],
        1,
    )
    return x, weights, chol @ chol.transpose(1, 2)


def test_the_mixture_fit_recovers_a_known_mixture():
    x, weights, cov = three_gaussians()
    labels = dacer.kmeans_labels(x, 3, torch.Generator().manual_seed(1))
    assert all(len(set(labels[s, i : i + 10].tolist())) == 1 for s in range(4) for i in (0, 300, 480)), "k-means"
    w, c = dacer.fit_gaussian_mixture(x, labels, 3)
    bounds = [0, 300, 480, 600]  # the clusters' rows
    for s in range(4):
        order = torch.argsort(w[s], descending=True)
        assert torch.allclose(w[s, order], weights, atol=1e-6)  # the weights are the cluster sizes
        for k in range(3):  # each covariance: its cluster's (biased) sample covariance + 1e-6 I, scikit-learn's reg
            pts = x[s, bounds[k] : bounds[k + 1]]
            empirical = torch.cov(pts.T, correction=0) + 1e-6 * torch.eye(2, dtype=torch.float64)
            assert torch.allclose(c[s, order[k]], empirical, atol=1e-8)
            assert torch.allclose(c[s, order[k]], cov[k], atol=0.3)


def test_each_state_stops_on_its_own():
    """scikit-learn stops one fit when its mean log-likelihood gains less than 1e-3: a row fitted alone and the same
    row fitted beside others give the same mixture."""
    x, _, _ = three_gaussians(S=3)
    x = torch.cat([x, torch.randn(2, x.shape[1], 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))])
    labels = dacer.kmeans_labels(x, 3, torch.Generator().manual_seed(1))
    w_all, c_all = dacer.fit_gaussian_mixture(x, labels, 3)
    for s in range(x.shape[0]):
        w, c = dacer.fit_gaussian_mixture(x[s : s + 1], labels[s : s + 1], 3)
        assert torch.equal(w[0], w_all[s]) and torch.equal(c[0], c_all[s])


def test_entropy_bound_is_the_authors_formula():
    """algorithm/dacer.py:226-232: -sum w log w + sum_k w_k (d/2 (1 + log 2 pi) + 1/2 log det Sigma_k)."""
    _, weights, cov = three_gaussians()
    d = cov.shape[-1]
    by_hand = -(weights * weights.log()).sum()
    by_hand += sum(weights[k] * (0.5 * d * (1 + math.log(2 * math.pi)) + 0.5 * torch.logdet(cov[k])) for k in range(3))
    assert dacer.mixture_entropy_bound(weights, cov).item() == pytest.approx(by_hand.item(), rel=1e-12)


def test_the_entropy_estimate_of_a_gaussian_policy():
    """A 'policy' whose actions are N(0, s^2 I) at every state: the estimate is close to that Gaussian's entropy
    (the bound exceeds it by at most log 3, the weights' entropy), from 400 actions at each of 8 states."""
    s = 0.2
    seen = {}

    def policy(actor, obs, noise_std):
        seen["rows"] = obs.shape[0]
        return noise_std * torch.randn(obs.shape[0], ACT, dtype=torch.float64) + obs[:, :ACT] * 0

    torch.manual_seed(0)
    obs = torch.randn(8, OBS, dtype=torch.float64)
    h = dacer.policy_entropy(policy, None, obs, s, 400, 3)
    assert seen["rows"] == 8 * 400
    exact = 0.5 * ACT * math.log(2 * math.pi * math.e * s**2)
    assert exact - 0.05 < h.item() < exact + math.log(3), "a bound: at most H(w) <= log 3 above"
    one = dacer.policy_entropy(policy, None, obs, s, 400, 1)  # one component: the Gaussian's entropy itself
    assert one.item() == pytest.approx(exact, abs=0.05)


def test_a_fixed_fit_seed_repeats_the_kmeans_start():
    x, _, _ = three_gaussians(S=2)
    x = x + torch.randn_like(x) * 3  # blurred: the start matters
    one = dacer.kmeans_labels(x, 3, torch.Generator().manual_seed(42))
    two = dacer.kmeans_labels(x, 3, torch.Generator().manual_seed(42))
    assert torch.equal(one, two)


def test_a_fixed_fit_seed_restarts_the_generator_at_every_estimate(monkeypatch):
    """--entropy-fit-seed 42 (DACER's own code, algorithm/dacer.py:214 there): every fit's k-means start draws the
    same numbers; without it, the run's generator moves on."""
    firsts = []
    real = dacer.kmeans_labels

    def spy(x, K, generator):
        firsts.append(torch.rand(1, generator=generator).item() if generator is not None else None)
        return real(x, K, generator)

    monkeypatch.setattr(dacer, "kmeans_labels", spy)
    L = make(dacer.Args(diffusion_steps=3, entropy_samples=6, alpha_update_interval=2, entropy_fit_seed=42))
    for u in range(4):
        L["update"](L["data"], torch.tensor(3.0), u)
    assert firsts == [torch.rand(1, generator=torch.Generator().manual_seed(42)).item()] * 2
    firsts.clear()
    L = make(dacer.Args(diffusion_steps=3, entropy_samples=6, alpha_update_interval=2))
    L["update"](L["data"], torch.tensor(3.0), 0)
    assert firsts == [None]


def make(args=None, T=3):
    args = args or dacer.Args(diffusion_steps=T, entropy_samples=6, alpha_update_interval=4)
    torch.manual_seed(0)
    actor, qf, qf_target = dacer.NoiseNetwork(OBS, ACT), dacer.TwinQNetwork(OBS, ACT), dacer.TwinQNetwork(OBS, ACT)
    with torch.no_grad():  # target critics near, not equal to, the online ones
        for p, q in zip(qf_target.parameters(), qf.parameters()):
            p.copy_(q + 0.01 * torch.randn_like(q))
    log_alpha = torch.tensor(math.log(args.alpha_init), requires_grad=True)
    sigma_bar = torch.full((2,), -1.0)
    q_opt = dacer.make_optimizer(qf.parameters(), args.q_lr, args, torch.device("cpu"))
    a_opt = dacer.make_optimizer(actor.parameters(), args.policy_lr, args, torch.device("cpu"))
    alpha_opt = torch.optim.Adam([log_alpha], lr=args.alpha_lr)
    sched = dacer.make_schedule(args.beta_schedule, T, args.linear_beta_scale)
    policy = dacer.make_policy(sched, args)
    update = dacer.make_update(policy, actor, qf, qf_target, log_alpha, sigma_bar, q_opt, a_opt, alpha_opt, sched, args)
    data = dacer.Batch(
        torch.randn(B, OBS),
        torch.rand(B, ACT) * 2 - 1,
        torch.randn(B),
        torch.randn(B, OBS),
        (torch.rand(B) < 0.3).float(),
    )
    return dict(
        args=args,
        actor=actor,
        qf=qf,
        qf_target=qf_target,
        log_alpha=log_alpha,
        sigma_bar=sigma_bar,
        q_opt=q_opt,
        policy=policy,
        update=update,
        data=data,
    )


def flat(m):
    return torch.cat([p.detach().flatten() for p in m.parameters()])


def test_the_critics_step_on_their_own_loss_only():
    """The policy's backward also reaches the critics' parameters; the critics' Adam step must see only the DSAC-T
    gradients (algorithm/dacer.py:101-142: each loss differentiated in its own params)."""
    L, L2 = make(), make()  # the same initial weights
    args, alpha = L["args"], torch.tensor(L["args"].alpha_init)
    torch.manual_seed(5)
    L["update"](L["data"], alpha, 0)
    # the critics' loss alone, by hand, from the initial weights and the update's draws in its order (the policy's
    # chain, a' and its chain, z), then one Adam step
    qf_ref = copy.deepcopy(L2["qf"])
    opt_ref = torch.optim.Adam(qf_ref.parameters(), lr=args.q_lr)
    data = L2["data"]
    torch.manual_seed(5)
    with torch.no_grad():
        L2["policy"](L2["actor"], data.obs, args.exploration_noise * alpha)
        next_a = L2["policy"](L2["actor"], data.next_obs, args.exploration_noise * alpha)
        m, s = L2["qf_target"](data.next_obs, next_a)
        sample = dacer.q_sample(m, s, 3.0)
        not_done = 1 - data.terminations
        y = 0.2 * data.rewards + not_done * 0.99 * m.min(0).values
        y_sample = 0.2 * data.rewards + not_done * 0.99 * torch.where(m[0] < m[1], sample[0], sample[1])
    q_mean, q_std = qf_ref(data.obs, data.actions)
    sigma_bar = dacer.running_std(torch.full((2,), -1.0), q_std, 0.005)
    dacer.dsac_t_loss(q_mean, q_std, y, y_sample, sigma_bar, 3.0, 0.1).sum().backward()
    opt_ref.step()
    assert torch.allclose(flat(L["qf"]), flat(qf_ref), rtol=0, atol=1e-7)
    assert torch.equal(L["sigma_bar"], sigma_bar)


def test_the_policys_loss_is_minus_min_q_of_its_action():
    """algorithm/dacer.py:136-142: -mean(min(Q1, Q2)(s, a)), a the policy's noisy clipped action at s, with the
    critics before their step: the update's policy gradient equals that loss's, by hand, on the same draws."""
    L, L2 = make(), make()
    args, alpha = L["args"], torch.tensor(L["args"].alpha_init)
    torch.manual_seed(5)
    L["update"](L["data"], alpha, 0)
    torch.manual_seed(5)  # the policy's chain draws first
    a = L2["policy"](L2["actor"], L2["data"].obs, args.exploration_noise * alpha)
    q_mean, _ = L2["qf"](L2["data"].obs, a)
    (-torch.minimum(q_mean[0], q_mean[1]).mean()).backward()
    for p, q in zip(L["actor"].parameters(), L2["actor"].parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-5, atol=1e-8)


def test_what_steps_at_which_update():
    """The policy and the target critics at every 2nd update from 0 (algorithm/dacer.py:157-163, 173-179), alpha at
    every alpha_update_interval-th (dacer.py:129-134, 165-171), the critics at every update."""
    L = make()
    alpha = torch.tensor(3.0)
    for u in range(6):
        actor, qf, target, la = flat(L["actor"]), flat(L["qf"]), flat(L["qf_target"]), L["log_alpha"].item()
        stats = L["update"](L["data"], alpha, u)
        assert not torch.equal(flat(L["qf"]), qf)
        assert torch.equal(flat(L["actor"]), actor) == (u % 2 != 0), u
        assert torch.equal(flat(L["qf_target"]), target) == (u % 2 != 0), u
        assert (L["log_alpha"].item() == la) == (u % 4 != 0), u
        assert ("entropy" in stats) == (u % 4 == 0) and ("actor_loss" in stats) == (u % 2 == 0)


def test_alpha_falls_when_the_entropy_is_above_its_target():
    """algorithm/dacer.py:147-149, 184: loss = -log alpha (target - H): Adam's first step moves log alpha by its lr, down
    when H > target (-0.9 d), up when below."""
    for target_scale, sign in ((50.0, -1), (-50.0, +1)):  # targets -100 (the estimate is above) and +100 (below)
        args = dacer.Args(diffusion_steps=3, entropy_samples=6, alpha_update_interval=4)
        args.target_entropy_scale = target_scale
        L = make(args)
        before = L["log_alpha"].item()
        L["update"](L["data"], torch.tensor(3.0), 0)
        assert L["log_alpha"].item() - before == pytest.approx(sign * args.alpha_lr, rel=1e-4)


def test_too_few_samples_for_the_mixture_is_a_one_line_error():
    args = dacer.Args(entropy_samples=2, entropy_components=3)
    with pytest.raises(SystemExit, match="entropy-samples"):
        make(args)


def test_a_short_run_learns_and_steps_alpha(tmp_path, monkeypatch):
    """Every path of train() on CPU in seconds: warm-up, acting, updates with the entropy estimate, evaluation."""
    monkeypatch.chdir(tmp_path)
    args = dacer.Args(
        env_id="Pendulum-v1",
        total_timesteps=300,
        learning_starts=100,
        batch_size=16,
        diffusion_steps=3,
        entropy_samples=8,
        alpha_update_interval=10,
        eval_interval=150,
        eval_episodes=2,
        log_interval=50,
        checkpoint_interval=0,
        progress_seconds=0,
    )
    out = dacer.train(args)
    assert [s for s, _, _ in out["eval_history"]] == [150, 300]
    assert out["alpha"] != pytest.approx(3.0), "alpha stepped (every 10 of the 40 updates)"
    assert all(math.isfinite(r) for _, r, _ in out["eval_history"])
