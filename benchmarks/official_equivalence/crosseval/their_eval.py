# Authors' venv. Runs THEIR evaluator function (relax/trainer/evaluator.py evaluate(), env and policy made exactly as in
# its __main__: seed 0 as off_policy.py:103 passes it, PersistFunction deterministic.pkl, jit(policy(...).clip(-1,1))).
# usage: JAX_PLATFORMS=cpu python their_eval.py [--episodes 100] [--replay-log s1|s2]
#   default: for each of {s1,s2} x {25000,50000}: a fresh evaluator env, 100 episodes -> their_<run>_<step>.npz
#   --replay-log RUN: feed all 20 policies of RUN in order to ONE evaluator env (as the trainer does) with 20 episodes
#                     each and compare with log.csv (tests that the evaluator is reproduced exactly)
import argparse, csv, glob, os, pickle, sys, time
import numpy as np
sys.path.insert(0, "/tmp/official-sdac/src")
import jax, jax.numpy as jnp
from relax.env import create_env
from relax.utils.persistence import PersistFunction
from relax.trainer.evaluator import evaluate

ROOT = "/tmp/official-sdac/src/logs/Hopper-v4"
RUNS = {"s1": "sdac_2026-11-23_14-09-20_s1_cmp_s1", "s2": "sdac_2026-11-23_16-54-15_s2_cmp_s2"}
p = argparse.ArgumentParser()
p.add_argument("--episodes", type=int, default=100)
p.add_argument("--replay-log", default=None)
p.add_argument("--only", default=None, help="e.g. s2_50000")
a = p.parse_args()


def make(run_dir, seed=0):  # evaluator.py __main__
    master_rng = np.random.default_rng(seed)
    env_seed, env_action_seed, policy_seed = map(int, master_rng.integers(0, 2**32 - 1, 3))
    env, _, _ = create_env("Hopper-v4", env_seed, env_action_seed)
    policy = PersistFunction.load(os.path.join(run_dir, "deterministic.pkl"))

    @jax.jit
    def policy_fn(policy_params, obs):
        return policy(policy_params, obs).clip(-1, 1)
    return env, policy_fn


def load(path):
    with open(path, "rb") as f:
        return pickle.load(f)


if a.replay_log:
    run_dir = f"{ROOT}/{RUNS[a.replay_log]}"
    env, policy_fn = make(run_dir)
    pols = sorted(glob.glob(f"{run_dir}/policy-*.pkl"), key=lambda s: int(os.path.basename(s).split("-")[1]))
    logged = {int(r["step"]): float(r["avg_ret"]) for r in csv.DictReader(open(f"{run_dir}/log.csv"))}
    t0 = time.time()
    for path in pols:
        step = int(os.path.basename(path).split("-")[1])
        lens, rets = evaluate(env, policy_fn, load(path), 20)
        print(f"{a.replay_log} step {step:6d}: replay {np.mean(rets):10.4f}  log.csv {logged[step]:10.4f}  "
              f"diff {np.mean(rets) - logged[step]:+.2e}  mean len {np.mean(lens):.0f}  ({time.time() - t0:.0f}s)", flush=True)
    sys.exit()

# forward reference for the torch side: their deterministic action / Q on fixed observations (single obs, as evaluated)
rng = np.random.default_rng(123)
ref_obs = rng.standard_normal((4, 11)).astype(np.float32) * 0.5
for tag, folder in RUNS.items():
    run_dir = f"{ROOT}/{folder}"
    for step in (25000, 50000):
        name = f"{tag}_{step}"
        if a.only and a.only != name:
            continue
        (path,) = glob.glob(f"{run_dir}/policy-{step}-*.pkl")
        params = load(path)
        env, policy_fn = make(run_dir)
        t0 = time.time()
        lens, rets = evaluate(env, policy_fn, params, a.episodes)
        dt = time.time() - t0
        rets, lens = np.asarray(rets), np.asarray(lens)
        det = np.stack([np.asarray(policy_fn(params, o)) for o in ref_obs])
        np.savez(f"/tmp/xeval/their_{name}.npz", returns=rets, lengths=lens, ref_obs=ref_obs, ref_det_action=det)
        blocks = rets.reshape(-1, 20).mean(1) if len(rets) % 20 == 0 else []
        print(f"{name}: {len(rets)} eps  mean {rets.mean():.2f} std {rets.std():.2f} sem {rets.std() / np.sqrt(len(rets)):.2f}"
              f"  blocks of 20: {np.round(blocks, 1)}  mean len {lens.mean():.0f}  ({dt:.0f}s, {lens.sum()} steps)", flush=True)
