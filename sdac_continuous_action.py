# Soft Diffusion Actor-Critic (SDAC) in one file: Ma et al., "Soft Diffusion Actor-Critic: Efficient Online
# Reinforcement Learning for Diffusion Policy". A diffusion policy eps_theta(a_t, s, t) trained by reverse sampling
# score matching (RSSM, eqs. 16-17) from the Q-function alone: no samples from the target policy, no backpropagation
# through the reverse chain. Docs, options and their sources: README.md.
import math
import os
import random
import signal
import sys
import time
import warnings
from dataclasses import asdict, dataclass, fields
from functools import partial
from typing import Callable, Literal, NamedTuple, Optional, Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import tyro
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

# the paper's results are on the -v4 envs: gymnasium's advice to use -v5 is filtered, so an error stays one line
warnings.filterwarnings("ignore", message=r".*The environment \S+ is out of date", category=DeprecationWarning)


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]  # the name of this experiment
    seed: int = 1  # seed of the experiment
    track: bool = False  # log to Weights & Biases (the TensorBoard logs synced, as CleanRL does)
    wandb_project_name: str = "sdac"  # the wandb project
    wandb_entity: Optional[str] = None  # the wandb entity (team); None: your default
    torch_deterministic: bool = True  # if toggled, `torch.backends.cudnn.deterministic=True`
    cuda: bool = True  # if toggled and CUDA exists, the replay buffer and the whole training step live on the GPU
    save_model: bool = False  # save the final weights to `runs/{run_name}/{exp_name}.sdac_model`
    capture_video: bool = False  # write the first episode of each evaluation to videos/{run_name}/
    eval_only: bool = False  # no training: evaluate the policy in --load-model for --eval-episodes episodes
    load_model: Optional[str] = None  # with --eval-only: a saved model (--save-model) or a checkpoint
    checkpoint_interval: int = 50_000  # env steps between checkpoints (0: never; a signal writes one too)
    checkpoint_buffer: bool = False  # also put the replay buffer in checkpoints (large: up to buffer_size transitions)
    resume: Optional[str] = None  # a checkpoint to continue, with its own hyperparameters
    compile: bool = False  # torch.compile the update steps and the action sampler
    cudagraphs: bool = False  # also capture them in CUDA graphs (torch.compile mode "reduce-overhead"; needs CUDA)
    tf32: bool = False  # allow TF32 matmuls on Ampere and later GPUs (faster, about 1e-3 relative precision)

    # Environment and data
    env_id: str = "Ant-v4"  # the id of the environment (a gymnasium env with a bounded Box action space)
    total_timesteps: int = 1_000_000  # total environment steps, summed over the parallel envs
    num_envs: int = 5  # parallel envs; one iteration = one vector step + `gradient_steps` updates
    gradient_steps: int = 1  # gradient steps per iteration (update-to-data ratio = gradient_steps / num_envs)
    buffer_size: int = 1_000_000  # the replay memory buffer size
    learning_starts: int = 30_000  # env steps of random actions before learning, counted in total_timesteps
    batch_size: int = 256  # the batch size of samples from the replay memory
    gamma: float = 0.99  # the discount factor gamma
    reward_scale: float = 0.2  # rewards are multiplied by this in the critic target

    # Critic (soft policy evaluation)
    q_lr: float = 3e-4  # the learning rate of the twin critics
    tau: float = 0.005  # target critic and EMA policy smoothing coefficient
    target_network_frequency: int = 2  # updates between target critic updates, from update 0
    entropy_in_target: bool = False  # paper eq. 2: add lambda * H (exploration noise entropy) to the target

    # Diffusion policy
    diffusion_steps: int = 20  # T, the number of diffusion steps
    beta_schedule: Literal["cosine", "linear", "vp"] = "linear"  # noise schedule (linear: the authors' code)
    linear_beta_scale: float = 0.8  # scale of the linear schedule's betas
    x_T_scale: float = 0.5  # std of x_T at the start of reverse sampling (the paper: 1.0)
    num_candidates: int = 32  # N: reverse samples per state, the best by min(Q1, Q2) kept (1: no best-of-N)
    num_reverse_samples: int = 64  # K: reverse samples a0_tilde per a_t in the RSSM loss (eq. 17)
    weight_normalization: Literal["softmax", "batch"] = "softmax"  # RSSM weights: softmax over K, or batch-normalised Q
    q_weight_scale: float = 5.0  # RSSM weights exp(q_weight_scale * Q / lambda) (1: the paper's)
    policy_lr: float = 3e-4  # the learning rate of the noise network
    policy_lr_end: float = 3e-5  # with anneal_lr, the policy learning rate after the decay
    anneal_lr: bool = True  # policy lr: constant for policy_lr_decay_begin policy updates, then linear to policy_lr_end
    policy_lr_decay_begin: int = 25_000  # policy updates (not env steps) before the policy lr starts to fall
    policy_lr_decay_steps: int = 50_000  # policy updates over which the policy lr falls linearly to policy_lr_end
    policy_frequency: int = 2  # updates between policy (RSSM) updates, from update 0 (delayed update)
    ema: bool = True  # act and evaluate with an EMA copy of the noise network (the update samples with the online one)
    update_before_step: bool = True  # update before env.step, which then overlaps the GPU's work; off: after (older)
    one_chain: bool = True  # a' (critic target) and a0 (RSSM) in one reverse chain; off: a chain each (older draws)

    # Entropy coefficient lambda
    lambda_init: float = 5.0  # initial lambda
    lambda_tuning: Literal["entropy", "linear", "fixed"] = "entropy"  # how lambda is tuned (entropy: the authors' code)
    lambda_lr: float = 7e-3  # learning rate of lambda tuning
    lambda_update_interval: int = 250  # updates between lambda updates, from update 0
    target_entropy_scale: float = 0.9  # entropy tuning target: H = -target_entropy_scale * action_dim
    lambda_target: float = 1.0  # the lambda that `--lambda-tuning linear` pulls towards
    exploration_noise: float = 0.1  # std of the Gaussian noise added to actions = exploration_noise * lambda
    clip_noisy_actions: bool = False  # clip actions to [-1, 1] after the exploration noise

    # Logging and evaluation
    log_interval: int = 500  # env steps between loss logs (and the non-finite check)
    eval_interval: int = 50_000  # env steps between evaluations; 0: only at the end
    eval_episodes: int = 20  # evaluation episodes, run at once in parallel envs (no exploration noise)
    progress_seconds: float = 30.0  # seconds between progress bar refreshes (0: every iteration)
    print_episodes: bool = False  # also print every finished training episode (TensorBoard gets them always)


