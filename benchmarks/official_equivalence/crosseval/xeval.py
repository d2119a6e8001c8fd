# Our venv. Loads the authors' saved policies (converted by convert.py: EMA policy, log_alpha, q1, q2) into OUR modules
# and evaluates them with OUR evaluate() (sdac_continuous_action.py, imported unmodified) on Hopper-v4:
# 5 calls x 20 parallel eval envs (as train() builds them: eval_episodes=20) with distinct seeds = 100 episodes.
# Param mapping: the same as benchmarks/official_equivalence/torch_side.py (load_actor / load_q), checked here
# against their haiku forward on fixed inputs (ref_<name>.npz from ref_forward.py).
# usage: OMP_NUM_THREADS=1 python xeval.py
import csv, glob, os, sys, time
import numpy as np
import torch

torch.set_num_threads(1)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
import sdac_continuous_action as S  # noqa: E402

NAMES = ("s1_25000", "s1_50000", "s2_25000", "s2_50000")
ROOT = "/tmp/official-sdac/src/logs/Hopper-v4"
RUNS = {"s1": "sdac_2026-11-23_14-09-20_s1_cmp_s1", "s2": "sdac_2026-11-23_16-54-15_s2_cmp_s2"}
BLOCKS, PER_BLOCK = 5, 20


from xeval_maps import load_actor, load_q, src_of, tt  # noqa: E402

args = S.Args(env_id="Hopper-v4", num_candidates=4, diffusion_steps=10, cuda=False)  # linear 0.8, x_T_scale 0.5
assert (args.beta_schedule, args.linear_beta_scale, args.x_T_scale, args.clip_noisy_actions) == ("linear", 0.8, 0.5, False)
device = torch.device("cpu")
scale, bias = S.check_env(args.env_id)
sched = S.make_schedule(args.beta_schedule, args.diffusion_steps, args.linear_beta_scale, device)
eval_envs = S.make_vector_env(args.env_id, PER_BLOCK)
obs_dim, act_dim = eval_envs.single_observation_space.shape[0], eval_envs.single_action_space.shape[0]
print(f"Hopper-v4 obs {obs_dim} act {act_dim} scale {scale} bias {bias}; N={args.num_candidates} T={args.diffusion_steps}")

results = {}
for name in NAMES:
    J = dict(np.load(f"/tmp/xeval/{name}.npz"))
    actor, qf = S.NoiseNetwork(obs_dim, act_dim), S.TwinQNetwork(obs_dim, act_dim)
    load_actor(actor, src_of(J)), load_q(qf, src_of(J))
    R = dict(np.load(f"/tmp/xeval/ref_{name}.npz"))
    with torch.no_grad():
        d_eps = (actor(tt(R["obs"]), tt(R["x"]), torch.as_tensor(R["t"])) - tt(R["eps"])).abs().max().item()
        q = qf(tt(R["obs"]), tt(R["act"]))
        d_q = max((q[0] - tt(R["q1"])).abs().max().item(), (q[1] - tt(R["q2"])).abs().max().item())
    torch.manual_seed(0)
    rets, lens, t0 = [], [], time.time()
    for k in range(BLOCKS):  # seeds as train() would pass them (args.seed + 100_000 + global_step), distinct per block
        r, l = S.evaluate(lambda o: S.make_policy(sched, args)(actor, qf, o, 0.0), eval_envs, scale, bias, device,
                          seed=args.seed + 100_000 + 1000 * k)
        rets.append(r), lens.append(l)
    rets, lens = np.concatenate(rets), np.concatenate(lens)
    np.savez(f"/tmp/xeval/ours_{name}.npz", returns=rets, lengths=lens)
    results[name] = rets
    blocks = rets.reshape(BLOCKS, PER_BLOCK).mean(1)
    print(f"{name}: forward max|diff| eps {d_eps:.1e} Q {d_q:.1e} | {len(rets)} eps mean {rets.mean():.2f} "
          f"std {rets.std():.2f} sem {rets.std() / np.sqrt(len(rets)):.2f} | blocks of 20: {np.round(blocks, 1)} "
          f"| mean len {lens.mean():.0f} ({time.time() - t0:.0f}s)", flush=True)

# ---- table: log.csv (their 20 eps) vs their evaluator (100 eps, their_eval.py) vs ours (100 eps)
print(f"\n{'run':4s} {'step':>6s} {'log.csv(20)':>12s} {'theirs(100) mean±sem':>22s} {'ours(100) mean±sem':>20s} "
      f"{'ours-theirs':>12s} {'z':>6s}")
for name in NAMES:
    run, step = name.split("_")
    logged = {int(r["step"]): float(r["avg_ret"]) for r in csv.DictReader(open(f"{ROOT}/{RUNS[run]}/log.csv"))}[int(step)]
    th = glob.glob(f"/tmp/xeval/their_{name}.npz")
    o = results[name]
    o_m, o_se = o.mean(), o.std(ddof=1) / np.sqrt(len(o))
    if th:
        t = np.load(th[0])["returns"]
        t_m, t_se = t.mean(), t.std(ddof=1) / np.sqrt(len(t))
        z = (o_m - t_m) / np.hypot(o_se, t_se)
        print(f"{run:4s} {step:>6s} {logged:12.1f} {t_m:14.1f} ± {t_se:5.1f} {o_m:12.1f} ± {o_se:5.1f} {o_m - t_m:+12.1f} {z:+6.2f}")
    else:
        print(f"{run:4s} {step:>6s} {logged:12.1f} {'-':>22s} {o_m:12.1f} ± {o_se:5.1f}")
