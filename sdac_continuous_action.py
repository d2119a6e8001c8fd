# Soft Diffusion Actor-Critic (SDAC), single file. Paper: Ma et al., "Soft Diffusion Actor-Critic:
# Efficient Online Reinforcement Learning for Diffusion Policy". Docs: README.md of this repository.
# A diffusion policy eps_theta(a_t, s, t) trained by reverse sampling score matching (RSSM, eqs. 16-17)
# from the Q-function alone: no samples from the target policy, no backpropagation through the chain.
# Read top to bottom: the arguments; the algorithm (schedules, networks, sampler, RSSM, one update), which runs alone
# and can be copied without the rest; the training loop (Algorithm 1); then the plumbing (envs, replay, checkpoints,
# evaluation, logging), the same line for line in sac_ and dpmd_continuous_action.py.
import math
import os
import pickle
import random
import signal
import sys
import time
import warnings
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, fields
from functools import partial
from typing import Callable, Literal, NamedTuple, Optional, Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import tyro
from torch.utils.tensorboard import SummaryWriter

# gymnasium warns on every -v4 env that a -v5 exists; the paper's results are on -v4, so that choice is ours, not the
# user's business. Filtered before anything prints, so that a user error stays one line.
warnings.filterwarnings("ignore", message=r".*The environment \S+ is out of date", category=DeprecationWarning)


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment"""
    seed: int = 1
    """seed of the experiment"""
    track: bool = False
    """log to Weights & Biases as CleanRL does (project, entity, run name, config; the TensorBoard logs synced)"""
    wandb_project_name: str = "sdac"
    """the wandb project"""
    wandb_entity: Optional[str] = None
    """the wandb entity (team); None: your default"""
    torch_deterministic: bool = True
    """if toggled, `torch.backends.cudnn.deterministic=True`"""
    cuda: bool = True
    """if toggled and CUDA exists, the replay buffer and the whole training step live on the GPU"""
    save_model: bool = False
    """save the final weights to `runs/{run_name}/{exp_name}.sdac_model`"""
    capture_video: bool = False
    """write each evaluation's first episode as an MP4 to videos/{run_name}/ (MuJoCo renders off-screen: EGL or
    OSMesa where there is no display, chosen by MUJOCO_GL)"""
    eval_only: bool = False
    """no training: evaluate the policy in --load-model for --eval-episodes episodes, then exit"""
    load_model: Optional[str] = None
    """with --eval-only: a saved model (--save-model) or a checkpoint, whose own hyperparameters are used"""
    checkpoint_interval: int = 50_000
    """write the full training state every this many env steps (0: never); a crash loses at most this many, and
    Ctrl-C or SIGTERM writes one before it stops"""
    checkpoint_buffer: bool = False
    """also put the replay buffer in checkpoints (large: up to buffer_size transitions)"""
    resume: Optional[str] = None
    """path of a checkpoint to continue from, with its hyperparameters (only a changed total, logging, evaluation,
    checkpoint or device option may follow)"""
    compile: bool = False
    """torch.compile the update steps (forward, backward, optimiser step) and the action sampler"""
    cudagraphs: bool = False
    """also capture them in CUDA graphs (torch.compile mode "reduce-overhead"; needs CUDA)"""
    tf32: bool = False
    """allow TF32 matmuls on Ampere and later GPUs (faster, about 1e-3 relative precision)"""

    # Environment and data (Algorithm 1 lines 2-4)
    env_id: str = "Ant-v4"
    """the id of the environment (a gymnasium env with a bounded Box action space)"""
    total_timesteps: int = 1_000_000
    """total environment steps, summed over the parallel envs"""
    num_envs: int = 5
    """parallel envs; one iteration = one vector step + `gradient_steps` updates (official: 5 envs, 1 update)"""
    gradient_steps: int = 1
    """gradient steps per iteration (update-to-data ratio = gradient_steps / num_envs)"""
    buffer_size: int = 1_000_000
    """the replay memory buffer size"""
    learning_starts: int = 30_000
    """env steps of uniform random actions before learning starts, counted inside total_timesteps (the authors
    collect them before theirs: --total-timesteps 1030000 matches their 1M-step run)"""
    batch_size: int = 256
    """the batch size of samples from the replay memory"""
    gamma: float = 0.99
    """the discount factor gamma"""
    reward_scale: float = 0.2
    """rewards are multiplied by this in the critic target (official code: 0.2)"""

    # Critic (soft policy evaluation, Algorithm 1 lines 6-7)
    q_lr: float = 3e-4
    """the learning rate of the twin critics"""
    tau: float = 0.005
    """target critic and EMA policy smoothing coefficient"""
    target_network_frequency: int = 2
    """updates between target critic updates, from update 0 (official code: with every policy update)"""
    entropy_in_target: bool = False
    """paper eq. 2: add lambda * H to the target, H the entropy proxy of the exploration noise (official code: off)"""

    # Diffusion policy
    diffusion_steps: int = 20
    """T, the number of diffusion steps"""
    beta_schedule: Literal["cosine", "linear", "vp"] = "linear"
    """noise schedule: linear (authors' code: 0.8 * linspace(1e-4, 0.999, T)), cosine (paper's text), vp"""
    linear_beta_scale: float = 0.8
    """scale of the linear schedule's betas"""
    x_T_scale: float = 0.5
    """std of x_T at the start of reverse sampling (official code: 0.5; paper: 1.0)"""
    num_candidates: int = 32
    """N: reverse-diffusion samples per state, the best by min(Q1, Q2) kept, wherever the policy is sampled: acting,
    a' in the critic target and a0 in the RSSM step (1: no best-of-N)"""
    num_reverse_samples: int = 64
    """K: reverse samples a0_tilde per a_t in the RSSM loss (eq. 17)"""
    weight_normalization: Literal["softmax", "batch"] = "softmax"
    """RSSM weights exp(q_weight_scale * Q / lambda): softmax over the K copies of each a_t (official code) or Q normalised by its batch mean/std (paper 4.1)"""
    q_weight_scale: float = 5.0
    """the RSSM weights use q_weight_scale * Q / lambda (authors' code: 5, "the initial alpha value"; 1: the paper's exp(Q/lambda))"""
    policy_lr: float = 3e-4
    """the learning rate of the noise network"""
    policy_lr_end: float = 3e-5
    """with anneal_lr, the policy learning rate after the decay"""
    anneal_lr: bool = True
    """policy lr: policy_lr for policy_lr_decay_begin policy updates, then linear to policy_lr_end over policy_lr_decay_steps (authors' code)"""
    policy_lr_decay_begin: int = 25_000
    """policy updates (not env steps) before the policy lr starts to fall"""
    policy_lr_decay_steps: int = 50_000
    """policy updates over which the policy lr falls linearly to policy_lr_end"""
    policy_frequency: int = 2
    """updates between policy (RSSM) updates, from update 0 (delayed update)"""
    ema: bool = True
    """act and evaluate with an EMA copy of the noise network (authors' code, algorithm/sdac.py:284-286); else with
    the online one. a' and a0 inside the update always come from the online one (sdac.py:113, 130)"""

    # Entropy coefficient lambda (Algorithm 1 line 13)
    lambda_init: float = 5.0
    """initial lambda (official code's scale)"""
    lambda_tuning: Literal["entropy", "linear", "fixed"] = "entropy"
    """entropy: Adam on log lambda so the exploration-noise entropy tracks -target_entropy_scale * d (official code); linear: lambda <- lambda - lambda_lr * (lambda - lambda_target) (paper); fixed"""
    lambda_lr: float = 7e-3
    """learning rate of lambda tuning"""
    lambda_update_interval: int = 250
    """updates between lambda updates, from update 0"""
    target_entropy_scale: float = 0.9
    """entropy tuning target: H = -target_entropy_scale * action_dim"""
    lambda_target: float = 1.0
    """the lambda that `--lambda-tuning linear` pulls towards"""
    exploration_noise: float = 0.1
    """std of the Gaussian noise added to actions = exploration_noise * lambda"""
    clip_noisy_actions: bool = False
    """clip actions to [-1, 1] after the exploration noise (authors' code: not clipped; MuJoCo clamps controls to their range)"""

    # Logging and evaluation
    log_interval: int = 500
    """env steps between loss logs (and the non-finite check, the only host sync of the training step)"""
    eval_interval: int = 50_000
    """env steps between evaluations (authors' code: total/20 = 50k of 1M); 0: only at the end"""
    eval_episodes: int = 20
    """evaluation episodes, run at once in parallel envs (noise-free, EMA policy, best-of-N)"""
    progress_seconds: float = 30.0
    """wall-clock seconds between status lines (step/total, recent SPS, last evaluation, ETA); 0: every log_interval"""
    print_episodes: bool = False
    """also print every finished training episode (they always go to TensorBoard: charts/episodic_return)"""


ALGORITHM = "SDAC"  # in messages, checkpoint formats and saved-model names
# the bounds validate_args (in the plumbing) checks: options that must be >= 1, >= 0, > 0, and below a limit
AT_LEAST_ONE = ("total_timesteps", "num_envs", "gradient_steps", "buffer_size", "batch_size", "diffusion_steps",
                "num_candidates", "num_reverse_samples", "policy_frequency", "target_network_frequency",
                "lambda_update_interval", "log_interval", "eval_episodes", "policy_lr_decay_steps")  # fmt: skip
