# Reverse sampling score matching (RSSM) on a toy: train a diffusion model from an energy alone.
# Paper: Ma et al., "Soft Diffusion Actor-Critic", Section 5.1 and Appendix C.1 (Figure 2). Docs: README.md.
#
# The target is a 2-D Gaussian mixture known only through its (log) density. RSSM never sees a sample of it:
# it draws x_t from a distribution of our choosing p~_t, draws x0_tilde from the Gaussian q~(x0 | x_t) of eq. 17,
# and regresses the noise network onto the noise that produced x0_tilde, weighted by the density p0(x0_tilde)
# (eq. 36). Side by side, from the same network and schedule:
#   1. RSSM with p~_t = N(0, 4I);  2. RSSM with p~_t = Unif([-6, 6]^2);
#   3. denoising score matching (DSM) on true samples, the reference that may see data;
#   4. 20 steps of Langevin dynamics with the true score (no training), which mixes slowly between modes.
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn as nn
import tyro


@dataclass
class Args:
    seed: int = 1
    """seed of the experiment"""
    means: tuple[float, ...] = (3.0, 3.0, -3.0, -3.0)
    """component means, flattened x y pairs: `--means 3 3 -3 -3` is [3, 3] and [-3, -3]"""
    weights: tuple[float, ...] = (0.8, 0.2)
    """mixing weights, one per component, non-negative, summing to 1"""
    cov_scale: float = 1.0
    """every component's covariance is cov_scale * I"""
    diffusion_steps: int = 20
    """T, the number of diffusion steps"""
    beta_start: float = 0.001
    """first beta of the linear schedule (paper Table 3)"""
    beta_end: float = 0.999
    """last beta of the linear schedule (paper Table 3)"""
    lr: float = 3e-4
    """Adam learning rate"""
    batch_size: int = 1024
    """x_t (RSSM) or true samples (DSM) per gradient step"""
    epochs: int = 300
    """training epochs; an epoch here is `steps_per_epoch` gradient steps of `batch_size`
    (for DSM: one pass over a fixed set of steps_per_epoch * batch_size true samples)"""
    steps_per_epoch: int = 10
    """gradient steps per epoch (RSSM has no data set: this defines its epoch)"""
    num_reverse_samples: int = 4
    """K: reverse samples x0_tilde per x_t (eq. 17)"""
    gaussian_std: float = 2.0
    """std of the Gaussian sampling distribution p~_t = N(0, std^2 I) (paper: 2, i.e. N(0, 4I))"""
    uniform_bound: float = 6.0
    """half width of the uniform sampling distribution p~_t = Unif([-b, b]^2) (paper: 6)"""
    langevin_steps: int = 20
    """steps of Langevin dynamics with the true score"""
    langevin_step_size: float = 0.1
    """step size eta: x <- x + eta * score(x) + sqrt(2 eta) z"""
    num_samples: int = 10_000
    """samples drawn from each method for the figure and the table"""
    kl_bins: int = 40
    """bins per axis of the 2-D histograms behind the KL estimate"""
    output: str = "rssm_toy_gmm.png"
    """where the figure is written"""


class ToyError(Exception):
    """An error in the user's input: printed as one line, without a traceback."""


