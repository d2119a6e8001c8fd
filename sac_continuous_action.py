# Soft Actor-Critic (SAC) in one file: the baseline of SDAC's paper, under exactly SDAC's conditions (envs, replay,
# evaluation, logs, checkpoints). Haarnoja et al., "Soft Actor-Critic Algorithms and Applications" (2018): a
# tanh-squashed Gaussian policy trained by the reparameterised KL to exp(Q / alpha), twin critics, and alpha tuned
# towards a target entropy of -d. Docs: docs/sac.md.
import math
import os
import random
import signal
import sys
import time
import warnings
from dataclasses import asdict, dataclass, fields
from functools import partial
from typing import Callable, NamedTuple, Optional, Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
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
    save_model: bool = False  # save the final weights to `runs/{run_name}/{exp_name}.sac_model`
    capture_video: bool = False  # write the first episode of each evaluation to videos/{run_name}/
    eval_only: bool = False  # no training: evaluate the policy in --load-model for --eval-episodes episodes
    load_model: Optional[str] = None  # with --eval-only: a saved model (--save-model) or a checkpoint
    checkpoint_interval: int = 50_000  # env steps between checkpoints (0: never; a signal writes one too)
    checkpoint_buffer: bool = False  # also put the replay buffer in checkpoints (large: up to buffer_size transitions)
    resume: Optional[str] = None  # a checkpoint to continue, with its own hyperparameters
    compile: bool = False  # torch.compile the update steps and the action sampler
    cudagraphs: bool = False  # also capture them in CUDA graphs (torch.compile mode "reduce-overhead"; needs CUDA)
    tf32: bool = False  # allow TF32 matmuls on Ampere and later GPUs (faster, about 1e-3 relative precision)

    # Environment and data: the paper's baseline protocol (Appendix C.2): 5 envs, 1 update per vector step.
    # CleanRL's protocol: --num-envs 1 --learning-starts 5000 (one update per env step).
    env_id: str = "Ant-v4"  # the id of the environment (a gymnasium env with a bounded Box action space)
    total_timesteps: int = 1_000_000  # total environment steps, summed over the parallel envs
    num_envs: int = 5  # parallel envs; one iteration = one vector step + `gradient_steps` updates
    gradient_steps: int = 1  # gradient steps per iteration (update-to-data ratio = gradient_steps / num_envs)
    buffer_size: int = 1_000_000  # the replay memory buffer size
    learning_starts: int = 30_000  # env steps of random actions before learning, counted in total_timesteps
    batch_size: int = 256  # the batch size of samples from the replay memory
    gamma: float = 0.99  # the discount factor gamma
    reward_scale: float = 1.0  # rewards are multiplied by this in the critic target

    # Critic
    q_lr: float = 1e-3  # the learning rate of the twin critics
    tau: float = 0.005  # target critic and EMA policy smoothing coefficient
    target_network_frequency: int = 1  # updates between target critic updates

    # Actor and entropy coefficient alpha
    policy_lr: float = 3e-4  # the learning rate of the noise network
    policy_frequency: int = 2  # updates between policy updates, each then policy_frequency policy steps (CleanRL)
    autotune: bool = True  # tune alpha so that the policy's entropy tracks target_entropy_scale * (-d)
    alpha: float = 0.2  # the entropy coefficient alpha without --autotune (CleanRL: 0.2)
    alpha_init: float = 1.0  # alpha's initial value with --autotune (CleanRL: log alpha starts at 0)
    alpha_lr: float = 1e-3  # the learning rate of log alpha with --autotune (CleanRL: the critics' q_lr, 1e-3)
    target_entropy_scale: float = 1.0  # autotune target: entropy = -target_entropy_scale * action_dim
    log_prob_eps: float = 1e-6  # eps in the tanh correction log(scale (1 - tanh(u)^2) + eps); 0: the exact density

    # Logging and evaluation
    log_interval: int = 500  # env steps between loss logs (and the non-finite check)
    eval_interval: int = 50_000  # env steps between evaluations; 0: only at the end
    eval_episodes: int = 20  # evaluation episodes, run at once in parallel envs (no exploration noise)
    progress_seconds: float = 30.0  # seconds between progress bar refreshes (0: every iteration)
    print_episodes: bool = False  # also print every finished training episode (TensorBoard gets them always)