ALGORITHM = "SDAC"  # in messages, checkpoint formats and saved-model names
# bounds of the options, checked before a run starts: >= 1, >= 0, > 0, below a limit
AT_LEAST_ONE = (
    "total_timesteps num_envs gradient_steps buffer_size batch_size diffusion_steps num_candidates num_reverse_samples"
    " policy_frequency target_network_frequency lambda_update_interval log_interval eval_episodes policy_lr_decay_steps"
).split()
NON_NEGATIVE = (
    "learning_starts checkpoint_interval eval_interval progress_seconds exploration_noise policy_lr_decay_begin"
    " policy_lr_end lambda_lr"
).split()
POSITIVE = "q_lr policy_lr lambda_init lambda_target x_T_scale linear_beta_scale reward_scale q_weight_scale".split()
BELOW = {"linear_beta_scale": 1.001}  # so that every beta_t < 1 (the linear betas reach 0.999 * scale)


# =====================================================================================================================
# The algorithm: noise schedules -> networks -> reverse sampling (acting) -> RSSM (eqs. 16-17) -> one update
# (Algorithm 1 lines 6-13)

# ---------------------------------------------------------------------------------------------------------------------
# Noise schedules: beta_t, alpha_t = 1 - beta_t, abar_t = prod_{l<=t} alpha_l, for t = 1..T (tensor index i = t - 1)


class Schedule(NamedTuple):
    betas: torch.Tensor
    alphas: torch.Tensor
    abar: torch.Tensor  # abar_t
    abar_prev: torch.Tensor  # abar_{t-1}, with abar_0 = 1
    posterior_mean_coef1: torch.Tensor  # coefficient of x0 in the mean of q(x_{t-1} | x_t, x0)
    posterior_mean_coef2: torch.Tensor  # coefficient of x_t
    posterior_var: torch.Tensor  # variance of q(x_{t-1} | x_t, x0)
    # per step i, as Python numbers (reading them launches no kernel): sqrt(abar_t), sqrt(1 - abar_t), the two
    # posterior mean coefficients and the posterior std
    steps: tuple[tuple[float, float, float, float, float], ...]


def make_schedule(kind: str, T: int, linear_beta_scale: float = 0.8, device="cpu", dtype=torch.float32) -> Schedule:
    """Computed in float64, returned in `dtype` (float64 for the equivalence checks)."""
    t = torch.arange(1, T + 1, dtype=torch.float64)
    if kind == "cosine":  # Nichol & Dhariwal: abar_t = f(t) / f(0)
        s = 0.008
        f = lambda u: torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
        betas = (1 - f(t) / f(t - 1)).clamp(max=0.999)
    elif kind == "linear":  # the authors' code
        betas = linear_beta_scale * torch.linspace(1e-4, 0.999, T, dtype=torch.float64)
    elif kind == "vp":  # discretised variance-preserving SDE, b_min = 0.1, b_max = 10
        b_min, b_max = 0.1, 10.0
        betas = 1 - torch.exp(-b_min / T - (b_max - b_min) * (2 * t - 1) / (2 * T**2))
    else:
        raise ValueError(f"unknown beta schedule {kind!r}")
    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0)
    abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    coef1 = betas * abar_prev.sqrt() / (1 - abar)
    coef2 = (1 - abar_prev) * alphas.sqrt() / (1 - abar)
    var = betas * (1 - abar_prev) / (1 - abar)
    betas, alphas, abar, abar_prev, coef1, coef2, var = (
        x.to(dtype) for x in (betas, alphas, abar, abar_prev, coef1, coef2, var)
    )
    steps = tuple(zip(*(x.tolist() for x in (abar.sqrt(), (1 - abar).sqrt(), coef1, coef2, var.sqrt()))))
    tensors = (x.to(device) for x in (betas, alphas, abar, abar_prev, coef1, coef2, var))
    return Schedule(*tensors, steps)


# ---------------------------------------------------------------------------------------------------------------------
# Networks: the noise network eps_theta(a_t, s, t) = MLP(concat[s, a_t, emb(t)]), called `actor` wherever it is used
# (its EMA copy `actor_ema`), and the twin critics Q1, Q2 (`qf`), 3 x 256 with mish