def validate_args(args: Args) -> None:
    if len(args.means) == 0 or len(args.means) % 2:
        raise ToyError(f"--means takes x y pairs (2-D means), got {len(args.means)} numbers")
    if len(args.weights) != len(args.means) // 2:
        raise ToyError(f"--weights needs one weight per mean: {len(args.means) // 2} means, {len(args.weights)} weights")
    if any(w < 0 for w in args.weights) or abs(sum(args.weights) - 1) > 1e-6:
        raise ToyError(f"--weights must be non-negative and sum to 1, got {args.weights} (sum {sum(args.weights):g})")
    for name in ["diffusion_steps", "batch_size", "epochs", "steps_per_epoch", "num_reverse_samples",
                 "langevin_steps", "num_samples", "kl_bins"]:  # fmt: skip
        if getattr(args, name) < 1:
            raise ToyError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ["cov_scale", "lr", "gaussian_std", "uniform_bound", "langevin_step_size"]:
        if not getattr(args, name) > 0:
            raise ToyError(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    if not 0 < args.beta_start <= args.beta_end < 1:
        raise ToyError(f"betas must satisfy 0 < --beta-start <= --beta-end < 1, got {args.beta_start}, {args.beta_end}")


# ---------------------------------------------------------------------------------------------------
# The target, known through its energy: log p0(x) = log sum_j w_j N(x; mu_j, s^2 I)


class GaussianMixture:
    def __init__(self, means, weights, cov_scale: float):
        self.means = torch.tensor(means, dtype=torch.float32).view(-1, 2)
        self.log_w = torch.tensor(weights, dtype=torch.float32).log()
        self.var = cov_scale

    def component_log_prob(self, x: torch.Tensor) -> torch.Tensor:  # [n, components], without the weights
        sq = ((x[:, None, :] - self.means[None]) ** 2).sum(-1)
        return -sq / (2 * self.var) - math.log(2 * math.pi * self.var)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(self.log_w + self.component_log_prob(x), -1)

    def score(self, x: torch.Tensor) -> torch.Tensor:  # grad log p0 = sum_j r_j(x) (mu_j - x) / s^2
        r = torch.softmax(self.log_w + self.component_log_prob(x), -1)
        return (r @ self.means - x) / self.var

    def sample(self, n: int) -> torch.Tensor:  # only DSM and the reference may call this
        j = torch.multinomial(self.log_w.exp(), n, replacement=True)
        return self.means[j] + math.sqrt(self.var) * torch.randn(n, 2)


def mode_weights(x: torch.Tensor, gmm: GaussianMixture) -> np.ndarray:
    """The fraction of samples assigned to each component, each sample to its most likely component
    (equal covariances: the nearest mean)."""
    nearest = gmm.component_log_prob(x).argmax(-1)
    return torch.bincount(nearest, minlength=len(gmm.means)).double().div(len(x)).numpy()


def histogram_kl(p_samples: torch.Tensor, q_samples: torch.Tensor, lim: float, bins: int) -> float:
    """KL(P || Q) between 2-D histograms on the fixed grid [-lim, lim]^2 with bins x bins cells, each count
    smoothed by adding 1 (so that empty cells of Q stay finite); samples outside the grid go to the edge cells."""

    def hist(x):
        idx = ((x.clamp(-lim, lim - 1e-6) + lim) / (2 * lim) * bins).long()
        counts = torch.bincount(idx[:, 0] * bins + idx[:, 1], minlength=bins * bins).double() + 1
        return counts / counts.sum()

    p, q = hist(p_samples), hist(q_samples)
    return float((p * (p / q).log()).sum())


# ---------------------------------------------------------------------------------------------------
# Diffusion: linear betas, noise network, reverse sampling (eq. 6), the two losses


class Schedule(NamedTuple):  # the same names as in sdac_continuous_action.py; tensors indexed by i = t - 1
    betas: torch.Tensor
    alphas: torch.Tensor
    abar: torch.Tensor  # abar_t
    abar_prev: torch.Tensor  # abar_{t-1}, with abar_0 = 1
    posterior_mean_coef1: torch.Tensor  # coefficient of x0 in the mean of q(x_{t-1} | x_t, x0)
    posterior_mean_coef2: torch.Tensor  # coefficient of x_t
    posterior_var: torch.Tensor  # variance of q(x_{t-1} | x_t, x0)


def make_schedule(T: int, beta_start: float, beta_end: float) -> Schedule:
    betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0)
    abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    sched = Schedule(
        betas,
        alphas,
        abar,
        abar_prev,
        betas * abar_prev.sqrt() / (1 - abar),
        (1 - abar_prev) * alphas.sqrt() / (1 - abar),
        betas * (1 - abar_prev) / (1 - abar),
    )
    return Schedule(*(x.float() for x in sched))


