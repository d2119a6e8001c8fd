"""The math of SDAC: schedules, the DDPM posterior, eq. 17, the RSSM loss's minimiser, the sampler."""

import math

import pytest
import torch

from sdac_continuous_action import (
    NoiseNetwork,
    effective_sample_size,
    make_schedule,
    reverse_diffusion,
    reverse_sample,
    rssm_loss,
)

SCHEDULES = ["cosine", "linear", "vp"]


@pytest.mark.parametrize("kind", SCHEDULES)
@pytest.mark.parametrize("T", [1, 5, 20, 100])
def test_schedule_shapes_monotonic_and_range(kind, T):
    s = make_schedule(kind, T)
    for x in s[:-1]:
        assert x.shape == (T,) and x.dtype == torch.float32 and torch.isfinite(x).all()
    assert len(s.steps) == T and all(len(step) == 5 and all(math.isfinite(c) for c in step) for step in s.steps)
    assert (s.betas > 0).all() and (s.betas < 1).all()
    assert torch.allclose(s.alphas, 1 - s.betas)
    assert (s.abar > 0).all() and (s.abar < 1).all()
    assert (s.abar[1:] < s.abar[:-1]).all(), "abar_t must decrease with t"
    assert s.abar_prev[0] == 1 and torch.equal(s.abar_prev[1:], s.abar[:-1])
    assert torch.allclose(s.abar, torch.cumprod(s.alphas.double(), 0).float(), rtol=1e-5)
    if kind != "linear" or T > 1:
        assert (s.betas[1:] >= s.betas[:-1]).all(), "betas must not decrease with t"
    if T >= 20:
        assert s.abar[-1] < 0.01, "x_T must be (nearly) pure noise"