def haiku_init_(weight: torch.Tensor, bias: torch.Tensor, fan_in: int) -> None:
    """Haiku's Linear init: W ~ normal(0, 1/fan_in) truncated at 2 std, b = 0."""
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
    """emb(t): sin and cos of t * 10000^(-j/8), j = 0..7, times 1/sqrt(16); then Linear(32) -> mish -> Linear(16)."""

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
        """eps_theta(a_t, s, t) for step indices t [B]."""
        return self.eps(obs, a_t, self.time_emb(t))

    def eps(self, obs: torch.Tensor, a_t: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """The same from emb(t), so that a reverse chain embeds its T steps once."""
        return self.net(torch.cat([obs, a_t, emb], -1))


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
def reverse_diffusion(actor: NoiseNetwork, obs: torch.Tensor, sched: Schedule, act_dim: int, x_T_scale: float):
    """a_0 ~ pi(.|s): x_T ~ N(0, x_T_scale^2 I); x_{t-1} ~ q(x_{t-1} | x_t, x0_hat) with x0_hat clipped to [-1, 1]."""
    B, T = obs.shape[0], len(sched.steps)
    emb = actor.time_emb(torch.arange(T, device=obs.device))  # emb(t) of every step, once per chain
    x = torch.randn(B, act_dim, device=obs.device) * x_T_scale
    for i in reversed(range(T)):
        sqrt_abar, sqrt_one_minus_abar, coef1, coef2, std = sched.steps[i]
        eps = actor.eps(obs, x, emb[i].expand(B, -1))
        x0_hat = ((x - sqrt_one_minus_abar * eps) / sqrt_abar).clamp(-1, 1)
        x = coef1 * x0_hat + coef2 * x
        if i > 0:  # no noise at the last step
            x = x + std * torch.randn_like(x)
    return x.clamp(-1, 1)


@torch.no_grad()
def sample_actions(actor, qf, obs, noise_std, sched: Schedule, num_candidates: int, x_T_scale: float, clip=False):
    """Best of N reverse-diffusion samples by min(Q1, Q2), plus N(0, noise_std^2) exploration noise after the pick
    (not clipped, unless `clip`)."""
    B, N, act_dim = obs.shape[0], num_candidates, actor.act_dim
    obs_rep = obs.repeat_interleave(N, 0)  # [B*N, obs_dim]
    cand = reverse_diffusion(actor, obs_rep, sched, act_dim, x_T_scale)
    if N > 1:
        best = min_q(qf, obs_rep, cand).view(B, N).argmax(1)
        cand = cand.view(B, N, act_dim)[torch.arange(B, device=obs.device), best]
    noisy = cand + noise_std * torch.randn_like(cand)
    return noisy.clamp(-1, 1) if clip else noisy


def make_policy(sched: Schedule, args: Args) -> Callable:
    """policy(actor, qf, obs, noise_std): sample_actions with this run's N, x_T scale and clipping."""
    kw = dict(num_candidates=args.num_candidates, x_T_scale=args.x_T_scale, clip=args.clip_noisy_actions)
    return partial(sample_actions, sched=sched, **kw)


# ---------------------------------------------------------------------------------------------------------------------
# Reverse sampling score matching (Theorem 3.2, eqs. 16-17)


def reverse_sample(a_t: torch.Tensor, abar_t: torch.Tensor, K: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 17: K draws a0_tilde = a_t / sqrt(abar_t) - sqrt((1 - abar_t) / abar_t) eps per row of a_t.
    Returns a0_tilde and eps, both [B*K, d], rows of one a_t adjacent; abar_t is [B, 1]."""
    a_t, abar_t = a_t.repeat_interleave(K, 0), abar_t.repeat_interleave(K, 0)
    eps = torch.randn_like(a_t)
    return a_t / abar_t.sqrt() - ((1 - abar_t) / abar_t).sqrt() * eps, eps


def rssm_loss(actor, obs, a_t, t_idx, sched, q_fn, temperature, K: int, normalization: str = "softmax"):
    """Eq. 16 in noise form: the mean over B*K*d entries of w_k (eps_theta(a_t, s, t) - eps_k)^2, with w_k
    proportional to exp(q_fn(s, a0_tilde_k) / temperature), summing to 1 over each a_t's K copies. (The score target
    -eps / sqrt(1 - abar_t) times DSM's (1 - abar_t) weighting, eq. 5, is eps.) No gradient reaches the critics or the
    sampling of a_t. Returns the loss, the weights and the Q values, [B, K] each."""
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
    """lr for the first decay_begin policy updates, then linear to lr_end over decay_steps, then lr_end."""
    frac = min(max(policy_updates - decay_begin, 0) / decay_steps, 1.0)
    return lr + frac * (lr_end - lr)


def make_update(
    policy, actor, actor_ema, qf, qf_target, log_lam, q_optimizer, actor_optimizer, lam_optimizer, sched, args
):
    """Algorithm 1 lines 6-13. update(batch, lambda, u), for update number u = 0, 1, ...: the critic step (lines
    6-7); at every policy_frequency-th u the RSSM policy step and the EMA policy (lines 9-12); at every
    target_network_frequency-th u the target critics. Both losses are taken at the parameters from before this
    update: a' in the critic target comes from the policy before its step, the RSSM weights from the critics before
    theirs. Its statistics stay tensors (no host sync). update_lambda() is line 13."""
    act_dim, target_entropy = actor.act_dim, -args.target_entropy_scale * actor.act_dim

    def critic_loss(data: Batch, next_a: torch.Tensor, lam: torch.Tensor):
        # soft policy evaluation: a' ~ pi(.|s') as when acting, the target from the target critics
        with torch.no_grad():
            next_q = min_q(qf_target, data.next_obs, next_a)
            if args.entropy_in_target:
                next_q = next_q + lam * exploration_entropy(lam, act_dim, args.exploration_noise)
            next_q_value = args.reward_scale * data.rewards + (1 - data.terminations) * args.gamma * next_q
        qf_a_values = qf(data.obs, data.actions)  # [2, B]: Q1 and Q2
        assert qf_a_values.shape == (2, *next_q_value.shape) and next_q_value.dim() == 1
        qf_losses = ((qf_a_values - next_q_value) ** 2).mean(1)
        q1, q2 = qf_a_values.detach().mean(1)
        stats = dict(qf1_values=q1, qf2_values=q2, qf1_loss=qf_losses[0].detach(), qf2_loss=qf_losses[1].detach())
        return qf_losses.sum(), dict(stats, qf_loss=qf_losses.detach().mean(), target_q=next_q.mean())

    def actor_loss(data: Batch, a0: torch.Tensor, lam: torch.Tensor):
        # soft policy improvement: a_t from a0 ~ pi(.|s) noised to a random step t, then the RSSM loss (eqs. 16-17)
        t_idx = torch.randint(0, sched.betas.shape[0], (a0.shape[0],), device=a0.device)
        abar = sched.abar[t_idx][:, None]
        a_t = abar.sqrt() * a0 + (1 - abar).sqrt() * torch.randn_like(a0)
        q_fn = lambda s, a: min_q(qf, s, a.clamp(-1, 1))  # noqa: E731
        # weights softmax(q_weight_scale * Q / lambda): the temperature is lambda / q_weight_scale
        temperature = lam / args.q_weight_scale
        K, norm = args.num_reverse_samples, args.weight_normalization
        loss, w, q_rev = rssm_loss(actor, data.obs, a_t, t_idx, sched, q_fn, temperature, K, norm)
        stats = dict(actor_loss=loss.detach(), rssm_ess=effective_sample_size(w), rssm_weight_std=w.std(correction=0))
        return loss, dict(stats, rssm_q_mean=q_rev.mean(), rssm_q_std=q_rev.std())

    # --compile / --cudagraphs: the sampler, the losses (forward and backward) and the optimiser steps, each without
    # graph breaks
    q_step, actor_step = q_optimizer.step, actor_optimizer.step
    if args.compile or args.cudagraphs:
        mode = "reduce-overhead" if args.cudagraphs else None
        policy = torch.compile(policy, mode=mode, dynamic=False)
        critic_loss, actor_loss = torch.compile(critic_loss, mode=mode), torch.compile(actor_loss, mode=mode)
        q_step, actor_step = torch.compile(q_step, mode=mode), torch.compile(actor_step, mode=mode)

    def update(data: Batch, lam: torch.Tensor, u: int) -> dict[str, torch.Tensor]:
        if args.cudagraphs:  # a new step: outputs of the last replay may be overwritten (we clone them below)
            torch.compiler.cudagraph_mark_step_begin()
        update_policy = u % args.policy_frequency == 0
        if update_policy and args.anneal_lr:  # the policy lr is counted in policy updates
            lr_args = args.policy_lr, args.policy_lr_end, args.policy_lr_decay_begin, args.policy_lr_decay_steps
            set_lr(actor_optimizer, policy_lr_at(u // args.policy_frequency, *lr_args))
        # a' ~ pi(.|s') for the critic target and, at a policy step, a0 ~ pi(.|s) for RSSM: both from the policy
        # before its step, in one reverse chain over [s'; s] (--no-one-chain: a chain each, a' first)
        noise_std = args.exploration_noise * lam
        if update_policy and args.one_chain:
            next_a, a0 = policy(actor, qf, torch.cat([data.next_obs, data.obs]), noise_std).chunk(2)
        else:
            next_a = policy(actor, qf, data.next_obs, noise_std)
            a0 = policy(actor, qf, data.obs, noise_std) if update_policy else None
        loss, stats = critic_loss(data, next_a, lam)
        q_optimizer.zero_grad()
        loss.backward()
        if update_policy:  # its loss sees the critics before their step
            loss, actor_stats = actor_loss(data, a0, lam)
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
        # entropy: Adam on log lambda towards the target entropy of the exploration noise; linear: the paper's
        # lambda <- lambda - lambda_lr (lambda - lambda_target); fixed: nothing
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


# ---------------------------------------------------------------------------------------------------------------------
# Speed (optional): --compile and --cudagraphs, for the update above and for acting; eager runs skip all of it


def make_optimizer(params, lr: float, args: Args, device: torch.device) -> torch.optim.Adam:
    """Adam; compiled, its lr is a tensor (a new lr does not recompile) and capturable on CUDA (as CUDA graphs need)."""
    if args.compile or args.cudagraphs:
        return torch.optim.Adam(params, lr=torch.tensor(lr, device=device), capturable=device.type == "cuda")
    return torch.optim.Adam(params, lr=lr)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """In place, so that a compiled step whose lr is a tensor does not recompile."""
    group = optimizer.param_groups[0]
    if isinstance(group["lr"], torch.Tensor):
        group["lr"].fill_(lr)
    else:
        group["lr"] = lr


def compile_policy(policy: Callable, args: Args) -> Callable:
    """Static shapes: one graph per batch size (num_envs, eval_episodes); under CUDA graphs each call is a new step."""
    compiled = torch.compile(policy, mode="reduce-overhead" if args.cudagraphs else None, dynamic=False)
    if not args.cudagraphs:
        return compiled

    def step(*a, **k):
        torch.compiler.cudagraph_mark_step_begin()
        return compiled(*a, **k)

    return step


# ---------------------------------------------------------------------------------------------------------------------
# A saved run's policy, for --eval-only


def saved_policy(saved: dict, args: Args, obs_dim: int, act_dim: int, device) -> Callable:
    """--eval-only: obs -> action, noise-free, with the network the run acted with and best of N by its critics."""
    actor, qf = NoiseNetwork(obs_dim, act_dim).to(device), TwinQNetwork(obs_dim, act_dim).to(device)
    actor.load_state_dict(saved["actor_ema"] if args.ema else saved["actor"])
    qf.load_state_dict(saved["qf"])
    policy = make_policy(make_schedule(args.beta_schedule, args.diffusion_steps, args.linear_beta_scale, device), args)
    return lambda obs: policy(actor, qf, obs, 0.0)


# =====================================================================================================================
# Training loop (Algorithm 1)


def train(args: Args, stop: Sequence[str] = ()) -> dict:
    """One run. A signal's name in `stop` ends it after the current iteration, with a checkpoint to resume from."""
    scale, bias, ckpt = check_run(args)  # bad input fails here, before anything is written
    run_name = ckpt["run_name"] if ckpt else f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"

    # seeding
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    torch.set_float32_matmul_precision("high" if args.tf32 else "highest")  # TF32 or full float32 matmuls

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
    optimizers = q_optimizer, actor_optimizer, lam_optimizer
    update, update_lambda = make_update(policy, actor, actor_ema, qf, qf_target, log_lam, *optimizers, sched, args)
    if args.compile or args.cudagraphs:  # acting and evaluation (the update compiles its own)
        policy = compile_policy(policy, args)
    acting_actor = actor_ema if args.ema else actor  # the authors act and evaluate with the EMA policy
    rb = ReplayBuffer(args.buffer_size, obs_dim, act_dim, device)

    # what a checkpoint holds, by name
    state = dict(actor=actor, actor_ema=actor_ema, qf=qf, qf_target=qf_target, log_lam=log_lam, buffer=rb)
    state |= dict(q_optimizer=q_optimizer, actor_optimizer=actor_optimizer, lam_optimizer=lam_optimizer)
    global_step, iteration, num_updates, eval_history = restore_checkpoint(ckpt, state, args) if ckpt else (0, 0, 0, [])
    run_dir = (os.path.dirname(args.resume) or ".") if ckpt else f"runs/{run_name}"  # a resumed run: the same folder
    writer, tracker = open_logs(args, run_name, run_dir, global_step, resumed=ckpt is not None)
    headline = f"SDAC on {args.env_id}: N={args.num_candidates}, K={args.num_reverse_samples}, T={args.diffusion_steps}"
    print(f"{headline} | {device} | {run_dir}")
    num_iterations = math.ceil(args.total_timesteps / args.num_envs)
    pbar = tqdm(
        total=args.total_timesteps, initial=global_step, unit="step", mininterval=args.progress_seconds, file=sys.stdout
    )
    metrics, last_checkpoint, iteration_seconds = {}, args.resume, []
    start_time, start_step = time.time(), global_step

    def learn(lam: torch.Tensor, num_updates: int) -> int:
        """Lines 5-13: gradient_steps updates from the buffer; u counts updates from 0 (the policy, the targets and
        lambda step at u = 0 and at every multiple of their interval, as in the authors' code). A run resumed without
        its buffer first refills learning_starts transitions with the policy. Returns the new count."""
        if rb.size == 0 or rb.size < min(args.learning_starts, args.buffer_size):
            return num_updates
        for _ in range(args.gradient_steps):
            u, num_updates = num_updates, num_updates + 1
            metrics.update(update(rb.sample(args.batch_size), lam, u))
            if u % args.lambda_update_interval == 0:
                update_lambda()
        return num_updates

    # start the game
    obs, _ = envs.reset(seed=args.seed + global_step)
    if ckpt:  # the envs as they were at the checkpoint: the run goes on as if never stopped
        obs = restore_env_state(envs, ckpt.get("envs"), obs)
    for iteration in range(iteration + 1, num_iterations + 1):
        iteration_start, updates_before = time.perf_counter(), num_updates
        global_step += args.num_envs
        lam = log_lam.detach().exp()
        learning = global_step > args.learning_starts

        # lines 3-4: act (uniform random during warm-up, then best of N with exploration noise), step, store
        if not learning:
            actions = np.random.uniform(-1, 1, (args.num_envs, act_dim)).astype(np.float32)
        else:
            obs_t = torch.as_tensor(obs, dtype=torch.float32, device=device)
            actions = policy(acting_actor, qf, obs_t, args.exploration_noise * lam).cpu().numpy()
        # lines 5-13 first (--update-before-step): on a GPU they run while the envs step, and the actions' copy to
        # the host, the step's one sync, comes before them; they sample the buffer without this step's transitions
        if learning and args.update_before_step:
            num_updates = learn(lam, num_updates)
        next_obs, rewards, terminations, truncations, infos = envs.step(actions * scale + bias)
        for i in np.flatnonzero(infos.get("_episode", [])):
            writer.add_scalar("charts/episodic_return", infos["episode"]["r"][i], global_step)
            writer.add_scalar("charts/episodic_length", infos["episode"]["l"][i], global_step)
            if args.print_episodes:
                tqdm.write(f"global_step={global_step}, episodic_return={infos['episode']['r'][i]:.1f}")
        # s' is the true final observation where an episode ended (SAME_STEP autoreset), and done = terminated, so
        # that truncated episodes bootstrap
        real_next_obs = next_obs.copy()
        for i in np.flatnonzero(infos.get("_final_obs", [])):
            real_next_obs[i] = infos["final_obs"][i]
        rb.add(obs, actions, rewards, real_next_obs, terminations)
        obs = next_obs
        if learning and not args.update_before_step:  # lines 5-13 after storing this step's transitions
            num_updates = learn(lam, num_updates)
        if num_updates > updates_before:
            iteration_seconds.append(time.perf_counter() - iteration_start)
        if crossed(global_step, args.log_interval, args.num_envs):
            check_finite(metrics, global_step, last_checkpoint)  # the training step's one host sync
            for k, v in metrics.items():
                writer.add_scalar(f"losses/{k}", v, global_step)
            if metrics:
                writer.add_scalar("losses/lambda", log_lam.exp(), global_step)
                writer.add_scalar("charts/policy_lr", actor_optimizer.param_groups[0]["lr"], global_step)
            writer.add_scalar("charts/SPS", (global_step - start_step) / (time.time() - start_time), global_step)

        if crossed(global_step, args.eval_interval, args.num_envs) or iteration == num_iterations:
            check_finite(metrics, global_step, last_checkpoint)
            frames = [] if args.capture_video else None
            eval_seed = args.seed + 100_000 + global_step
            returns, lengths = evaluate(
                lambda o: policy(acting_actor, qf, o, 0.0), eval_envs, scale, bias, device, eval_seed, frames
            )
            eval_history.append((global_step, float(returns.mean()), float(returns.std())))
            writer.add_scalar("eval/episodic_return", returns.mean(), global_step)
            writer.add_scalar("eval/episodic_length", lengths.mean(), global_step)
            tqdm.write(f"global_step={global_step}, eval_return={returns.mean():.1f} +- {returns.std():.1f}")
            pbar.set_postfix(eval=f"{returns.mean():.1f}", refresh=False)
            if frames:
                write_video(f"videos/{run_name}/eval_step{global_step}.mp4", frames, eval_envs)

        stopping = bool(stop)  # read once: a signal that comes after this line is handled in the next iteration
        if crossed(global_step, args.checkpoint_interval, args.num_envs) or stopping:
            check_finite(metrics, global_step, last_checkpoint)
            counters = dict(global_step=global_step, iteration=iteration, num_updates=num_updates)
            counters |= dict(eval_history=eval_history, envs=env_state(envs, obs))
            last_checkpoint = save_checkpoint(f"{run_dir}/checkpoint.pt", args, run_name, state, counters)
        pbar.update(args.num_envs)
        if stopping and iteration < num_iterations:  # (stopped in its last iteration, the run is complete)
            tqdm.write(
                f"stopped by {stop[0]} at global step {global_step}; checkpoint written. To continue:\n"
                f"  python {__file__} --resume {last_checkpoint}"
            )
            break

    pbar.close()
    if args.save_model and iteration == num_iterations:
        save_model(f"{run_dir}/{args.exp_name}.sdac_model", args, state)
    envs.close()
    eval_envs.close()
    writer.close()
    if tracker:
        tracker.finish()
    seconds = float(np.mean(iteration_seconds[10:] or iteration_seconds)) if iteration_seconds else None
    if seconds:  # the first 10 training iterations (compilation) excluded where there are more
        print(f"time per training iteration: {seconds * 1000:.1f} ms (evaluation excluded), on {device}")
    stopped = bool(stop) and iteration < num_iterations  # with a checkpoint to continue from (exit EXIT_STOPPED)
    out = dict(run_dir=run_dir, global_step=global_step, stopped=stopped, eval_history=eval_history)
    return out | {"checkpoint": last_checkpoint, "lambda": log_lam.exp().item(), "seconds_per_iteration": seconds}


# =====================================================================================================================
# Plumbing: envs, input checks, the replay buffer, checkpoints, evaluation, logs and the command line; the same line
# for line in the RL scripts (tests/test_plumbing.py), so that a diff of two shows only the algorithm.


def make_vector_env(env_id: str, num_envs: int, render_first: bool = False) -> gym.vector.VectorEnv:
    """SAME_STEP autoreset: where an episode ends, next_obs is the reset one and infos["final_obs"] the true s'."""
    kwargs = [{"render_mode": "rgb_array"} if render_first and i == 0 else {} for i in range(num_envs)]
    envs = [partial(gym.make, env_id, **kw) for kw in kwargs]
    envs = gym.vector.SyncVectorEnv(envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


def check_env(env_id: str, render: bool = False, cuda: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Makes the env (and a frame, to render) before anything is written. Returns the actions' scale and bias: the
    policy acts in [-1, 1]^d, the env gets a * scale + bias (RescaleAction would clip a; the control cost sees it)."""
    if render and not os.environ.get("DISPLAY"):  # MuJoCo reads it at import: EGL for a run on the GPU, else OSMesa
        os.environ.setdefault("MUJOCO_GL", "egl" if cuda and torch.cuda.is_available() else "osmesa")
    try:
        env = gym.make(env_id, **({"render_mode": "rgb_array"} if render else {}))
        env.reset(seed=0)
        if render:
            env.render()
        env.close()
    except Exception as e:  # noqa: BLE001 - an unknown id, or what MuJoCo's import or GL library raises
        what = "--capture-video cannot render" if render and not isinstance(e, gym.error.Error) else "cannot create"
        hint = " (Pusher-v4 needs mujoco < 3: use Pusher-v5)" if env_id == "Pusher-v4" else ""
        if (gl := os.environ.get("MUJOCO_GL")) and not isinstance(e, gym.error.Error):
            hint = f" (MUJOCO_GL={gl}: install OSMesa (libosmesa6) for osmesa or EGL (libegl1) for egl, or unset it)"
        raise SystemExit(f"error: {what} env {env_id!r}: {e}{hint}") from None
    space, obs_space = env.action_space, env.observation_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise SystemExit(f"error: {ALGORITHM} needs a flat Box observation space, got {obs_space}")
    if not isinstance(space, gym.spaces.Box):
        raise SystemExit(f"error: {ALGORITHM} needs a continuous (Box) action space, got {space}")
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    if not (np.isfinite(low).all() and np.isfinite(high).all() and (high > low).all()):
        raise SystemExit(f"error: {ALGORITHM} needs a bounded Box action space with finite low < high, got {space}")
    return ((high - low) / 2).astype(np.float32), ((high + low) / 2).astype(np.float32)


def validate_args(args: Args) -> None:
    """Each option against its bound (below Args), then the combinations that cannot work; one line for the first."""
    checks = [(n, ">= 1", getattr(args, n) >= 1) for n in AT_LEAST_ONE]
    checks += [(n, ">= 0", getattr(args, n) >= 0) for n in NON_NEGATIVE]
    checks += [(n, "> 0", getattr(args, n) > 0) for n in POSITIVE]
    checks += [(n, f"< {limit}", getattr(args, n) < limit) for n, limit in BELOW.items()]
    checks += [(n, "finite", math.isfinite(v)) for n, v in asdict(args).items() if isinstance(v, float)]
    for name, bound, ok in checks:  # (NaN fails every comparison)
        if not ok:
            raise SystemExit(f"error: --{name.replace('_', '-')} must be {bound}, got {getattr(args, name)}")
    if not 0 <= args.seed < 2**32:
        raise SystemExit(f"error: --seed must be in [0, 2**32), got {args.seed}")
    if args.exp_name in ("", ".", "..") or os.sep in args.exp_name:
        raise SystemExit(f"error: --exp-name must be a name, not a path (a folder in runs/), got {args.exp_name!r}")
    if args.learning_starts >= args.total_timesteps and not args.eval_only:
        raise SystemExit(f"error: --learning-starts ({args.learning_starts}) must be below --total-timesteps")
    if not (0 < args.gamma <= 1 and 0 < args.tau <= 1):
        raise SystemExit(f"error: --gamma and --tau must be in (0, 1], got {args.gamma} and {args.tau}")
    if args.batch_size > args.buffer_size:
        raise SystemExit(f"error: --batch-size ({args.batch_size}) must not exceed --buffer-size ({args.buffer_size})")
    if args.load_model and not args.eval_only:
        raise SystemExit("error: --load-model is for --eval-only; to continue training, --resume a checkpoint")
    if args.resume is not None and not os.path.isfile(args.resume):
        raise SystemExit(f"error: checkpoint not found: {args.resume}")
    if args.cudagraphs and not (args.cuda and torch.cuda.is_available()):
        raise SystemExit("error: --cudagraphs needs a CUDA GPU (and --cuda); on CPU use --compile")


def check_run(args: Args) -> tuple[np.ndarray, np.ndarray, Optional[dict]]:
    """The options, the env and the checkpoint to resume: the actions' scale and bias, and the checkpoint or None."""
    validate_args(args)
    scale, bias = check_env(args.env_id, render=args.capture_video, cuda=args.cuda)
    return scale, bias, load_checkpoint(args.resume, args) if args.resume else None


class ReplayBuffer:
    """Transitions (s, a, r, s', done) in one [capacity, 2 obs_dim + act_dim + 2] tensor on the training device:
    storing a vector step is one copy, sampling one gather; `data` views its columns as a Batch."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: torch.device):
        self.capacity, self.device, self.ptr, self.size = capacity, device, 0, 0
        self.widths = [obs_dim, act_dim, 1, obs_dim, 1]
        try:
            self.storage = torch.zeros(capacity, sum(self.widths), device=device)
        except (RuntimeError, OverflowError):  # (torch's out-of-memory error is a RuntimeError)
            size = f"{capacity} transitions ({capacity * sum(self.widths) * 4 / 2**30:.1f} GiB) on {device}"
            raise SystemExit(f"error: cannot hold a replay buffer of {size}: lower --buffer-size") from None
        self.data = self.fields(self.storage)

    def fields(self, rows: torch.Tensor) -> Batch:
        obs, actions, rewards, next_obs, terminations = rows.split(self.widths, dim=1)
        return Batch(obs, actions, rewards.squeeze(1), next_obs, terminations.squeeze(1))

    def add(self, obs, actions, rewards, next_obs, terminations) -> None:
        n = len(obs)
        rows = np.concatenate([obs, actions, np.c_[rewards], next_obs, np.c_[terminations]], 1, dtype=np.float32)
        idx = (self.ptr + torch.arange(n, device=self.device)) % self.capacity
        self.storage[idx] = torch.from_numpy(rows).to(self.device)
        self.ptr, self.size = (self.ptr + n) % self.capacity, min(self.size + n, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        return self.fields(self.storage[torch.randint(0, self.size, (batch_size,), device=self.device)])

    def state_dict(self) -> dict:  # a copy: torch.save would write a view's whole storage
        return {"ptr": self.ptr, "size": self.size, "data": [x[: self.size].to("cpu", copy=True) for x in self.data]}

    def load_state_dict(self, state: dict) -> None:
        self.ptr, self.size = state["ptr"], state["size"]
        for x, saved in zip(self.data, state["data"]):
            x[: self.size] = saved.to(self.device)


def simulator_arrays(data) -> dict:
    """Every array of a MuJoCo MjData: the state and what the last step derived from it (which rewards read)."""
    return {k: v for k in dir(data) if not k.startswith("_") and isinstance(v := getattr(data, k), np.ndarray)}


def env_state(envs, obs: np.ndarray) -> dict:
    """The training envs, so that a resumed run steps them on as the uninterrupted run would: per env its simulator
    (MuJoCo's arrays, a classic-control `state`), its step in the episode (gym.make's outermost wrapper, TimeLimit) and
    random generator; the running episode returns and lengths; the observations to act on. {} for other envs."""
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
        subs.append(dict(sim=sim, steps=getattr(env, "_elapsed_steps", None), rng=base.np_random.bit_generator.state))
    episodes = {k: torch.from_numpy(getattr(envs, f"episode_{k}").copy()) for k in ("returns", "lengths")}
    return {"subs": subs, "obs": torch.from_numpy(obs.copy()), **episodes}


def restore_env_state(envs, saved: Optional[dict], obs: np.ndarray) -> np.ndarray:
    """Puts the envs back as env_state found them; returns the observations to act on (without a state, `obs`)."""
    if not saved or len(saved["subs"]) != envs.num_envs:
        return obs
    for env, sub in zip(envs.unwrapped.envs, saved["subs"]):
        base, sim = env.unwrapped, sub["sim"]
        if "state" in sim:
            base.state = sim["state"].numpy().copy()
        else:  # (arrays sized by this step's contacts are rebuilt by the next step)
            arrays = simulator_arrays(base.data)
            for k in arrays.keys() & sim.keys():
                if arrays[k].shape == tuple(sim[k].shape) and arrays[k].flags.writeable:
                    arrays[k][...] = sim[k].numpy()
            base.data.time = sim["time"]
        if sub["steps"] is not None:
            env._elapsed_steps = sub["steps"]
        base.np_random.bit_generator.state = sub["rng"]
    envs.episode_returns[:], envs.episode_lengths[:] = saved["returns"].numpy(), saved["lengths"].numpy()
    return saved["obs"].numpy().copy()


# Checkpoints hold tensors and plain types only and are read as data (torch.load(weights_only=True)): loading a file
# never runs code from it. Written to a temp file, then renamed: the file at a path is the old one or the new one.
CHECKPOINT_FORMAT = f"{ALGORITHM.lower()}-checkpoint-v4"  # v4: numpy's RNG state as a tensor (v3 files are refused)
MODEL_FORMAT = f"{ALGORITHM.lower()}-model-v1"  # --save-model files (untagged before 2026-12-04)
RESUMABLE_CHANGES = (  # the options a resumed run may change
    "resume total_timesteps cuda save_model checkpoint_interval checkpoint_buffer log_interval eval_interval "
    "eval_episodes torch_deterministic compile cudagraphs tf32 progress_seconds print_episodes capture_video track "
    "wandb_project_name wandb_entity"
).split()


def non_finite(saved: dict) -> list[str]:
    """The entries of a checkpoint or saved model (tensors, or state dicts of them) that hold a NaN or inf."""
    values = {
        k: [v] if torch.is_tensor(v) else list(v.values()) if isinstance(v, dict) else [] for k, v in saved.items()
    }
    bad = lambda x: torch.is_tensor(x) and x.is_floating_point() and not x.isfinite().all()  # noqa: E731
    return [k for k, vs in values.items() if any(map(bad, vs))]


def write(obj: dict, path: str, what: str) -> str:
    """torch.save to path.tmp, then a rename; non-finite weights and a failed write (a full disk) are one line."""
    kept = "the one there is from before" if os.path.exists(path) else "none was written before"
    if bad := non_finite({k: v for k, v in obj.items() if k != "buffer"}):
        raise SystemExit(f"error: non-finite values in {', '.join(bad)}: {what} not written to {path} ({kept})")
    try:
        torch.save(obj, f"{path}.tmp")
        os.replace(f"{path}.tmp", path)
    except (OSError, RuntimeError) as e:  # (torch's zip writer raises RuntimeError on a full disk)
        if os.path.exists(f"{path}.tmp"):
            os.remove(f"{path}.tmp")
        raise SystemExit(f"error: cannot write {what} {path} ({str(e).splitlines()[0][:200]}); {kept}") from None
    return path


def save_checkpoint(path: str, args: Args, run_name: str, state: dict, counters: dict) -> str:
    """Every object of `state` by name (the buffer only with --checkpoint-buffer), the counters and the RNGs."""
    saved = {k: v.detach().cpu() if torch.is_tensor(v) else v.state_dict() for k, v in state.items() if k != "buffer"}
    saved["buffer"] = state["buffer"].state_dict() if args.checkpoint_buffer else None
    _, key, pos, has_gauss, cached = np.random.get_state()
    numpy_rng = (torch.from_numpy(key.astype(np.int64)), pos, has_gauss, cached)
    cuda_rng = torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None
    rng = dict(python=random.getstate(), numpy=numpy_rng, torch=torch.get_rng_state(), cuda=cuda_rng)
    info = dict(format=CHECKPOINT_FORMAT, args=asdict(args), run_name=run_name, rng=rng)
    return write(info | counters | saved, path, "checkpoint")


def save_model(path: str, args: Args, state: dict) -> None:
    networks = {k: v for k, v in state.items() if isinstance(v, (torch.Tensor, nn.Module))}
    saved = {k: v.detach().cpu() if torch.is_tensor(v) else v.state_dict() for k, v in networks.items()}
    write(dict(format=MODEL_FORMAT, args=asdict(args)) | saved, path, "model")
    print(f"model saved to {path}")


def read_checkpoint(path: str, mmap: bool = False, saved_model_ok: bool = False) -> dict:
    """The checkpoint at path (with saved_model_ok, or a --save-model file), read as data only; else one line that
    says what the file is instead."""
    kind = "a saved model or a checkpoint" if saved_model_ok else "a checkpoint"
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:  # noqa: BLE001 - whatever torch.load raises on a file it did not write
        why = e.strerror if isinstance(e, OSError) else "not a file torch.save wrote"
        if "GLOBAL" in str(e):  # a class or function, which weights_only refuses to load
            why = "it holds objects other than tensors and plain data, not loaded (unpickling them could run code)"
        raise SystemExit(f"error: {path} is not {kind} of {ALGORITHM}: {why}") from None
    fmt = ckpt.get("format") if isinstance(ckpt, dict) else None
    if fmt is None and isinstance(ckpt, dict) and {"args", "actor", "qf"} <= ckpt.keys():  # a model before the tags
        foreign = set(ckpt["args"]) - {f.name for f in fields(Args)}
        fmt = "a saved model of another algorithm" if foreign else MODEL_FORMAT
    if fmt == CHECKPOINT_FORMAT or (fmt == MODEL_FORMAT and saved_model_ok):
        return ckpt
    what = {MODEL_FORMAT: "a saved model (--save-model), which cannot continue a run", None: "no format tag"}.get(
        fmt, fmt
    )
    raise SystemExit(f"error: {path} is not {kind} of {ALGORITHM}: {what}")


def load_checkpoint(path: str, args: Args) -> dict:
    ckpt = read_checkpoint(path)
    old = ckpt["args"]
    if changed := [k for k, v in asdict(args).items() if k not in RESUMABLE_CHANGES and old.get(k) != v]:
        diff = "; ".join(
            f"--{k.replace('_', '-')} {old.get(k)!r} (checkpoint) vs {getattr(args, k)!r} (now)" for k in changed
        )
        raise SystemExit(f"error: checkpoint {path} is incompatible with these arguments: {diff}")
    if ckpt["global_step"] >= args.total_timesteps:
        raise SystemExit(f"error: checkpoint {path} is at step {ckpt['global_step']}, not before --total-timesteps")
    return ckpt


def restore_checkpoint(ckpt: dict, state: dict, args: Args) -> tuple[int, int, int, list]:
    """Loads every object of `state` and the random generators; returns the counters to continue from."""
    for name, obj in state.items():
        if isinstance(obj, torch.Tensor):
            with torch.no_grad():
                obj.copy_(ckpt[name])
        elif isinstance(obj, torch.optim.Optimizer):  # the saved moments, with this run's lr type and `capturable`
            lrs = [g["lr"] for g in obj.param_groups]
            mine = [{k: v for k, v in g.items() if k not in ("params", "lr")} for g in obj.param_groups]
            groups = [saved | m | {"lr": float(saved["lr"])} for saved, m in zip(ckpt[name]["param_groups"], mine)]
            obj.load_state_dict(ckpt[name] | {"param_groups": groups})
            for g, lr in zip(obj.param_groups, lrs):
                g["lr"] = lr.fill_(g["lr"]) if isinstance(lr, torch.Tensor) else g["lr"]
        elif ckpt[name] is not None:
            obj.load_state_dict(ckpt[name])
        else:
            print(
                f"resumed without a replay buffer: updates wait until it holds {args.learning_starts} new transitions"
            )
    key, pos, has_gauss, cached = ckpt["rng"]["numpy"]
    np.random.set_state(("MT19937", key.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(ckpt["rng"]["python"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    if torch.cuda.is_initialized() and ckpt["rng"]["cuda"] is not None:
        torch.cuda.set_rng_state(ckpt["rng"]["cuda"])
    print(f"resumed {ckpt['run_name']} from {args.resume} at global step {ckpt['global_step']}")
    return ckpt["global_step"], ckpt["iteration"], ckpt["num_updates"], ckpt["eval_history"]


@torch.no_grad()
def evaluate(policy: Callable, eval_envs, scale, bias, device, seed: int, frames: Optional[list] = None):
    """Returns and lengths of one episode per env, all at once, under policy(obs) -> a; env 0's frames into `frames`."""
    obs, _ = eval_envs.reset(seed=seed)
    n, render = eval_envs.num_envs, eval_envs.unwrapped.envs[0].render
    returns, lengths, done = np.zeros(n), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    while not done.all():
        if frames is not None and not done[0]:  # (once done, env 0 shows its next episode)
            frames.append(render())
        a = policy(torch.as_tensor(obs, dtype=torch.float32, device=device))
        obs, r, term, trunc, _ = eval_envs.step(a.cpu().numpy() * scale + bias)
        returns += r * ~done
        lengths += ~done
        done |= term | trunc
    return returns, lengths


def evaluate_saved(args: Args) -> np.ndarray:
    """--eval-only: the policy in a saved model or checkpoint, with the options it was trained with, for
    --eval-episodes episodes (seed --seed); nothing written but the video. Returns the episode returns."""
    if not args.load_model:
        raise SystemExit("error: --eval-only needs --load-model PATH (a saved model or a checkpoint)")
    if not os.path.exists(args.load_model):
        raise SystemExit(f"error: model not found: {args.load_model}")
    saved = read_checkpoint(args.load_model, saved_model_ok=True)
    if bad := non_finite(saved):
        raise SystemExit(f"error: {args.load_model} holds non-finite values in {', '.join(bad)}: no policy to evaluate")
    now = dict(eval_episodes=args.eval_episodes, cuda=args.cuda, capture_video=args.capture_video, resume=None)
    run = Args(**{k: v for k, v in saved["args"].items() if k in {f.name for f in fields(Args)}} | now)
    scale, bias, _ = check_run(run)
    torch.manual_seed(args.seed)  # the policy's draws: the same file and seed give the same returns
    device = torch.device("cuda" if torch.cuda.is_available() and run.cuda else "cpu")
    eval_envs = make_vector_env(run.env_id, run.eval_episodes, render_first=run.capture_video)
    frames = [] if run.capture_video else None
    obs_dim, act_dim = eval_envs.single_observation_space.shape[0], eval_envs.single_action_space.shape[0]
    policy = saved_policy(saved, run, obs_dim, act_dim, device)
    returns, lengths = evaluate(policy, eval_envs, scale, bias, device, seed=args.seed, frames=frames)
    if frames:
        write_video(f"videos/eval_only/{os.path.basename(args.load_model)}_seed{args.seed}.mp4", frames, eval_envs)
    eval_envs.close()
    print(
        f"{args.load_model}: {run.env_id}, {len(returns)} episodes: return {returns.mean():.1f} +- "
        f"{returns.std():.1f} (min {returns.min():.1f}, max {returns.max():.1f}), length {lengths.mean():.1f}"
    )
    return returns


def write_video(path: str, frames: list, envs) -> None:
    from moviepy import ImageSequenceClip  # imported only when videos are asked for

    os.makedirs(os.path.dirname(path), exist_ok=True)
    ImageSequenceClip(frames, fps=envs.metadata["render_fps"]).write_videofile(path, codec="libx264", logger=None)
    tqdm.write(f"video: {path}")  # (above the progress bar, during training)


def open_logs(args: Args, run_name: str, run_dir: str, global_step: int, resumed: bool):
    """TensorBoard in run_dir, synced to Weights & Biases with --track as CleanRL does; a resumed run continues both."""
    tracker = None
    if args.track:  # before the writer, whose logs it syncs
        try:
            import wandb  # imported only when asked for

            config = dict(name=run_name, id=run_name, resume="allow", config=asdict(args), sync_tensorboard=True)
            tracker = wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, save_code=True, **config)
        except Exception as e:  # noqa: BLE001 - no wandb, no API key, no network: no common class
            reason = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            raise SystemExit(
                f"error: --track could not start Weights & Biases ({reason}): pip install wandb, run "
                "`wandb login`, or set WANDB_MODE=offline"
            ) from None
    try:  # (a run folder that cannot be made or written: a file in its way, no permission, a full disk)
        os.makedirs(run_dir, exist_ok=True)
        writer = SummaryWriter(run_dir, purge_step=global_step + 1 if resumed else None)
    except OSError as e:
        raise SystemExit(f"error: cannot write to the run folder {run_dir}: {e.strerror or e}") from None
    if not resumed:
        table = "\n".join([f"|{key}|{value}|" for key, value in vars(args).items()])
        writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{table}")
    return writer, tracker


def crossed(step: int, interval: int, num_envs: int) -> bool:
    """Did global step `step` just pass a multiple of `interval` (0: never)?"""
    return interval > 0 and step // interval > (step - num_envs) // interval


def check_finite(metrics: dict, step: int, last_checkpoint: Optional[str]) -> None:
    """A non-finite loss stops the run before anything more is saved (a host sync: called at logs and saves)."""
    if metrics and not torch.isfinite(torch.stack(list(metrics.values()))).all():
        raise SystemExit(
            f"error: non-finite loss at global step {step}; training stopped and nothing was saved after "
            f"it. Last checkpoint: {last_checkpoint or 'none (use --checkpoint-interval N)'}"
        )


def cli_args(argv: list[str]) -> Args:
    """The command line. With --resume PATH the defaults are the checkpoint's own options: the path alone continues."""
    paths = [a.split("=", 1)[1] for a in argv if a.startswith("--resume=")]
    paths += [b for a, b in zip(argv, argv[1:]) if a == "--resume"]
    if not paths or not os.path.exists(paths[-1]):
        return tyro.cli(Args, args=argv)  # (a missing checkpoint is reported by train)
    saved, known = read_checkpoint(paths[-1], mmap=True)["args"], {f.name for f in fields(Args)}
    return tyro.cli(Args, args=argv, default=Args(**{k: v for k, v in saved.items() if k in known}))


EXIT_STOPPED = 75  # a run stopped by a signal, with a checkpoint: EX_TEMPFAIL, "try again" (benchmark.sh reads it)

if __name__ == "__main__":
    args = cli_args(sys.argv[1:])
    if args.eval_only:
        evaluate_saved(args)
        sys.exit()
    stop = []  # SIGINT (Ctrl-C) or SIGTERM: finish the iteration, write a checkpoint, exit; a second one acts at once

    def on_signal(signum, frame):
        stop.append(signal.Signals(signum).name)
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
        tqdm.write(f"{stop[-1]}: stopping after this iteration, with a checkpoint (send it again to stop at once)")

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        sys.exit(EXIT_STOPPED if train(args, stop)["stopped"] else 0)
    except KeyboardInterrupt:  # a second Ctrl-C
        print("stopped at once by a second signal: the run continues from its last checkpoint", file=sys.stderr)
        sys.exit(130)
