"""Plants one plausible bug at a time in a scratch copy of the repository and runs the tests: does the suite catch it?
Two lists: TARGETED (each bug with the tests written for it) and ALGORITHM (bugs in each algorithm's update and
sampler, run against the suite's fast files, in order, stopping at the first failure). Left out as equivalent: noise
added at the sampler's last step too (its variance there is 0, so only the random stream changes); DACER's mixture
weights nk / M for nk / sum(nk) (they differ by 10 machine epsilons). Prints one line per bug:
which test caught it, or NOT CAUGHT. A mutation that cannot be applied (the code moved) says so. Minutes per bug.

    python benchmarks/plant_bugs.py                      # both lists
    python benchmarks/plant_bugs.py targeted             # one
    SKIP=3 python benchmarks/plant_bugs.py algorithm     # from the fourth bug on
    ONLY=DACER python benchmarks/plant_bugs.py           # the bugs whose label holds DACER
"""

import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
S, D, A = "sdac_continuous_action.py", "dpmd_continuous_action.py", "sac_continuous_action.py"
C = "dacer_continuous_action.py"
T, TC = "tests/test_update_math.py", ["tests/test_dacer.py"]

TARGETED = [
    (
        "SDAC: updates after the env step as well, when asked before it",
        S,
        "        if learning and not args.update_before_step:",
        "        if learning:",
        ["tests/test_update_order.py"],
    ),
    (
        "SDAC: an update before the env step samples an empty buffer",
        S,
        "if rb.size == 0 or rb.size < min(args.learning_starts, args.buffer_size):",
        "if rb.size < min(args.learning_starts, args.buffer_size):",
        ["tests/test_update_order.py"],
    ),
    (
        "SDAC one chain: a' and a0 swapped (targeted)",
        S,
        "next_a, a0 = policy(actor, qf, torch.cat([data.next_obs, data.obs]), noise_std).chunk(2)",
        "a0, next_a = policy(actor, qf, torch.cat([data.next_obs, data.obs]), noise_std).chunk(2)",
        ["tests/test_update_math.py"],
    ),
    (
        "speed: the operator count not differenced",
        "benchmarks/speed.py",
        "return (long.count - short.count) / iterations",
        "return long.count / iterations",
        ["tests/test_speed.py"],
    ),
    # (label, file, old, new, tests)
    ("SDAC target: (1 - done) dropped", S, "(1 - data.terminations) * args.gamma * next_q", "args.gamma * next_q", [T]),
    (
        "SDAC target: online critics for the targets",
        S,
        "next_q = min_q(qf_target, data.next_obs, next_a)",
        "next_q = min_q(qf, data.next_obs, next_a)",
        [T],
    ),
    (
        "SDAC target: entropy bonus without lambda",
        S,
        "next_q = next_q + lam * exploration_entropy(",
        "next_q = next_q + exploration_entropy(",
        [T],
    ),
    (
        "SDAC target: reward scale lost",
        S,
        "next_q_value = args.reward_scale * data.rewards +",
        "next_q_value = data.rewards +",
        [T],
    ),
    ("DPMD target: (1 - done) dropped", D, "(1 - data.terminations) * args.gamma * next_q", "args.gamma * next_q", [T]),
    (
        "DPMD target: online critics for the targets",
        D,
        "next_q = min_q(qf_target, data.next_obs, next_a)",
        "next_q = min_q(qf, data.next_obs, next_a)",
        [T],
    ),
    ("SAC target: (1 - done) dropped", A, "(1 - data.terminations) * args.gamma * next_q", "args.gamma * next_q", [T]),
    (
        "SAC target: + alpha log pi",
        A,
        "next_a) - log_alpha.exp() * next_log_pi",
        "next_a) + log_alpha.exp() * next_log_pi",
        [T],
    ),
    (
        "SAC target: online critics",
        A,
        "next_q = min_q(qf_target, data.next_obs, next_a)",
        "next_q = min_q(qf, data.next_obs, next_a)",
        [T],
    ),
    (
        "SDAC lambda: target entropy sign",
        S,
        "act_dim, target_entropy = actor.act_dim, -args.target_entropy_scale * actor.act_dim",
        "act_dim, target_entropy = actor.act_dim, args.target_entropy_scale * actor.act_dim",
        [T],
    ),
    (
        "SDAC lambda: entropy of sigma, not sigma^2",
        S,
        "torch.log(2 * math.pi * math.e * sigma**2)",
        "torch.log(2 * math.pi * math.e * sigma)",
        [T],
    ),
    (
        "SDAC lambda: no detach",
        S,
        "lam_loss = log_lam * (entropy - target_entropy).detach()",
        "lam_loss = log_lam * (entropy - target_entropy)",
        [T],
    ),
    (
        "DPMD lambda: target entropy sign",
        D,
        "act_dim, target_entropy = actor.act_dim, -args.target_entropy_scale * actor.act_dim",
        "act_dim, target_entropy = actor.act_dim, args.target_entropy_scale * actor.act_dim",
        [T],
    ),
    (
        "DPMD lambda: no detach",
        D,
        "lam_loss = log_lam * (entropy - target_entropy).detach()",
        "lam_loss = log_lam * (entropy - target_entropy)",
        [T],
    ),
    (
        "DPMD lambda: entropy without 2 pi e",
        D,
        "torch.log(2 * math.pi * math.e * sigma**2)",
        "torch.log(sigma**2)",
        [T],
    ),
    (
        "SAC alpha: loss sign",
        A,
        "return (-log_alpha.exp() * (log_pi.detach() + target_entropy)).mean()",
        "return (log_alpha.exp() * (log_pi.detach() + target_entropy)).mean()",
        [T],
    ),
    (
        "SDAC: RSSM's Q with gradient",
        S,
        "    with torch.no_grad():\n        q = q_fn(obs_rep, a0_tilde).view(B, K)",
        "    if True:\n        q = q_fn(obs_rep, a0_tilde).view(B, K)",
        [T, "tests/test_sdac_math.py"],
    ),
    (
        "DPMD: the weights' Q with gradient",
        D,
        "        with torch.no_grad():  # the weights' Q: the critics after their first step",
        "        if True:  # the weights' Q: the critics after their first step",
        [T],
    ),
    (
        "DPMD: weights' Q before the critic step",
        D,
        "        q_step()\n        with torch.no_grad():  # the weights' Q: the critics after their first step\n            q = min_q(qf, data.next_obs, next_a)",
        "        with torch.no_grad():  # the weights' Q: the critics after their first step\n            q = min_q(qf, data.next_obs, next_a)\n        q_step()",
        [T],
    ),
    (
        "DPMD: weights' Q after both critic steps",
        D,
        "        with torch.no_grad():  # the weights' Q: the critics after their first step\n            q = min_q(qf, data.next_obs, next_a)\n",
        "        if args.critic_double_step:\n            q_step()\n        with torch.no_grad():  # the weights' Q: the critics after their first step\n            q = min_q(qf, data.next_obs, next_a)\n",
        [T],
    ),
    (
        "SDAC train: next_obs stored as s'",
        S,
        '            real_next_obs[i] = infos["final_obs"][i]\n',
        "            pass\n",
        ["tests/test_env_handling.py"],
    ),
    (
        "SDAC train: done = terminated | truncated",
        S,
        "rb.add(obs, actions, rewards, real_next_obs, terminations)",
        "rb.add(obs, actions, rewards, real_next_obs, terminations | truncations)",
        ["tests/test_env_handling.py"],
    ),
    (
        "SAC train: next_obs stored as s'",
        A,
        '            real_next_obs[i] = infos["final_obs"][i]\n',
        "            pass\n",
        ["tests/test_env_handling.py"],
    ),
    (
        "DPMD train: done = terminated | truncated",
        D,
        "rb.add(obs, actions, rewards, real_next_obs, terminations)",
        "rb.add(obs, actions, rewards, real_next_obs, terminations | truncations)",
        ["tests/test_env_handling.py"],
    ),
    (
        "resume: target critics not restored",
        S,
        "        elif ckpt[name] is not None:\n            obj.load_state_dict(ckpt[name])",
        '        elif ckpt[name] is not None and name != "qf_target":\n            obj.load_state_dict(ckpt[name])',
        ["tests/test_crash_and_resume.py"],
    ),
    (
        "resume: optimisers not restored",
        D,
        '            obj.load_state_dict(ckpt[name] | {"param_groups": groups})',
        '            (lambda _: None)(ckpt[name] | {"param_groups": groups})',
        ["tests/test_crash_and_resume.py"],
    ),
    (
        "resume: numpy RNG not restored",
        A,
        '    np.random.set_state(("MT19937", key.numpy().astype(np.uint32), pos, has_gauss, cached))\n',
        "",
        ["tests/test_crash_and_resume.py"],
    ),
    (
        "resume: lambda not restored",
        S,
        "            with torch.no_grad():\n                obj.copy_(ckpt[name])",
        "            pass",
        ["tests/test_crash_and_resume.py"],
    ),
    (
        "RSSM weights: sign of Q",
        S,
        "w = torch.softmax(q / temperature, dim=1)",
        "w = torch.softmax(-q / temperature, dim=1)",
        ["tests/test_sdac_math.py"],
    ),
    (
        "RSSM weights: temperature dropped",
        S,
        "w = torch.softmax(q / temperature, dim=1)",
        "w = torch.softmax(q, dim=1)",
        ["tests/test_sdac_math.py"],
    ),
    (
        "DPMD drifts from SDAC: reverse_diffusion",
        D,
        "x0_hat = ((x - sqrt_one_minus_abar * eps)",
        "x0_hat = ((x - sqrt_one_minus_abar**2 * eps)",
        ["tests/test_plumbing.py"],
    ),
    (
        "DPMD drifts from SDAC: sample_actions argmin",
        D,
        ".view(B, N).argmax(1)",
        ".view(B, N).argmin(1)",
        ["tests/test_plumbing.py"],
    ),
    (
        "the algorithm uses a plumbing name",
        S,
        '        raise ValueError(f"unknown beta schedule {kind!r}")',
        '        raise RunError(f"unknown beta schedule {kind!r}")',
        ["tests/test_plumbing.py"],
    ),
    (
        "resume: the checkpoint's optimiser settings win (capturable)",
        S,
        'groups = [saved | m | {"lr": float(saved["lr"])}',
        'groups = [m | saved | {"lr": float(saved["lr"])}',
        ["tests/test_device_paths.py"],
    ),
    (
        "acting policy compiled with dynamic shapes",
        S,
        'compiled = torch.compile(policy, mode="reduce-overhead" if args.cudagraphs else None, dynamic=False)',
        'compiled = torch.compile(policy, mode="reduce-overhead" if args.cudagraphs else None)',
        ["tests/test_device_paths.py"],
    ),
    (
        "SAC policy loss into the critics",
        A,
        "        qf.requires_grad_(False)  # the policy's gradient flows through Q's input only, not into the critics\n",
        "",
        ["tests/test_device_paths.py"],
    ),
    (
        "EGL for a --no-cuda run",
        S,
        '"egl" if cuda and torch.cuda.is_available() else "osmesa"',
        '"egl" if torch.cuda.is_available() else "osmesa"',
        ["tests/test_device_paths.py"],
    ),
    (
        "benchmark.sh: a stopped run marked failed",
        "benchmark.sh",
        "  if [ $rc = 75 ]; then  # the scripts' EXIT_STOPPED",
        "  if false; then",
        ["tests/test_benchmark.py::test_a_run_stopped_by_a_signal_is_not_marked_finished"],
    ),
    (
        "benchmark.sh: no lock per run",
        "benchmark.sh",
        '    if ! flock -n "$lock"; then',
        "    if false; then",
        ["tests/test_benchmark.py::test_one_process_per_run_folder"],
    ),
    (
        "a safe stop exits 0",
        S,
        'sys.exit(EXIT_STOPPED if train(args, stop)["stopped"] else 0)',
        'sys.exit(0 if train(args, stop)["stopped"] else 0)',
        ["tests/test_safe_stop.py"],
    ),
    (
        "SDAC sampler: x0_hat not clipped",
        S,
        "/ sqrt_abar).clamp(-1, 1)",
        "/ sqrt_abar)",
        ["tests/test_sdac_math.py"],
    ),
    (
        "SDAC RSSM: t tiled, not repeated with its a_t",
        S,
        "pred = actor(obs_rep, a_t.repeat_interleave(K, 0), t_idx.repeat_interleave(K, 0))",
        "pred = actor(obs_rep, a_t.repeat_interleave(K, 0), t_idx.repeat(K))",
        ["tests/test_sdac_math.py"],
    ),
    (
        "SDAC RSSM: states tiled, not repeated",
        S,
        "    obs_rep = obs.repeat_interleave(K, 0)\n    with torch.no_grad():",
        "    obs_rep = obs.repeat(K, 1)\n    with torch.no_grad():",
        ["tests/test_sdac_math.py"],
    ),
    (
        "SDAC policy step: (1 - abar) for its square root in a_t",
        S,
        "a_t = abar.sqrt() * a0 + (1 - abar).sqrt() * torch.randn_like(a0)",
        "a_t = abar.sqrt() * a0 + (1 - abar) * torch.randn_like(a0)",
        [T],
    ),
    (
        "SDAC policy step: a0 not noised",
        S,
        "a_t = abar.sqrt() * a0 + (1 - abar).sqrt() * torch.randn_like(a0)",
        "a_t = a0",
        [T],
    ),
    (
        "SDAC: EMA policy not updated",
        S,
        "            soft_update(actor_ema, actor, args.tau)\n        if u % args.target_network_frequency == 0:",
        "        if u % args.target_network_frequency == 0:",
        [T],
    ),
    (
        "DPMD: target critics every update",
        D,
        "        if u % args.target_network_frequency == 0:\n            soft_update(qf_target, qf, args.tau)",
        "        if True:\n            soft_update(qf_target, qf, args.tau)",
        [T],
    ),
    (
        "SAC: target critics every 2nd update",
        A,
        "if (u + 1) % args.target_network_frequency == 0:",
        "if (u + 1) % (args.target_network_frequency + 1) == 0:",
        [T],
    ),
    (
        "DPMD policy step: at s, not s'",
        D,
        "loss = weighted_dsm_loss(actor, data.next_obs, next_a, t_idx, sched, w)",
        "loss = weighted_dsm_loss(actor, data.obs, next_a, t_idx, sched, w)",
        [T],
    ),
    (
        "buffer checkpoint: the view's whole storage",
        S,
        'x[: self.size].to("cpu", copy=True)',
        "x[: self.size].cpu()",
        ["tests/test_crash_and_resume.py"],
    ),
    (
        "cudagraphs: SDAC's stats not copied",
        S,
        "        return {k: v.clone() for k, v in stats.items()} if args.cudagraphs else stats",
        "        return stats",
        ["tests/test_cudagraph_branches.py"],
    ),
    (
        "cudagraphs: no step-begin mark in SAC's update",
        A,
        "        if args.cudagraphs:  # a new step: outputs of the last replay may be overwritten (we clone them)\n            torch.compiler.cudagraph_mark_step_begin()\n",
        "",
        ["tests/test_cudagraph_branches.py"],
    ),
    (
        "cudagraphs: no step-begin mark per policy call",
        D,
        "    def step(*a, **k):\n        torch.compiler.cudagraph_mark_step_begin()\n",
        "    def step(*a, **k):\n",
        ["tests/test_cudagraph_branches.py"],
    ),
    (
        "--tf32 through the legacy flags, never reset",
        S,
        '    torch.set_float32_matmul_precision("high" if args.tf32 else "highest")',
        "    if args.tf32:\n        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True",
        ["tests/test_device_paths.py"],
    ),
    (
        "speed.py: one failing mode ends the run",
        "benchmarks/speed.py",
        "                    except Exception as e:  # noqa: BLE001",
        "                    except KeyboardInterrupt as e:  # noqa: BLE001",
        ["tests/test_speed.py"],
    ),
    (
        "loading: a checkpoint unpickled with weights_only=False",
        A,
        'ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)',
        'ckpt = torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)',
        ["tests/test_loading_is_data.py"],
    ),
    (
        "write: a failed write leaves its temp file",
        D,
        '            os.remove(f"{path}.tmp")\n',
        "            pass\n",
        ["tests/test_loading_is_data.py"],
    ),
    (
        "write: non-finite weights written",
        S,
        '    if bad := non_finite({k: v for k, v in obj.items() if k != "buffer"}):',
        "    if bad := []:",
        ["tests/test_loading_is_data.py"],
    ),
    (
        "resume: the envs restart their episodes",
        S,
        '        obs = restore_env_state(envs, ckpt.get("envs"), obs)\n',
        "        pass\n",
        ["tests/test_exact_resume.py"],
    ),
    (
        "resume: the envs' random generators not restored",
        A,
        '        base.np_random.bit_generator.state = sub["rng"]\n',
        "",
        ["tests/test_exact_resume.py"],
    ),
    (
        "gpu_run.sh: stages stopped with SIGTERM, never killed",
        "benchmarks/gpu_run.sh",
        'timeout -s INT -k "$KILL_AFTER" "$cap" "$@"',
        'timeout "$cap" "$@"',
        ["tests/test_gpu_run.py"],
    ),
    (
        "a stop read twice in one iteration: a resume command without a checkpoint",
        S,
        "        if stopping and iteration < num_iterations:",
        "        if stop and iteration < num_iterations:",
        ["tests/test_safe_stop.py"],
    ),
    # DACER (tests/test_dacer.py)
    (
        "DACER chain: no gradient through it",
        C,
        "a0 = reverse_diffusion(actor, obs, sched, actor.act_dim, x_T_scale)",
        "a0 = reverse_diffusion(actor, obs, sched, actor.act_dim, x_T_scale).detach()",
        TC,
    ),
    (
        "DACER action: not clipped after the noise",
        C,
        "return (a0 + noise_std * torch.randn_like(a0)).clamp(-1, 1)",
        "return a0 + noise_std * torch.randn_like(a0)",
        TC,
    ),
    (
        "DACER target: the larger mean",
        C,
        "next_q = next_mean.min(0).values",
        "next_q = next_mean.max(0).values",
        TC,
    ),
    (
        "DACER target: the other critic's sample",
        C,
        "torch.where(next_mean[0] < next_mean[1], next_sample[0], next_sample[1])",
        "torch.where(next_mean[0] < next_mean[1], next_sample[1], next_sample[0])",
        TC,
    ),
    ("DACER target: (1 - done) dropped", C, "not_done = 1 - data.terminations", "not_done = 1", TC),
    (
        "DACER target: online critics",
        C,
        "next_mean, next_std = qf_target(data.next_obs, next_a)",
        "next_mean, next_std = qf(data.next_obs, next_a)",
        TC,
    ),
    (
        "DACER target sample: z not clipped",
        C,
        "return mean + std * torch.randn_like(mean).clamp(-clip, clip)",
        "return mean + std * torch.randn_like(mean)",
        TC,
    ),
    (
        "DACER loss: the sampled target not bounded",
        C,
        "y_b = (q_mean + (target_sample - q_mean).clamp(-bound * sb, bound * sb)).detach()",
        "y_b = target_sample.detach()",
        TC,
    ),
    (
        "DACER loss: the std term differentiates the mean",
        C,
        "((q_mean.detach() - y_b) ** 2 - std_sg**2)",
        "((q_mean - y_b) ** 2 - std_sg**2)",
        TC,
    ),
    (
        "DACER loss: scale without sigma_bar",
        C,
        "return -(sigma_bar**2 + eps) * (mean_term + std_term).mean(1)",
        "return -(1 + eps) * (mean_term + std_term).mean(1)",
        TC,
    ),
    (
        "DACER sigma_bar: no sentinel",
        C,
        "return torch.where(sigma_bar == -1.0, new, tau * new + (1 - tau) * sigma_bar)",
        "return tau * new + (1 - tau) * sigma_bar",
        TC,
    ),
    ("DACER policy loss: + min Q", C, "loss = -q_mean.min(0).values.mean()", "loss = q_mean.min(0).values.mean()", TC),
    ("DACER critics: the policy's gradients kept", C, "        q_optimizer.zero_grad()\n", "", TC),
    (
        "DACER alpha: loss sign flipped",
        C,
        "alpha_loss = -log_alpha * (target_entropy - entropy)",
        "alpha_loss = log_alpha * (target_entropy - entropy)",
        TC,
    ),
    (
        "DACER entropy: the weights' entropy dropped",
        C,
        "return -(weights * weights.log()).sum(-1) + (weights * gaussians).sum(-1)",
        "return (weights * gaussians).sum(-1)",
        TC,
    ),
    (
        "DACER mixture: no 1e-6 on the covariances",
        C,
        "return nk, means, cov + reg * torch.eye(d, dtype=x.dtype, device=x.device)",
        "return nk, means, cov",
        TC,
    ),
    (
        "DACER mixture: all states stop together",
        C,
        "done = done | ((new_bound - bound).abs() < tol)",
        "done = done | ((new_bound - bound).abs() < tol).all()",
        TC,
    ),
    (
        "DACER: a fixed fit seed not restored before each estimate",
        C,
        "                generator.manual_seed(args.entropy_fit_seed)\n",
        "                pass\n",
        TC,
    ),
    (
        "DACER: the policy at every update",
        C,
        "        update_policy = u % args.policy_frequency == 0\n        if update_policy and args.anneal_lr:  # the policy lr is counted in policy updates\n            lr_args = args.policy_lr, args.policy_lr_end, args.policy_lr_decay_begin, args.policy_lr_decay_steps\n            set_lr(actor_optimizer, policy_lr_at(u // args.policy_frequency, *lr_args))\n        stats = {}",
        "        update_policy = True\n        stats = {}",
        TC,
    ),
]