@pytest.mark.parametrize("T", [10, 20, 50])
def test_cosine_schedule_matches_closed_form(T):
    s = make_schedule("cosine", T)
    f = lambda u: math.cos((u / T + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in range(1, T):  # before the clip at beta = 0.999, abar_t = f(t) / f(0) exactly
        assert s.abar[t - 1].item() == pytest.approx(f(t) / f(0), rel=1e-5)
        assert s.betas[t - 1].item() == pytest.approx(1 - f(t) / f(t - 1), rel=1e-4, abs=1e-7)
    assert s.betas[-1].item() == pytest.approx(0.999)  # f(T) = 0: clipped


def test_linear_and_vp_schedules_match_their_formulas():
    T = 20
    lin = make_schedule("linear", T, linear_beta_scale=0.8)
    assert lin.betas[0].item() == pytest.approx(0.8e-4) and lin.betas[-1].item() == pytest.approx(0.8 * 0.999)
    vp = make_schedule("vp", T)
    for t in [1, 7, 20]:
        expect = 1 - math.exp(-0.1 / T - 9.9 * (2 * t - 1) / (2 * T**2))
        assert vp.betas[t - 1].item() == pytest.approx(expect, rel=1e-5)


@pytest.mark.parametrize("kind", SCHEDULES)
def test_posterior_is_the_gaussian_conditional(kind):
    """q(x_{t-1} | x_t, x0) from Gaussian conditioning of the joint (x_{t-1}, x_t) given x0."""
    s = make_schedule(kind, 20)
    for i in range(1, 20):
        ab, ab_prev, a = s.abar[i].double(), s.abar_prev[i].double(), s.alphas[i].double()
        cov = torch.tensor([[1 - ab_prev, a.sqrt() * (1 - ab_prev)], [a.sqrt() * (1 - ab_prev), 1 - ab]])
        gain = cov[0, 1] / cov[1, 1]  # mean = sqrt(ab_prev) x0 + gain (x_t - sqrt(ab) x0)
        assert s.posterior_mean_coef2[i].item() == pytest.approx(gain.item(), rel=2e-3)
        assert s.posterior_mean_coef1[i].item() == pytest.approx(
            (ab_prev.sqrt() - gain * ab.sqrt()).item(), rel=2e-3, abs=1e-6
        )
        assert s.posterior_var[i].item() == pytest.approx((cov[0, 0] - gain * cov[0, 1]).item(), rel=2e-3, abs=1e-7)


@pytest.mark.parametrize("abar", [0.95, 0.5, 0.05])
def test_eq17_reverse_samples_have_the_right_moments(abar):
    torch.manual_seed(0)
    a_t = torch.tensor([[0.4, -0.7], [1.2, 0.0]])
    K = 200_000
    a0, eps = reverse_sample(a_t, torch.full((2, 1), abar), K)
    assert a0.shape == eps.shape == (2 * K, 2)
    a0 = a0.view(2, K, 2)
    mean, var = a_t / math.sqrt(abar), (1 - abar) / abar
    assert torch.allclose(a0.mean(1), mean, atol=4 * math.sqrt(var / K))
    assert torch.allclose(a0.var(1), torch.full_like(mean, var), rtol=0.02)
    # eps is the noise that produced each a0_tilde (the regression target of the loss)
    assert torch.allclose(a0, (a_t[:, None] / math.sqrt(abar) - math.sqrt(var) * eps.view(2, K, 2)), atol=1e-5)


class EpsOfStep:
    """A noise network for reverse_diffusion from a function of (obs, x_t, step index): its time embedding is the
    step index itself."""

    def __init__(self, fn):
        self.fn = fn

    def time_emb(self, t):
        return t[:, None]

    def eps(self, obs, x, emb):
        return self.fn(obs, x, emb[:, 0])


def gaussian_eps(sched, mu, sigma):
    """Exact noise function of the target N(mu, sigma^2 I): eps*(x_t) = -sqrt(1 - abar) * score_t(x_t)."""

    def eps_fn(obs, x, i):
        ab = sched.abar[i][:, None]
        return (1 - ab).sqrt() * (x - ab.sqrt() * mu) / (ab * sigma**2 + 1 - ab)

    return EpsOfStep(eps_fn)


def test_sampler_follows_the_exact_ddpm_moment_recursion():
    """With the exact eps of a Gaussian target, every DDPM step is affine in x_t: x_{t-1} = A x_t + c + sqrt(var) z.
    The sample mean and variance after T = 20 steps must match that recursion (any wrong coefficient breaks it)."""
    torch.manual_seed(0)
    mu, sigma, x_T_scale, n = torch.tensor([0.3, -0.2]), torch.tensor([0.2, 0.1]), 0.5, 200_000
    s = make_schedule("cosine", 20)
    x = reverse_diffusion(gaussian_eps(s, mu, sigma), torch.zeros(n, 1), s, 2, x_T_scale)
    m, v = torch.zeros(2, dtype=torch.float64), torch.full((2,), x_T_scale**2, dtype=torch.float64)
    mu64, sig64 = mu.double(), sigma.double()
    for i in reversed(range(20)):
        ab = s.abar[i].double()
        gain = ab.sqrt() * sig64**2 / (ab * sig64**2 + 1 - ab)  # E[x0 | x_t] = mu + gain (x_t - sqrt(ab) mu)
        A = s.posterior_mean_coef1[i].double() * gain + s.posterior_mean_coef2[i].double()
        c = s.posterior_mean_coef1[i].double() * (mu64 - gain * ab.sqrt() * mu64)
        m, v = A * m + c, A**2 * v + (s.posterior_var[i].double() if i > 0 else 0)
    assert torch.allclose(x.mean(0).double(), m, atol=3e-3)
    assert torch.allclose(x.var(0).double(), v, rtol=0.03)


def test_a_chain_calls_the_network_as_eps_theta_of_each_step():
    """The chain embeds its T steps once (emb(t) for all t) and feeds step i's row to every state: the same as the
    network called with t = i for the whole batch, x_t for x_t, in the order T-1 .. 0; and the per-step Python
    numbers are the schedule's tensors. Catches an embedding taken at another step and a constant out of place."""
    torch.manual_seed(0)
    actor, T, n = NoiseNetwork(3, 2), 5, 7
    s = make_schedule("linear", T)
    expected = torch.stack([s.abar.sqrt(), (1 - s.abar).sqrt(), s.posterior_mean_coef1, s.posterior_mean_coef2])
    assert torch.allclose(torch.tensor(s.steps)[:, :4].T, expected, rtol=1e-6)
    assert torch.allclose(torch.tensor(s.steps)[:, 4] ** 2, s.posterior_var, rtol=1e-5, atol=1e-9)
    calls = []

    class Recording(torch.nn.Module):
        time_emb = actor.time_emb

        def eps(self, obs, x, emb):
            calls.append((obs, x.clone(), actor.eps(obs, x, emb)))
            return calls[-1][2]

    obs = torch.randn(n, 3)
    reverse_diffusion(Recording(), obs, s, 2, 0.5)
    assert len(calls) == T
    for j, (o, x, eps) in enumerate(calls):
        assert torch.equal(o, obs)
        assert torch.allclose(eps, actor(obs, x, torch.full((n,), T - 1 - j)), atol=1e-6), j


def test_sampler_steps_are_ddpm_posteriors_with_x0_clipped():
    """Each step of reverse_diffusion, rewritten here from the betas alone with the same random draws: x0_hat =
    (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) clipped to [-1, 1] (the authors' utils/diffusion.py:97), then
    x_{t-1} = beta_t sqrt(abar_{t-1}) / (1 - abar_t) x0_hat + (1 - abar_{t-1}) sqrt(alpha_t) / (1 - abar_t) x_t
    + sqrt(beta_t (1 - abar_{t-1}) / (1 - abar_t)) z, no z at the last step, and the action clipped at the end. The
    noise network here pushes x0_hat outside [-1, 1] often, so a missing clip shows."""
    T, n, x_T_scale = 4, 64, 0.5
    s = make_schedule("linear", T)
    eps_fn = lambda obs, x, i: 3 * torch.sin(3 * x + i[:, None].float()) + obs  # noqa: E731
    obs = torch.linspace(-1, 1, n)[:, None]
    torch.manual_seed(5)
    got = reverse_diffusion(EpsOfStep(eps_fn), obs, s, 2, x_T_scale)
    betas = 0.8 * torch.linspace(1e-4, 0.999, T, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0)
    torch.manual_seed(5)
    x, clipped = torch.randn(n, 2) * x_T_scale, 0
    for i in reversed(range(T)):
        ab, ab_prev, beta = abar[i], abar[i - 1] if i > 0 else torch.tensor(1.0, dtype=torch.float64), betas[i]
        raw = (x - (1 - ab).sqrt().float() * eps_fn(obs, x, torch.full((n,), i))) / ab.sqrt().float()
        clipped += int((raw.abs() > 1).sum())
        x0_hat = raw.clamp(-1, 1)
        x = (beta * ab_prev.sqrt() / (1 - ab)).float() * x0_hat + (
            (1 - ab_prev) * (1 - beta).sqrt() / (1 - ab)
        ).float() * x
        if i > 0:
            x = x + (beta * (1 - ab_prev) / (1 - ab)).sqrt().float() * torch.randn_like(x)
    assert clipped > n, "the clip was exercised"
    assert torch.allclose(got, x.clamp(-1, 1), atol=1e-5)


def test_rssm_rows_keep_their_state_action_and_step_together():
    """The loss repeats each (s, a_t, t) K times, adjacent (repeat_interleave): the noise network must see every copy
    of a_t with its own state and step, whatever the order of the batch. Checked with distinct states, actions and
    steps per row, and a network that records what it was called with."""
    B, K = 5, 3
    s = make_schedule("linear", 8)
    obs, a_t, t_idx = (
        torch.arange(B, dtype=torch.float32)[:, None] * 10,
        torch.arange(B * 2.0).view(B, 2),
        torch.tensor([7, 0, 3, 5, 1]),
    )
    seen = {}

    def actor(o, a, t):
        seen.update(o=o, a=a, t=t)
        return torch.zeros_like(a)

    rssm_loss(actor, obs, a_t, t_idx, s, lambda o, a: (seen.update(q_obs=o), torch.zeros(len(a)))[1], 1.0, K)
    rows = torch.arange(B).repeat_interleave(K)
    assert (
        torch.equal(seen["o"], obs[rows]) and torch.equal(seen["a"], a_t[rows]) and torch.equal(seen["t"], t_idx[rows])
    )
    assert torch.equal(seen["q_obs"], obs[rows]), "Q is taken at each copy's own state too"


def test_sampler_reproduces_a_gaussian_target_as_steps_grow():
    torch.manual_seed(0)
    mu, sigma = torch.tensor([0.3, -0.2]), torch.tensor([0.2, 0.1])
    s = make_schedule("cosine", 1000)
    x = reverse_diffusion(gaussian_eps(s, mu, sigma), torch.zeros(20_000, 1), s, 2, 1.0)
    assert torch.allclose(x.mean(0), mu, atol=0.01)
    assert torch.allclose(x.std(0), sigma, rtol=0.05)


MU, SIGMA = torch.tensor([0.3, -0.2]), 0.7


def true_eps(i: int, a_t: torch.Tensor) -> torch.Tensor:
    """eps* = -sqrt(1 - abar) * grad log pi~_t(a_t) for the target N(MU, SIGMA^2 I) (Q its log density, lambda = 1)."""
    ab = make_schedule("cosine", 20).abar[i].item()
    return math.sqrt(1 - ab) / (ab * SIGMA**2 + 1 - ab) * (a_t - math.sqrt(ab) * MU)


@pytest.mark.parametrize("i", [3, 9, 13])  # abar = 0.90, 0.49, 0.20 on the 20-step cosine schedule
def test_rssm_loss_minimiser_at_each_a_t_is_the_noise_perturbed_score(i):
    """For fixed a_t the loss is quadratic in the prediction: its minimiser over a free eps_hat must be the
    closed-form noised score of the target, up to Monte Carlo error (K = 200k reverse samples)."""
    s = make_schedule("cosine", 20)
    q_fn = lambda obs, a: -((a - MU) ** 2).sum(-1) / (2 * SIGMA**2)  # noqa: E731
    a_t = torch.tensor([[0.0, 0.0], [1.5, -1.0], [-2.0, 2.0]])
    eps_hat = torch.nn.Parameter(torch.zeros(3, 2))
    rows = torch.arange(3).repeat_interleave(200_000)  # the loss repeats each a_t K times, adjacent
    opt = torch.optim.LBFGS([eps_hat], lr=1, max_iter=20, line_search_fn="strong_wolfe")

    def closure():
        torch.manual_seed(0)
        loss, _, _ = rssm_loss(
            lambda o, a, t: eps_hat[rows], torch.zeros(3, 1), a_t, torch.full((3,), i), s, q_fn, 1.0, 200_000
        )
        loss = loss * 200_000 * 2  # undo the mean over K*d entries: L-BFGS's tolerances are absolute
        opt.zero_grad()
        loss.backward()
        return loss

    opt.step(closure)
    expect = true_eps(i, a_t)
    assert torch.allclose(eps_hat.detach(), expect, atol=0.015 * expect.norm(dim=-1).max().item())


def fit_rssm(i: int, K: int, B: int = 512) -> float:
    """Minimise the RSSM loss over an affine eps_theta (the optimum is affine for a Gaussian target) on one fixed
    draw of a_t ~ p~_t and reverse samples (seed reset in the closure), with L-BFGS. Returns the relative error of
    the fitted noise field against the closed form."""
    s = make_schedule("cosine", 20)
    q_fn = lambda obs, a: -((a - MU) ** 2).sum(-1) / (2 * SIGMA**2)  # noqa: E731
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=50, line_search_fn="strong_wolfe")

    def closure():
        torch.manual_seed(0)
        a_t = torch.randn(B, 2) * 1.2  # p~_t: any distribution that covers the noised target
        loss, _, _ = rssm_loss(lambda o, a, t: model(a), torch.zeros(B, 1), a_t, torch.full((B,), i), s, q_fn, 1.0, K)
        opt.zero_grad()
        loss.backward()
        return loss

    opt.step(closure)
    probe = torch.randn(2000, 2)
    with torch.no_grad():
        target = true_eps(i, probe)
        return ((model(probe) - target).norm(dim=-1).mean() / target.norm(dim=-1).mean()).item()


@pytest.mark.parametrize("i", [3, 9, 13])
def test_rssm_loss_fits_the_noise_perturbed_score_field(i):
    """Training eps_theta with the RSSM loss alone (no sample of the target) recovers the whole noised score field.
    The per-a_t softmax over K copies is self-normalised importance sampling: consistent, biased for finite K,
    most in the tails of p~_t (measured here: 1-5% at K = 1024, 10-17% at K = 64). So: within 6% at K = 1024,
    and closer than at K = 64."""
    err_large, err_small = fit_rssm(i, 1024), fit_rssm(i, 64)
    assert err_large < 0.06, f"relative error {err_large:.3f} of the fitted noise field"
    assert err_large < err_small, "more reverse samples must bring the minimiser closer to the true score"


def test_rssm_weights_follow_q():
    """The code's own weights: with a flat Q they are uniform (ESS = K, and the loss is plain mean squared error,
    reduced as the authors' code does: the mean over the B*K*d entries of w * (eps_hat - eps)^2 with w = 1/K,
    utils/diffusion.py:147-154); with a sharp Q they are softmax(Q(s, a0_tilde) / temperature) over each a_t's K
    copies, computed here from the reverse samples themselves, so the weight sits on the copy nearest Q's peak (a sign
    error would put it on the farthest, a missing temperature would sharpen them). Q is evaluated without gradient:
    the critics get none from this loss, only eps_theta is trained."""
    s = make_schedule("cosine", 20)
    net = torch.nn.Linear(2, 2)
    B, K, temperature = 8, 256, 2.0

    def run(q_fn):
        torch.manual_seed(1)
        return rssm_loss(
            lambda o, a, t: net(a), torch.zeros(B, 1), torch.zeros(B, 2), torch.full((B,), 9), s, q_fn, temperature, K
        )

    critic = torch.nn.Linear(2, 1)  # a Q whose parameters would take a gradient if Q were evaluated with one
    with torch.no_grad():
        critic.weight.zero_()
    loss, w_flat, _ = run(lambda o, a: critic(a).squeeze(-1))
    torch.manual_seed(1)
    a0, eps = reverse_sample(torch.zeros(B, 2), s.abar[[9] * B][:, None], K)  # the same draws
    assert effective_sample_size(w_flat).item() == pytest.approx(K)
    assert loss.item() == pytest.approx(((net(torch.zeros(1, 2)) - eps) ** 2).mean().item() / K, rel=1e-5)
    loss.backward()
    assert critic.weight.grad is None and critic.bias.grad is None, "no gradient into the critics"
    assert net.bias.grad.abs().sum() > 0, "eps_theta is trained (a_t = 0 here: only its bias sees a gradient)"

    sharp = lambda o, a: -(a**2).sum(-1) * 20  # noqa: E731 - peak at a0_tilde = 0
    loss_sharp, w_sharp, q = run(sharp)
    expected = torch.softmax(-(a0.view(B, K, 2) ** 2).sum(-1) * 20 / temperature, dim=1)
    assert q.shape == w_sharp.shape == (B, K)
    assert torch.allclose(w_sharp, expected, rtol=1e-4, atol=1e-7), "softmax of Q / temperature over the K copies"
    assert 1.5 < effective_sample_size(w_sharp) < K / 4
    assert torch.equal(w_sharp.argmax(1), (a0.view(B, K, 2) ** 2).sum(-1).argmin(1)), (
        "weight on the nearest to the peak"
    )