NON_NEGATIVE = ("learning_starts", "checkpoint_interval", "eval_interval", "progress_seconds", "exploration_noise",
                "policy_lr_decay_begin", "policy_lr_end", "lambda_lr")  # fmt: skip
POSITIVE = ("q_lr", "policy_lr", "lambda_init", "lambda_target", "x_T_scale", "linear_beta_scale", "reward_scale",
            "q_weight_scale")  # fmt: skip
BELOW = {"linear_beta_scale": 1.001}  # so that every beta_t < 1 (the linear betas reach 0.999 * scale)


# =====================================================================================================================
# The algorithm: noise schedules -> networks -> reverse sampling (acting) -> RSSM (eqs. 16-17) -> one update
# (Algorithm 1 lines 6-13)

# ---------------------------------------------------------------------------------------------------------------------
# Noise schedules: beta_t, alpha_t = 1 - beta_t, abar_t = prod_{l<=t} alpha_l, for t = 1..T
# (tensors are indexed by i = t - 1)


class Schedule(NamedTuple):
    betas: torch.Tensor
    alphas: torch.Tensor
    abar: torch.Tensor  # abar_t
    abar_prev: torch.Tensor  # abar_{t-1}, with abar_0 = 1
    posterior_mean_coef1: torch.Tensor  # coefficient of x0 in the mean of q(x_{t-1} | x_t, x0)
    posterior_mean_coef2: torch.Tensor  # coefficient of x_t
    posterior_var: torch.Tensor  # variance of q(x_{t-1} | x_t, x0)


def make_schedule(kind: str, T: int, linear_beta_scale: float = 0.8, device="cpu") -> Schedule:
    t = torch.arange(1, T + 1, dtype=torch.float64)
    if kind == "cosine":  # Nichol & Dhariwal: abar_t = f(t) / f(0)
        s = 0.008
        f = lambda u: torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
        betas = (1 - f(t) / f(t - 1)).clamp(max=0.999)
    elif kind == "linear":  # official code
        betas = linear_beta_scale * torch.linspace(1e-4, 0.999, T, dtype=torch.float64)
    elif kind == "vp":  # discretised variance-preserving SDE, b_min = 0.1, b_max = 10
        b_min, b_max = 0.1, 10.0
        betas = 1 - torch.exp(-b_min / T - (b_max - b_min) * (2 * t - 1) / (2 * T**2))
    else:
        raise ValueError(f"unknown beta schedule {kind!r}")
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
    return Schedule(*(x.float().to(device) for x in sched))


# ---------------------------------------------------------------------------------------------------------------------
# Networks: the noise network eps_theta(a_t, s, t) = MLP(concat[s, a_t, emb(t)]), called `actor` wherever it is used
# (its EMA copy `actor_ema`), and the twin critics Q1, Q2 (`qf`), 3 x 256 with mish


def haiku_init_(weight: torch.Tensor, bias: torch.Tensor, fan_in: int) -> None:
    """Haiku's Linear init, as in the authors' code: W ~ normal(0, sigma^2) truncated at +-2 sigma,
    sigma = 1/sqrt(fan_in), and b = 0 (haiku/_src/basic.py, Linear; initializers.TruncatedNormal)."""
    sigma = 1 / math.sqrt(fan_in)
    nn.init.trunc_normal_(weight, std=sigma, a=-2 * sigma, b=2 * sigma)
    nn.init.zeros_(bias)


def linear(in_dim: int, out_dim: int) -> nn.Linear:
    layer = nn.Linear(in_dim, out_dim)
    haiku_init_(layer.weight, layer.bias, in_dim)
    return layer


def mlp(in_dim: int, out_dim: int, hidden: int = 256, layers: int = 3) -> nn.Sequential:
    mods, d = [], in_dim
    for _ in range(layers):
        mods += [linear(d, hidden), nn.Mish()]
        d = hidden
    return nn.Sequential(*mods, linear(d, out_dim))


class TimeEmbedding(nn.Module):
    """The authors' time embedding (network/blocks.py:190-229): the step index t = 0..T-1 times
    10000^(-j/8), j = 0..7, sin and cos, times 1/sqrt(16); then Linear(32) -> mish -> Linear(16)."""

    def __init__(self, dim: int = 16):
        super().__init__()
        half = dim // 2
        self.register_buffer("freqs", 10000.0 ** (-torch.arange(half) / half), persistent=False)
        self.scale = 1 / math.sqrt(dim)
        self.net = nn.Sequential(linear(dim, 2 * dim), nn.Mish(), linear(2 * dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        x = t.float()[:, None] * self.freqs
        return self.net(torch.cat([x.sin(), x.cos()], -1) * self.scale)


class NoiseNetwork(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int):
        super().__init__()
        self.act_dim = act_dim
        self.time_emb = TimeEmbedding(16)
        self.net = mlp(obs_dim + act_dim + 16, act_dim)

    def forward(self, obs: torch.Tensor, a_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, a_t, self.time_emb(t)], -1))


