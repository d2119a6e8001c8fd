import os, sys, functools
os.environ["OMP_NUM_THREADS"] = "1"
HERE = os.path.dirname(os.path.abspath(__file__)); sys.path.insert(0, os.environ.get("CLEANRL_SRC", "/tmp/cleanrl/src")); sys.path.insert(0, HERE)
import numpy as np, torch, gymnasium as gym
torch.set_num_threads(1)
K = int(os.environ.get("MAXSTEPS", "0")); N = int(os.environ.get("NSTEPS", "3000"))
if K:
    gym.make = functools.partial(gym.make, max_episode_steps=K)
import cleanrl.sac_continuous_action as C
from cleanrl_utils.buffers import ReplayBuffer
from common_act import act
envs = gym.vector.SyncVectorEnv([C.make_env("Hopper-v4", 1 + i, i, False, "x") for i in range(1)])
envs.single_observation_space.dtype = np.float32
rb = ReplayBuffer(100_000, envs.single_observation_space, envs.single_action_space, "cpu", n_envs=1, handle_timeout_termination=False)
eps, raw = [], []
obs, _ = envs.reset(seed=1)
for global_step in range(N):
    actions = act(global_step, obs)
    next_obs, rewards, terminations, truncations, infos = envs.step(actions)
    if "final_info" in infos:
        for info in infos["final_info"]:
            if info is not None:
                eps.append((global_step + 1, float(info["episode"]["r"]), int(info["episode"]["l"])))
                break
    raw.append((terminations[0], truncations[0]))
    real_next_obs = next_obs.copy()
    for idx, trunc in enumerate(truncations):
        if trunc:
            real_next_obs[idx] = infos["final_observation"][idx]
    rb.add(obs, real_next_obs, actions, rewards, terminations, infos)
    obs = next_obs
n = rb.pos
print("obs dtype from env", obs.dtype, "reward dtype", rewards.dtype, "buffer dtypes", rb.observations.dtype, rb.actions.dtype, rb.rewards.dtype, rb.next_observations.dtype, rb.dones.dtype)
s = rb._get_samples(np.array([0, 5, n - 1]))
print("sample-by-index shapes/dtypes", [(tuple(x.shape), x.dtype) for x in s], "dones", s.dones.flatten().tolist())
np.savez(f"{os.environ.get('PIPE_OUT', '.')}/theirs_K{K}.npz", obs=rb.observations[:n, 0], act=rb.actions[:n, 0], rew=rb.rewards[:n, 0],
         next_obs=rb.next_observations[:n, 0], done=rb.dones[:n, 0], eps=np.array(eps, dtype=np.float64), raw=np.array(raw))
print("n", n, "episodes", len(eps), "term", sum(r[0] for r in raw), "trunc", sum(r[1] for r in raw))