ALGORITHM = "SAC"  # in messages, checkpoint formats and saved-model names
# bounds of the options, checked before a run starts: >= 1, >= 0, > 0, below a limit
AT_LEAST_ONE = (
    "total_timesteps num_envs gradient_steps buffer_size batch_size policy_frequency target_network_frequency"
    " log_interval eval_episodes"
).split()
NON_NEGATIVE = "learning_starts checkpoint_interval eval_interval progress_seconds log_prob_eps".split()
POSITIVE = "q_lr policy_lr alpha alpha_init alpha_lr reward_scale".split()
BELOW: dict = {}


# =====================================================================================================================
# The algorithm: networks -> the policy's log-probability and losses -> one update

# ---------------------------------------------------------------------------------------------------------------------
# Networks: twin critics and a tanh-squashed Gaussian policy

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


def mlp(in_dim: int, out_dim: int, hidden: int = 256) -> nn.Sequential:
    layers = [nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, out_dim)]
    return nn.Sequential(*layers)


class BatchedLinear(nn.Module):
    """n independent linear layers in one batched matmul, [n, B, in] -> [n, B, out]; nn.Linear's init per member."""

    def __init__(self, n: int, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(n, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class TwinQNetwork(nn.Module):
    """The twin critics Q1, Q2 (independent weights), evaluated in one batched call: returns [2, B]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 256):
        super().__init__()
        layers = [BatchedLinear(2, obs_dim + act_dim, hidden), nn.ReLU(), BatchedLinear(2, hidden, hidden), nn.ReLU()]
        self.net = nn.Sequential(*layers, BatchedLinear(2, hidden, 1))

    def forward(self, obs: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, a], -1)
        return self.net(x.expand(2, *x.shape)).squeeze(-1)


def tanh_gaussian_log_prob(u, mean, log_std, scale, eps: float = 1e-6) -> torch.Tensor:
    """log density of the env action scale * tanh(u) + bias, u ~ N(mean, exp(log_std)^2), per row: the Gaussian's
    log density minus sum_i log(scale_i (1 - tanh(u_i)^2) + eps), CleanRL's form.
    Its eps = 1e-6 caps the correction at -log(1e-6) = 13.8 per dimension, so a policy that saturates tanh is not
    charged further entropy for it. eps = 0 gives the exact density, in the stable form
    log(scale_i) + 2 (log 2 - u_i - softplus(-2 u_i))."""
    gauss = (-0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
    if eps == 0:
        return gauss - (scale.log() + 2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)
    return gauss - torch.log(scale * (1 - torch.tanh(u) ** 2) + eps).sum(-1)


class Actor(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, action_scale=None, log_prob_eps: float = 1e-6):
        super().__init__()
        self.act_dim, self.log_prob_eps = act_dim, log_prob_eps
        self.net = mlp(obs_dim, 2 * act_dim)
        # the env's (high - low) / 2, for the log-probability only (acting scales outside); not in the state_dict
        scale = torch.ones(act_dim) if action_scale is None else torch.as_tensor(action_scale, dtype=torch.float32)
        self.register_buffer("action_scale", scale, persistent=False)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(obs).chunk(2, -1)
        # squash log_std into [LOG_STD_MIN, LOG_STD_MAX] smoothly (CleanRL, SpinningUp)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1)
        return mean, log_std

    def get_action(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A reparameterised sample a = tanh(mean + std * xi) in [-1, 1]^d (the env gets a * scale + bias), the
        log-probability [B] of the env action, and the deterministic action tanh(mean) used for evaluation."""
        mean, log_std = self(obs)
        u = mean + log_std.exp() * torch.randn_like(mean)
        log_prob = tanh_gaussian_log_prob(u, mean, log_std, self.action_scale, self.log_prob_eps)
        assert log_prob.shape == obs.shape[:1], "one log-probability per state, not per action dimension"
        return torch.tanh(u), log_prob, torch.tanh(mean)


def min_q(qf: TwinQNetwork, obs: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return qf(obs, a).min(0).values


def actor_loss_fn(alpha: torch.Tensor, log_pi: torch.Tensor, min_qf_pi: torch.Tensor) -> torch.Tensor:
    """J_pi = E_s E_{a~pi}[alpha log pi(a|s) - min Q(s, a)]. Both inputs must be [B]: a [B, 1] against a [B]
    would broadcast to [B, B] and silently train on the wrong objective (CleanRL's users were bitten)."""
    if log_pi.dim() != 1 or log_pi.shape != min_qf_pi.shape:
        raise ValueError(f"log_pi {tuple(log_pi.shape)} and min_qf_pi {tuple(min_qf_pi.shape)} must both be [B]")
    return (alpha * log_pi - min_qf_pi).mean()


def alpha_loss_fn(log_alpha: torch.Tensor, log_pi: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """J(alpha) = E[-alpha (log pi + target_entropy)] on log alpha: alpha grows when the entropy -E[log pi] is
    below target and shrinks when it is above."""
    return (-log_alpha.exp() * (log_pi.detach() + target_entropy)).mean()


# ---------------------------------------------------------------------------------------------------------------------
# One update: the critic step, and the policy and alpha steps, each compiled whole under --compile


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


def make_update(actor, qf, qf_target, log_alpha, q_optimizer, actor_optimizer, a_optimizer, target_entropy, args):
    """update(batch, u), for update number u = 0, 1, ...: the critic step; after every policy_frequency-th critic step
    (u + 1 a multiple of it, as CleanRL counts), policy_frequency policy and alpha steps (TD3's delayed update); after
    every target_network_frequency-th, the target critics. Its statistics stay tensors (no host sync)."""

    def critic_loss(data: Batch):
        # soft policy evaluation: y = r + gamma (1 - done) (min Q_target(s', a') - alpha log pi(a'|s'))
        with torch.no_grad():
            next_a, next_log_pi, _ = actor.get_action(data.next_obs)
            next_q = min_q(qf_target, data.next_obs, next_a) - log_alpha.exp() * next_log_pi
            next_q_value = args.reward_scale * data.rewards + (1 - data.terminations) * args.gamma * next_q
        qf_a_values = qf(data.obs, data.actions)  # [2, B]: Q1 and Q2
        assert qf_a_values.shape == (2, *next_q_value.shape) and next_q_value.dim() == 1
        qf_losses = ((qf_a_values - next_q_value) ** 2).mean(1)
        q1, q2 = qf_a_values.detach().mean(1)
        stats = dict(qf1_values=q1, qf2_values=q2, qf1_loss=qf_losses[0].detach(), qf2_loss=qf_losses[1].detach())
        return qf_losses.sum(), dict(stats, qf_loss=qf_losses.detach().mean(), target_q=next_q.mean())

    def policy_loss(data: Batch):
        # soft policy improvement: the reparameterised KL to exp(Q / alpha)
        pi, log_pi, _ = actor.get_action(data.obs)
        loss = actor_loss_fn(log_alpha.detach().exp(), log_pi, min_q(qf, data.obs, pi))
        return loss, dict(actor_loss=loss.detach(), entropy=-log_pi.detach().mean())

    def alpha_loss(data: Batch):
        # alpha's loss towards the target entropy, on a fresh sample of the policy after its step (as CleanRL)
        with torch.no_grad():
            _, log_pi, _ = actor.get_action(data.obs)
        loss = alpha_loss_fn(log_alpha, log_pi, target_entropy)
        return loss, dict(alpha_loss=loss.detach())

    q_step, actor_step, alpha_step = q_optimizer.step, actor_optimizer.step, a_optimizer.step
    if args.compile or args.cudagraphs:
        mode = "reduce-overhead" if args.cudagraphs else None
        critic_loss, policy_loss = torch.compile(critic_loss, mode=mode), torch.compile(policy_loss, mode=mode)
        alpha_loss = torch.compile(alpha_loss, mode=mode)
        q_step, actor_step = torch.compile(q_step, mode=mode), torch.compile(actor_step, mode=mode)
        alpha_step = torch.compile(alpha_step, mode=mode)

    def update_critic(data: Batch) -> dict[str, torch.Tensor]:
        if args.cudagraphs:  # a new step: outputs of the last replay may be overwritten (we clone them)
            torch.compiler.cudagraph_mark_step_begin()
        loss, stats = critic_loss(data)
        q_optimizer.zero_grad()
        loss.backward()
        q_step()
        return {k: v.clone() for k, v in stats.items()} if args.cudagraphs else stats

    def update_actor(data: Batch) -> dict[str, torch.Tensor]:
        qf.requires_grad_(False)  # the policy's gradient flows through Q's input only, not into the critics
        loss, stats = policy_loss(data)
        actor_optimizer.zero_grad()
        loss.backward()
        qf.requires_grad_(True)
        actor_step()
        if args.autotune:
            loss, alpha_stats = alpha_loss(data)
            a_optimizer.zero_grad()
            loss.backward()
            alpha_step()
            stats = {**stats, **alpha_stats}
        return {k: v.clone() for k, v in stats.items()} if args.cudagraphs else stats

    def update(data: Batch, u: int) -> dict[str, torch.Tensor]:
        stats = update_critic(data)  # soft policy evaluation
        if (u + 1) % args.policy_frequency == 0:
            for _ in range(args.policy_frequency):
                stats = {**stats, **update_actor(data)}
        if (u + 1) % args.target_network_frequency == 0:
            soft_update(qf_target, qf, args.tau)
        return stats

    return update


# ---------------------------------------------------------------------------------------------------------------------
# Speed (optional): --compile and --cudagraphs, for the update above and for acting; eager runs skip all of it


def make_optimizer(params, lr: float, args: Args, device: torch.device) -> torch.optim.Adam:
    """Adam; compiled, its lr is a tensor (a new lr does not recompile) and capturable on CUDA (as CUDA graphs need)."""
    if args.compile or args.cudagraphs:
        return torch.optim.Adam(params, lr=torch.tensor(lr, device=device), capturable=device.type == "cuda")
    return torch.optim.Adam(params, lr=lr)


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
    """--eval-only: the deterministic policy of a saved run, obs -> tanh(mean)."""
    actor = Actor(obs_dim, act_dim, log_prob_eps=args.log_prob_eps).to(device)
    actor.load_state_dict(saved["actor"])
    return lambda obs: actor.get_action(obs)[2]


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

    # the tanh-Gaussian policy, the twin critics and their targets, and the entropy coefficient alpha
    actor = Actor(obs_dim, act_dim, scale, args.log_prob_eps).to(device)
    qf = TwinQNetwork(obs_dim, act_dim).to(device)
    qf_target = TwinQNetwork(obs_dim, act_dim).to(device)
    qf_target.load_state_dict(qf.state_dict())
    q_optimizer = make_optimizer(qf.parameters(), args.q_lr, args, device)
    actor_optimizer = make_optimizer(actor.parameters(), args.policy_lr, args, device)
    alpha = args.alpha_init if args.autotune else args.alpha
    log_alpha = torch.tensor(math.log(alpha), device=device, requires_grad=True)
    a_optimizer = make_optimizer([log_alpha], args.alpha_lr, args, device)
    rb = ReplayBuffer(args.buffer_size, obs_dim, act_dim, device)
    optimizers = q_optimizer, actor_optimizer, a_optimizer
    target_entropy = -args.target_entropy_scale * act_dim
    update = make_update(actor, qf, qf_target, log_alpha, *optimizers, target_entropy, args)
    policy = actor.get_action  # acting and evaluation
    if args.compile or args.cudagraphs:
        policy = compile_policy(policy, args)

    # what a checkpoint holds, by name
    state = dict(actor=actor, qf=qf, qf_target=qf_target, log_alpha=log_alpha, buffer=rb)
    state |= dict(q_optimizer=q_optimizer, actor_optimizer=actor_optimizer, a_optimizer=a_optimizer)
    global_step, iteration, num_updates, eval_history = restore_checkpoint(ckpt, state, args) if ckpt else (0, 0, 0, [])
    run_dir = (os.path.dirname(args.resume) or ".") if ckpt else f"runs/{run_name}"  # a resumed run: the same folder
    writer, tracker = open_logs(args, run_name, run_dir, global_step, resumed=ckpt is not None)
    print(f"SAC on {args.env_id} | {device} | {run_dir}")
    num_iterations = math.ceil(args.total_timesteps / args.num_envs)
    pbar = tqdm(
        total=args.total_timesteps, initial=global_step, unit="step", mininterval=args.progress_seconds, file=sys.stdout
    )
    metrics, last_checkpoint, iteration_seconds = {}, args.resume, []
    start_time, start_step = time.time(), global_step

    # start the game
    obs, _ = envs.reset(seed=args.seed + global_step)
    if ckpt:  # the envs as they were at the checkpoint: the run goes on as if never stopped
        obs = restore_env_state(envs, ckpt.get("envs"), obs)
    for iteration in range(iteration + 1, num_iterations + 1):
        iteration_start = time.perf_counter()
        global_step += args.num_envs

        # act (uniform random during warm-up, then a sample of the tanh-Gaussian policy), step, store
        if global_step <= args.learning_starts:
            actions = np.random.uniform(-1, 1, (args.num_envs, act_dim)).astype(np.float32)
        else:
            with torch.no_grad():
                actions = policy(torch.as_tensor(obs, dtype=torch.float32, device=device))[0].cpu().numpy()
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

        # training (a run resumed without its buffer first refills learning_starts transitions with the policy)
        if global_step > args.learning_starts and rb.size >= min(args.learning_starts, args.buffer_size):
            for _ in range(args.gradient_steps):
                u, num_updates = num_updates, num_updates + 1  # u counts updates from 0
                metrics |= update(rb.sample(args.batch_size), u)
            iteration_seconds.append(time.perf_counter() - iteration_start)
        if crossed(global_step, args.log_interval, args.num_envs):
            check_finite(metrics, global_step, last_checkpoint)  # the training step's one host sync
            for k, v in metrics.items():
                writer.add_scalar(f"losses/{k}", v, global_step)
            if metrics:
                writer.add_scalar("losses/alpha", log_alpha.exp(), global_step)
            writer.add_scalar("charts/SPS", (global_step - start_step) / (time.time() - start_time), global_step)

        if crossed(global_step, args.eval_interval, args.num_envs) or iteration == num_iterations:
            check_finite(metrics, global_step, last_checkpoint)
            frames = [] if args.capture_video else None
            eval_seed = args.seed + 100_000 + global_step
            returns, lengths = evaluate(lambda o: policy(o)[2], eval_envs, scale, bias, device, eval_seed, frames)
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
        save_model(f"{run_dir}/{args.exp_name}.sac_model", args, state)
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
    return out | {"checkpoint": last_checkpoint, "alpha": log_alpha.exp().item(), "seconds_per_iteration": seconds}


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
