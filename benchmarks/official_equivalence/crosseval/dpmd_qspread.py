# Our venv. The spread of min(Q1, Q2) at the policy's own next actions a' (the quantity whose running std DPMD's
# weights divide by, algorithm/dpmd.py:128-130), for our DPMD and the authors', on the SAME replayed states: those of
# our runs' buffers (checkpoints saved with --checkpoint-buffer). Each model: its EMA policy (the authors save only
# that one), its critics and its lambda; a' = best of N by min Q with noise 0.1 lambda, as in the update. Per model:
# the mean over batches of 256 of the batch std (what the running std averages), and that spread split into states
# (std over states of the mean over 8 draws of a') and actions (root mean of the per-state variance over the draws,
# unbiased).
# usage: OMP_NUM_THREADS=1 python dpmd_qspread.py --ours CKPT ... --theirs NPZ ... [--states 8192]
import argparse, os, sys
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
import dpmd_continuous_action as D  # noqa: E402
from xeval_maps import load_actor, load_q, src_of  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--ours", nargs="+", required=True)
p.add_argument("--theirs", nargs="+", required=True)
p.add_argument("--states", type=int, default=8192, help="states drawn from each of our buffers")
p.add_argument("--draws", type=int, default=8)
a = p.parse_args()
torch.set_num_threads(1)
torch.manual_seed(0)

# data only: tensors, plain types and numpy arrays (the 2026-11 studies' v3 checkpoints hold numpy's RNG state)
with torch.serialization.safe_globals([np._core.multiarray._reconstruct, np.ndarray, np.dtype, np.dtypes.UInt32DType]):
    ckpts = {path: torch.load(path, map_location="cpu", weights_only=True) for path in a.ours}
states = []
for c in ckpts.values():  # uniform over each buffer, as replay samples
    buf = c["buffer"]
    states.append(buf["data"][3][torch.randint(0, buf["size"], (a.states,))])  # next_obs: the weights' states
S_all = torch.cat(states)
obs_dim, act_dim = S_all.shape[1], ckpts[a.ours[0]]["buffer"]["data"][1].shape[1]
args = D.Args(env_id="Hopper-v4", num_candidates=4, diffusion_steps=10, cuda=False)
sched = D.make_schedule(args.beta_schedule, args.diffusion_steps, args.linear_beta_scale, "cpu")
policy = D.make_policy(sched, args)


def models():
    for path, c in ckpts.items():
        actor, qf = D.NoiseNetwork(obs_dim, act_dim), D.TwinQNetwork(obs_dim, act_dim)
        actor.load_state_dict(c["actor_ema"]), qf.load_state_dict(c["qf"])
        name = f"ours {c['run_name'].split('__')[2]} @ {c['global_step']}"
        yield name, actor, qf, float(torch.as_tensor(c["log_lam"]).exp()), c["q_stats"].tolist()
    for path in a.theirs:
        J = dict(np.load(path))
        actor, qf = D.NoiseNetwork(obs_dim, act_dim), D.TwinQNetwork(obs_dim, act_dim)
        load_actor(actor, src_of(J)), load_q(qf, src_of(J))
        with torch.no_grad():  # the map checked against their haiku forward on fixed inputs (dpmd_export.py)
            R = {k[4:]: torch.as_tensor(v) for k, v in J.items() if k.startswith("ref_")}
            d_eps = (actor(R["obs"], R["x"], R["t"]) - R["eps"]).abs().max().item()
            d_q = (qf(R["obs"], R["act"]) - torch.stack([R["q1"], R["q2"]])).abs().max().item()
        assert d_eps < 1e-4 and d_q < 1e-3, f"{path}: parameter map off (eps {d_eps:.1e}, Q {d_q:.1e})"
        print(f"{os.path.basename(path)}: forward max |diff| against theirs: eps {d_eps:.1e}, Q {d_q:.1e}")
        run, step = os.path.basename(path)[:-4].rsplit("_", 2)[-2:]  # dpmd_<date>_s1_cmp_s1_45000
        # their steps count from the end of the 5000-step warm-up, ours include it
        yield f"theirs {run[1:]} @ {int(step) + 5000}", actor, qf, float(np.exp(J["log_alpha"])), None


print(f"{len(S_all)} states ({a.states} from each of {len(ckpts)} buffers); {a.draws} draws of a' per state")
print(f"{'model':22s} {'lambda':>6s} {'mean Q':>7s} {'batch std':>9s} {'states':>7s} {'actions':>7s}  running (mean, std) in the checkpoint")
for name, actor, qf, lam, stats in models():
    with torch.no_grad():
        q = torch.stack([D.min_q(qf, S_all, policy(actor, qf, S_all, args.exploration_noise * lam)) for _ in range(a.draws)])
    batch_std = q[0][: len(S_all) // 256 * 256].view(-1, 256).std(1, correction=0).mean().item()
    between, within = q.mean(0).std(correction=0).item(), q.var(0).mean().sqrt().item()
    extra = "" if stats is None else f"  ({stats[0]:.3f}, {stats[1]:.3f})"
    print(f"{name:22s} {lam:6.3f} {q.mean().item():7.3f} {batch_std:9.3f} {between:7.3f} {within:7.3f}{extra}", flush=True)
