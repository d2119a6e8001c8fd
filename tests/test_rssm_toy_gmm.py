"""rssm_toy_gmm.py: the target and its estimators (mode weights, the MMD with exact target terms), the toy's RSSM
loss and sampler with full covariances, fast runs in 1, 2 and 3 dimensions, pairing by seed, bad input."""

import dataclasses
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from rssm_toy_gmm import (
    Args,
    GaussianMixture,
    ToyError,
    exact_mmd2,
    gaussian_overlap,
    kernel_mean,
    make_schedule,
    make_target,
    mmd2,
    mode_weights,
    plot,
    reverse_diffusion,
    rssm_loss,
    rssm_weights,
    run,
    train_and_sample,
    validate_args,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT = make_target(Args())
H = [0.5 * math.sqrt(2), math.sqrt(2), 2 * math.sqrt(2)]  # the default bandwidths at the default target


def iso(means, weights, var):
    means = np.array(means, dtype=np.float64).reshape(len(weights), -1)
    return GaussianMixture(
        means, weights, np.broadcast_to(var * np.eye(means.shape[1]), (len(weights),) + (means.shape[1],) * 2)
    )


def test_mode_weights_estimator_on_known_samples():
    torch.manual_seed(0)
    gmm = iso((2.0, -2.0, -2.0, 2.0, 0.0, 5.0), (0.3, 0.5, 0.2), 0.5)
    w = mode_weights(gmm.sample(50_000), gmm)
    assert np.allclose(w, [0.3, 0.5, 0.2], atol=0.01)
    exact = torch.tensor([[2.0, -2.0]] * 3 + [[0.0, 5.0]])  # samples at the means: 3 of one, 1 of another
    assert np.allclose(mode_weights(exact, gmm), [0.75, 0.0, 0.25])


def test_mode_weights_use_each_components_own_covariance():
    """A wide and a narrow component: a point nearer the narrow one's mean can belong to the wide one."""
    gmm = GaussianMixture([[0.0, 0.0], [3.0, 0.0]], [0.5, 0.5], [np.eye(2) * 9.0, np.eye(2) * 0.1])
    assert np.allclose(mode_weights(torch.tensor([[2.0, 0.0], [3.0, 0.1]]), gmm), [0.5, 0.5])


def test_full_covariance_sampling_density_and_score():
    torch.manual_seed(0)
    covs = np.array(
        [[[1.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 2.0]], [[0.5, -0.2, 0.1], [-0.2, 0.3, 0.0], [0.1, 0.0, 1.0]]]
    )
    gmm = GaussianMixture([[3.0, 0.0, -1.0], [-3.0, 1.0, 2.0]], [0.3, 0.7], covs)
    x = gmm.sample(200_000).double()
    first = x[gmm.component_log_prob(x).argmax(-1) == 0]  # means 6.8 apart: the assignment is the label
    assert len(first) / len(x) == pytest.approx(0.3, abs=0.005)
    assert torch.allclose(torch.cov(first.T), torch.tensor(covs[0]), atol=0.05)
    # the density integrates to 1: importance sampling from a wide Gaussian
    z = torch.randn(400_000, 3, dtype=torch.float64) * 4
    log_q = -(z**2).sum(-1) / 32 - 1.5 * math.log(2 * math.pi * 16)
    assert (gmm.log_prob(z) - log_q).exp().mean().item() == pytest.approx(1.0, abs=0.02)
    y = (torch.randn(32, 3, dtype=torch.float64) * 3).requires_grad_()
    gmm.log_prob(y).sum().backward()
    assert torch.allclose(gmm.score(y.detach()), y.grad, atol=1e-9)


def test_gaussian_overlap_is_the_kernels_mean_under_gaussians():
    """The MMD's exact target terms: E k_h(x, y) for x ~ p and fixed y, and for x, y ~ p independent, against Monte
    Carlo, with correlated covariances."""
    torch.manual_seed(0)
    gmm = GaussianMixture(
        [[3.0, 3.0], [-3.0, -2.0]], [0.7, 0.3], [[[1.0, 0.8], [0.8, 1.0]], [[2.0, -0.5], [-0.5, 0.5]]]
    )
    h = 1.3
    x, x2 = gmm.sample(400_000).double(), gmm.sample(400_000).double()
    y = torch.tensor([[2.0, 2.5], [0.0, 0.0], [-3.0, -1.0]], dtype=torch.float64)
    mc = torch.stack([torch.exp(-((x - yy) ** 2).sum(-1) / (2 * h * h)).mean() for yy in y])
    exact = (gmm.weights * gaussian_overlap(y[:, None] - gmm.means, gmm.covs.expand(3, 2, 2, 2), h)).sum(-1)
    assert torch.allclose(mc, exact, rtol=0.02, atol=1e-4)
    mc_pp = torch.exp(-((x - x2) ** 2).sum(-1) / (2 * h * h)).mean()
    assert mc_pp.item() == pytest.approx(kernel_mean(gmm, gmm, h).item(), rel=0.01)


def test_mmd2_is_the_u_statistic_with_exact_target_terms():
    """Against the full n x n kernel matrix written out: the triangle blocks and the float32 distances change nothing."""
    torch.manual_seed(1)
    y = DEFAULT.sample(3000).double()
    k = sum(torch.exp(-torch.cdist(y, y).square() / (2 * h * h)) for h in H)
    n, w, mu, cov = len(y), DEFAULT.weights, DEFAULT.means, DEFAULT.covs
    qq = (k.sum() - k.diagonal().sum()) / (n * (n - 1))
    pp = sum(
        (w[:, None] * w[None] * gaussian_overlap(mu[:, None] - mu[None], cov[:, None] + cov[None], h)).sum() for h in H
    )
    pq = sum((w * gaussian_overlap(y[:, None] - mu, cov.expand(n, 2, 2, 2), h)).sum(-1).mean() for h in H)
    assert mmd2(y, DEFAULT, H) == pytest.approx(float(pp - 2 * pq + qq), abs=1e-7)  # float32 distances


def test_mmd2_is_unbiased_on_the_target_and_on_another_mixture():
    """Mean over draws: 0 on samples of the target (within 3 standard errors), and the closed-form MMD^2 between two
    mixtures on samples of the other one. A biased estimator (the V-statistic, diagonal kept) fails the first."""
    torch.manual_seed(2)
    other = iso((3.0, 3.0, -3.0, -3.0), (0.7, 0.3), 1.2)
    null = np.array([mmd2(DEFAULT.sample(2000), DEFAULT, H) for _ in range(20)])
    assert abs(null.mean()) < 3 * null.std(ddof=1) / math.sqrt(len(null))
    assert null.std() < 1e-3  # the resolution at 2000 samples
    alt = np.array([mmd2(other.sample(2000), DEFAULT, H) for _ in range(20)])
    assert alt.mean() == pytest.approx(exact_mmd2(DEFAULT, other, H), abs=3 * alt.std(ddof=1) / math.sqrt(len(alt)))
    assert exact_mmd2(DEFAULT, other, H) > 0.01


def test_mmd2_separates_mode_weights_that_differ_by_002():
    """At the default 10,000 samples: a mixture with weights 0.78 / 0.22 scores above every draw of the target."""
    torch.manual_seed(3)
    off = iso((3.0, 3.0, -3.0, -3.0), (0.78, 0.22), 1.0)
    null = [mmd2(DEFAULT.sample(10_000), DEFAULT, H) for _ in range(3)]
    alt = [mmd2(off.sample(10_000), DEFAULT, H) for _ in range(3)]
    assert min(alt) > max(null) and exact_mmd2(DEFAULT, off, H) == pytest.approx(np.mean(alt), rel=0.5)


def test_toy_rssm_loss_minimiser_is_the_noise_perturbed_score():
    """One correlated Gaussian component N(mu, S): for each x_t the loss's minimiser over a free eps_hat must be
    eps* = sqrt(1 - abar) (abar S + (1 - abar) I)^-1 (x_t - sqrt(abar) mu), within Monte Carlo error."""
    mu, i, K = torch.tensor([1.0, -2.0]), 8, 100_000
    cov = torch.tensor([[2.0, 0.9], [0.9, 1.0]])
    gmm = GaussianMixture(mu[None].numpy(), [1.0], cov[None].numpy())
    sched = make_schedule(20, 0.001, 0.999)
    x_t = torch.tensor([[0.0, 0.0], [2.0, 1.0], [-3.0, -1.0]])
    eps_hat = torch.nn.Parameter(torch.zeros(3, 2))
    rows = torch.arange(3).repeat_interleave(K)
    opt = torch.optim.LBFGS([eps_hat], lr=1, max_iter=20, line_search_fn="strong_wolfe")

    def closure():
        torch.manual_seed(0)
        loss = rssm_loss(lambda x, t: eps_hat[rows], x_t, torch.full((3,), i), sched, gmm.log_prob, K)
        opt.zero_grad()
        loss.backward()
        return loss

    opt.step(closure)
    ab = sched.abar[i].item()
    expect = math.sqrt(1 - ab) * torch.linalg.solve(ab * cov + (1 - ab) * torch.eye(2), (x_t - math.sqrt(ab) * mu).T).T
    isotropic = math.sqrt(1 - ab) / (ab * cov.diagonal().mean() + 1 - ab) * (x_t - math.sqrt(ab) * mu)
    tol = 0.02 * expect.norm(dim=-1).max().item()
    assert torch.allclose(eps_hat.detach(), expect, atol=tol)
    assert not torch.allclose(isotropic, expect, atol=tol)  # the correlation matters at this tolerance


def test_toy_sampler_with_the_exact_noise_recovers_a_gaussian():
    torch.manual_seed(0)
    mu, var = torch.tensor([1.0, -2.0, 0.5]), 0.5
    sched = make_schedule(1000, 1e-4, 0.02)  # fine steps: DDPM's sampler is exact in the limit

    def eps_fn(x, t):
        ab = sched.abar[t][:, None]
        return (1 - ab).sqrt() * (x - ab.sqrt() * mu) / (ab * var + 1 - ab)

    x = reverse_diffusion(eps_fn, 20_000, 3, sched, x0_clip=20.0)
    assert torch.allclose(x.mean(0), mu, atol=0.03) and torch.allclose(x.var(0), torch.full((3,), var), rtol=0.06)


FAST = dict(epochs=40, steps_per_epoch=10, batch_size=512, num_samples=4000)


def test_fast_run_recovers_the_weights_of_another_mixture(tmp_path):
    """A mixture unlike the default (weights 0.35/0.65, other means, covariance 0.5 I): both RSSM variants and DSM
    recover the weights within 0.1 in a few seconds; 20 Langevin steps from N(0, 4I) do not mix between modes, and the
    MMD sees it far above the estimator's floor."""
    args = Args(
        **FAST, means=(2.5, -2.5, -2.5, 2.5), weights=(0.35, 0.65), cov_scale=0.5, output=str(tmp_path / "f.png")
    )
    results = run(args)
    langevin = results["Langevin, 20 steps"]
    assert abs(langevin["weights"][0] - 0.5) < 0.05, "Langevin stays in the basin it starts in"
    assert abs(results["true samples"]["mmd2"]) < 1e-3 and langevin["mmd2"] > 0.05
    for name, r in results.items():
        assert r["samples"].shape == (4000, 2) and np.isfinite(r["mmd2"])
        if not name.startswith("Langevin"):
            assert abs(r["weights"][0] - 0.35) < 0.1, f"{name}: weights {r['weights']}"
    plot(results, args.output, 6.0)
    with open(args.output, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_fast_runs_in_1_and_3_dimensions_with_full_covariances(tmp_path):
    """d = 1 with three components: both RSSM variants and DSM recover the weights. d = 3 with two correlated
    covariances: DSM recovers them (the sampler, network and estimators work in 3-D; RSSM's eq. 36 does not at these
    settings: README, where RSSM holds and breaks)."""
    covs = (1.0, 0.6, 0.0, 0.6, 1.0, 0.0, 0.0, 0.0, 0.5) + (0.5, 0.0, 0.2, 0.0, 0.5, 0.0, 0.2, 0.0, 0.5)
    three = Args(**FAST, dim=3, means=(3.0, 3.0, 0.0, -3.0, -3.0, 0.0), weights=(0.7, 0.3), covs=covs)
    one = Args(**FAST, dim=1, means=(-4.0, 0.0, 4.0), weights=(0.5, 0.3, 0.2), cov_scale=0.5)
    for args, target, trusted in [(three, [0.7, 0.3], ("DSM",)), (one, [0.5, 0.3, 0.2], ("DSM", "RSSM"))]:
        results = run(args)
        assert abs(results["true samples"]["mmd2"]) < 1e-3
        for name, r in results.items():
            assert r["samples"].shape == (4000, args.dim) and np.isfinite(r["mmd2"])
            if name.startswith(trusted):
                assert np.allclose(r["weights"], target, atol=0.1), f"d = {args.dim}, {name}: {r['weights']}"
        plot(results, str(tmp_path / f"d{args.dim}.png"), 7.0)
        assert os.path.getsize(tmp_path / f"d{args.dim}.png") > 1000


def test_rssm_weights_batch_and_per_x_t():
    """batch: p0 over its batch mean (eq. 36 up to a constant); per-x_t: a softmax over each x_t's K copies."""
    p0 = torch.tensor([1.0, 3.0, 0.5, 0.5, 2.0, 1.0])  # B = 2 x_t's, K = 3 copies each
    batch = rssm_weights(p0.log(), 3, "batch")
    assert torch.allclose(batch, p0 / p0.mean())
    per = rssm_weights(p0.log(), 3, "per-x_t")
    expect = torch.cat([torch.tensor([1.0, 3.0, 0.5]) / 4.5 * 3, torch.tensor([0.5, 2.0, 1.0]) / 3.5 * 3])
    assert torch.allclose(per, expect) and not torch.allclose(batch, expect)


def test_every_trained_method_starts_from_the_same_network():
    """Runs of one seed are paired: each method's training starts from the same initial weights."""
    args = Args(epochs=1, steps_per_epoch=1, num_samples=10)
    sched = make_schedule(args.diffusion_steps, args.beta_start, args.beta_end)
    first = []

    def loss_fn(model, t):
        first.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
        return model(torch.zeros(len(t), 2), t).square().mean()

    train_and_sample(args, sched, loss_fn, 6.0)
    torch.randn(1000)  # another method would have consumed random numbers in between
    train_and_sample(args, sched, loss_fn, 6.0)
    assert torch.equal(first[0], first[1])
    train_and_sample(dataclasses.replace(args, seed=2), sched, loss_fn, 6.0)
    assert not torch.equal(first[0], first[2])


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(weights=(0.5, 0.4)), "must be non-negative and sum to 1"),
        (dict(weights=(1.2, -0.2)), "must be non-negative and sum to 1"),
        (dict(weights=(float("nan"), 0.2)), "must be non-negative and sum to 1"),
        (dict(means=(3.0, 3.0, -3.0)), "--means takes d = 2 numbers per component"),
        (dict(dim=3), "--means takes d = 3 numbers per component"),
        (dict(means=(3.0, 3.0, -3.0, -3.0, 0.0, 0.0)), "one weight per mean: 3 means, 2 weights"),
        (dict(covs=(1.0, 0.0, 1.0)), "--covs takes d\\*d = 4 numbers .* or 8 .* got 3"),
        (dict(covs=(1.0, 2.0, 2.0, 1.0)), "covariance of component 1 is not positive definite"),
        (dict(covs=(1.0, 0.0, 0.0, 1.0, 1.0, 0.3, 0.2, 1.0)), "covariance of component 2 is not symmetric"),
        (dict(covs=(1.0, 0.0, 0.0, float("nan"))), "must be finite"),
        (dict(dim=0), "--dim must be >= 1"),
        (dict(diffusion_steps=0), "--diffusion-steps must be >= 1"),
        (dict(langevin_steps=0), "--langevin-steps must be >= 1"),
        (dict(epochs=0), "--epochs must be >= 1"),
        (dict(num_samples=1), "--num-samples must be >= 2"),
        (dict(cov_scale=0.0), "--cov-scale must be > 0"),
        (dict(beta_end=1.0), "betas must satisfy"),
        (dict(mmd_bandwidths=(1.0, -1.0)), "--mmd-bandwidths must be"),
    ],
)
def test_bad_input_gets_a_clear_error(change, message):
    with pytest.raises(ToyError, match=message):
        validate_args(dataclasses.replace(Args(), **change))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--weights", "0.5", "0.6"], "error: --weights must be non-negative and sum to 1"),
        (["--covs", "1", "2", "2", "1"], "error: the covariance of component 1 is not positive definite"),
    ],
)
def test_command_line_error_is_one_line_without_traceback(tmp_path, argv, message):
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "rssm_toy_gmm.py"), *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and proc.stderr.startswith(message) and len(proc.stderr.strip().splitlines()) == 1