ALGORITHM = [
    (
        "SDAC sampler: the posterior variance where its std belongs",
        S,
        "coef1, coef2, var.sqrt())",
        "coef1, coef2, var)",
        None,
    ),
    (
        "SDAC sampler: time embeddings in reverse order",
        S,
        "eps = actor.eps(obs, x, emb[i].expand(B, -1))",
        "eps = actor.eps(obs, x, emb[T - 1 - i].expand(B, -1))",
        None,
    ),
    (
        "SDAC one chain: a' and a0 swapped",
        S,
        "next_a, a0 = policy(actor, qf, torch.cat([data.next_obs, data.obs]), noise_std).chunk(2)",
        "a0, next_a = policy(actor, qf, torch.cat([data.next_obs, data.obs]), noise_std).chunk(2)",
        None,
    ),
    (
        "SDAC one chain: a0 drawn at s'",
        S,
        "torch.cat([data.next_obs, data.obs])",
        "torch.cat([data.next_obs, data.next_obs])",
        None,
    ),
    (
        "SDAC sampler: posterior coefficients swapped",
        S,
        "x = coef1 * x0_hat + coef2 * x",
        "x = coef2 * x0_hat + coef1 * x",
        None,
    ),
    ("SDAC sampler: best of N by argmin", S, ".view(B, N).argmax(1)", ".view(B, N).argmin(1)", None),
    ("SDAC sampler: x0_hat not clipped", S, "/ sqrt_abar).clamp(-1, 1)", "/ sqrt_abar)", None),
    (
        "SDAC eq. 17: sign of the noise",
        S,
        "return a_t / abar_t.sqrt() - ((1 - abar_t) / abar_t).sqrt() * eps, eps",
        "return a_t / abar_t.sqrt() + ((1 - abar_t) / abar_t).sqrt() * eps, eps",
        None,
    ),
    (
        "SDAC eq. 17: variance for std",
        S,
        "return a_t / abar_t.sqrt() - ((1 - abar_t) / abar_t).sqrt() * eps, eps",
        "return a_t / abar_t.sqrt() - ((1 - abar_t) / abar_t) * eps, eps",
        None,
    ),
    (
        "SDAC RSSM: t not repeated with its a_t (index)",
        S,
        "pred = actor(obs_rep, a_t.repeat_interleave(K, 0), t_idx.repeat_interleave(K, 0))",
        "pred = actor(obs_rep, a_t.repeat_interleave(K, 0), t_idx.repeat(K))",
        None,
    ),
    (
        "SDAC RSSM: states tiled, not repeated (index)",
        S,
        "    obs_rep = obs.repeat_interleave(K, 0)\n    with torch.no_grad():",
        "    obs_rep = obs.repeat(K, 1)\n    with torch.no_grad():",
        None,
    ),
    (
        "SDAC policy step: a_t with (1 - abar) for its sqrt",
        S,
        "a_t = abar.sqrt() * a0 + (1 - abar).sqrt() * torch.randn_like(a0)",
        "a_t = abar.sqrt() * a0 + (1 - abar) * torch.randn_like(a0)",
        None,
    ),
    (
        "SDAC policy step: a0 for a_t (no noising)",
        S,
        "a_t = abar.sqrt() * a0 + (1 - abar).sqrt() * torch.randn_like(a0)",
        "a_t = a0",
        None,
    ),
    (
        "SDAC update: policy on the odd updates",
        S,
        "update_policy = u % args.policy_frequency == 0",
        "update_policy = u % args.policy_frequency == 1",
        None,
    ),
    (
        "SDAC update: soft update with 1 - tau",
        S,
        "torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), tau)",
        "torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), 1 - tau)",
        None,
    ),
    (
        "SDAC critic: only Q1 trained",
        S,
        "        return qf_losses.sum(), dict(",
        "        return qf_losses[0], dict(",
        None,
    ),
    (
        "SDAC critic: Q(s', a) in the loss (swapped tensor)",
        S,
        "qf_a_values = qf(data.obs, data.actions)  # [2, B]: Q1 and Q2",
        "qf_a_values = qf(data.next_obs, data.actions)  # [2, B]: Q1 and Q2",
        None,
    ),
    (
        "SDAC acting: exploration noise squared",
        S,
        "noisy = cand + noise_std * torch.randn_like(cand)",
        "noisy = cand + noise_std**2 * torch.randn_like(cand)",
        None,
    ),
    (
        "SDAC: EMA policy not updated",
        S,
        "            soft_update(actor_ema, actor, args.tau)\n        if u % args.target_network_frequency == 0:",
        "        if u % args.target_network_frequency == 0:",
        None,
    ),
    (
        "DPMD loss: noising coefficients swapped",
        D,
        "pred = actor(obs, abar.sqrt() * a0 + (1 - abar).sqrt() * eps, t_idx)",
        "pred = actor(obs, (1 - abar).sqrt() * a0 + abar.sqrt() * eps, t_idx)",
        None,
    ),
    (
        "DPMD weights: multiplied by lambda",
        D,
        "return torch.exp(z.clamp(-clip, clip) / lam), z",
        "return torch.exp(z.clamp(-clip, clip) * lam), z",
        None,
    ),
    (
        "DPMD weights: no clip",
        D,
        "return torch.exp(z.clamp(-clip, clip) / lam), z",
        "return torch.exp(z / lam), z",
        None,
    ),
    (
        "DPMD stats: rate 1 - rate",
        D,
        "q_stats.lerp_(torch.stack([q.mean(), q.std(correction=0)]), args.q_stats_rate)",
        "q_stats.lerp_(torch.stack([q.mean(), q.std(correction=0)]), 1 - args.q_stats_rate)",
        None,
    ),
    (
        "DPMD policy step: at s, not s' (swapped tensor)",
        D,
        "loss = weighted_dsm_loss(actor, data.next_obs, next_a, t_idx, sched, w)",
        "loss = weighted_dsm_loss(actor, data.obs, next_a, t_idx, sched, w)",
        None,
    ),
    (
        "DPMD loss: weights ignored",
        D,
        "return (w[:, None] * (pred - eps) ** 2).mean()",
        "return ((pred - eps) ** 2).mean()",
        None,
    ),
    (
        "SAC actor loss: + min Q",
        A,
        "return (alpha * log_pi - min_qf_pi).mean()",
        "return (alpha * log_pi + min_qf_pi).mean()",
        None,
    ),
    (
        "SAC critic: only Q1 trained",
        A,
        "        return qf_losses.sum(), dict(",
        "        return qf_losses[0], dict(",
        None,
    ),
    (
        "SAC: target every 2nd update for every 1st",
        A,
        "if (u + 1) % args.target_network_frequency == 0:",
        "if (u + 1) % (args.target_network_frequency + 1) == 0:",
        None,
    ),
]