class EpsNetwork(nn.Module):
    """eps_theta(x_t, t): 2 x 128 LeakyReLU (paper Table 3) on [x_t, sinusoidal features of t]."""

    def __init__(self, hidden: int = 128, t_dim: int = 16):
        super().__init__()
        self.register_buffer("freqs", torch.exp(-math.log(1000) * torch.arange(t_dim // 2) / (t_dim // 2 - 1)))
        self.net = nn.Sequential(nn.Linear(2 + t_dim, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden), nn.LeakyReLU(),
                                 nn.Linear(hidden, 2))  # fmt: skip

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        f = t.float()[:, None] * self.freqs
        return self.net(torch.cat([x, f.sin(), f.cos()], -1))


@torch.no_grad()
def reverse_diffusion(model: nn.Module, n: int, sched: Schedule, x0_clip: float) -> torch.Tensor:
    """x_T ~ N(0, I), then x_{t-1} ~ q(x_{t-1} | x_t, x0_hat) for t = T..1, x0_hat clipped to a box around the data."""
    x = torch.randn(n, 2)
    for i in reversed(range(len(sched.abar))):
        eps = model(x, torch.full((n,), i))
        x0_hat = ((x - (1 - sched.abar[i]).sqrt() * eps) / sched.abar[i].sqrt()).clamp(-x0_clip, x0_clip)
        x = sched.posterior_mean_coef1[i] * x0_hat + sched.posterior_mean_coef2[i] * x
        if i > 0:
            x = x + sched.posterior_var[i].sqrt() * torch.randn_like(x)
    return x


def rssm_loss(model: nn.Module, x_t: torch.Tensor, t: torch.Tensor, sched: Schedule, log_density: Callable, K: int):
    """Eq. 36: E_{x_t ~ p~, x0_tilde ~ q~(.|x_t)} [p0(x0_tilde) || eps_theta(x_t, t) - eps ||^2], x0_tilde by eq. 17.
    The weights are divided by their batch mean, a constant factor that keeps the minimiser and the step size."""
    abar = sched.abar[t][:, None].repeat_interleave(K, 0)
    x_t, t = x_t.repeat_interleave(K, 0), t.repeat_interleave(K, 0)
    eps = torch.randn_like(x_t)
    x0_tilde = x_t / abar.sqrt() - ((1 - abar) / abar).sqrt() * eps  # eq. 17
    w = torch.softmax(log_density(x0_tilde), 0) * len(x0_tilde)  # p0(x0_tilde) / mean(p0), computed in log space
    return (w * ((model(x_t, t) - eps) ** 2).sum(-1)).mean()


def dsm_loss(model: nn.Module, x0: torch.Tensor, t: torch.Tensor, sched: Schedule) -> torch.Tensor:
    """Eq. 5 in noise form: x_t = sqrt(abar) x0 + sqrt(1 - abar) eps, regress eps."""
    abar = sched.abar[t][:, None]
    eps = torch.randn_like(x0)
    return ((model(abar.sqrt() * x0 + (1 - abar).sqrt() * eps, t) - eps) ** 2).sum(-1).mean()


def langevin(score: Callable, x: torch.Tensor, steps: int, step_size: float) -> torch.Tensor:
    for _ in range(steps):
        x = x + step_size * score(x) + math.sqrt(2 * step_size) * torch.randn_like(x)
    return x


# ---------------------------------------------------------------------------------------------------
# The experiment


def train_diffusion(args: Args, sched: Schedule, loss_fn: Callable) -> nn.Module:
    """The same network, optimiser and number of steps for every trained method; loss_fn(model, t) -> loss."""
    model = EpsNetwork()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    for _ in range(args.epochs * args.steps_per_epoch):
        t = torch.randint(0, args.diffusion_steps, (args.batch_size,))
        loss = loss_fn(model, t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def box(args: Args) -> float:
    """Half width of a square that holds the data: the grid of the KL estimate and the plots' limits."""
    return float(np.abs(np.array(args.means)).max()) + 4 * math.sqrt(args.cov_scale)


def run(args: Args) -> dict:
    """Trains and samples the four methods; returns {method: {"samples", "weights", "kl", "seconds"}}."""
    validate_args(args)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    gmm = GaussianMixture(args.means, args.weights, args.cov_scale)
    sched = make_schedule(args.diffusion_steps, args.beta_start, args.beta_end)
    lim = box(args)
    b, K = args.batch_size, args.num_reverse_samples

    # DSM's fixed data set: one epoch is one pass over it (the only method that sees true samples)
    data = gmm.sample(args.steps_per_epoch * b)
    batches = iter(())

    def dsm_batch(model, t):
        nonlocal batches
        batch = next(batches, None)
        if batch is None:
            batches = iter(data[torch.randperm(len(data))].split(b))
            batch = next(batches)
        return dsm_loss(model, batch, t, sched)

    def rssm_gaussian(model, t):  # p~_t = N(0, std^2 I) for every t
        return rssm_loss(model, args.gaussian_std * torch.randn(b, 2), t, sched, gmm.log_prob, K)

    def rssm_uniform(model, t):  # p~_t = Unif([-bound, bound]^2) for every t
        return rssm_loss(model, (2 * torch.rand(b, 2) - 1) * args.uniform_bound, t, sched, gmm.log_prob, K)

    reference = gmm.sample(args.num_samples)  # true samples that the KL is measured against
    results = {"true samples": {"samples": gmm.sample(args.num_samples), "seconds": 0.0}}
    losses = {
        f"RSSM, p~ = N(0, {args.gaussian_std**2:g}I)": rssm_gaussian,
        f"RSSM, p~ = Unif([-{args.uniform_bound:g}, {args.uniform_bound:g}]^2)": rssm_uniform,
        "DSM (true samples)": dsm_batch,
    }
    for name, loss_fn in losses.items():
        start = time.time()
        model = train_diffusion(args, sched, loss_fn)
        results[name] = {"samples": reverse_diffusion(model, args.num_samples, sched, lim), "seconds": time.time() - start}
    start = time.time()  # Langevin with the true score, started from N(0, std^2 I) like the Gaussian RSSM
    x = langevin(gmm.score, args.gaussian_std * torch.randn(args.num_samples, 2), args.langevin_steps, args.langevin_step_size)
    results[f"Langevin, {args.langevin_steps} steps"] = {"samples": x, "seconds": time.time() - start}
    for r in results.values():
        r["weights"] = mode_weights(r["samples"], gmm)
        r["kl"] = histogram_kl(reference, r["samples"], lim, args.kl_bins)
    return results


def print_table(results: dict, args: Args) -> None:
    means = np.array(args.means).reshape(-1, 2)
    head = " | ".join(f"weight of [{m[0]:g}, {m[1]:g}]" for m in means)
    print(f"\n| method | {head} | KL(true || method) | seconds |")
    print("|---|" + "---|" * (len(means) + 2))
    print(f"| target | {' | '.join(f'{w:.3f}' for w in args.weights)} | 0 | - |")
    for name, r in results.items():
        print(f"| {name} | {' | '.join(f'{w:.3f}' for w in r['weights'])} | {r['kl']:.4f} | {r['seconds']:.1f} |")
    print(f"\nKL: 2-D histograms on a fixed {args.kl_bins} x {args.kl_bins} grid, every cell count + 1, against a second "
          f"draw of {args.num_samples} true samples ('true samples' is the estimator's floor).")


def plot(results: dict, path: str, lim: float) -> None:
    """Figure 2's layout: one scatter plot with marginal histograms per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(4 * len(results), 4.4))
    grid = fig.add_gridspec(2, 2 * len(results), width_ratios=[4, 1] * len(results), height_ratios=[1, 4],
                            hspace=0.05, wspace=0.05)  # fmt: skip
    for k, (name, r) in enumerate(results.items()):
        x = r["samples"].numpy()
        ax = fig.add_subplot(grid[1, 2 * k])
        ax_top, ax_right = fig.add_subplot(grid[0, 2 * k], sharex=ax), fig.add_subplot(grid[1, 2 * k + 1], sharey=ax)
        ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.3)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim))
        ax_top.hist(x[:, 0], bins=60, range=(-lim, lim))
        ax_right.hist(x[:, 1], bins=60, range=(-lim, lim), orientation="horizontal")
        ax_top.set_title(f"{name}\nweights {', '.join(f'{w:.2f}' for w in r['weights'])}", fontsize=9)
        ax_top.axis("off")
        ax_right.axis("off")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    args = tyro.cli(Args)
    try:
        results = run(args)
    except ToyError as e:
        sys.exit(f"error: {e}")
    print_table(results, args)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    plot(results, args.output, box(args))
    print(f"figure written to {args.output}")