class BatchedLinear(nn.Module):
    """n independent linear layers in one batched matmul, [n, B, in] -> [n, B, out]; haiku's init per member."""

    def __init__(self, n: int, in_dim: int, out_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(n, 1, out_dim))
        haiku_init_(self.weight, self.bias, in_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class TwinQNetwork(nn.Module):
    """The twin critics Q1, Q2 (independent weights), evaluated in one batched call: returns [2, B]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 256, layers: int = 3):
        super().__init__()
        dims = [obs_dim + act_dim] + [hidden] * layers
        mods = [m for i, o in zip(dims[:-1], dims[1:]) for m in (BatchedLinear(2, i, o), nn.Mish())]
        self.net = nn.Sequential(*mods, BatchedLinear(2, hidden, 1))

    def forward(self, obs: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, a], -1)
        return self.net(x.expand(2, *x.shape)).squeeze(-1)


def min_q(qf: TwinQNetwork, obs: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return qf(obs, a).min(0).values


# ---------------------------------------------------------------------------------------------------------------------
# Reverse diffusion (eq. 6, DDPM form) and acting with best-of-N


@torch.no_grad()
def reverse_diffusion(actor: Callable, obs: torch.Tensor, sched: Schedule, act_dim: int, x_T_scale: float):
    """a_0 ~ pi(.|s): x_T ~ N(0, x_T_scale^2 I); x_{t-1} ~ q(x_{t-1} | x_t, x0_hat) with x0_hat clipped to [-1, 1]."""
    B, T = obs.shape[0], sched.betas.shape[0]
    x = torch.randn(B, act_dim, device=obs.device) * x_T_scale
    for i in reversed(range(T)):
        eps = actor(obs, x, torch.full((B,), i, device=obs.device))
        x0_hat = ((x - (1 - sched.abar[i]).sqrt() * eps) / sched.abar[i].sqrt()).clamp(-1, 1)
        x = sched.posterior_mean_coef1[i] * x0_hat + sched.posterior_mean_coef2[i] * x
        if i > 0:  # no noise at the last step
            x = x + sched.posterior_var[i].sqrt() * torch.randn_like(x)
    return x.clamp(-1, 1)


@torch.no_grad()
def sample_actions(actor, qf, obs, noise_std: torch.Tensor | float, sched: Schedule, num_candidates: int,
                   x_T_scale: float, clip: bool = False) -> torch.Tensor:  # fmt: skip
    """Best of N reverse-diffusion samples by min(Q1, Q2), plus N(0, noise_std^2) exploration noise added after
    the pick and not clipped, as the authors' code does (network/diffv2.py:55-62), unless `clip`."""
    B, N, act_dim = obs.shape[0], num_candidates, actor.act_dim
    obs_rep = obs.repeat_interleave(N, 0)  # [B*N, obs_dim]
    cand = reverse_diffusion(actor, obs_rep, sched, act_dim, x_T_scale)
    if N > 1:
        best = min_q(qf, obs_rep, cand).view(B, N).argmax(1)
        cand = cand.view(B, N, act_dim)[torch.arange(B, device=obs.device), best]
    noisy = cand + noise_std * torch.randn_like(cand)
    return noisy.clamp(-1, 1) if clip else noisy


def make_policy(sched: Schedule, args: Args) -> Callable:
    """The policy, built once: policy(actor, qf, obs, noise_std) = sample_actions with this run's N and x_T scale."""
    return partial(sample_actions, sched=sched, num_candidates=args.num_candidates, x_T_scale=args.x_T_scale,
                   clip=args.clip_noisy_actions)  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------------
# Reverse sampling score matching (Theorem 3.2, eqs. 16-17)


def reverse_sample(a_t: torch.Tensor, abar_t: torch.Tensor, K: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 17: K draws a0_tilde = a_t / sqrt(abar_t) - sqrt((1 - abar_t) / abar_t) eps per row of a_t.
    Returns a0_tilde and eps, both [B*K, d], rows of one a_t adjacent; abar_t is [B, 1]."""
    a_t, abar_t = a_t.repeat_interleave(K, 0), abar_t.repeat_interleave(K, 0)
    eps = torch.randn_like(a_t)
    return a_t / abar_t.sqrt() - ((1 - abar_t) / abar_t).sqrt() * eps, eps


def rssm_loss(actor, obs, a_t, t_idx, sched, q_fn, temperature, K: int, normalization: str = "softmax"):
    """Eq. 16 in noise form: w_k (eps_theta(a_t, s, t) - eps_k)^2 averaged over the B*K*d entries, as the authors'
    code does (utils/diffusion.py:147-154), with w_k proportional to exp(q_fn(s, a0_tilde_k) / temperature) and
    summing to 1 over the K copies (the paper's temperature is lambda; q_fn is Q, the negative energy). The score
    target -eps / sqrt(1 - abar_t) is the gradient of log q~(a0_tilde | a_t); the (1 - abar_t) weighting of DSM
    (eq. 5) turns it into eps.
    No gradient flows into q_fn's critics or through the sampling of a_t. Returns the loss, the weights and the Q
    values of the K copies ([B, K] each)."""
    B = a_t.shape[0]
    a0_tilde, eps = reverse_sample(a_t, sched.abar[t_idx][:, None], K)
    obs_rep = obs.repeat_interleave(K, 0)
    with torch.no_grad():
        q = q_fn(obs_rep, a0_tilde).view(B, K)
        if normalization == "softmax":  # per a_t over its K copies: bounded, same minimiser per a_t
            w = torch.softmax(q / temperature, dim=1)
        else:  # paper 4.1: Q normalised by batch mean and std; std folds into the temperature
            w = torch.exp((q - q.mean()) / (q.std() + 1e-6) / temperature) / K
    pred = actor(obs_rep, a_t.repeat_interleave(K, 0), t_idx.repeat_interleave(K, 0))
    sq_err = ((pred - eps) ** 2).sum(-1).view(B, K)
    return (w * sq_err).sum() / pred.numel(), w, q


def effective_sample_size(w: torch.Tensor) -> torch.Tensor:
    """Of the weights [B, K] of each a_t's K copies, averaged over B: K when uniform, 1 when one copy has them all."""
    return (w.sum(1) ** 2 / (w**2).sum(1)).mean()


def exploration_entropy(lam: torch.Tensor, act_dim: int, exploration_noise: float) -> torch.Tensor:
    """Entropy proxy of the policy: that of the Gaussian exploration noise, d/2 log(2 pi e sigma^2)."""
    sigma = exploration_noise * lam
    return 0.5 * act_dim * torch.log(2 * math.pi * math.e * sigma**2)


# ---------------------------------------------------------------------------------------------------------------------
# One update (Algorithm 1 lines 6-13): critic, policy (RSSM), target critics and EMA policy, lambda


class Batch(NamedTuple):
    """A minibatch of transitions from the replay buffer (terminations: 1.0 where s' ended the episode)."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminations: torch.Tensor


def soft_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """target <- (1 - tau) target + tau online, all parameters in one fused call."""
    with torch.no_grad():
        torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), tau)


def policy_lr_at(policy_updates: int, lr: float, lr_end: float, decay_begin: int, decay_steps: int) -> float:
    """The authors' policy lr (algorithm/sdac.py:59-64, optax.linear_schedule counted in policy updates): lr for the
    first decay_begin policy updates, then linear to lr_end over decay_steps, then lr_end."""
    frac = min(max(policy_updates - decay_begin, 0) / decay_steps, 1.0)
    return lr + frac * (lr_end - lr)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """In place, so that a compiled step whose lr is a tensor does not recompile."""
    group = optimizer.param_groups[0]
    if isinstance(group["lr"], torch.Tensor):
        group["lr"].fill_(lr)
    else:
        group["lr"] = lr


def make_update(policy, actor, actor_ema, qf, qf_target, log_lam, q_optimizer, actor_optimizer, lam_optimizer,
                sched: Schedule, args: Args):  # fmt: skip
    """Algorithm 1 lines 6-13 as two functions. update(batch, lambda, u), for update number u = 0, 1, ...: the critic
    step (lines 6-7); at every policy_frequency-th u the RSSM policy step and the EMA policy (lines 9-12); at every
    target_network_frequency-th u the target critics. As in the authors' code (algorithm/sdac.py:99-216), both losses
    are taken at the parameters from before this update: the critic target's a' comes from the policy before its
    step, and the RSSM weights from the critics before theirs. It returns its statistics as tensors (no host sync, so
    the whole step can run on the GPU); under --compile its losses (forward and backward) and optimiser steps are
    compiled, each without graph breaks. update_lambda() is line 13."""
    act_dim, target_entropy = actor.act_dim, -args.target_entropy_scale * actor.act_dim

    def critic_loss(data: Batch, lam: torch.Tensor):
        # soft policy evaluation: a' by reverse diffusion as when acting, target from the target critics
        with torch.no_grad():
            next_a = policy(actor, qf, data.next_obs, args.exploration_noise * lam)
            next_q = min_q(qf_target, data.next_obs, next_a)
            if args.entropy_in_target:
                next_q = next_q + lam * exploration_entropy(lam, act_dim, args.exploration_noise)
            next_q_value = args.reward_scale * data.rewards + (1 - data.terminations) * args.gamma * next_q
        qf_a_values = qf(data.obs, data.actions)  # [2, B]: Q1 and Q2
        assert qf_a_values.shape == (2, *next_q_value.shape) and next_q_value.dim() == 1
        qf_losses = ((qf_a_values - next_q_value) ** 2).mean(1)
        return qf_losses.sum(), dict(qf1_values=qf_a_values[0].detach().mean(), qf2_values=qf_a_values[1].detach().mean(),
                                     qf1_loss=qf_losses[0].detach(), qf2_loss=qf_losses[1].detach(),
                                     qf_loss=qf_losses.detach().mean(), target_q=next_q.mean())  # fmt: skip

    def actor_loss(data: Batch, lam: torch.Tensor):
        # soft policy improvement: a_t from the noised current policy, then the RSSM loss (eqs. 16-17)
        a0 = policy(actor, qf, data.obs, args.exploration_noise * lam)
        t_idx = torch.randint(0, sched.betas.shape[0], (a0.shape[0],), device=a0.device)
        abar = sched.abar[t_idx][:, None]
        a_t = abar.sqrt() * a0 + (1 - abar).sqrt() * torch.randn_like(a0)
        q_fn = lambda s, a: min_q(qf, s, a.clamp(-1, 1))  # noqa: E731
        # weights softmax(q_weight_scale * Q / lambda): the authors' "* 5. / jnp.exp(log_alpha)" (algorithm/sdac.py:156)
        loss, w, q_rev = rssm_loss(actor, data.obs, a_t, t_idx, sched, q_fn, lam / args.q_weight_scale,
                                   args.num_reverse_samples, args.weight_normalization)  # fmt: skip
        # rssm_weight_std is the authors' update/q_weights_std (algorithm/sdac.py:237): jnp.std of all B*K weights (ddof 0)
        return loss, dict(actor_loss=loss.detach(), rssm_ess=effective_sample_size(w),
                          rssm_weight_std=w.std(correction=0), rssm_q_mean=q_rev.mean(), rssm_q_std=q_rev.std())

    q_step, actor_step = q_optimizer.step, actor_optimizer.step
    if args.compile or args.cudagraphs:
        mode = "reduce-overhead" if args.cudagraphs else None
        critic_loss, actor_loss = torch.compile(critic_loss, mode=mode), torch.compile(actor_loss, mode=mode)
        q_step, actor_step = torch.compile(q_step, mode=mode), torch.compile(actor_step, mode=mode)

    def update(data: Batch, lam: torch.Tensor, u: int) -> dict[str, torch.Tensor]:
        if args.cudagraphs:  # a new step: outputs of the last replay may be overwritten (we clone them below)
            torch.compiler.cudagraph_mark_step_begin()
        update_policy = u % args.policy_frequency == 0
        if update_policy and args.anneal_lr:  # the policy lr is counted in policy updates
            set_lr(actor_optimizer, policy_lr_at(u // args.policy_frequency, args.policy_lr, args.policy_lr_end,
                                                 args.policy_lr_decay_begin, args.policy_lr_decay_steps))  # fmt: skip
        loss, stats = critic_loss(data, lam)
        q_optimizer.zero_grad()
        loss.backward()
        if update_policy:  # its loss sees the critics before their step
            loss, actor_stats = actor_loss(data, lam)
            actor_optimizer.zero_grad()
            loss.backward()
            stats = {**stats, **actor_stats}
        q_step()
        if update_policy:
            actor_step()
            soft_update(actor_ema, actor, args.tau)
        if u % args.target_network_frequency == 0:
            soft_update(qf_target, qf, args.tau)
        return {k: v.clone() for k, v in stats.items()} if args.cudagraphs else stats

    def update_lambda() -> None:
        # entropy: Adam on log lambda towards the target entropy of the exploration noise (authors' code); linear: the
        # paper's lambda <- lambda - lambda_lr (lambda - lambda_target); fixed: nothing
        if args.lambda_tuning == "entropy":
            entropy = exploration_entropy(log_lam.exp(), act_dim, args.exploration_noise)
            lam_loss = log_lam * (entropy - target_entropy).detach()
            lam_optimizer.zero_grad()
            lam_loss.backward()
            lam_optimizer.step()
        elif args.lambda_tuning == "linear":
            with torch.no_grad():
                lam = log_lam.exp()
                log_lam.copy_((lam - args.lambda_lr * (lam - args.lambda_target)).clamp(min=1e-6).log())

    return update, update_lambda


def saved_policy(saved: dict, args: Args, obs_dim: int, act_dim: int, scale, device) -> Callable:
    """--eval-only: the noise-free policy of a saved run, obs -> action: the policy it acted with (EMA or online),
    best of N ranked by its critics."""
    actor, qf = NoiseNetwork(obs_dim, act_dim).to(device), TwinQNetwork(obs_dim, act_dim).to(device)
    actor.load_state_dict(saved["actor_ema"] if args.ema else saved["actor"])
    qf.load_state_dict(saved["qf"])
    policy = make_policy(make_schedule(args.beta_schedule, args.diffusion_steps, args.linear_beta_scale, device), args)
    return lambda obs: policy(actor, qf, obs, 0.0)


# =====================================================================================================================
# Training loop (Algorithm 1)


def train(args: Args, stop: Sequence[str] = ()) -> dict:
    """One run. `stop` turns non-empty when the run should stop early (stop_on_signals fills it): the iteration in
    progress finishes, a checkpoint is written, and the run returns with the command that resumes it."""
    scale, bias, ckpt = check_run(args)  # bad input fails here, before anything is written
    run_name = ckpt["run_name"] if ckpt else f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"

    # seeding
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    # float32 matmuls in TF32 on Ampere and later GPUs, or in full precision: set for the process in one API (the
    # legacy allow_tf32 flags mixed with torch >= 2.9's fp32_precision make torch's own precision reads raise)
    torch.set_float32_matmul_precision("high" if args.tf32 else "highest")

    # env setup
    envs = make_vector_env(args.env_id, args.num_envs)
    eval_envs = make_vector_env(args.env_id, args.eval_episodes, render_first=args.capture_video)
    obs_dim, act_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]

    # line 1: the noise network eps_theta and its EMA copy, the twin critics and their targets, lambda
    actor = NoiseNetwork(obs_dim, act_dim).to(device)
    actor_ema = NoiseNetwork(obs_dim, act_dim).to(device)
    qf = TwinQNetwork(obs_dim, act_dim).to(device)
    qf_target = TwinQNetwork(obs_dim, act_dim).to(device)
    actor_ema.load_state_dict(actor.state_dict())
    qf_target.load_state_dict(qf.state_dict())
    log_lam = torch.tensor(math.log(args.lambda_init), device=device, requires_grad=True)
    q_optimizer = make_optimizer(qf.parameters(), args.q_lr, args, device)
    actor_optimizer = make_optimizer(actor.parameters(), args.policy_lr, args, device)
    lam_optimizer = torch.optim.Adam([log_lam], lr=args.lambda_lr)
    sched = make_schedule(args.beta_schedule, args.diffusion_steps, args.linear_beta_scale, device)
    policy = make_policy(sched, args)
    update, update_lambda = make_update(policy, actor, actor_ema, qf, qf_target, log_lam, q_optimizer, actor_optimizer,
                                        lam_optimizer, sched, args)  # fmt: skip
    if args.compile or args.cudagraphs:  # for acting and evaluation (the updates compile their own, above)
        policy = compile_policy(policy, args)
    acting_actor = actor_ema if args.ema else actor  # the authors act and evaluate with the EMA policy
    rb = ReplayBuffer(args.buffer_size, obs_dim, act_dim, device)

    # what a checkpoint holds, by name (save_checkpoint and restore_checkpoint both read this one mapping)
    state = dict(actor=actor, actor_ema=actor_ema, qf=qf, qf_target=qf_target, log_lam=log_lam, q_optimizer=q_optimizer,
                 actor_optimizer=actor_optimizer, lam_optimizer=lam_optimizer, buffer=rb)  # fmt: skip
    global_step, iteration, num_updates, eval_history = restore_checkpoint(ckpt, state, args) if ckpt else (0, 0, 0, [])
    headline = f"SDAC on {args.env_id}: N={args.num_candidates}, K={args.num_reverse_samples}, T={args.diffusion_steps}"
    log = RunLog(args, run_name, global_step, ckpt is not None, headline, device)
    num_iterations = math.ceil(args.total_timesteps / args.num_envs)
    finite = FiniteCheck(device, args.resume, global_step)
    metrics: dict[str, torch.Tensor] = {}

    # start the game
    obs, _ = envs.reset(seed=args.seed + global_step)
    if ckpt:  # the envs as they were at the checkpoint: the run goes on as if never stopped
        obs = restore_env_state(envs, ckpt.get("envs"), obs)
    for iteration in range(iteration + 1, num_iterations + 1):
        global_step += args.num_envs
        lam = log_lam.detach().exp()

        # lines 3-4: act (uniform random during warm-up, then best of N with exploration noise), step, store
        if global_step <= args.learning_starts:
            actions = np.random.uniform(-1, 1, (args.num_envs, act_dim)).astype(np.float32)
        else:
            obs_t = torch.as_tensor(obs, dtype=torch.float32, device=device)
            actions = policy(acting_actor, qf, obs_t, args.exploration_noise * lam).cpu().numpy()
            if not np.isfinite(actions).all():  # on the host already: no read of the device's flag
                finite.fail(f"action at global step {global_step}: the networks diverged")
        next_obs, rewards, terminations, truncations, infos = envs.step(actions * scale + bias)
        log.episodes(infos, global_step)
        # the true final observation as s'; done = terminated (bootstrap through truncation)
        rb.add(obs, actions, rewards, final_observations(next_obs, infos), terminations)
        obs = next_obs

        # lines 5-13 (a run resumed without its buffer first refills learning_starts transitions, acting with the policy)
        if global_step > args.learning_starts and rb.size >= min(args.learning_starts, args.buffer_size):
            log.progress.training_iteration(iteration, time.time())
            for _ in range(args.gradient_steps):
                # u counts updates from 0: the policy, the targets and lambda step at u = 0 and at every multiple of
                # their interval, as in the authors' code (algorithm/sdac.py:185-216)
                u, num_updates = num_updates, num_updates + 1
                stats = update(rb.sample(args.batch_size), lam, u)
                finite.watch(stats)
                metrics.update(stats)
                if u % args.lambda_update_interval == 0:
                    update_lambda()
            if crossed(global_step, args.log_interval, args.num_envs):
                finite.check_losses(global_step)
                log.scalars("losses", {**metrics, "lambda": log_lam.detach().exp()}, global_step)
                log.scalars("charts", {"policy_lr": actor_optimizer.param_groups[0]["lr"]}, global_step)

        if crossed(global_step, args.log_interval, args.num_envs):
            log.interval(global_step)

        if crossed(global_step, args.eval_interval, args.num_envs) or iteration == num_iterations:
            finite.check(f"loss before evaluation at global step {global_step}")
            with log.progress.paused():
                frames = [] if args.capture_video else None
                returns, lengths = evaluate(lambda o: policy(acting_actor, qf, o, 0.0), eval_envs, scale, bias, device,
                                            seed=args.seed + 100_000 + global_step, frames=frames)  # fmt: skip
                eval_history.append((global_step, float(returns.mean()), float(returns.std())))
                log.evaluation(global_step, returns, lengths, frames, eval_envs.metadata["render_fps"])

        if crossed(global_step, args.checkpoint_interval, args.num_envs) or stop:
            finite.check(f"loss before the checkpoint at global step {global_step}")
            counters = dict(global_step=global_step, iteration=iteration, num_updates=num_updates,
                            eval_history=eval_history, envs=env_state(envs, obs))  # fmt: skip
            finite.last_checkpoint = save_checkpoint(f"{log.run_dir}/checkpoint.pt", args, run_name, state, counters)
        if stop and iteration < num_iterations:  # (stopped in its last iteration, the run is complete)
            print(f"stopped by {stop[0]} at global step {global_step}; checkpoint written. To continue:\n"
                  f"  python {__file__} --resume {finite.last_checkpoint}", flush=True)
            break

    finite.check_losses(global_step)
    if args.save_model and iteration == num_iterations:
        save_model(f"{log.run_dir}/{args.exp_name}.sdac_model", args, state)
    envs.close()
    eval_envs.close()
    seconds_per_iteration = log.close()
    # "stopped": by a signal before the end, with a checkpoint to continue from (the exit status EXIT_STOPPED)
    return {"run_dir": log.run_dir, "global_step": global_step, "stopped": bool(stop) and iteration < num_iterations,
            "eval_history": eval_history, "checkpoint": finite.last_checkpoint, "lambda": log_lam.exp().item(),
            "seconds_per_iteration": seconds_per_iteration}  # fmt: skip


# =====================================================================================================================
# Plumbing: environments, input checks, the replay buffer, checkpoints, evaluation, logging and the command line.
# The same, line for line, in sdac_, sac_ and dpmd_continuous_action.py (tests/test_plumbing.py keeps it so); what
# differs between them is above this line.


class RunError(Exception):
    """An error that ends the run with one line and no traceback: bad input, an unusable checkpoint, a diverged run."""


def make_vector_env(env_id: str, num_envs: int, render_first: bool = False) -> gym.vector.VectorEnv:
    """num_envs copies of the env, stepped together (env 0 renders frames if render_first). SAME_STEP autoreset: when
    an episode ends, `next_obs` is already the reset observation and the true final observation is in
    infos["final_obs"]; every vector step then yields num_envs real transitions."""
    env_fns = [partial(gym.make, env_id, **({"render_mode": "rgb_array"} if render_first and i == 0 else {}))
               for i in range(num_envs)]  # fmt: skip
    envs = gym.vector.SyncVectorEnv(env_fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


def final_observations(next_obs: np.ndarray, infos: dict) -> np.ndarray:
    """The true s' of each sub-env: the final observation where an episode just ended (SAME_STEP mode)."""
    real_next_obs = next_obs.copy()
    if "_final_obs" in infos:
        for i in np.flatnonzero(infos["_final_obs"]):
            real_next_obs[i] = infos["final_obs"][i]
    return real_next_obs


def finished_episodes(infos: dict) -> list[tuple[float, int]]:
    """(return, length) of every episode that ended on this step, in any sub-env."""
    if "_episode" not in infos:
        return []
    ep = infos["episode"]
    return [(float(ep["r"][i]), int(ep["l"][i])) for i in np.flatnonzero(infos["_episode"])]


def check_env(env_id: str, render: bool = False, cuda: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Create the env once, before anything is written: (with render, for --capture-video) a missing off-screen
    renderer, an unknown id and unsuitable spaces fail here, in one line. Returns the action scale and bias: the
    policy acts in [-1, 1]^d and the env gets a * scale + bias, so only a bounded Box action space qualifies."""
    if render:  # MUJOCO_GL is read when MuJoCo is first imported: without a display, EGL on a run's GPU, else OSMesa
        if not os.environ.get("DISPLAY"):
            os.environ.setdefault("MUJOCO_GL", "egl" if cuda and torch.cuda.is_available() else "osmesa")
        try:
            env = gym.make(env_id, render_mode="rgb_array")
            env.reset(seed=0)
            env.render()
            env.close()
        except gym.error.Error:
            pass  # not a rendering problem: said below
        except Exception as e:  # noqa: BLE001 - whatever the GL library raises, the user needs the same advice
            raise RunError(f"--capture-video cannot render {env_id} off-screen (MUJOCO_GL={os.environ.get('MUJOCO_GL')}"
                           f", {type(e).__name__}): install OSMesa (Debian: libosmesa6) and set MUJOCO_GL=osmesa, or "
                           "EGL (libegl1) with MUJOCO_GL=egl") from None
    try:
        env = gym.make(env_id)
    except (gym.error.Error, ImportError, RuntimeError, AttributeError) as e:  # the last three: MuJoCo's import
        hint = " (Pusher-v4 needs mujoco < 3: use Pusher-v5)" if env_id == "Pusher-v4" else ""
        if not isinstance(e, gym.error.Error) and os.environ.get("MUJOCO_GL"):  # e.g. osmesa without its library
            gl = os.environ["MUJOCO_GL"]
            hint = f" (MuJoCo could not load the GL library MUJOCO_GL={gl} names: unset it or install it)"
        raise RunError(f"cannot create env {env_id!r}: {e}{hint}") from None
    env.close()
    space, obs_space = env.action_space, env.observation_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise RunError(f"{ALGORITHM} needs a flat Box observation space, got {obs_space}")
    if not isinstance(space, gym.spaces.Box):
        raise RunError(f"{ALGORITHM} needs a continuous (Box) action space, got {space}")
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(high > low)):
        raise RunError(f"{ALGORITHM} needs a bounded Box action space with finite low < high, got {space}")
    return ((high - low) / 2).astype(np.float32), ((high + low) / 2).astype(np.float32)


def write_video(path: str, frames: list, fps: float) -> None:
    from moviepy import ImageSequenceClip  # imported only when videos are asked for

    os.makedirs(os.path.dirname(path), exist_ok=True)
    ImageSequenceClip(frames, fps=fps).write_videofile(path, codec="libx264", audio=False, logger=None)


def validate_args(args: Args) -> None:
    """Each option against its bound (the lists below Args) and the combinations that cannot work, one line each."""
    for name, bound, ok in ([(n, ">= 1", getattr(args, n) >= 1) for n in AT_LEAST_ONE]
                            + [(n, ">= 0", getattr(args, n) >= 0) for n in NON_NEGATIVE]
                            + [(n, "> 0", getattr(args, n) > 0) for n in POSITIVE]
                            + [(n, f"< {limit}", getattr(args, n) < limit) for n, limit in BELOW.items()]):  # fmt: skip
        if not ok:  # (NaN fails every comparison)
            raise RunError(f"--{name.replace('_', '-')} must be {bound}, got {getattr(args, name)}")
    for f in fields(args):  # (an infinite learning rate would pass "> 0" and write inf weights)
        if isinstance(getattr(args, f.name), float) and not math.isfinite(getattr(args, f.name)):
            raise RunError(f"--{f.name.replace('_', '-')} must be finite, got {getattr(args, f.name)}")
    if not 0 <= args.seed < 2**32:
        raise RunError(f"--seed must be in [0, 2**32), got {args.seed}")
    if not args.exp_name or os.sep in args.exp_name or args.exp_name in (".", ".."):
        raise RunError(f"--exp-name must be a name, not a path (it names a folder in runs/), got {args.exp_name!r}")
    if args.learning_starts >= args.total_timesteps and not args.eval_only:
        raise RunError(f"--learning-starts ({args.learning_starts}) must be below --total-timesteps "
                       f"({args.total_timesteps}): the run would take random actions only and train nothing")
    if not 0 < args.gamma <= 1 or not 0 < args.tau <= 1:
        raise RunError(f"--gamma and --tau must be in (0, 1], got {args.gamma} and {args.tau}")
    if args.batch_size > args.buffer_size:
        raise RunError(f"--batch-size ({args.batch_size}) must not exceed --buffer-size ({args.buffer_size})")
    if args.load_model and not args.eval_only:
        raise RunError("--load-model is for --eval-only; to continue training, --resume a checkpoint")
    if args.resume is not None and not os.path.isfile(args.resume):
        raise RunError(f"checkpoint not found: {args.resume}")
    if args.cudagraphs and not (args.cuda and torch.cuda.is_available()):
        raise RunError("--cudagraphs needs a CUDA GPU (and --cuda); on CPU use --compile")


def check_run(args: Args) -> tuple[np.ndarray, np.ndarray, Optional[dict]]:
    """Everything that can be wrong with the input, checked before anything is written: the arguments, rendering,
    the env, and the checkpoint to resume. Returns the action scale and bias and the checkpoint (or None)."""
    validate_args(args)
    scale, bias = check_env(args.env_id, render=args.capture_video, cuda=args.cuda)
    return scale, bias, load_checkpoint(args.resume, args) if args.resume else None


def compile_policy(policy: Callable, args: Args) -> Callable:
    """--compile / --cudagraphs for acting and evaluation: static shapes, so the two batch sizes (num_envs,
    eval_episodes) get one graph each instead of a second, dynamic-shape one; under CUDA graphs each call is a new
    step (its output is read at once, before the next call records or replays)."""
    compiled = torch.compile(policy, mode="reduce-overhead" if args.cudagraphs else None, dynamic=False)
    if not args.cudagraphs:
        return compiled

    def step(*a, **k):
        torch.compiler.cudagraph_mark_step_begin()
        return compiled(*a, **k)

    return step


def make_optimizer(params, lr: float, args: Args, device: torch.device) -> torch.optim.Adam:
    """Adam. When compiled, its lr is a tensor (changing it does not recompile), capturable on CUDA (its step count
    stays on the GPU, as CUDA graphs need)."""
    if args.compile or args.cudagraphs:
        return torch.optim.Adam(params, lr=torch.tensor(lr, device=device), capturable=device.type == "cuda")
    return torch.optim.Adam(params, lr=lr)


# ---------------------------------------------------------------------------------------------------------------------
# Replay buffer on the training device (its minibatch, Batch, is defined with the algorithm)


class ReplayBuffer:
    """Transitions packed in one [capacity, 2 obs_dim + act_dim + 2] tensor (s, a, r, s', done), so that storing a
    vector step is one host-to-device copy and sampling one gather; `data` views its columns as a Batch."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: torch.device):
        self.capacity, self.device, self.ptr, self.size = capacity, device, 0, 0
        width = 2 * obs_dim + act_dim + 2
        try:
            self.storage = torch.zeros(capacity, width, device=device)
        except (RuntimeError, OverflowError):  # (torch's out-of-memory error is a RuntimeError)
            raise RunError(f"cannot hold a replay buffer of {capacity} transitions ({capacity * width * 4 / 2**30:.1f} "
                           f"GiB) on {device}: lower --buffer-size") from None
        self.widths = [obs_dim, act_dim, 1, obs_dim, 1]
        self.data = self.fields(self.storage)

    def fields(self, rows: torch.Tensor) -> Batch:
        obs, actions, rewards, next_obs, terminations = rows.split(self.widths, dim=1)
        return Batch(obs, actions, rewards.squeeze(1), next_obs, terminations.squeeze(1))

    def add(self, obs, actions, rewards, next_obs, terminations) -> None:
        """One vector step: done = terminated only, so truncated episodes bootstrap from the true s'."""
        n = len(obs)
        rows = np.concatenate([obs, actions, np.reshape(rewards, (n, 1)), next_obs, np.reshape(terminations, (n, 1))],
                              axis=1, dtype=np.float32)  # fmt: skip
        idx = (self.ptr + torch.arange(n, device=self.device)) % self.capacity
        self.storage[idx] = torch.from_numpy(rows).to(self.device)
        self.ptr, self.size = (self.ptr + n) % self.capacity, min(self.size + n, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        idx = torch.randint(0, self.size, (batch_size,), device=self.device)
        return self.fields(self.storage[idx])

    def state_dict(self) -> dict:
        # a copy of what it holds: a slice on the CPU would be a view, and torch.save writes a view's whole storage
        return {"ptr": self.ptr, "size": self.size, "data": [buf[: self.size].to("cpu", copy=True) for buf in self.data]}

    def load_state_dict(self, state: dict) -> None:
        self.ptr, self.size = state["ptr"], state["size"]
        for buf, x in zip(self.data, state["data"]):
            buf[: self.size] = x.to(self.device)


# ---------------------------------------------------------------------------------------------------------------------
# The training envs' state, saved with a checkpoint so that a resumed run steps them on as the uninterrupted run would


def simulator_arrays(data) -> dict:
    """Every array of a MuJoCo MjData by name: the state (qpos, qvel, act, warm start, ...) and what the last step
    derived from it (body positions, which the next step's reward reads: Ant's and Humanoid's x velocity)."""
    names = [k for k in dir(data) if not k.startswith("_")]
    return {k: getattr(data, k) for k in names if isinstance(getattr(data, k), np.ndarray)}


def time_limit(env: gym.Env) -> Optional[gym.wrappers.TimeLimit]:
    while isinstance(env, gym.Wrapper) and not isinstance(env, gym.wrappers.TimeLimit):
        env = env.env
    return env if isinstance(env, gym.wrappers.TimeLimit) else None


def env_state(envs, obs: np.ndarray) -> dict:
    """The observations acted on next, and per sub-env its simulator (a MuJoCo env's arrays, a classic-control env's
    `state`), its step in the episode and its random generator (which draws the next episode's start), and the
    running episode returns and lengths. Empty for an env of another kind: a resumed run restarts its episodes."""
    subs = []
    for env in envs.unwrapped.envs:
        base = env.unwrapped
        if hasattr(base, "data") and hasattr(base, "model"):  # MuJoCo
            sim = {k: torch.from_numpy(v.copy()) for k, v in simulator_arrays(base.data).items()}
            sim["time"] = float(base.data.time)
        elif isinstance(getattr(base, "state", None), np.ndarray):
            sim = {"state": torch.from_numpy(base.state.copy())}
        else:
            return {}
        steps = limit._elapsed_steps if (limit := time_limit(env)) else None
        subs.append({"sim": sim, "steps": steps, "rng": base.np_random.bit_generator.state})
    return {"subs": subs, "obs": torch.from_numpy(obs.copy()), "returns": torch.from_numpy(envs.episode_returns.copy()),
            "lengths": torch.from_numpy(envs.episode_lengths.copy())}


def restore_env_state(envs, saved: Optional[dict], obs: np.ndarray) -> np.ndarray:
    """Puts the envs back as env_state found them and returns the observations to act on; without a saved state
    (an env of another kind), the fresh episodes' observations `obs`."""
    if not saved or len(saved["subs"]) != envs.num_envs:
        return obs
    for env, sub in zip(envs.unwrapped.envs, saved["subs"]):
        base = env.unwrapped
        if "state" in sub["sim"]:
            base.state = sub["sim"]["state"].numpy().copy()
        else:
            arrays = simulator_arrays(base.data)
            for k, v in sub["sim"].items():  # (arrays sized by this step's contacts are rebuilt by the next step)
                if k in arrays and arrays[k].shape == tuple(v.shape) and arrays[k].flags.writeable:
                    arrays[k][...] = v.numpy()
            base.data.time = sub["sim"]["time"]
        if limit := time_limit(env):
            limit._elapsed_steps = sub["steps"]
        base.np_random.bit_generator.state = sub["rng"]
    envs.episode_returns[:] = saved["returns"].numpy()
    envs.episode_lengths[:] = saved["lengths"].numpy()
    return saved["obs"].numpy().copy()


# ---------------------------------------------------------------------------------------------------------------------
# Checkpoints: the training state by name (train's `state`), written atomically (temp file, then rename), holding
# tensors and plain types only, and read back as data only (torch.load with weights_only=True): loading a file never
# runs code from it

CHECKPOINT_FORMAT = f"{ALGORITHM.lower()}-checkpoint-v4"  # v4: the numpy RNG state as a tensor (v3 files are refused)
MODEL_FORMAT = f"{ALGORITHM.lower()}-model-v1"  # --save-model files (untagged before 2026-12-04)
# hyperparameters that may change between a checkpoint and the run that resumes it
RESUMABLE_CHANGES = {"resume", "total_timesteps", "cuda", "save_model", "checkpoint_interval",
                     "checkpoint_buffer", "log_interval", "eval_interval", "eval_episodes", "torch_deterministic",
                     "compile", "cudagraphs", "tf32", "progress_seconds", "print_episodes", "capture_video",
                     "track", "wandb_project_name", "wandb_entity"}  # fmt: skip


def state_dicts(state: dict, args: Args, model_only: bool = False) -> dict:
    """Each object's state: networks and optimisers by their state_dict, tensors as a CPU copy, the replay buffer
    only with --checkpoint-buffer. A saved model (model_only) keeps the networks and tensors."""
    out = {}
    for name, obj in state.items():
        if isinstance(obj, torch.Tensor):
            out[name] = obj.detach().cpu()
        elif isinstance(obj, nn.Module) or not model_only:
            out[name] = None if isinstance(obj, ReplayBuffer) and not args.checkpoint_buffer else obj.state_dict()
    return out


def non_finite(saved: dict) -> list[str]:
    """The networks and tensors among `saved` (a checkpoint's or a saved model's entries) holding a NaN or inf."""
    return [name for name, v in saved.items()
            if (isinstance(v, torch.Tensor) and not torch.isfinite(v).all())
            or (isinstance(v, dict) and any(isinstance(x, torch.Tensor) and x.is_floating_point()
                                            and not torch.isfinite(x).all() for x in v.values()))]  # fmt: skip


def write(obj: dict, path: str, what: str) -> None:
    """torch.save to a temp file, then a rename: the file at path is the old one or the new one, never a part; a
    failure (a full disk, a deleted folder) is one line, and the temp file is removed. Non-finite weights are never
    written."""
    if bad := non_finite({k: v for k, v in obj.items() if k != "buffer"}):
        raise RunError(f"non-finite values in {', '.join(bad)}: {what} not written to {path}"
                       + (" (the one there is from before)" if os.path.exists(path) else ""))
    try:
        torch.save(obj, f"{path}.tmp")
        os.replace(f"{path}.tmp", path)
    except (OSError, RuntimeError) as e:  # (torch's zip writer raises RuntimeError on a full disk)
        with suppress(OSError):
            os.remove(f"{path}.tmp")
        kept = "the one there is from before" if os.path.exists(path) else "none was written before"
        raise RunError(f"cannot write {what} {path} ({str(e).splitlines()[0][:200]}); {kept}") from None


def rng_state() -> dict:
    """The random generators' states, in tensors and plain types (numpy's key array as a tensor)."""
    _, key, pos, has_gauss, cached_gaussian = np.random.get_state()
    numpy_state = (torch.from_numpy(key.astype(np.int64)), pos, has_gauss, cached_gaussian)
    cuda = torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None
    return {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state(), "cuda": cuda}


def save_checkpoint(path: str, args: Args, run_name: str, state: dict, counters: dict) -> str:
    ckpt = {"format": CHECKPOINT_FORMAT, "args": asdict(args), "run_name": run_name, **counters,
            **state_dicts(state, args), "rng": rng_state()}  # fmt: skip
    write(ckpt, path, "checkpoint")
    return path


def save_model(path: str, args: Args, state: dict) -> None:
    write({"format": MODEL_FORMAT, "args": asdict(args), **state_dicts(state, args, model_only=True)}, path, "model")
    print(f"model saved to {path}")


def read_checkpoint(path: str, mmap: bool = False, saved_model_ok: bool = False) -> dict:
    """The checkpoint at path (or, with saved_model_ok, a --save-model file), read as data only, else a one-line
    error that says what the file is instead."""
    kind = "a saved model or a checkpoint" if saved_model_ok else "a checkpoint"
    unreadable = f"{path} is not {kind} of {ALGORITHM}: not a file torch.save wrote, or a truncated one"
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except OSError as e:
        raise RunError(f"cannot read {path}: {e.strerror or e}") from None
    except pickle.UnpicklingError as e:
        if "GLOBAL" in str(e):  # a reference to a class or function: weights_only refuses it
            raise RunError(f"{path} holds objects other than tensors and plain data, which are not loaded (unpickling "
                           f"them could run code): it is not {kind} written by this version of "
                           f"{os.path.basename(__file__)} (checkpoints before {CHECKPOINT_FORMAT} held numpy's RNG "
                           "state as an object)") from None
        raise RunError(unreadable) from None
    except Exception:  # noqa: BLE001 - whatever torch.load raises on a file it did not write
        raise RunError(unreadable) from None
    fmt = ckpt.get("format") if isinstance(ckpt, dict) else None
    untagged_model = fmt is None and isinstance(ckpt, dict) and {"args", "actor", "qf"} <= ckpt.keys()
    if untagged_model and not set(ckpt["args"]) <= {f.name for f in fields(Args)}:  # an older saved model's options
        raise RunError(f"{path} is a saved model of another algorithm than {ALGORITHM} (options {ALGORITHM} lacks: "
                       f"{', '.join(sorted(set(ckpt['args']) - {f.name for f in fields(Args)})[:5])})")
    if fmt == MODEL_FORMAT or untagged_model:
        if saved_model_ok:
            return ckpt
        raise RunError(f"{path} is a saved model (--save-model): the final weights only, which cannot continue "
                       "a run; checkpoints are the runs/{run_name}/checkpoint.pt that --checkpoint-interval writes")
    owner, _, what = fmt.partition("-") if isinstance(fmt, str) else ("", "", "")
    if owner != ALGORITHM.lower() and what.startswith(("checkpoint-", "model-")):
        raise RunError(f"{path} is a {what.split('-')[0]} of {owner.upper()}, not of {ALGORITHM}: use "
                       f"{owner}_continuous_action.py")
    if fmt != CHECKPOINT_FORMAT:
        raise RunError(f"{path} is not {kind} of {ALGORITHM} (written by {os.path.basename(__file__)})")
    return ckpt


def load_checkpoint(path: str, args: Args) -> dict:
    ckpt = read_checkpoint(path)
    diff = [f"--{k.replace('_', '-')} {ckpt['args'].get(k)!r} (checkpoint) vs {v!r} (now)"
            for k, v in asdict(args).items() if k not in RESUMABLE_CHANGES and ckpt["args"].get(k) != v]  # fmt: skip
    if diff:
        raise RunError(f"checkpoint {path} is incompatible with these arguments: " + "; ".join(diff))
    if ckpt["global_step"] >= args.total_timesteps:
        raise RunError(f"checkpoint {path} is at step {ckpt['global_step']}, not before --total-timesteps {args.total_timesteps}")
    return ckpt


def restore_checkpoint(ckpt: dict, state: dict, args: Args) -> tuple[int, int, int, list]:
    """Loads every object of `state` from the checkpoint, and the random number generators. Returns global_step,
    iteration, num_updates and eval_history."""
    for name, obj in state.items():
        if isinstance(obj, torch.Tensor):
            with torch.no_grad():
                obj.copy_(ckpt[name])
        elif isinstance(obj, torch.optim.Optimizer):
            # the saved moments and lr, with this run's settings: a compiled run's lr is a tensor, and a run on
            # another device needs its own `capturable` (make_optimizer), or Adam's first step fails
            mine = [{k: v for k, v in g.items() if k not in ("params", "lr")} for g in obj.param_groups]
            lrs = [g["lr"] for g in obj.param_groups]
            obj.load_state_dict({**ckpt[name], "param_groups": [{**saved, **m, "lr": float(saved["lr"])}
                                                                 for saved, m in zip(ckpt[name]["param_groups"], mine)]})
            for g, lr in zip(obj.param_groups, lrs):
                g["lr"] = lr.fill_(g["lr"]) if isinstance(lr, torch.Tensor) else g["lr"]
        elif ckpt[name] is not None:
            obj.load_state_dict(ckpt[name])
        elif isinstance(obj, ReplayBuffer):
            print(f"resumed without a replay buffer: updates wait until it holds {args.learning_starts} new transitions")
    random.setstate(ckpt["rng"]["python"])
    key, pos, has_gauss, cached_gaussian = ckpt["rng"]["numpy"]
    np.random.set_state(("MT19937", key.numpy().astype(np.uint32), pos, has_gauss, cached_gaussian))
    torch.set_rng_state(ckpt["rng"]["torch"])
    if torch.cuda.is_initialized() and ckpt["rng"]["cuda"] is not None:
        torch.cuda.set_rng_state(ckpt["rng"]["cuda"])
    print(f"resumed {ckpt['run_name']} from {args.resume} at global step {ckpt['global_step']}")
    return ckpt["global_step"], ckpt["iteration"], ckpt["num_updates"], ckpt["eval_history"]


# ---------------------------------------------------------------------------------------------------------------------
# Evaluation: the policy without exploration noise, one episode per env, all envs at once


@torch.no_grad()
def evaluate(policy: Callable, eval_envs, scale, bias, device, seed: int, frames: Optional[list] = None):
    """Returns and lengths of one episode per env under policy(obs) -> action in [-1, 1]^d; with `frames`, env 0's
    episode is rendered into it."""
    obs, _ = eval_envs.reset(seed=seed)
    n = eval_envs.num_envs
    returns, lengths, done = np.zeros(n), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    render = eval_envs.unwrapped.envs[0].render
    if frames is not None:
        frames.append(render())
    while not done.all():
        a = policy(torch.as_tensor(obs, dtype=torch.float32, device=device))
        obs, r, term, trunc, _ = eval_envs.step(a.cpu().numpy() * scale + bias)
        returns += r * ~done
        lengths += ~done
        if frames is not None and not (done[0] or term[0] or trunc[0]):  # (once done, env 0 shows its next episode)
            frames.append(render())
        done |= term | trunc
    return returns, lengths


def evaluate_saved(args: Args) -> np.ndarray:
    """--eval-only: the policy in a saved model or a checkpoint, with the hyperparameters it was trained with, for
    --eval-episodes episodes (seed --seed); no training, nothing written. Returns the episode returns."""
    if not args.load_model:
        raise RunError("--eval-only needs --load-model PATH (a saved model or a checkpoint)")
    if not os.path.exists(args.load_model):
        raise RunError(f"model not found: {args.load_model}")
    saved = read_checkpoint(args.load_model, saved_model_ok=True)
    if bad := non_finite(saved):
        raise RunError(f"{args.load_model} holds non-finite values in {', '.join(bad)}: no policy to evaluate")
    # the run's own hyperparameters; from this command only the episodes, the device and the video (not what it resumed)
    now = {"eval_episodes": args.eval_episodes, "cuda": args.cuda, "capture_video": args.capture_video, "resume": None}
    run = Args(**{**{k: v for k, v in saved["args"].items() if k in {f.name for f in fields(Args)}}, **now})
    scale, bias, _ = check_run(run)
    torch.manual_seed(args.seed)  # the policy's draws: the same file and seed give the same returns
    device = torch.device("cuda" if torch.cuda.is_available() and run.cuda else "cpu")
    eval_envs = make_vector_env(run.env_id, run.eval_episodes, render_first=run.capture_video)
    frames = [] if run.capture_video else None
    obs_dim, act_dim = eval_envs.single_observation_space.shape[0], eval_envs.single_action_space.shape[0]
    policy = saved_policy(saved, run, obs_dim, act_dim, scale, device)
    returns, lengths = evaluate(policy, eval_envs, scale, bias, device, seed=args.seed, frames=frames)
    if frames:
        video = f"videos/eval_only/{os.path.basename(args.load_model)}_seed{args.seed}.mp4"
        write_video(video, frames, eval_envs.metadata["render_fps"])
        print(f"video: {video}")
    eval_envs.close()
    print(f"{args.load_model}: {run.env_id}, {len(returns)} episodes: return {returns.mean():.1f} +- {returns.std():.1f} "
          f"(min {returns.min():.1f}, max {returns.max():.1f}), length {lengths.mean():.1f}")  # fmt: skip
    return returns


# ---------------------------------------------------------------------------------------------------------------------
# Logging, progress and the non-finite check


def crossed(step: int, interval: int, num_envs: int) -> bool:
    """Did global step `step` just pass a multiple of `interval` (0: never)?"""
    return interval > 0 and step // interval > (step - num_envs) // interval


def duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Progress:
    """The time per training iteration (act, env step, updates; evaluations excluded), timed from the 10th training
    iteration on (the first ones absorb compilation) where the run allows, and the one estimate made from it: the
    time left, rate x iterations left. It feeds a status line every progress_seconds (env steps, the SPS since the
    last line, the last evaluation, the ETA) and, after 10 timed iterations, a warning when the rest of a CPU run
    needs more than an hour. The random warm-up, thousands of steps per second, counts in no estimate."""

    def __init__(self, args: Args, step: int, device: torch.device, now: float):
        self.args, self.device, self.last = args, device, (now, step)  # last: (time, step) of the last status line
        self.num_iterations = math.ceil(args.total_timesteps / args.num_envs)
        self.first = self.start = self.iteration = None  # the first timed iteration, when it began, the last begun
        self.excluded, self.eval = 0.0, None  # seconds paused; (step, mean return) of the last evaluation

    def training_iteration(self, iteration: int, now: float) -> None:
        if self.first is None:
            self.first = iteration + (10 if self.num_iterations - iteration >= 20 else 0)
        if iteration == self.first:
            self.start, self.excluded = now, 0.0
        self.iteration = iteration
        if iteration == self.first + 10 and self.device.type == "cpu":  # 10 iterations timed: the cost is known
            if (left := (now - self.start - self.excluded) / 10 * (self.num_iterations - iteration + 1)) > 3600:
                print(f"warning: on this CPU the training needs about {duration(left)} more; the official settings are "
                      "a GPU job (README: CPU quick start)", flush=True)  # fmt: skip

    def seconds_per_iteration(self, now: float) -> Optional[float]:
        """Over the timed iterations so far (the last one counted whole), None before the first."""
        if self.start is None or self.iteration < self.first:
            return None
        return (now - self.start - self.excluded) / (self.iteration - self.first + 1)

    @contextmanager
    def paused(self):
        start = time.time()
        yield
        self.excluded += time.time() - start

    def line(self, step: int, now: float) -> Optional[str]:
        """The status line if progress_seconds have passed since the last one, else None."""
        dt = now - self.last[0]
        if dt < self.args.progress_seconds or dt <= 0:
            return None
        self.last, sps = (now, step), (step - self.last[1]) / dt
        last_eval = f"eval {self.eval[1]:.1f} at step {self.eval[0]}" if self.eval else "no evaluation yet"
        rate = self.seconds_per_iteration(now)
        left = math.ceil((self.args.total_timesteps - step) / self.args.num_envs)
        eta = duration(rate * left) if rate is not None else "once training is timed"
        return (f"step {step}/{self.args.total_timesteps} ({100 * step / self.args.total_timesteps:.1f}%) | "
                f"{sps:.1f} SPS over {dt:.1f} s | {last_eval} | ETA {eta}")


class RunLog:
    """What a run reports: TensorBoard scalars in runs/{run_name} (synced to Weights & Biases with --track, as CleanRL
    does), training episodes, evaluations (and their videos), the SPS over each log interval and the status line."""

    def __init__(self, args: Args, run_name: str, global_step: int, resumed: bool, headline: str, device):
        # a resumed run continues in its checkpoint's folder, whatever the working folder
        self.run_dir = (os.path.dirname(args.resume) or ".") if resumed else f"runs/{run_name}"
        self.args, self.run_name, self.tracker = args, run_name, None
        if args.track:  # before the writer, whose logs it syncs; a resumed run continues its wandb run
            try:
                import wandb  # imported only when asked for
            except ImportError:
                raise RunError("--track needs wandb: pip install wandb") from None
            try:
                self.tracker = wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, name=run_name,
                                          id=run_name, resume="allow", config=asdict(args), sync_tensorboard=True,
                                          save_code=True)  # fmt: skip
            except Exception as e:  # noqa: BLE001 - wandb's errors (no API key, no network) have no common class
                reason = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
                raise RunError(f"--track could not start Weights & Biases ({reason}): run `wandb login`, or set "
                               "WANDB_MODE=offline") from None
        try:  # (a run folder that cannot be made or written: a file in its way, no permission, a full disk)
            os.makedirs(self.run_dir, exist_ok=True)
            self.writer = SummaryWriter(self.run_dir, purge_step=global_step + 1 if resumed else None)
        except OSError as e:
            raise RunError(f"cannot write to the run folder {self.run_dir}: {e.strerror or e}") from None
        if not resumed:
            table = "\n".join([f"|{key}|{value}|" for key, value in vars(args).items()])
            self.writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{table}")
        self.progress = Progress(args, global_step, device, time.time())
        self.sps_mark = (time.time(), global_step)
        print(f"{headline} | {args.num_envs} envs, {args.gradient_steps} update(s) per vector step | "
              f"{args.total_timesteps} env steps, the first {args.learning_starts} random | {device} | {self.run_dir}",
              flush=True)  # fmt: skip

    def scalars(self, prefix: str, values: dict, step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(f"{prefix}/{key}", float(value), step)

    def episodes(self, infos: dict, step: int) -> None:
        for ep_return, ep_length in finished_episodes(infos):
            if self.args.print_episodes:
                print(f"global_step={step}, episodic_return={ep_return:.1f}")
            self.scalars("charts", {"episodic_return": ep_return, "episodic_length": ep_length}, step)

    def interval(self, step: int) -> None:
        """At each log interval: the SPS since the last one, and the status line when it is due."""
        now = time.time()
        self.scalars("charts", {"SPS": (step - self.sps_mark[1]) / max(now - self.sps_mark[0], 1e-9)}, step)
        self.sps_mark = (now, step)
        if line := self.progress.line(step, now):
            print(line, flush=True)

    def evaluation(self, step: int, returns: np.ndarray, lengths: np.ndarray, frames: Optional[list], fps) -> None:
        if frames:
            write_video(f"videos/{self.run_name}/eval_step{step}.mp4", frames, fps)
        self.progress.eval = (step, float(returns.mean()))
        print(f"global_step={step}, eval_return={returns.mean():.1f} +- {returns.std():.1f}")
        self.scalars("eval", {"episodic_return": returns.mean(), "episodic_length": lengths.mean()}, step)

    def close(self) -> Optional[float]:
        """Closes the logs; returns the seconds per training iteration (None if none was timed), also printed."""
        self.writer.close()
        if self.tracker:
            self.tracker.finish()
        if (seconds := self.progress.seconds_per_iteration(time.time())) is not None:
            print(f"time per training iteration: {seconds * 1000:.1f} ms (evaluation excluded), on {self.progress.device}")
        return seconds


class FiniteCheck:
    """Non-finite losses are flagged on the device (no host sync in the training step) and read at every log,
    evaluation and checkpoint: the run then stops with one line that names the last checkpoint, which was written
    before the flag rose and is never overwritten with NaN weights."""

    def __init__(self, device: torch.device, last_checkpoint: Optional[str], step: int):
        self.bad = torch.zeros((), dtype=torch.bool, device=device)
        self.last_checkpoint, self.since = last_checkpoint, step

    def watch(self, stats: dict) -> None:
        self.bad |= ~torch.isfinite(torch.stack(list(stats.values()))).all()

    def check(self, what: str) -> None:
        if bool(self.bad):  # the one read of the device flag (a host sync)
            self.fail(what)

    def fail(self, what: str) -> None:
        raise RunError(f"non-finite {what}; training stopped and nothing was saved after it. "
                       f"Last checkpoint: {self.last_checkpoint or 'none (use --checkpoint-interval N)'}")

    def check_losses(self, step: int) -> None:
        self.check(f"loss between global steps {self.since} and {step}")
        self.since = step


# ---------------------------------------------------------------------------------------------------------------------
# The command line


def cli_args(argv: list[str]) -> Args:
    """The command line. With --resume PATH the defaults are the checkpoint's own hyperparameters, so the path alone
    continues the run; what else is passed must be resumable, or load_checkpoint names it."""
    paths = [a.split("=", 1)[1] for a in argv if a.startswith("--resume=")]
    paths += [b for a, b in zip(argv, argv[1:]) if a == "--resume"]
    if not paths or not os.path.exists(paths[-1]):
        return tyro.cli(Args, args=argv)  # (a missing checkpoint is reported by train)
    saved, known = read_checkpoint(paths[-1], mmap=True)["args"], {f.name for f in fields(Args)}
    return tyro.cli(Args, args=argv, default=Args(**{k: v for k, v in saved.items() if k in known}))


@contextmanager
def stop_on_signals():
    """SIGINT (Ctrl-C) and SIGTERM ask the run to stop after the current iteration: the list this yields gets the
    signal's name, and train() then writes a checkpoint and returns. A second signal acts at once."""
    stop: list[str] = []

    def handler(signum, frame):
        stop.append(signal.Signals(signum).name)
        signal.signal(signum, previous[signum])
        print(f"{stop[-1]}: stopping after this iteration, with a checkpoint (send it again to stop at once)", flush=True)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


# The exit status of a run stopped by a signal with a checkpoint: EX_TEMPFAIL (sysexits.h), "try again", so that a
# sweep (benchmark.sh) or a scheduler tells a resumable run from a finished one (0) and a failed one (1) by it alone
EXIT_STOPPED = 75

if __name__ == "__main__":
    try:
        args = cli_args(sys.argv[1:])
        if args.eval_only:
            evaluate_saved(args)
        else:
            with stop_on_signals() as stop:
                if train(args, stop)["stopped"]:
                    sys.exit(EXIT_STOPPED)
    except RunError as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:  # a second Ctrl-C: at once, as asked
        print("stopped at once by a second signal: the run continues from its last checkpoint, if it wrote one",
              file=sys.stderr)
        sys.exit(130)