ORDER = [
    f"tests/test_{n}.py"
    for n in (
        "update_math",
        "sdac_math",
        "sdac_authors_code",
        "dpmd",
        "dacer",
        "sac",
        "plumbing",
        "compiled_paths",
        "sdac_smoke",
        "env_handling",
        "crash_and_resume",
        "eval_only",
        "bad_input",
        "run_output",
        "safe_stop",
    )
]


def run(label, fname, old, new, tests):
    """The bug planted in a scratch copy, the tests run there: which test caught it, or NOT CAUGHT."""
    work = tempfile.mkdtemp(prefix="plant_bugs_")
    for f in (S, D, A, C, "pytest.ini", "rssm_toy_gmm.py", "benchmark.sh"):
        shutil.copy(os.path.join(REPO, f), work)
    shutil.copytree(os.path.join(REPO, "tests"), os.path.join(work, "tests"))
    shutil.copytree(os.path.join(REPO, "benchmarks"), os.path.join(work, "benchmarks"))
    path = os.path.join(work, fname)
    text = open(path).read()
    if text.count(old) != 1:
        return f"NOT APPLIED ({text.count(old)} matches)"
    open(path, "w").write(text.replace(old, new))
    # the check that DPMD's copies equal SDAC's would catch any bug planted in one copy, and the formatter check a
    # planted line that ruff would lay out otherwise: both left out of the ALGORITHM list
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "not slow",
        *(tests or ORDER + ["-k", "not two_scripts_share and not shared_pieces and not one_formatter"]),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env, timeout=1800)
    failed = [l for l in out.stdout.splitlines() if l.startswith("FAILED") or l.startswith("ERROR")]
    shutil.rmtree(work, ignore_errors=True)
    return ("caught by " + failed[0].split(" - ")[0].replace("FAILED ", "")) if out.returncode != 0 else "NOT CAUGHT"


if __name__ == "__main__":
    groups = {"targeted": TARGETED, "algorithm": ALGORITHM}
    for g in sys.argv[1:] or list(groups):
        for label, fname, old, new, tests in groups[g][int(os.environ.get("SKIP", "0")) :]:
            if os.environ.get("ONLY", "") not in label:
                continue
            print(f"{g} | {label} | {run(label, fname, old, new, tests)}", flush=True)
