import os, sys, functools
os.environ["OMP_NUM_THREADS"] = "1"
HERE = os.path.dirname(os.path.abspath(__file__)); sys.path.insert(0, os.path.join(HERE, "..", "..")); sys.path.insert(0, HERE)
import numpy as np, torch, gymnasium as gym
torch.set_num_threads(1)
K = int(os.environ.get("MAXSTEPS", "0")); N = int(os.environ.get("NSTEPS", "3000"))
if K:
    gym.make = functools.partial(gym.make, max_episode_steps=K)  # both sides patched the same way
import sac_continuous_action as S
from common_act import act
scale, bias = S.check_env("Hopper-v4")
envs = S.make_vector_env("Hopper-v4", 1)
rb = S.ReplayBuffer(100_000, envs.single_observation_space.shape[0], envs.single_action_space.shape[0], torch.device("cpu"))
eps, raw = [], []
global_step = 0
obs, _ = envs.reset(seed=1 + global_step)          # sac_continuous_action.py:558 (seed=args.seed+global_step)
for it in range(N):
    global_step += 1
    actions = act(it, obs)
    next_obs, rewards, terminations, truncations, infos = envs.step(actions * scale + bias)   # :576
    for i in np.flatnonzero(infos.get("_episode", [])):   # train()'s episode logging
        eps.append((global_step, float(infos["episode"]["r"][i]), int(infos["episode"]["l"][i])))
    raw.append((terminations[0], truncations[0]))
    real_next_obs = next_obs.copy()  # train(): the true s' where an episode ended
    for i in np.flatnonzero(infos.get("_final_obs", [])):
        real_next_obs[i] = infos["final_obs"][i]
    rb.add(obs, actions, rewards, real_next_obs, terminations)
    obs = next_obs                                                                           # :584
n = rb.size
d = rb.data
print("obs dtype from env", obs.dtype, "reward dtype", rewards.dtype, "buffer dtypes", [b.dtype for b in d], "shapes", [tuple(b[:n].shape) for b in d])
idx = torch.tensor([0, 5, n - 1])
b = S.Batch(*(buf[idx] for buf in d))
print("sample-by-index shapes/dtypes", [(tuple(x.shape), x.dtype) for x in b], "dones", b.terminations.tolist())
np.savez(f"{os.environ.get('PIPE_OUT', '.')}/ours_K{K}.npz", obs=d.obs[:n].numpy(), act=d.actions[:n].numpy(), rew=d.rewards[:n].numpy(),
         next_obs=d.next_obs[:n].numpy(), done=d.terminations[:n].numpy(), eps=np.array(eps, dtype=np.float64),
         raw=np.array(raw))
print("n", n, "episodes", len(eps), "term", sum(r[0] for r in raw), "trunc", sum(r[1] for r in raw))