def test_toy_study_runs_every_axis_resumes_and_reports(tmp_path, monkeypatch):
    """benchmarks/toy_study.py at tiny settings: every axis runs, a shared run is run once, a rerun skips what is done."""
    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    import toy_study

    monkeypatch.setattr(toy_study, "STUDY", dict(num_samples=300, epochs=1, steps_per_epoch=2, batch_size=32))
    out = str(tmp_path / "study")
    monkeypatch.setattr(sys, "argv", ["toy_study.py", "--seeds", "1", "--out", out])
    toy_study.main()
    with open(os.path.join(out, "results.csv")) as f:
        rows = f.read().splitlines()[1:]
    assert len(rows) == len({toy_study.key(1, c) for c in toy_study.configs()}) < len(toy_study.configs())
    report = open(os.path.join(out, "report.md")).read()
    for axis in ("### dimension", "### K", "### width of p~", "### separation", "N([-3, -3], I)", "d = 17"):
        assert axis in report
    assert os.path.getsize(os.path.join(out, "study.png")) > 1000
    monkeypatch.setattr(toy_study, "run_one", lambda seed, c: pytest.fail("a finished run was run again"))
    toy_study.main()


def test_toy_seeds_interval_is_students_t():
    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    from toy_seeds import interval

    x = [1.0, 2.0, 4.0, 7.0]  # mean 3.5, std 2.6458, t(0.975, 3) = 3.18245: half width 4.2099
    assert interval(x) == "3.50e+00 [-7.10e-01, 7.71e+00]"
